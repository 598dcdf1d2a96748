"""Superpixels and on/off coalition sampling shared by the black-box explainers (LIME, KernelSHAP); not registered.

An image is cut into M superpixels; a coalition z ∈ {0, 1}^M keeps the superpixels with z_j = 1 and replaces
the others by a reference. The perturbed images are built batch by batch inside ``engine.scores`` (never all
N at once), and every image of a batch draws its coalitions from a generator seeded by ``seed`` alone, so a
map never depends on what it is batched with. :func:`sample` yields the sampling so far at refinement boundaries
(any-time maps, :mod:`xai_core.anytime`), and :func:`bootstrap_spread` gives a fit's Poisson-bootstrap spread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from skimage.segmentation import felzenszwalb, quickshift, slic
from skimage.util import img_as_float

from .. import anytime
from ..engine import batch_size_for
from ..errors import ExplainerError
from ..models.spec import ModelSpec
from ..result import Refinement
from ..types import Diagnostic, ParamSpec, Progress
from . import refining
from .common import NOTICE, cap_samples, reference_input

SEGMENTATIONS = ("slic", "quickshift", "felzenszwalb", "grid")
REFERENCES = ("mean", "black", "blurred")
SCORES = ("probability", "logit")
Sampler = Callable[[np.random.Generator, int, int], np.ndarray]


def params(samples: int, reference: str = "mean") -> tuple[ParamSpec, ...]:
    """The parameters every superpixel explainer takes (the sample count's default differs per method)."""
    return (
        ParamSpec("samples", "int", samples, "Samples", "Perturbed images scored (forward passes); more is more "
                  "stable and slower.", 50, 10000, 50),
        ParamSpec("segmentation", "choice", "slic", "Superpixels", "How the image is cut into features: SLIC, "
                  "quickshift, Felzenszwalb (scikit-image), or a square grid.", choices=SEGMENTATIONS),
        ParamSpec("n_segments", "int", 50, "Segments (SLIC, grid)", "Approximate number of superpixels for SLIC; the "
                  "grid uses round(√n)² cells. Quickshift and Felzenszwalb choose their own count.", 2, 400, 1),
        ParamSpec("reference", "choice", reference, "Hidden superpixels become", "mean = each superpixel's mean "
                  "colour (LIME's default), black, or a blurred copy of the image.", choices=REFERENCES),
        ParamSpec("score", "choice", "probability", "Score", "What is explained: the softmax probability of the "
                  "class, or its logit.", choices=SCORES),
    )


# What every superpixel explainer reports; the method adds its own per-superpixel values (named by ``weights``).
DIAGNOSTICS = (
    NOTICE,
    Diagnostic("samples", "Samples", fmt="{} samples"),
)


def to_uint8(model: ModelSpec, x: torch.Tensor) -> list[np.ndarray]:
    """Normalised inputs [B, 3, H, W] -> RGB uint8 (H, W, 3) images at the model's input size."""
    pix = model.denormalise(x).clamp(0, 1).mul(255).round().to(torch.uint8)
    return list(pix.permute(0, 2, 3, 1).cpu().numpy())


def grid(h: int, w: int, n_segments: int) -> np.ndarray:
    """n × n cells (n = round(√n_segments)), deterministic; labels row-major from 0."""
    n = max(1, round(n_segments ** 0.5))
    rows, cols = (np.arange(h) * n) // h, (np.arange(w) * n) // w
    return (rows[:, None] * n + cols[None, :]).astype(np.int32)


def segment(image: np.ndarray, method: str, n_segments: int = 50) -> np.ndarray:
    """Superpixel labels ``int32 [H, W]``, consecutive from 0, for an RGB uint8 image."""
    if method == "slic":
        seg = slic(image, n_segments=n_segments, compactness=10, start_label=0)
    elif method == "quickshift":
        seg = quickshift(img_as_float(image), kernel_size=4, max_dist=200, ratio=0.2)
    elif method == "felzenszwalb":
        seg = felzenszwalb(image, scale=100, sigma=0.5, min_size=50)
    elif method == "grid":
        h, w = image.shape[:2]
        seg = grid(h, w, n_segments)
    else:
        raise ExplainerError(f"Unknown segmentation {method!r}; choose one of {', '.join(SEGMENTATIONS)}.")
    return np.unique(seg, return_inverse=True)[1].reshape(seg.shape).astype(np.int32)


def references(model: ModelSpec, x: torch.Tensor, seg: torch.Tensor, kind: str) -> torch.Tensor:
    """What hidden superpixels become, normalised ``[B, 3, H, W]``; ``seg`` is ``long [B, H, W]``."""
    if kind != "mean":
        return reference_input(model, x, kind)
    out = torch.empty_like(x)
    for b in range(len(x)):
        flat, lab = x[b].flatten(1), seg[b].flatten().to(x.device)
        m = int(lab.max()) + 1
        sums = torch.zeros(3, m, dtype=x.dtype, device=x.device).index_add_(1, lab, flat)
        means = sums / torch.bincount(lab, minlength=m).to(x.dtype)
        out[b] = means[:, lab].view_as(x[b])
    return out


def bernoulli_coalitions(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    """LIME's sampling: each superpixel on with probability ½; the first row is all ones (the image itself)."""
    z = rng.integers(0, 2, size=(n, m)).astype(np.float64)
    z[0] = 1
    return z


def shapley_coalitions(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    """KernelSHAP's sampling: rows 0 and 1 are all ones and all zeros; the rest draw a size k ∈ [1, M−1] with
    probability ∝ (M−1) / (k(M−k)) (the Shapley kernel summed over the C(M, k) coalitions of that size), then k
    superpixels uniformly, each followed by its complement (paired sampling, as in shap)."""
    z = np.zeros((n, m))
    z[0] = 1
    rest = n - 2
    if rest <= 0 or m < 2:
        z[2:] = np.arange(rest)[:, None] % 2 == 0
        return z
    k = np.arange(1, m)
    p = (m - 1) / (k * (m - k))
    pairs = -(-rest // 2)
    size = rng.choice(k, size=pairs, p=p / p.sum())
    rank = rng.random((pairs, m)).argsort(1).argsort(1)
    half = (rank < size[:, None]).astype(np.float64)
    z[2:] = np.stack([half, 1 - half], 1).reshape(2 * pairs, m)[:rest]
    return z


def perturbed(z: torch.Tensor, seg: torch.Tensor, x: torch.Tensor, ref: torch.Tensor) -> Callable[[int, int], torch.Tensor]:
    """``make(start, stop)`` for ``engine.scores``: images ``start..stop`` of one input ``x [1, 3, H, W]`` with the
    superpixels that coalition rows ``z[start:stop]`` (bool ``[N, M]``) switch off taken from ``ref``."""
    keep = seg.flatten()

    def make(start: int, stop: int) -> torch.Tensor:
        mask = z[start:stop][:, keep].view(stop - start, 1, *x.shape[-2:])
        return torch.where(mask, x, ref).contiguous(memory_format=torch.channels_last)

    return make


@dataclass
class Coalitions:
    """One image's sampled coalitions ``z [N, M]``, the target's scores ``y [N]`` and its superpixels."""

    segments: np.ndarray
    z: np.ndarray
    y: np.ndarray


@dataclass
class Sampled:
    """Every image's :class:`Coalitions` (the first ``done`` of ``total`` samples) and what the sampling reports:
    'segments', 'samples' and, when the time budget capped the sample count, 'notice' (one value per image)."""

    runs: list[Coalitions]
    diagnostics: dict[str, list]
    done: int
    total: int

    def refinement(self) -> Refinement:
        return Refinement(self.done, self.total, f"{self.done:,} of {self.total:,} samples",
                          anytime.bootstrap_text("samples"))


def sample(model: ModelSpec, x: torch.Tensor, target: torch.Tensor, sampler: Sampler, *, samples: int,
           segmentation: str, n_segments: int, reference: str, score: str, seed: int,
           progress: Progress | None, desc: str, previews: bool = False) -> Iterator[Sampled]:
    """Segment each image, sample coalitions, score the perturbed images through the engine; yield the sampling so
    far at the refinement boundaries (with ``previews`` and one image), and the whole sampling last.

    The sample count is capped to the time budget (the 'notice' diagnostic says so); each image is scored in its
    own run of batches, so batched == unbatched exactly.
    """
    capped = cap_samples(model, x, samples)
    n = capped.count
    segs = [segment(im, segmentation, n_segments) for im in to_uint8(model, x)]
    seg_t = torch.from_numpy(np.stack(segs)).to(x.device, torch.long)
    ref = references(model, x, seg_t, reference)
    unit = batch_size_for(x.device, x.shape[-2] * x.shape[-1])
    bounds = anytime.schedule(n, unit) if previews and len(x) == 1 else [n]
    out = []
    for b in range(len(x)):
        z = sampler(np.random.default_rng(seed), n, int(segs[b].max()) + 1)
        make = perturbed(torch.from_numpy(z).to(x.device, torch.bool), seg_t[b], x[b: b + 1], ref[b: b + 1])
        sub = None if progress is None else (lambda f, t, b=b: progress((b + f) / len(x), t))
        y = torch.empty(n, device=x.device)
        for _, stop, s in refining.scored(model.module, make, target[b: b + 1].expand(n), bounds, unit,
                                         probabilities=score == "probability", progress=sub, what=desc):
            y[stop - len(s): stop] = s
            if stop < n:
                part = Coalitions(segs[b], z[:stop], y[:stop].double().cpu().numpy())
                yield Sampled([part], {**capped.diagnostics(1), "segments": [segs[b]], "samples": [stop]}, stop, n)
        out.append(Coalitions(segs[b], z, y.double().cpu().numpy()))
    yield Sampled(out, {**capped.diagnostics(len(x)), "segments": [c.segments for c in out], "samples": [n] * len(x)},
                  n, n)


def bootstrap_spread(fit: Callable[[np.ndarray], np.ndarray], rows: int, seed: int, total: int) -> np.ndarray:
    """Per-superpixel standard deviation of ``fit(weights)`` (one value per superpixel) over the Poisson bootstrap
    replicates of the first ``rows`` of ``total`` samples (:func:`anytime.poisson_weights` of all ``total``, so the
    replicates do not depend on where the refinements fall; ``weights`` is float64 ``[rows]``)."""
    weights = anytime.poisson_weights(total, seed).double().numpy()[:, :rows]
    return np.std([fit(w) for w in weights if w.sum() > 0], axis=0, ddof=1)


def paint(values: list[np.ndarray], coalitions: list[Coalitions], like: torch.Tensor) -> torch.Tensor:
    """Per-superpixel values -> maps ``float32 [B, H, W]`` on ``like``'s device."""
    maps = np.stack([v[c.segments] for v, c in zip(values, coalitions, strict=True)]).astype(np.float32)
    return torch.from_numpy(maps).to(like.device)
