"""Speed of our explainers vs Captum / pytorch-grad-cam and vs the pass floor, measured in one run.

Run: `make bench` (or `python -m bench.bench_explainers`). Prints a Markdown table and writes it to
bench/results/latest.md. Ratios are what matter: every number in a row is measured in this run, on
this machine, with the bundled EfficientNet-Lite0 at 224×224 and the same image and settings.

Baselines use the reference libraries as their documentation shows: a plain ``model.eval()`` copy
(default memory format, parameters requiring grad). Ours runs on the ModelSpec (frozen, channels-last).
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

import xai_core as xc
from bench.common import REPEATS, median_time
from xai_core import images


def main() -> str:
    from captum.attr import GuidedBackprop, InputXGradient, IntegratedGradients, Saliency
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.manual_seed(0)
    spec = xc.load_model("efficientnet_lite0", device="cpu")
    plain = copy.deepcopy(spec.module).to(memory_format=torch.contiguous_format).requires_grad_(True).eval()
    image = images.load_sample("Chelsea the cat")
    x = spec.preprocess(image)
    xp = x.contiguous()
    t = torch.tensor([285])

    def fwd() -> None:
        with torch.inference_mode():
            spec.module(x)

    def fwd_bwd() -> None:
        xi = x.detach().requires_grad_(True)
        torch.autograd.grad(spec.module(xi)[0, 285], xi)

    def ours(method: str, **p: object) -> Callable[[], object]:
        s = xc.get_explainer(method)
        return lambda: s(spec, x, t, **p)

    floor_f, floor_fb = median_time(fwd), median_time(fwd_bwd)
    target = [ClassifierOutputTarget(285)]
    rows: list[tuple[str, float, str, float | None, str]] = []

    def row(name: str, ours_fn: Callable[[], object], floor: float, floor_name: str,
            ref_fn: Callable[[], object] | None = None, ref_name: str = "", repeats: int = REPEATS) -> None:
        o = median_time(ours_fn, repeats)
        r = median_time(ref_fn, repeats) if ref_fn else None
        ref = f"{ref_name} {r:.3f} s → **{r / o:.2f}× faster**" if r else "—"
        rows.append((name, o, f"{o / floor:.2f}× {floor_name}", r, ref))

    sal = Saliency(plain)
    row("Gradient", ours("gradient"), floor_fb, "fwd+bwd", lambda: sal.attribute(xp, target=285, abs=True), "Captum Saliency")
    ixg = InputXGradient(plain)
    row("Input × Gradient", ours("input_x_gradient"), floor_fb, "fwd+bwd", lambda: ixg.attribute(xp, target=285),
        "Captum InputXGradient")
    gbp = GuidedBackprop(plain)
    row("Guided Backprop", ours("guided_backprop"), floor_fb, "fwd+bwd", lambda: gbp.attribute(xp, target=285),
        "Captum GuidedBackprop (ReLU only)")
    row("CAM", ours("cam"), floor_f, "fwd")
    with GradCAM(model=plain, target_layers=[plain._conv_head]) as gc:
        row("Grad-CAM (layer _conv_head)", ours("gradcam", layer="_conv_head"), floor_fb, "fwd+bwd",
            lambda: gc(input_tensor=xp, targets=target), "pytorch-grad-cam GradCAM")
    with GradCAMPlusPlus(model=plain, target_layers=[plain._conv_head]) as gcp:
        row("Grad-CAM++ (layer _conv_head)", ours("gradcam_pp", layer="_conv_head"), floor_fb, "fwd+bwd",
            lambda: gcp(input_tensor=xp, targets=target), "pytorch-grad-cam GradCAM++")
    ig = IntegratedGradients(plain)
    row("Integrated Gradients, 50 steps", ours("integrated_gradients", steps=50), 50 * floor_fb, "50×(fwd+bwd)",
        lambda: ig.attribute(xp, target=285, n_steps=50), "Captum IG", repeats=3)
    row("SmoothGrad, 25 samples", ours("smoothgrad", samples=25), 25 * floor_fb, "25×(fwd+bwd)", repeats=3)

    lines = [f"Floors (batch 1, medians of {REPEATS}): one forward {floor_f * 1000:.1f} ms, one forward+backward "
             f"{floor_fb * 1000:.1f} ms · {xc.engine.device_label(spec.device)} · torch {torch.__version__}", "",
             "| method | ours | vs floor | reference → speed-up |", "|---|---|---|---|"]
    lines += [f"| {n} | {o:.3f} s | {f} | {r} |" for n, o, f, _, r in rows]
    lines += ["", f"Cached rerun of the Explain page (AppTest, 3 maps): {page_rerun():.3f} s"]
    return "\n".join(lines)


def page_rerun() -> float:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=600)
    at.run()
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


if __name__ == "__main__":
    table = main()
    print(table)
    out = Path(__file__).resolve().parent / "results" / "latest.md"
    out.write_text(table + "\n")
