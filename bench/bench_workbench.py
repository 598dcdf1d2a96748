"""What the Workbench pipeline costs around an explainer: Grad-CAM's ``explain`` against one forward + backward.

Run: ``python -m bench.bench_workbench``. ``Workbench.explain`` takes the class and its probability from Grad-CAM's
own forward pass, so a call costs one forward and a backward down to the CAM layer only (plus preprocessing and
the resize to the image). Before the Workbench, ``explain`` ran a separate forward for the target first.
"""

from __future__ import annotations

import torch

import xai_core as xc
from bench.common import REPEATS, RESULTS, floors, median_time, reference


def main(rounds: int = 3) -> str:
    torch.set_num_threads(1)  # the ratio, not the absolute speed: one thread is the least noisy on a shared machine
    ref = reference("cpu")
    wb = xc.Workbench(ref.spec)
    given, top1 = xc.ExplainRequest.make("gradcam", ref.target.item()), xc.ExplainRequest.make("gradcam")
    best = {"fwd": [], "fwd+bwd": [], "given": [], "top1": []}
    for _ in range(rounds):  # interleaved rounds, best of the medians: robust to a busy machine's spikes
        f, fb = floors(ref)
        best["fwd"].append(f)
        best["fwd+bwd"].append(fb)
        best["given"].append(median_time(lambda: wb.explain(ref.image, given)))
        best["top1"].append(median_time(lambda: wb.explain(ref.image, top1)))
    t = {k: min(v) for k, v in best.items()}
    lines = [f"Grad-CAM through `Workbench.explain` (EfficientNet-Lite0, 224×224, CPU, 1 thread, best of {rounds} medians "
             f"of {REPEATS}): one forward {t['fwd'] * 1000:.1f} ms, one forward+backward {t['fwd+bwd'] * 1000:.1f} ms.", "",
             "| call | ms | ÷ (forward+backward) |", "|---|---|---|"]
    for name, key in (("explain, class given", "given"), ("explain, top-1 class", "top1"), ("one forward", "fwd")):
        lines.append(f"| {name} | {t[key] * 1000:.1f} | {t[key] / t['fwd+bwd']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    table = main()
    print(table)
    (RESULTS / "workbench.md").write_text(table + "\n")
