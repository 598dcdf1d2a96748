"""Any-time maps: time to the first useful map per refining method, at default settings, and streaming's total cost.

Run: `python -m bench.anytime [--threads 1] [--methods rise,lime]` (about 6 minutes on 2 CPU cores). Writes
bench/results/anytime.md. Per method, in one run on the reference (lite0, Chelsea, class 285, no time budget):

* one-shot: CPU seconds of ``spec.run`` (no previews), the best of :data:`REPEATS` runs alternated with the streams'
  (more, up to :data:`MAX_REPEATS`, for short methods: :data:`MEASURE` seconds of pairs at least);
* streaming: ``spec.stream`` without a stop rule; each refinement's time since the start and its Spearman rank
  correlation (all pixels) with the converged map (the stream's last = the one-shot map, checked bit-equal here),
  from the fastest stream;
  "first useful" is the first refinement with a correlation ≥ 0.9, "ratio" the stream's total / one-shot;
* the default stop rule (:class:`xai_core.anytime.StopRule`) replayed on the same refinements (it is a function of
  the maps alone): where it stops, when, and that map's correlation with the converged one.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch

import xai_core as xc
from bench.common import NO_BUDGET, RESULTS, reference
from xai_core import anytime

METHODS = ("rise", "lime", "kernel_shap", "smoothgrad", "integrated_gradients", "occlusion", "scorecam",
           "meaningful_perturbation")
USEFUL = 0.9
REPEATS = 2
MAX_REPEATS, MEASURE = 7, 30.0  # a short method's ratio is noisier: pairs until ~30 CPU seconds, at most 7
CLOCK = time.process_time  # CPU seconds of this process: on one thread, the wall time of an idle machine


def stream(spec: xc.ExplainerSpec, model: xc.ModelSpec, x: torch.Tensor, t: torch.Tensor) -> list[tuple[float, object]]:
    """(seconds since the start, result) per refinement; the consumer only keeps them."""
    out, t0 = [], CLOCK()
    for r in spec.stream(model, x, t):
        out.append((CLOCK() - t0, r))
    return out


def once(fn: Callable[[], object]) -> float:
    t0 = CLOCK()
    fn()
    return CLOCK() - t0


TOP10 = anytime.StopRule(top=0.1, threshold=0.9)  # the example, for comparison


def _stability(r: object) -> str:
    stab = r.refinement.stability  # type: ignore[attr-defined]
    return "stab=-" if stab is None else f"stab={stab:.3f}"


def _replay(steps: list[tuple[float, object]], corr: list[float], rule: anytime.StopRule) -> str:
    """Where ``rule`` stops the recorded refinements (a function of the maps alone), when, and that map's ρ."""
    stopped = anytime.last(anytime.refine(iter([r for _, r in steps]), rule))
    k = next(i for i, (_, r) in enumerate(steps) if r.refinement.text == stopped.refinement.text)  # type: ignore[attr-defined]
    where = "to the end" if not stopped.refinement.stopped else stopped.refinement.text
    return f"{where} at {steps[k][0]:.2f} s (ρ {corr[k]:.3f})"


def measure(mid: str, wb: xc.Workbench, x: torch.Tensor, t: torch.Tensor) -> tuple[str, list[str]]:
    spec = xc.get_explainer(mid)
    holder: dict[str, xc.ExplainerResult] = {}
    with wb.session() as model:  # the best of each, alternated: this machine is shared
        runs: list[tuple[float, list[tuple[float, object]]]] = []
        while len(runs) < REPEATS or (len(runs) < MAX_REPEATS and sum(o + s[-1][0] for o, s in runs) < MEASURE):
            runs.append((once(lambda: holder.__setitem__("r", spec.run(model, x, t))), stream(spec, model, x, t)))
    oneshot = min(r[0] for r in runs)
    steps = min((r[1] for r in runs), key=lambda s: s[-1][0])
    final = holder["r"].maps
    assert torch.equal(steps[-1][1].maps, final), f"{mid}: the streamed final differs from the one-shot map"
    corr = [anytime.rank_correlation(r.maps[0], final[0]) for _, r in steps]
    useful = next((i for i, c in enumerate(corr) if c >= USEFUL), len(steps) - 1)
    replay = [_replay(steps, corr, rule) for rule in (anytime.StopRule(), TOP10)]
    total = steps[-1][0]
    first_t, first_r = steps[useful]
    row = (f"| {spec.title} | {oneshot:.2f} s | {steps[0][0]:.2f} s | {first_t:.2f} s ({first_r.refinement.text}; "
           f"ρ {corr[useful]:.3f}) | {total:.2f} s | {total / oneshot:.2f}× | {replay[0]} | {replay[1]} |")
    trace = [f"{spec.title} (best of {len(runs)}): " + ", ".join(f"{r.refinement.text} @{s:.2f}s ρ={c:.3f} " + _stability(r)
                                           for (s, r), c in zip(steps, corr, strict=True))]
    return row, trace


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1, help="1: what the app uses on 2 cores (configure_threads)")
    parser.add_argument("--methods", default=",".join(METHODS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ref = reference("cpu")
    wb = xc.Workbench(ref.spec, NO_BUDGET)
    with wb.session() as model:  # warm-up: frozen graph, pass timing
        xc.get_explainer("rise").run(model, ref.x, ref.target, masks=50)
    rows, traces, load = [], [], [os.getloadavg()[0]]
    for mid in args.methods.split(","):
        row, trace = measure(mid, wb, ref.x, ref.target)
        load.append(os.getloadavg()[0])
        print(row, flush=True)
        print(*trace, sep="\n", flush=True)
        rows.append(row)
        traces += trace
    rule = anytime.StopRule()
    text = "\n".join([
        f"# Any-time maps · CPU ({_cpu()}) · {args.threads} thread{'s' if args.threads > 1 else ''} · "
        f"lite0 224×224 · default parameters", "",
        f"First useful map: the first refinement whose Spearman correlation (all pixels) with the converged map is "
        f"≥ {USEFUL}; ρ below is that correlation. Default stop rule: {rule.text()}. Stability (stab) is measured "
        "with the default rule. Times are CPU seconds of the benchmark process (one thread: what the wall clock "
        f"shows on an idle machine; this {os.cpu_count()}-core machine was shared with other work: 1-minute load "
        f"average {min(load):.1f}–{max(load):.1f} before and after each method), since the start of the stream; "
        "the consumer only records.", "",
        "| method | one-shot | first map | first useful map | streamed total | stream / one-shot | default stop rule | "
        "top-10% rule (ρ ≥ 0.9 twice) |",
        "|---|---|---|---|---|---|---|---|", *rows, "", "## Refinements", "", *[f"* {t}" for t in traces], ""])
    (RESULTS / "anytime.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
