"""Concept discovery (CRAFT-style, ours) and TCAV (ours, logistic and FastCAV CAVs, vs Captum's TCAV) on the lab CNN,
each against its forward-pass floor, in one run.

Run: ``python -m bench.concepts_discovery`` (writes bench/results/concepts_discovery.md). Every number in the table
is measured in the same run on the same machine (1 thread: the ratios, not the speed, on a shared 2-core machine),
as the best of 3 interleaved rounds.

* Discovery: 300 lab horse images (64×64), 24-px crops every 8 px kept at their size (36 per image, 10,800 crops),
  rank 8, the lab CNN's CAM layer. The floor: one inference-mode forward per crop plus one per image (the gradient
  pass), each at the best batch size of the plain model.
* TCAV: 50 tagged images as the concept, 5 random sets of 50 'other' images, 100 horses as the class's inputs; 5
  concept-vs-random CAVs and 5 random-vs-random CAVs (the null for the t-test). Captum: ``TCAV`` on the plain
  module with the same layer, sets and experimental sets (concept and random pairs, then random pairs), each concept
  a ``DataLoader`` with the whole set in one batch, a fresh ``save_path`` (its activation and CAV caches start
  empty, as on a first run), its default SGD classifier, and the t-test done with scipy as its tutorial does. The
  floor: one forward per concept or random image plus one per input (forward only: a lower bound).
"""

from __future__ import annotations

import copy
import os
import platform
import subprocess
import tempfile
import time

import numpy as np
import torch
from scipy.stats import ttest_ind

from bench.common import RESULTS, best_forward_seconds, once
from xai_core import lab
from xai_core.concepts.craft import discover
from xai_core.concepts.tcav import TcavResult, tcav

N_IMAGES, CONCEPT, RANDOM, RUNS, INPUTS = 300, 50, 50, 5, 100
CROP, STEP, RANK = 24, 8, 8
ROUNDS = 3


def machine() -> str:
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in subprocess.run(["lscpu"], capture_output=True, text=True,
                                                                            check=False).stdout.splitlines()
                   if line.startswith("Model name"))
    except StopIteration:
        cpu = platform.processor() or "unknown CPU"
    return f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, {torch.get_num_threads()} thread(s)"


def captum_tcav(module: torch.nn.Module, layer: str, inputs: torch.Tensor, concept: torch.Tensor,
                randoms: list[torch.Tensor]) -> tuple[list[float], list[float], float]:
    from captum.concept import TCAV, Concept

    def iterate(x: torch.Tensor) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(x, batch_size=len(x))

    with tempfile.TemporaryDirectory() as save:
        oracle = TCAV(module, layers=[layer], save_path=save)
        c = Concept(0, "tag", iterate(concept))
        rs = [Concept(i + 1, f"random{i}", iterate(r)) for i, r in enumerate(randoms)]
        sets = [[c, r] for r in rs] + [[rs[i], rs[(i + 1) % len(rs)]] for i in range(len(rs))]
        got = oracle.interpret(inputs, experimental_sets=sets, target=1)
    keys = list(got)
    scores = [float(got[k][layer]["sign_count"][0]) for k in keys[:len(rs)]]
    nulls = [float(got[k][layer]["sign_count"][0]) for k in keys[len(rs):]]
    return scores, nulls, float(ttest_ind(scores, nulls).pvalue)


