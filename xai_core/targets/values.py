"""Targets as values: what scalar of a model's output an explainer explains.

* :class:`PromptTarget` — a dual encoder's (CLIP, SigLIP) cosine similarity of the image and a text prompt's
  embeddings, minus that of a contrast prompt when one is given;
* :class:`SimilarityTarget` — the cosine similarity of the image's embedding and a reference image's (DINOv2, a
  retrieval model, a dual encoder's image tower);
* :class:`RegionTarget` — a segmenter's scores of one class summed over a region: a box, a given mask, or (neither)
  the pixels the model assigns to that class on the explained image;
* :class:`DetectionTarget` — a detector's box: the score of the detection matched to the box (its IoU plus its
  class score when it has the label and IoU ≥ ``iou``, as pytorch-grad-cam's ``FasterRCNNBoxScoreTarget``), or the
  D-RISE-style black-box similarity (the best IoU × class score over the detections with the label).

A plain class index (an ``int``, or None for the top-1 class) stays what it was. Every value is frozen, checked
when it is made (prompts are untrusted text) and has a ``key``: the part of a request's cache key it contributes.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ExplainerError

PROMPT_CHARS = 300  # CLIP's text tower reads 77 tokens (~300 characters of English)
DETECTION_SCORING = {"match": "matched box: IoU + class score (pytorch-grad-cam's FasterRCNNBoxScoreTarget)",
                     "drise": "D-RISE: best IoU × class score over the detections with the label"}
KINDS = {"prompt": ("dual_encoder",), "similarity": ("dual_encoder", "embedder"), "region": ("segmenter",),
         "detection": ("detector",)}


def clean_prompt(text: object, what: str = "prompt") -> str:
    """An untrusted prompt as text the model may read: NFC, controls and markup-free in meaning (it is never rendered
    unescaped), at most :data:`PROMPT_CHARS` characters; '' stays '' (no contrast)."""
    if not isinstance(text, str):
        raise ExplainerError(f"The {what} must be text; got {type(text).__name__}.")
    s = unicodedata.normalize("NFC", text)
    s = "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in s)
    s = " ".join(s.split())
    if len(s) > PROMPT_CHARS:
        raise ExplainerError(f"The {what} has {len(s):,} characters; up to {PROMPT_CHARS} are read (the text tower "
                             "reads about 77 tokens).")
    return s


def _box(box: object) -> tuple[float, float, float, float]:
    """A box (x0, y0, x1, y1) in fractions of the image's width and height, checked."""
    try:
        b = tuple(float(v) for v in box)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise ExplainerError("A box is four numbers (x0, y0, x1, y1) as fractions of the image's size.") from None
    if len(b) != 4 or not all(np.isfinite(b)) or not (0 <= b[0] < b[2] <= 1 and 0 <= b[1] < b[3] <= 1):
        raise ExplainerError(f"A box must be (x0, y0, x1, y1) with 0 ≤ x0 < x1 ≤ 1 and 0 ≤ y0 < y1 ≤ 1 (fractions "
                             f"of the image's size); got {box!r}.")
    return b[0], b[1], b[2], b[3]


