"""CRP on the lab CNN: relevance-maximisation references and conditional heatmaps, ours vs zennit-crp 0.6.0's own
loops, and vs the forward-pass floor, measured in one run.

Run: `python -m bench.concepts_crp` (writes bench/results/concepts_crp.md). The set: 300 lab images (64×64), class
'horse', layer features.9 (the last feature layer), the Zennit composite EpsilonPlusFlat on both sides.

* RelMax: the top-8 reference images of 8 channels, with their receptive-field crops. zennit-crp as its docs run it:
  ``FeatureVisualization.run`` (one LRP pass per image; it also ranks by activation and keeps per-class statistics,
  which it cannot skip, and writes them to disk) then ``get_max_reference(..., rf=True)`` for the crops' heatmaps;
  its batch size is tuned (best of 16, 32, 64). Ours: ``relevance_maximisation`` (no disk, crops included).
* Conditional heatmaps: 64 horses × 8 channels. zennit-crp: ``CondAttribution`` over batches of images, each repeated
  once per condition (its broadcast), rows per call tuned (best of 32, 64, 128, 256). Ours: ``conditional_heatmaps``.
* Floor: the number of passes each task needs (one per image, one per crop, one per image × concept) × the best
  per-image time of a plain inference-mode forward of the same CNN (batched, best batch size) — LRP's backward through
  Zennit's rules costs several forwards, so neither side can come near it; it shows the price of the rules.
"""

from __future__ import annotations

import contextlib
import copy
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

import xai_core as xc
from xai_core import lab
from xai_core.concepts import conditional_heatmaps, relevance_maximisation

LAYER, TARGET, TOP = "features.9", 1, 8
CONCEPTS = [16, 47, 34, 44, 56, 52, 19, 6]  # the class's top 8 channels on these horses (concept_relevance)
REPEATS = 3


def crp_relmax(module: torch.nn.Module, x: torch.Tensor, batch: int) -> None:
    from crp.attribution import CondAttribution
    from crp.concepts import ChannelConcept
    from crp.visualization import FeatureVisualization
    from zennit.composites import EpsilonPlusFlat

    with tempfile.TemporaryDirectory() as tmp:
        fv = FeatureVisualization(CondAttribution(module), [(x[i], TARGET) for i in range(len(x))],
                                  {LAYER: ChannelConcept()}, path=tmp)
        fv.run(EpsilonPlusFlat(), 0, len(x), batch_size=batch)
        fv.get_max_reference(CONCEPTS, LAYER, "relevance", (0, TOP), composite=EpsilonPlusFlat(), rf=True,
                             plot_fn=None, batch_size=batch)


def crp_heatmaps(module: torch.nn.Module, x: torch.Tensor, rows: int) -> torch.Tensor:
    from crp.attribution import CondAttribution
    from zennit.composites import EpsilonPlusFlat

    attr, per, out = CondAttribution(module), max(1, rows // len(CONCEPTS)), []
    conditions = [{"y": [TARGET], LAYER: [k]} for k in CONCEPTS]
    for s in range(0, len(x), per):
        xb = x[s:s + per].repeat_interleave(len(CONCEPTS), 0).requires_grad_(True)
        out.append(attr(xb, conditions * (len(xb) // len(CONCEPTS)), EpsilonPlusFlat()).heatmap)
    return torch.cat(out)


def quiet(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` with stdout and stderr silenced (zennit-crp prints progress bars and messages)."""
    def run() -> object:
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null), contextlib.redirect_stderr(null):
            return fn()
    return run


def forward(module: torch.nn.Module, x: torch.Tensor) -> None:
    with torch.inference_mode():
        module(x)


def timed(fn: Callable[[], object], repeats: int = REPEATS) -> tuple[float, float]:
    """Median CPU seconds of this process and median wall seconds of ``repeats`` calls after a warm-up call. With one
    thread the CPU time is the work done, unlike the wall time, whatever else shares the machine's two cores."""
    fn()
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(cpu), statistics.median(wall)


def main() -> str:
    torch.set_num_threads(1)
    spec = lab.load_lab_model("cpu")
    data = lab.make_dataset(300, seed=7)
    x = lab.to_tensor(data.images)
    horses = x[torch.from_numpy(data.labels == 1)][:64]
    plain = copy.deepcopy(spec.module).eval()
    per, bs = min((timed(lambda b=b: forward(spec.module, x[:b]))[0] / b, b) for b in (8, 32, 64, 128))

    load = os.getloadavg()[0]
    ours_rm = timed(lambda: relevance_maximisation(spec, x, TARGET, LAYER, CONCEPTS, top=TOP))
    crp_rm = {b: timed(quiet(lambda b=b: crp_relmax(plain, x, b))) for b in (16, 32, 64)}
    b_rm = min(crp_rm, key=lambda b: crp_rm[b][0])
    ours_ch = timed(lambda: conditional_heatmaps(spec, horses, TARGET, LAYER, CONCEPTS))
    crp_ch = {r: timed(quiet(lambda r=r: crp_heatmaps(plain, horses, r))) for r in (32, 64, 128, 256)}
    r_ch = min(crp_ch, key=lambda r: crp_ch[r][0])

    passes_rm, passes_ch = len(x) + TOP * len(CONCEPTS), len(horses) * len(CONCEPTS)
    rows = [("RelMax: top-8 references + crops of 8 channels over 300 images", passes_rm, ours_rm, crp_rm[b_rm],
             f"FeatureVisualization.run + get_max_reference(rf=True), batch {b_rm}"),
            ("Conditional heatmaps: 64 horses × 8 channels", passes_ch, ours_ch, crp_ch[r_ch],
             f"CondAttribution, {r_ch} rows per call")]
    head = [f"CRP on the lab CNN (64×64), class 'horse', layer {LAYER}, EpsilonPlusFlat; {xc.engine.device_label('cpu')}, "
            f"torch {torch.__version__}. Times: median CPU seconds of this process over {REPEATS} runs (wall-clock "
            f"medians in brackets; the shared 2-core machine's load average was {load:.1f} at the start). Forward floor "
            f"{per * 1000:.2f} ms/image (inference mode, batch {bs}).", "",
            "| task | passes | ours | zennit-crp 0.6.0 (tuned) | crp ÷ ours | forward floor | ours ÷ floor |",
            "|---|---|---|---|---|---|---|"]
    body = [f"| {name} | {n} | {o[0]:.2f} s ({o[1]:.2f} s) | {r[0]:.2f} s ({r[1]:.2f} s; {how}) | **{r[0] / o[0]:.2f}×** "
            f"| {n * per:.2f} s | {o[0] / (n * per):.1f}× |" for name, n, o, r, how in rows]
    tried = [f"zennit-crp settings tried (CPU s): RelMax batch {', '.join(f'{b}: {t[0]:.2f}' for b, t in crp_rm.items())}; "
             f"heatmaps rows per call {', '.join(f'{r}: {t[0]:.2f}' for r, t in crp_ch.items())}."]
    return "\n".join(head + body + ["", *tried])


if __name__ == "__main__":
    table = main()
    print(table)
    (Path(__file__).resolve().parent / "results" / "concepts_crp.md").write_text(table + "\n")
