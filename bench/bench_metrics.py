"""Cost of the deletion + insertion pair for one map vs its forward-pass floor, in one run.

Run: `python -m bench.bench_metrics` (writes bench/results/metrics.md). The floor is the pair's number of
forward passes × the best per-image time of the plain (eager) model's batched forward, measured in the
same run (see bench_blackbox). Ours includes building every perturbed input, ranking the map and the
AUCs; it runs through the engine (frozen graph on CPU).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import xai_core as xc
from bench.common import best_forward_seconds
from xai_core import images, metrics


def main() -> str:
    spec = xc.load_model("efficientnet_lite0", device="cpu")
    image = images.load_sample("Chelsea the cat")
    x = spec.preprocess(image)
    e = xc.explain(spec, image, "gradcam", target=285)
    per, bs = best_forward_seconds(spec.module, x)
    rows = []
    for steps in (20, 50, 100):
        params = {"deletion": {"steps": steps}, "insertion": {"steps": steps}}
        run = lambda p=params: metrics.evaluate(spec, image, {"Grad-CAM": e.map}, 285,  # noqa: E731
                                                metrics=["deletion", "insertion"], params=p)
        run()
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            r = run()
            times.append(time.perf_counter() - t0)
        ours = statistics.median(times)
        floor = r.passes * per
        rows.append(f"| {steps} steps | {r.passes} | {ours:.2f} s | {floor:.2f} s | **{ours / floor:.2f}×** |")
    head = [f"Deletion + insertion of one Grad-CAM map, EfficientNet-Lite0 224², {xc.engine.device_label(spec.device)}; "
            f"best eager batched forward {per * 1000:.1f} ms/image (batch {bs}).", "",
            "| curve resolution | forward passes | ours | floor | ours ÷ floor |", "|---|---|---|---|---|"]
    return "\n".join(head + rows)


if __name__ == "__main__":
    table = main()
    print(table)
    (Path(__file__).resolve().parent / "results" / "metrics.md").write_text(table + "\n")
