"""GPU speed: our explainers vs Captum / pytorch-grad-cam and vs the forward-pass floor, in one run on CUDA.

Run on a machine with a CUDA GPU: `python -m bench.bench_gpu` (writes bench/results/gpu.md). Every
timing synchronises the device; medians of 5 after a warm-up. The references run as documented
(Captum Occlusion's default perturbations_per_eval=1) and, where that is unfair, tuned as well.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import torch

import xai_core as xc
from bench.common import median_time
from xai_core import images


def timed(fn: Callable[[], object], repeats: int = 5) -> float:
    return median_time(fn, repeats, torch.device("cuda"))


def main() -> str:
    from captum.attr import IntegratedGradients, Lime, Occlusion, Saliency
    from pytorch_grad_cam import GradCAM, ScoreCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from xai_core.explainers import superpixels as sp
    from xai_core.explainers.common import reference_input

    torch.backends.cudnn.benchmark = True
    spec = xc.load_model("efficientnet_lite0", device="cuda")
    plain = copy.deepcopy(spec.module).to(memory_format=torch.contiguous_format).requires_grad_(True).eval()
    x = spec.preprocess(images.load_sample("Chelsea the cat"))
    xp, t, cls = x.contiguous(), torch.tensor([285], device="cuda"), 285
    black = reference_input(spec, x, "black").contiguous()
    per = min(timed(lambda b=b: _fwd(spec.module, x, b)) / b for b in (64, 128, 256, 512))
    rows: list[str] = []

    def row(name: str, passes: int, ours: float, refs: list[tuple[str, float]]) -> None:
        vs = " · ".join(f"{n} {r * 1000:.0f} ms → **{r / ours:.1f}×**" for n, r in refs) or "—"
        rows.append(f"| {name} | {ours * 1000:.0f} ms | {ours / (passes * per):.2f}× | {vs} |")

    def ours(method: str, **p: object) -> float:
        s = xc.get_explainer(method)
        return timed(lambda: s(spec, x, t, **p))

    row("Gradient", 1, ours("gradient"), [("Captum Saliency", timed(lambda: Saliency(plain).attribute(xp, target=cls)))])
    ig = IntegratedGradients(plain)
    row("Integrated Gradients, 50 steps", 50, ours("integrated_gradients", steps=50),
        [("Captum IG", timed(lambda: ig.attribute(xp, baselines=black, target=cls, n_steps=50)))])
    with GradCAM(model=plain, target_layers=[plain._conv_head]) as cam:
        ref = timed(lambda: cam(input_tensor=xp, targets=[ClassifierOutputTarget(cls)]))
    row("Grad-CAM", 1, ours("gradcam"), [("pytorch-grad-cam", ref)])
    occ = Occlusion(plain)

    def occ_ref(ppe: int) -> float:
        return timed(lambda: occ.attribute(xp, sliding_window_shapes=(3, 16, 16), strides=(3, 8, 8), baselines=black,
                                           target=cls, perturbations_per_eval=ppe), repeats=2)

    row("Occlusion 16×16, stride 8", 729, ours("occlusion", window=16, stride=8),
        [("Captum (default ppe=1)", occ_ref(1)), ("Captum ppe=128", occ_ref(128))])
    with ScoreCAM(model=plain, target_layers=[plain._conv_head]) as sc:
        ref = timed(lambda: sc(input_tensor=xp, targets=[ClassifierOutputTarget(cls)]), repeats=2)
    row("Score-CAM, 1280 channels", 1281, ours("scorecam", layer="_conv_head"), [("pytorch-grad-cam", ref)])
    segs = torch.from_numpy(sp.segment(sp.to_uint8(spec, x)[0], "slic", 50)).long()[None, None].cuda()
    lime = Lime(plain)

    def lime_ref(ppe: int) -> float:
        return timed(lambda: lime.attribute(xp, target=cls, baselines=black, feature_mask=segs, n_samples=1000,
                                            perturbations_per_eval=ppe), repeats=2)

    row("LIME, 1000 samples", 1000, ours("lime", samples=1000, reference="black"),
        [("Captum (default ppe=1)", lime_ref(1)), ("Captum ppe=128", lime_ref(128))])
    row("RISE, 4000 masks", 4000, ours("rise", masks=4000), [])
    from xai_core import metrics

    image = images.load_sample("Chelsea the cat")
    cam = xc.explain(spec, image, "gradcam", target=cls).map
    pair = {"deletion": {"steps": 50}, "insertion": {"steps": 50}}
    row("Deletion + insertion, 50 steps, one map", 102, timed(lambda: metrics.evaluate(
        spec, image, {"m": cam}, cls, metrics=["deletion", "insertion"], params=pair)), [])
    six = {f"m{i}": cam + i for i in range(6)}
    row("All 4 curve metrics, 6 maps (defaults)", 6 * (33 + 33 + 26 + 26), timed(lambda: metrics.evaluate(
        spec, image, six, cls, metrics=["deletion", "insertion", "aopc_morf", "aopc_lerf"])), [])
    row("Meaningful Perturbation, 300 its", 300, ours("meaningful_perturbation"), [])
    head = [f"{xc.engine.device_label(spec.device)} · torch {torch.__version__} · EfficientNet-Lite0 224² · best batched "
            f"forward {per * 1e6:.0f} µs/image", "",
            "| method | ours | vs forward floor | reference → speed-up |", "|---|---|---|---|"]
    return "\n".join(head + rows)


def _fwd(module: torch.nn.Module, x: torch.Tensor, b: int) -> None:
    xb = x.expand(b, -1, -1, -1).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), xc.engine.autocast(x.device):
        module(xb)


if __name__ == "__main__":
    import sys

    half = "--bf16" in sys.argv
    with xc.options.using(xc.RunOptions(bf16=half, time_budget=3600.0)):  # full sample counts, never capped
        table = ("bf16 autocast (`RunOptions(bf16=True)`)" if half else "float32 (the default)") + " · " + main()
    print(table)
    (Path(__file__).resolve().parent / "results" / ("gpu_bf16.md" if half else "gpu.md")).write_text(table + "\n")
