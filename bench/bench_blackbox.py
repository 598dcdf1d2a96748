"""Black-box explainers vs Captum / pytorch-grad-cam and vs the forward-pass floor, in one run.

Run: `python -m bench.bench_blackbox` (a few minutes on 2 CPU cores). Writes bench/results/blackbox.md.
The floor of a method is its number of forward passes × the best per-image time of the plain model's
batched forward (batch sizes 1..32 tried in the same run). References run as documented
(Captum: default perturbations_per_eval=1; pytorch-grad-cam ScoreCAM: its default batch of 16).
"""

from __future__ import annotations

from pathlib import Path

import torch

import xai_core as xc
from bench.common import NO_BUDGET, best_forward_seconds, once, reference


def main() -> str:
    from captum.attr import Occlusion
    from pytorch_grad_cam import ScoreCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    ref = reference("cpu")
    spec, x, t, plain = ref.spec, ref.x, ref.target, ref.plain()
    per, bs = best_forward_seconds(spec.module, x)
    rows = []

    def row(name: str, passes: int, ours: float, ref: float | None = None, ref_name: str = "") -> None:
        floor = passes * per
        vs = f"{ref_name} {ref:.1f} s → **{ref / ours:.2f}× faster**" if ref else "—"
        rows.append(f"| {name} | {ours:.2f} s | {ours / floor:.2f}× {passes}×fwd ({floor:.2f} s) | {vs} |")

    occ = xc.get_explainer("occlusion")
    ours = once(lambda: occ(spec, x, t, window=16, stride=8, baseline="black"))
    ref_base = spec.normalise(torch.zeros_like(x)).contiguous()
    theirs = once(lambda: Occlusion(plain).attribute(x.contiguous(), sliding_window_shapes=(3, 16, 16),
                                                     strides=(3, 8, 8), baselines=ref_base, target=285))
    row("Occlusion 16×16, stride 8", 729, ours, theirs, "Captum Occlusion")

    sc = xc.get_explainer("scorecam")
    ours = once(lambda: sc(spec, x, t, layer="_conv_head"))
    with ScoreCAM(model=plain, target_layers=[plain._conv_head]) as cam:
        theirs = once(lambda: cam(input_tensor=x.contiguous(), targets=[ClassifierOutputTarget(285)]))
    row("Score-CAM, layer _conv_head (1280 channels)", 1281, ours, theirs, "pytorch-grad-cam ScoreCAM")

    rise = xc.get_explainer("rise")
    row("RISE, 4000 masks", 4000, once(lambda: rise(spec, x, t, masks=4000)))
    from bench.bench_blackbox_lime import bench_lime

    rows.append(bench_lime())
    head = [f"Best batched forward: {per * 1000:.1f} ms/image at batch {bs} (eager module, frozen parameters, channels-last) · "
            f"{xc.engine.device_label(spec.device)}", "",
            "| method | ours | vs floor | reference → speed-up |", "|---|---|---|---|"]
    return "\n".join(head + rows)




def compiled_rows() -> str:
    """Occlusion and LIME with ``RunOptions(compile=True)``: compile time, then warm runs vs the same references."""
    from captum.attr import Lime, Occlusion

    from xai_core.explainers import superpixels as sp
    from xai_core.explainers.common import reference_input

    ref = reference("cpu")
    spec, x, t, plain = ref.spec, ref.x, ref.target, ref.plain()
    black = reference_input(spec, x, "black").contiguous()
    occ, lime = xc.get_explainer("occlusion"), xc.get_explainer("lime")
    lime_p = {"samples": 1000, "segmentation": "slic", "n_segments": 50, "reference": "black"}
    with xc.options.using(xc.RunOptions(compile=True, time_budget=NO_BUDGET.time_budget)):
        warmup = once(lambda: lime(spec, x, t, **{**lime_p, "samples": 50}))
        ours_occ = once(lambda: occ(spec, x, t, window=16, stride=8, baseline="black"))
        ours_lime = once(lambda: lime(spec, x, t, **lime_p))
    ref_occ = once(lambda: Occlusion(plain).attribute(x.contiguous(), sliding_window_shapes=(3, 16, 16),
                                                      strides=(3, 8, 8), baselines=black, target=285))
    segs = torch.from_numpy(sp.segment(sp.to_uint8(spec, x)[0], "slic", 50)).long()[None, None]
    ref_lime = once(lambda: Lime(plain).attribute(x.contiguous(), target=285, baselines=black, feature_mask=segs,
                                                  n_samples=1000))
    return "\n".join([
        f"Compiled (`RunOptions(compile=True)`, the sidebar's toggle): one-off compilation {warmup:.0f} s, then", "",
        "| method | ours, compiled | reference → speed-up |", "|---|---|---|",
        f"| Occlusion 16×16, stride 8 | {ours_occ:.2f} s | Captum Occlusion {ref_occ:.1f} s → **{ref_occ / ours_occ:.2f}×** |",
        f"| LIME, 1000 samples, SLIC 50 | {ours_lime:.2f} s | Captum Lime {ref_lime:.1f} s → **{ref_lime / ours_lime:.2f}×** |",
    ])


if __name__ == "__main__":
    import sys

    with xc.options.using(NO_BUDGET):  # the full sample counts, never capped
        table = compiled_rows() if "--compiled" in sys.argv else main()
    print(table)
    name = "blackbox_compiled.md" if "--compiled" in sys.argv else "blackbox.md"
    (Path(__file__).resolve().parent / "results" / name).write_text(table + "\n")
