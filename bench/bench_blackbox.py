"""Black-box explainers vs Captum / pytorch-grad-cam and vs the forward-pass floor, in one run.

Run: `python -m bench.bench_blackbox` (a few minutes on 2 CPU cores). Writes bench/results/blackbox.md.
The floor of a method is its number of forward passes × the best per-image time of the plain model's
batched forward (batch sizes 1..32 tried in the same run). References run as documented
(Captum: default perturbations_per_eval=1; pytorch-grad-cam ScoreCAM: its default batch of 16).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import torch

import xai_core as xc
from bench.bench_explainers import median_time
from xai_core import images


def best_forward_seconds(module: torch.nn.Module, x: torch.Tensor) -> tuple[float, int]:
    """Best seconds per image of a batched forward (inference mode), and the batch size that got it."""
    best = (float("inf"), 1)
    for bs in (1, 2, 4, 8, 16, 32):
        xb = x.expand(bs, *x.shape[1:]).contiguous(memory_format=torch.channels_last)

        def run(xb: torch.Tensor = xb) -> None:
            with torch.inference_mode():
                module(xb)

        best = min(best, (median_time(run, 3) / bs, bs))
    return best


def once(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> str:
    from captum.attr import Occlusion
    from pytorch_grad_cam import ScoreCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    spec = xc.load_model("efficientnet_lite0", device="cpu")
    plain = copy.deepcopy(spec.module).to(memory_format=torch.contiguous_format).requires_grad_(True).eval()
    x = spec.preprocess(images.load_sample("Chelsea the cat"))
    t = torch.tensor([285])
    per, bs = best_forward_seconds(spec.module, x)
    rows = []

    def row(name: str, passes: int, ours: float, ref: float | None = None, ref_name: str = "") -> None:
        floor = passes * per
        vs = f"{ref_name} {ref:.1f} s → **{ref / ours:.2f}× faster**" if ref else "—"
        rows.append(f"| {name} | {ours:.2f} s | {ours / floor:.2f}× {passes}×fwd ({floor:.2f} s) | {vs} |")

    occ = xc.get_explainer("occlusion")
    ours = once(lambda: occ(spec, x, t, window=16, stride=8, baseline="black", budget_s=3600))
    ref_base = spec.normalise(torch.zeros_like(x)).contiguous()
    theirs = once(lambda: Occlusion(plain).attribute(x.contiguous(), sliding_window_shapes=(3, 16, 16),
                                                     strides=(3, 8, 8), baselines=ref_base, target=285))
    row("Occlusion 16×16, stride 8", 729, ours, theirs, "Captum Occlusion")

    sc = xc.get_explainer("scorecam")
    ours = once(lambda: sc(spec, x, t, layer="_conv_head", budget_s=3600))
    with ScoreCAM(model=plain, target_layers=[plain._conv_head]) as cam:
        theirs = once(lambda: cam(input_tensor=x.contiguous(), targets=[ClassifierOutputTarget(285)]))
    row("Score-CAM, layer _conv_head (1280 channels)", 1281, ours, theirs, "pytorch-grad-cam ScoreCAM")

    rise = xc.get_explainer("rise")
    row("RISE, 4000 masks", 4000, once(lambda: rise(spec, x, t, masks=4000, budget_s=3600)))
    from bench.bench_blackbox_lime import bench_lime

    rows.append(bench_lime())
    head = [f"Best batched forward: {per * 1000:.1f} ms/image at batch {bs} (eager module, frozen parameters, channels-last) · "
            f"{xc.engine.device_label(spec.device)}", "",
            "| method | ours | vs floor | reference → speed-up |", "|---|---|---|---|"]
    return "\n".join(head + rows)




def compiled_rows() -> str:
    """Occlusion and LIME with engine.set_compiled(True): compile time, then warm runs vs the same references."""
    from captum.attr import Lime, Occlusion

    from xai_core.explainers import superpixels as sp
    from xai_core.explainers.common import reference_input

    spec = xc.load_model("efficientnet_lite0", device="cpu")
    plain = copy.deepcopy(spec.module).to(memory_format=torch.contiguous_format).requires_grad_(True).eval()
    x = spec.preprocess(images.load_sample("Chelsea the cat"))
    t = torch.tensor([285])
    black = reference_input(spec, x, "black").contiguous()
    occ, lime = xc.get_explainer("occlusion"), xc.get_explainer("lime")
    lime_p = {"samples": 1000, "segmentation": "slic", "n_segments": 50, "reference": "black", "budget_s": 3600.0}
    xc.engine.set_compiled(True)
    try:
        warmup = once(lambda: lime(spec, x, t, **{**lime_p, "samples": 50}))
        ours_occ = once(lambda: occ(spec, x, t, window=16, stride=8, baseline="black", budget_s=3600))
        ours_lime = once(lambda: lime(spec, x, t, **lime_p))
    finally:
        xc.engine.set_compiled(False)
    ref_occ = once(lambda: Occlusion(plain).attribute(x.contiguous(), sliding_window_shapes=(3, 16, 16),
                                                      strides=(3, 8, 8), baselines=black, target=285))
    segs = torch.from_numpy(sp.segment(sp.to_uint8(spec, x)[0], "slic", 50)).long()[None, None]
    ref_lime = once(lambda: Lime(plain).attribute(x.contiguous(), target=285, baselines=black, feature_mask=segs,
                                                  n_samples=1000))
    return "\n".join([
        f"Compiled (`engine.set_compiled(True)`, the sidebar's toggle): one-off compilation {warmup:.0f} s, then", "",
        "| method | ours, compiled | reference → speed-up |", "|---|---|---|",
        f"| Occlusion 16×16, stride 8 | {ours_occ:.2f} s | Captum Occlusion {ref_occ:.1f} s → **{ref_occ / ours_occ:.2f}×** |",
        f"| LIME, 1000 samples, SLIC 50 | {ours_lime:.2f} s | Captum Lime {ref_lime:.1f} s → **{ref_lime / ours_lime:.2f}×** |",
    ])


if __name__ == "__main__":
    import sys

    table = compiled_rows() if "--compiled" in sys.argv else main()
    print(table)
    name = "blackbox_compiled.md" if "--compiled" in sys.argv else "blackbox.md"
    (Path(__file__).resolve().parent / "results" / name).write_text(table + "\n")