def main() -> str:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = lab.load_lab_model("cpu")
    plain = copy.deepcopy(model.module).to(memory_format=torch.contiguous_format).eval()
    data = lab.make_dataset(4 * N_IMAGES, seed=5)
    horses = lab.to_tensor(data.images[data.labels == 1][:N_IMAGES])
    tagged = lab.to_tensor(data.images[data.tagged][N_IMAGES:N_IMAGES + CONCEPT])
    others = lab.to_tensor(data.images[data.labels == 0][:RUNS * RANDOM])
    randoms = [others[i * RANDOM:(i + 1) * RANDOM] for i in range(RUNS)]
    inputs = horses[:INPUTS]
    assert len(horses) == N_IMAGES and len(tagged) == CONCEPT and len(others) == RUNS * RANDOM

    crops = N_IMAGES * ((64 - CROP) // STEP + 1) ** 2
    layer = model.cam_layer
    assert layer is not None
    discover(model, horses[:20], 1, rank=RANK, crop=CROP / 64, stride=STEP / 64, resize=False)  # warm-up
    found: list = []
    ours: dict[str, TcavResult] = {}
    theirs: list = []
    best: dict[str, list[float]] = {k: [] for k in ("disc", "log", "fast", "captum")}
    fwd: dict[str, list[tuple[float, int]]] = {"crop": [], "image": []}
    for _ in range(ROUNDS):  # interleaved rounds, the best of each: robust to a busy shared machine's spikes
        fwd["crop"].append(best_forward_seconds(model.module, horses[:1, :, :CROP, :CROP]))
        fwd["image"].append(best_forward_seconds(model.module, horses[:1]))
        best["disc"].append(once(lambda: found.append(discover(model, horses, 1, rank=RANK, crop=CROP / 64,
                                                                stride=STEP / 64, resize=False))))
        best["log"].append(once(lambda: ours.update(logistic=tcav(model, inputs, 1, tagged, randoms))))
        best["fast"].append(once(lambda: ours.update(fastcav=tcav(model, inputs, 1, tagged, randoms,
                                                                  cav_method="fastcav"))))
        best["captum"].append(once(lambda: theirs.append(captum_tcav(plain, layer, inputs, tagged, randoms))))
    t_disc, t_log, t_fast, t_captum = (min(best[k]) for k in best)
    (per_crop, bs_crop), (per_image, bs_image) = min(fwd["crop"]), min(fwd["image"])
    floor_disc = crops * per_crop + N_IMAGES * per_image
    floor_tcav = (CONCEPT + RUNS * RANDOM + INPUTS) * per_image

    d = found[0]
    head = (f"Concept discovery and TCAV on the lab CNN (64×64), {machine()}, best of {ROUNDS} rounds; load average "
            f"before the run {LOAD}. Forward floor: {per_crop * 1e3:.3f} ms per 24-px crop (batch {bs_crop}), "
            f"{per_image * 1e3:.3f} ms per image (batch {bs_image}).")
    lines = [head, "", "| task | ours | Captum TCAV | floor | ours ÷ floor | Captum ÷ floor | Captum ÷ ours |",
             "|---|---|---|---|---|---|---|",
             f"| discovery: {N_IMAGES} images, {crops:,} crops, rank {RANK} | {t_disc:.2f} s | — | {floor_disc:.2f} s | "
             f"**{t_disc / floor_disc:.2f}×** | — | — |"]
    for name, t in (("logistic CAV", t_log), ("FastCAV", t_fast)):
        lines.append(f"| TCAV, {name}: {CONCEPT} concept images, {RUNS} random sets of {RANDOM}, {INPUTS} inputs, "
                     f"{2 * RUNS} CAVs | {t:.2f} s | {t_captum:.2f} s | {floor_tcav:.2f} s | **{t / floor_tcav:.2f}×** | "
                     f"{t_captum / floor_tcav:.2f}× | **{t_captum / t:.1f}×** |")

    def scores(r: TcavResult) -> str:
        return f"{np.round(r.scores, 2).tolist()} (null {np.round(r.random_scores, 2).tolist()}) p = {r.p_value:.3g}"

    c_scores, c_nulls, c_p = theirs[0]
    lines += ["", f"Discovery: top concept share {d.concepts[0].share:.2f}, relative error {d.relative_error:.3f}. "
              f"TCAV scores (tag concept, class horse): ours logistic {scores(ours['logistic'])}; FastCAV "
              f"{scores(ours['fastcav'])}; Captum {np.round(c_scores, 2).tolist()} (null {np.round(c_nulls, 2).tolist()}) "
              f"p = {c_p:.3g}."]
    return "\n".join(lines)


NOTES = """Discovery beyond the floor is arithmetic the floor does not count (one cProfile run, same settings): the crops'
forwards are about 37 % of the time, the float64 NMF of the 10,800 × 64 pooled activations (500 multiplicative
updates) about 30 %, the coefficients of the 300 full images' 76,800 positions (300 updates) about 23 %. Our logistic
TCAV fits 10 L-BFGS logistic regressions on 16,384-dim flattened activations of 100 images; FastCAV fits none. Captum's
TCAV: its default SGD classifier with its own train/test split, activations through disk (pickles in save_path)."""

LOAD = ", ".join(f"{v:.2f}" for v in os.getloadavg())

if __name__ == "__main__":
    t0 = time.perf_counter()
    table = main()
    table += f"\n\n{NOTES}\n\nWhole bench {time.perf_counter() - t0:.0f} s."
    print(table)
    (RESULTS / "concepts_discovery.md").write_text(table + "\n")