def _index(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 0:
        raise ExplainerError(f"The {what} must be a class index (0 or more); got {value!r}.")
    return int(value)


def _label(labels: list[str], index: int) -> str:
    return labels[index] if 0 <= index < len(labels) else f"class {index}"


def digest(a: np.ndarray) -> str:
    """A content digest of an array (shape, dtype and bytes)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{a.shape}:{a.dtype}".encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class PromptTarget:
    """Cosine similarity of the image's and ``text``'s embeddings, minus ``contrast``'s when it is not ''."""

    text: str
    contrast: str = ""
    kind = "prompt"

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", clean_prompt(self.text))
        object.__setattr__(self, "contrast", clean_prompt(self.contrast, "contrast prompt"))
        if not self.text:
            raise ExplainerError("Type a prompt to explain (e.g. 'a photo of a horse').")

    @property
    def title(self) -> str:
        return f"“{self.text}”" + (f" − “{self.contrast}”" if self.contrast else "")

    def named(self, labels: list[str]) -> str:
        return self.title

    @property
    def key(self) -> list[Any]:
        return [self.kind, self.text, self.contrast]


@dataclass(frozen=True)
class SimilarityTarget:
    """Cosine similarity of the image's embedding and ``reference``'s (an RGB uint8 image, called ``name``)."""

    reference: np.ndarray = field(compare=False, repr=False)
    name: str = "the reference image"
    ref_digest: str = field(default="", init=False)
    kind = "similarity"

    def __post_init__(self) -> None:
        r = self.reference
        if not isinstance(r, np.ndarray) or r.ndim != 3 or r.shape[2] != 3 or r.dtype != np.uint8:
            raise ExplainerError("The reference must be an RGB uint8 image (H, W, 3); pick or upload one.")
        object.__setattr__(self, "name", clean_prompt(self.name, "reference's name")[:80] or "the reference image")
        object.__setattr__(self, "ref_digest", digest(r))

    @property
    def title(self) -> str:
        return f"similarity to {self.name}"

    def named(self, labels: list[str]) -> str:
        return self.title

    @property
    def key(self) -> list[Any]:
        return [self.kind, self.ref_digest]


@dataclass(frozen=True)
class RegionTarget:
    """Class ``index``'s scores summed over ``box`` (fractions of the image), or over ``mask`` (bool, any size; resized
    to the model's output), or, with neither, over the pixels the model assigns to the class on the explained image."""

    index: int
    box: tuple[float, float, float, float] | None = None
    mask: np.ndarray | None = field(default=None, compare=False, repr=False)
    mask_digest: str = field(default="", init=False)
    kind = "region"

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", _index(self.index, "class of the region"))
        if self.box is not None:
            object.__setattr__(self, "box", _box(self.box))
        if self.mask is not None:
            m = self.mask
            if not isinstance(m, np.ndarray) or m.ndim != 2 or m.size == 0 or m.size > 2**26:
                raise ExplainerError("A region mask must be a 2-D array (height × width) of up to 64 M pixels.")
            if self.box is not None:
                raise ExplainerError("Give a region as a box or as a mask, not both.")
            object.__setattr__(self, "mask", m.astype(bool))
            object.__setattr__(self, "mask_digest", digest(self.mask))

    @property
    def title(self) -> str:
        return self.named([])

    def named(self, labels: list[str]) -> str:
        """The title with the class's name from ``labels`` (the model's)."""
        where = "the box" if self.box else "the mask" if self.mask is not None else "its predicted region"
        return f"{_label(labels, self.index)} over {where}"

    @property
    def key(self) -> list[Any]:
        return [self.kind, self.index, list(self.box) if self.box else None, self.mask_digest]


@dataclass(frozen=True)
class DetectionTarget:
    """The detection of class ``label`` at ``box`` (fractions of the image), scored as ``scoring`` says
    (:data:`DETECTION_SCORING`) with IoU threshold ``iou`` for "match"."""

    box: tuple[float, float, float, float]
    label: int
    scoring: str = "match"
    iou: float = 0.5
    kind = "detection"

    def __post_init__(self) -> None:
        object.__setattr__(self, "box", _box(self.box))
        object.__setattr__(self, "label", _index(self.label, "detection's class"))
        if self.scoring not in DETECTION_SCORING:
            raise ExplainerError(f"Detection scoring must be one of {', '.join(DETECTION_SCORING)}; "
                                 f"got {self.scoring!r}.")
        if isinstance(self.iou, bool) or not isinstance(self.iou, (int, float)) or not 0 <= float(self.iou) < 1:
            raise ExplainerError(f"The IoU threshold must be a number in [0, 1); got {self.iou!r}.")
        object.__setattr__(self, "iou", float(self.iou))

    @property
    def title(self) -> str:
        return self.named([])

    def named(self, labels: list[str]) -> str:
        """The title with the class's name from ``labels`` (the model's)."""
        x0, y0, x1, y1 = self.box
        return f"{_label(labels, self.label)} box at ({x0:.2f}, {y0:.2f})–({x1:.2f}, {y1:.2f})"

    @property
    def key(self) -> list[Any]:
        return [self.kind, list(self.box), self.label, self.scoring, repr(self.iou)]


Target = PromptTarget | SimilarityTarget | RegionTarget | DetectionTarget
TARGET_TYPES = (PromptTarget, SimilarityTarget, RegionTarget, DetectionTarget)


def why_not(task: str, kind: str) -> str | None:
    """None when a model of ``task`` can explain targets of ``kind`` ("class" for a class index), else why not."""
    if kind == "class":
        return None if task == "classifier" else (
            f"A {task.replace('_', ' ')} has no classes to explain; give it a "
            f"{' or '.join(k for k, tasks in KINDS.items() if task in tasks)} target.")
    tasks = KINDS.get(kind)
    if tasks is None:
        raise ExplainerError(f"Unknown target kind {kind!r}.")
    if task in tasks:
        return None
    needs = " or ".join(t.replace("_", " ") for t in tasks)
    return f"A {kind} target needs a {needs}; this model is a {task.replace('_', ' ')}."
