"""The newer metrics vs their reference implementations' own loops, tuned as a competent user would, and vs the
forward-pass floor, all in one run on one Grad-CAM map of the reference image (EfficientNet-Lite0 224², class 285).

Run: `python -m bench.metrics_new` (writes bench/results/metrics_new.md). The floor is the metric's forward passes ×
the best per-image time of the plain eager model's batched forward, measured in the same run. Oracles: pytorch-grad-cam
ROADMostRelevantFirstAverage (its own percentile loop, batch 1 per percentile); Quantus FaithfulnessCorrelation
(batch_size 64: one image, so one forward per subset); Captum infidelity and sensitivity_max with
max_examples_per_batch = all samples (one batch); torchcam ClassificationMetric; Quantus Sparseness + Complexity on
the batch; PAIR compute_pic_metric once for SIC and once for AIC (its pred_func gets one image at a time); Quantus
Focus on the mosaics our Focus builds, explained by the same Workbench call (the mosaics are the user's to build).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

import xai_core as xc
from bench.common import best_forward_seconds
from xai_core import images, metrics
from xai_core.metrics.bokeh import _CACHE as bokeh_cache
from xai_core.metrics.bokeh import THRESHOLDS, bokeh_set
from xai_core.metrics.faithfulness_correlation import draw_subsets
from xai_core.metrics.focus import arrangement, focus
from xai_core.metrics.infidelity import pixel_noise
from xai_core.metrics.scoring import classified_pool, make_rerun
from xai_core.request import ExplainRequest
from xai_core.workbench import Workbench

TARGET = 285


def once(fn: Callable[[], object]) -> float:
    """CPU seconds of this process (all its threads) for one call: on a shared machine, other processes' load
    stretches wall time several-fold from minute to minute but barely changes the work a call does."""
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def compare(ours: Callable[[], object], theirs: Callable[[], object], floor: Callable[[], object],
            rounds: int, warm_theirs: bool = True) -> tuple[float, float, float]:
    """Medians of ``rounds`` interleaved rounds of (floor, ours, theirs) after one warm-up of each (not of a slow eager
    oracle with ``warm_theirs=False``): the machine is shared, so the three numbers of a row are taken in the same
    minutes."""
    ours(), floor()
    if warm_theirs:
        theirs()
    times = [(once(floor), once(ours), once(theirs)) for _ in range(rounds)]
    f, o, t = (statistics.median(col) for col in zip(*times, strict=True))
    return o, t, f


class Given:
    """A torchcam CAM extractor returning a given map (torchcam normalises it itself)."""

    def __init__(self, model: torch.nn.Module, cam: torch.Tensor) -> None:
        self.model, self.cam = model, cam[None]

    def __call__(self, class_idx, scores=None, normalized=True, **_):
        from torchcam.methods.core import _CAM

        return [_CAM._normalize(self.cam.clone())]

    def fuse_cams(self, cams):
        return cams[0]

    def _hooks_off(self):
        return contextlib.nullcontext()


def main() -> str:  # noqa: PLR0915 - one row per metric, in one run
    import quantus
    from captum.metrics import infidelity, sensitivity_max
    from pytorch_grad_cam.metrics.road import ROADMostRelevantFirstAverage
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
    from saliency.metrics import pic
    from torchcam.metrics import ClassificationMetric

    if not hasattr(np, "trapz"):  # NumPy ≥ 2.4: PAIR still calls the removed name
        np.trapz = np.trapezoid  # type: ignore[attr-defined]
    load = os.getloadavg()
    spec = xc.load_model("efficientnet_lite0", device="cpu")
    wb = Workbench(spec, xc.RunOptions(time_budget=3600.0))
    image = images.load_sample("Chelsea the cat")
    x = spec.preprocess(image)
    request = ExplainRequest.make("gradcam", TARGET, {}, 0)
    e = wb.explain(image, request)
    h, w = spec.input_size
    small = cv2.resize(e.map, (w, h), interpolation=cv2.INTER_AREA)
    m = torch.from_numpy(small)
    plain = spec.module.eval()
    per, bs = best_forward_seconds(spec.module, x)
    rows: list[str] = []

    def floor_of(passes: int) -> Callable[[], object]:
        """``passes`` inputs through the plain eager model in batches of the best size: the forward floor, now."""
        xb = x.expand(bs, -1, -1, -1).contiguous(memory_format=torch.channels_last)

        def run() -> None:
            with torch.inference_mode():
                for start in range(0, passes, bs):
                    plain(xb[: min(bs, passes - start)])

        return run

    def row(name: str, passes: int, ours: Callable[[], object], theirs: Callable[[], object], oracle: str,
            rounds: int = 3, warm_theirs: bool = True) -> None:
        o, t, f = compare(ours, theirs, floor_of(passes), rounds, warm_theirs)
        rows.append(f"| {name} | {passes} | {o:.2f} s | {t:.2f} s ({oracle}) | **{t / o:.2f}×** | {f:.2f} s | "
                    f"{o / f:.2f}× |")

    def ours_run(mid: str, params: dict | None = None) -> Callable[[], object]:
        return lambda: metrics.evaluate(wb, image, {"Grad-CAM": e.map}, TARGET, metrics=[mid],
                                        params={mid: params or {}}, requests={"Grad-CAM": request})

    def softmax_at(z: torch.Tensor) -> torch.Tensor:
        return torch.softmax(z, -1)

    # ROAD MoRF, 9 percentiles (grad-cam's percentile p keeps p%: 10..90 removed is p = 90..10).
    road = ROADMostRelevantFirstAverage(percentiles=[90, 80, 70, 60, 50, 40, 30, 20, 10])
    row("ROAD MoRF (9 percentiles)", 9 + 1, ours_run("road_morf"),
        lambda: road(x, small[None], [ClassifierOutputSoftmaxTarget(TARGET)], plain), "pytorch-grad-cam", 2)

    # Faithfulness correlation, 100 subsets of 224 pixels (Quantus: 672 values, our subsets).
    subsets = draw_subsets(h * w, 100, 224, 0)
    calls = iter(range(10**9))
    choice = np.random.choice
    np.random.choice = lambda *a, **k: np.concatenate([subsets[next(calls) % 100] + c * h * w for c in range(3)])
    fc = quantus.FaithfulnessCorrelation(nr_runs=100, subset_size=672, perturb_baseline=0.0, abs=False,
                                         normalise=False, disable_warnings=True)
    xn, an = x.contiguous().numpy(), small[None, None]
    row("Faithfulness correlation (100 subsets)", 100 + 1, ours_run("faithfulness_correlation"),
        lambda: fc(model=plain, x_batch=xn, y_batch=np.array([TARGET]), a_batch=an, softmax=False, device="cpu"),
        "Quantus", 3, warm_theirs=False)
    np.random.choice = choice

    # Infidelity, 32 Gaussian perturbations, one Captum batch.
    noise = torch.stack([pixel_noise(spec, x, k, 0, "gaussian", 0.05) for k in range(32)])
    attr = m.expand(1, 3, h, w)
    row("Infidelity (32 perturbations)", 32 + 1, ours_run("infidelity"),
        lambda: infidelity(plain, lambda inp: (noise, inp - noise), x, attr, target=TARGET, n_perturb_samples=32,
                           max_examples_per_batch=32, normalize=True), "Captum")

    # Sensitivity-max, 10 samples, the same Grad-CAM through the Workbench for both.
    deltas = torch.cat([pixel_noise(spec, x, k, 0, "uniform", 0.02)[None] for k in range(10)])

    def explain(inp):
        if isinstance(inp, tuple):
            return tuple(explain(t) for t in inp)
        return wb.explain_tensor(inp, [TARGET] * len(inp), request).maps

    row("Sensitivity-max (10 samples, Grad-CAM)", 11, ours_run("sensitivity_max"),
        lambda: sensitivity_max(explain, x, perturb_func=lambda inp, r: inp + deltas, perturb_radius=0.02,
                                n_perturb_samples=10, max_examples_per_batch=10), "Captum")

    # Average Drop + Increase (ours: one evaluate for both, sharing the masked input).
    def torchcam_both() -> None:
        tc = ClassificationMetric(Given(plain, m), softmax_at)
        tc.update(x, class_idx=TARGET)
        tc.summary()

    row("Average Drop + Increase", 2, lambda: metrics.evaluate(wb, image, {"Grad-CAM": e.map}, TARGET,
                                                               metrics=["average_drop", "confidence_increase"]),
        torchcam_both, "torchcam", 5)

    # Sparseness + complexity: no model.
    q_s, q_c = quantus.Sparseness(disable_warnings=True), quantus.Complexity(disable_warnings=True)
    zeros = np.zeros((1, 3, h, w), np.float32)
    ours, theirs, _ = compare(
        lambda: metrics.evaluate(wb, image, {"Grad-CAM": e.map}, TARGET, metrics=["sparseness", "complexity"]),
        lambda: (q_s(model=None, x_batch=zeros, y_batch=np.array([0]), a_batch=an.copy()),
                 q_c(model=None, x_batch=zeros, y_batch=np.array([0]), a_batch=an.copy())), lambda: None, 5)
    rows.append(f"| Sparseness + complexity | 0 | {ours * 1000:.1f} ms | {theirs * 1000:.1f} ms (Quantus) | "
                f"**{theirs / ours:.2f}×** | — | — |")

    # PIC: SIC and AIC (PAIR: two calls, one image per pred_func call; ours: one evaluate, shared inputs).
    u8 = (spec.denormalise(x)[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    mask = bokeh_set(u8, small.astype(np.float64), 0).random_mask

    def predict(ims: np.ndarray, accuracy: bool) -> list[float]:
        with torch.inference_mode():
            z = plain(spec.normalise(torch.from_numpy(ims).permute(0, 3, 1, 2).float() / 255))
        return ((z.argmax(1) == TARGET).float() if accuracy else torch.softmax(z, 1)[:, TARGET]).tolist()

    def pair_both() -> None:
        for acc in (False, True):
            with contextlib.suppress(pic.ComputePicMetricError):
                pic.compute_pic_metric(u8, small, mask, lambda ims, a=acc: predict(ims, a), THRESHOLDS,
                                       min_pred_value=0.0)

    def ours_pic() -> None:
        bokeh_cache.clear()  # no reuse of the previous run's bokeh images: each run builds its own
        metrics.evaluate(wb, image, {"Grad-CAM": e.map}, TARGET, metrics=["sic", "aic"])

    row("PIC: SIC + AIC", 2 + len(THRESHOLDS), ours_pic, pair_both, "PAIR saliency, 2 calls", 1, warm_theirs=False)

    # Focus, 2 mosaics: Quantus scores the mosaics our Focus builds, explained in one Workbench call.
    pool = classified_pool(wb, lambda: [images.load_sample(n) for n in images.sample_names()])
    rerun = make_rerun(wb, x, TARGET, request, pool)
    seen: list = []
    record = rerun.explain
    rerun.explain = lambda xs: seen.append((xs, record(xs))) or seen[-1][1]
    focus(spec, x, m, rerun, mosaics=2, seed=0)
    mosaics = seen[0][0]
    flags = [tuple(int(q in arrangement(0, j)) for q in range(4)) for j in range(2)]

    def quantus_focus() -> None:
        maps = wb.explain_tensor(mosaics, [TARGET] * 2, request).maps
        quantus.Focus(abs=False, normalise=False, disable_warnings=True)(
            model=plain, x_batch=mosaics.numpy(), y_batch=np.full(2, TARGET), a_batch=maps[:, None].numpy(),
            custom_batch=flags)

    row("Focus (2 mosaics, Grad-CAM; the samples' classes kept from the warm-up)", 2, ours_run("focus", {"mosaics": 2}),
        quantus_focus, "Quantus")

    end = os.getloadavg()
    head = [f"New metrics on one Grad-CAM map of Chelsea (EfficientNet-Lite0 224², class {TARGET}), "
            f"{xc.engine.device_label(spec.device)}; forward floor = the metric's passes through the plain eager model "
            f"in batches of {bs} (the best size at the start, {per * 1000:.1f} ms/image then), timed in every round "
            f"beside ours and the oracle. Times are CPU seconds of the process (all threads; wall time on this shared "
            f"machine varied several-fold from minute to minute), medians of interleaved rounds (3; 2 for ROAD, 1 for "
            f"PAIR's PIC; 5 for the cheap ones). Load average (1 min) {load[0]:.2f} at the start, {end[0]:.2f} at the "
            "end (other helpers share these 2 cores).", "",
            "| metric | forward passes | ours (CPU s) | oracle's own loop | oracle ÷ ours | forward floor | ours ÷ floor |",
            "|---|---|---|---|---|---|---|"]
    notes = ["", "Ours ÷ floor above 1 is CPU work that is not a forward pass: ROAD's sparse solves (one per "
             "percentage), PIC's triangulations and WebP encodings, and for the re-running metrics the explainer's "
             "own backward passes (Grad-CAM: one forward + backward per explained input; the floor counts forwards). Every "
             "evaluate call also makes one forward of its own to resolve the class (not counted in the passes), which "
             "dominates the rows with 2 passes. Rows repeated in three runs of this script during the session moved by "
             "up to 3× (load 3–7 on 2 cores): read the ratios as rough, the tests as the exact agreement."]
    return "\n".join(head + rows + notes)


if __name__ == "__main__":
    table = main()
    print(table)
    (Path(__file__).resolve().parent / "results" / "metrics_new.md").write_text(table + "\n")
