"""The criteria of MetaQuantus (Hedström et al., TMLR 2023) on score matrices, and the agreement of metrics.

For one metric, ``q`` [explainer, image] are the unperturbed scores, ``q_hat`` [K, explainer, image] the scores
under K draws of a test, ``counted`` [K, image] the images each draw counts (MetaQuantus's ``indices``: resilience
counts the images whose prediction stayed the target, adversary those whose prediction changed).

* IAC (intra-consistency): the Wilcoxon signed-rank p-value (two-sided, ``zsplit``) between an explainer's scores
  before and after a draw, over the counted images; ``1 − p`` for the adversary. Averaged over explainers and draws.
* IEC (inter-consistency): per draw, the share of (explainer, counted image) entries where the ranking condition
  holds — resilience: the explainer's rank among the explainers is unchanged; adversary: its perturbed score is
  worse than its unperturbed one *in the metric's direction*. Averaged over draws.
* MC = the mean of IAC_NR, IAC_AR, IEC_NR and IEC_AR (1 is ideal).

Where we differ from ``metaquantus`` 0.0.5 (identical otherwise, tested on shared matrices):
(1) its ``compute_iec_adversary`` tests ``if score_direction:`` on the strings "lower"/"higher", both truthy, so it
always counts ``q < q_hat`` (right only for lower-is-better metrics); the paper (and the package's earlier boolean
``score_direction``) counts a *worse* perturbed score, which we do for both directions. (2) Scores that tie within
float32 resolution rank nothing: a tied explainer keeps no rank (IEC_NR counts 0 where ``argsort`` would keep the
stable order) and an equal perturbed score is not worse. (3) A draw that counts no image contributes nothing (the
package turns a failed Wilcoxon into p = 0); identical scores give p = 1.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import kendalltau, wilcoxon

# The pass mark. The paper compares MC relatively (within a category, over iterations: the best counts when it
# beats the worst by two standard deviations); in the loop there is one run on a few images, so the floor is
# absolute: 0.5 is the MC of an estimator that never reacts (IAC_NR = IEC_NR = 1, IAC_AR = IEC_AR = 0), and random
# scores get about (0.5 + 0.5 + 1/E + 0.5) / 4 < 0.5 for E explainers. A metric must beat both.
THRESHOLD = 0.5
# Mean of IAC_AR and IEC_AR below this: the metric does not react to disruption at all (halfway from no reaction, 0,
# to the chance level of both criteria, 0.5).
REACTS = 0.25
TIE = 16 * float(np.finfo(np.float32).eps)  # relative difference below which two scores are the same number
NAMES = {"iac_nr": "IAC_NR", "iac_ar": "IAC_AR", "iec_nr": "IEC_NR", "iec_ar": "IEC_AR"}
WEAK = {"iac_nr": "its scores shift under minor noise", "iac_ar": "its scores barely shift under disruption",
        "iec_nr": "its ranking changes under minor noise",
        "iec_ar": "disrupted explanations often score better, not worse"}


@dataclass(frozen=True)
class Consistency:
    """The four criteria of one metric in one perturbation space, and MC (their mean)."""

    iac_nr: float
    iac_ar: float
    iec_nr: float
    iec_ar: float

    @property
    def mc(self) -> float:
        return float(np.mean([self.iac_nr, self.iac_ar, self.iec_nr, self.iec_ar]))


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b) <= TIE * np.maximum(np.abs(a), np.abs(b))


def iac(q: np.ndarray, q_hat: np.ndarray, counted: np.ndarray, adversary: bool) -> float:
    """Wilcoxon p-value between ``q`` and ``q_hat`` [image] over the counted images (``1 − p`` for the adversary)."""
    keep = counted & np.isfinite(q) & np.isfinite(q_hat)
    a, b = q[keep], q_hat[keep]
    if not len(a):
        return float("nan")
    p = 1.0 if np.all(a == b) else float(wilcoxon(a, b, alternative="two-sided", zero_method="zsplit")[1])
    return 1.0 - p if adversary else p


def _columns(q: np.ndarray, q_hat: np.ndarray, counted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = counted & np.isfinite(q).all(0) & np.isfinite(q_hat).all(0)
    return q[:, keep], q_hat[:, keep]


def _ranks(q: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(q, axis=0, kind="stable"), axis=0, kind="stable")


def _tied(q: np.ndarray) -> np.ndarray:
    """[explainer, image]: the explainer's score equals another explainer's on that image."""
    same = _same(q[:, None, :], q[None, :, :])
    return same.sum(1) > 1


def iec_resilience(q: np.ndarray, q_hat: np.ndarray, counted: np.ndarray) -> float:
    """Share of (explainer, counted image) entries whose rank among the explainers is unchanged and untied."""
    a, b = _columns(q, q_hat, counted)
    if not a.size:
        return float("nan")
    return float(np.mean((_ranks(a) == _ranks(b)) & ~_tied(a) & ~_tied(b)))


def iec_adversary(q: np.ndarray, q_hat: np.ndarray, counted: np.ndarray, better: str) -> float:
    """Share of (explainer, counted image) entries whose perturbed score is worse in the metric's direction."""
    a, b = _columns(q, q_hat, counted)
    if not a.size:
        return float("nan")
    worse = (b < a) if better == "higher" else (b > a)
    return float(np.mean(worse & ~_same(a, b)))


def nanmean(values: list[float] | np.ndarray) -> float:
    v = np.asarray(values, dtype=float)
    return float(v[np.isfinite(v)].mean()) if np.isfinite(v).any() else float("nan")


def consistency(q: np.ndarray, q_res: np.ndarray, c_res: np.ndarray, q_adv: np.ndarray, c_adv: np.ndarray,
                better: str) -> Consistency:
    """The four criteria of one space from the resilience draws (``q_res``, ``c_res``) and adversary draws."""
    def intra(q_hat: np.ndarray, counted: np.ndarray, adversary: bool) -> float:
        return nanmean([iac(q[e], q_hat[k, e], counted[k], adversary)
                        for k in range(len(q_hat)) for e in range(len(q))])

    return Consistency(intra(q_res, c_res, False), intra(q_adv, c_adv, True),
                       nanmean([iec_resilience(q, q_res[k], c_res[k]) for k in range(len(q_res))]),
                       nanmean([iec_adversary(q, q_adv[k], c_adv[k], better) for k in range(len(q_adv))]))


def tied_share(q: np.ndarray) -> float:
    """Share of the (explainer, image) scores in ``q`` that equal another explainer's on the same image."""
    a = q[:, np.isfinite(q).all(0)]
    return float(_tied(a).mean()) if a.size else float("nan")


def verdict(title: str, model: Consistency, input: Consistency, q: np.ndarray,
            threshold: float = THRESHOLD) -> tuple[bool | None, str]:
    """Pass (True), fail (False) or not judged (None), with the one sentence that says why. Fails, in this order:
    no reaction to disruption (mean of IAC_AR and IEC_AR below :data:`REACTS`); a ranking that survives minor noise
    no better than a random order (IEC_NR at most 1/E, the expected share of fixed points of a random permutation of
    E explainers); MC not above ``threshold``."""
    def mean(name: str) -> float:
        return nanmean([getattr(model, name), getattr(input, name)])

    mc = nanmean([model.mc, input.mc])
    if len(q) < 2:
        return None, (f"{title} gave a value to fewer than two of the maps (a localisation metric needs a box or a "
                      "mask; reference maps have no explainer to re-run), so it ranks nothing here.")
    if not np.isfinite(mc):
        return None, (f"{title} could not be judged: too few images had a score and kept (minor noise) or changed "
                      "(disruptive noise) their prediction; use more images or stronger disruptive noise.")
    weakest = min(NAMES, key=mean)
    why = f"{WEAK[weakest]} ({NAMES[weakest]} {mean(weakest):.2f})"
    if nanmean([mean("iac_ar"), mean("iec_ar")]) < REACTS:
        return False, (f"{title} hardly reacts when the model or the input is disrupted (IAC_AR {mean('iac_ar'):.2f}, "
                       f"IEC_AR {mean('iec_ar'):.2f}): its scores do not follow the explanation.")
    if mean("iec_nr") <= 1 / len(q):
        tied = tied_share(q)
        if tied >= 0.5:
            return False, (f"{title} gives several explainers the same score in {tied:.0%} of the cases, so it has no "
                           f"ranking to keep (IEC_NR {mean('iec_nr'):.2f}): it ignores the map or saturates.")
        return False, (f"{title}'s ranking of the explainers survives minor noise no better than a random order "
                       f"would (IEC_NR {mean('iec_nr'):.2f}, chance 1/{len(q)}).")
    if mc <= threshold:
        return False, (f"{title} has MC {mc:.2f}, no better than the {threshold:.2f} of a metric that never reacts; "
                       f"weakest: {why}.")
    return True, f"{title} has MC {mc:.2f} > {threshold:.2f}" + (f"; weakest: {why}." if mean(weakest) < 0.5 else
                                                                  ": resilient to minor noise, reactive to disruption.")


def kendall_agreement(q: np.ndarray, betters: Sequence[str]) -> np.ndarray:
    """[metric, metric]: mean over images of Kendall τ-b between two metrics' scores of the explainers (oriented so
    that higher is better); images where either metric ties every explainer are skipped (τ undefined)."""
    n = len(q)
    signed = np.stack([q[m] if b == "higher" else -q[m] for m, b in enumerate(betters)]) if n else q
    out = np.eye(n)
    for a in range(n):
        for b in range(a + 1, n):
            taus = []
            for j in range(q.shape[2]):
                x, y = signed[a, :, j], signed[b, :, j]
                ok = np.isfinite(x) & np.isfinite(y)
                if ok.sum() >= 2:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        taus.append(kendalltau(x[ok], y[ok])[0])
            out[a, b] = out[b, a] = nanmean(taus)
    return out
