"""A-ClArC end to end on the lab CNN, augmentative Class Artifact Compensation (Anders et al., 'Finding and removing
Clever Hans: using explanation methods to debug and improve deep models', Information Fusion 2022): the Clever Hans
model's numbers before and after, with the artifact concept found by discovery (never told by the tag flags).

Two ways to add the artifact to every class: in input space (the default, :mod:`.aclarc_input`: the artifact located
in pixels, :mod:`.artifact_pixels`, pasted onto every training image; all layers fine-tuned) and in feature space
(:mod:`.aclarc_feature`: the artifact's level added at the concept's layer by a hook). Measured on the shipped lab
CNN (tests/test_concepts_aclarc.py): input space takes untagged horses called horse from 0.00 to 0.97 while tagged
horses stay at 0.98 (tagged non-horses called horse 1.00 → 0.37; ~35 s on one thread); feature space leaves them at
0.00. P-ClArC alone cannot (:mod:`.clarc`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from ..lab.data import make_dataset
from ..lab.model import TRAIN, accuracy, maps_for, pointing_on_tag_and_object, shortcut_report, to_tensor
from ..models.spec import ModelSpec
from ..types import Progress
from ..workbench import Workbench, as_workbench
from .aclarc_feature import (
    Artifact,
    Trainable,
    aclarc,
    add_artifact,
    artifact_added,
    artifact_level,
    layers_after,
)
from .aclarc_input import Tuning, aclarc_input
from .artifact_pixels import ArtifactPixels, find_artifact_pixels, pasted
from .clarc import projected
from .errors import ConceptError

__all__ = ["TAGGED_HORSES", "AclarcResult", "Artifact", "ArtifactPixels", "Space", "Trainable", "Tuning", "aclarc",
           "add_artifact", "artifact_added", "artifact_level", "before_after_aclarc", "flagged_precision",
           "lab_numbers", "layers_after"]

Space = Literal["input", "feature"]
TAGGED_HORSES = "accuracy on tagged horses"


def lab_numbers(model: ModelSpec | Workbench, *, n: int = 600, seed: int = 123) -> dict[str, float]:
    """The numbers the lab reports: ``lab.shortcut_report``, the accuracy on tagged horses, and the pointing game /
    relevance mass of Grad-CAM (class horse) on the tag box and on the object over the tagged images of a test set."""
    out = shortcut_report(model, n=n, seed=seed)
    horses = make_dataset(n, seed=seed + 3, tag_fraction=1.0, horse_fraction=1.0)
    out[TAGGED_HORSES] = accuracy(model, horses.images, horses.labels)
    test = make_dataset(min(n, 200), seed=seed + 4)
    out.update(pointing_on_tag_and_object(maps_for(model, test.images), test))
    return out


@dataclass(frozen=True)
class AclarcResult:
    """The lab's numbers (:func:`lab_numbers`) for the model as it is (``before``), the A-ClArC copy as it is
    (``after``), the copy with the artifact still added to every input (``after_artifact``: the paper's deployed model;
    in input space the artifact pasted, in feature space the hook) and, in feature space, the copy with P-ClArC on top
    (``after_projected``, the direction projected to ``reference``; empty in input space). ``model`` is the copy (a new
    ModelSpec); ``artifact`` the images found to carry the artifact and its level; ``seconds`` the fine-tuning time;
    in input space ``pixels`` where the artifact was found and ``tuning`` how the training went."""

    layer: str
    trainable: Trainable
    reference: float
    artifact: Artifact
    before: dict[str, float]
    after: dict[str, float]
    after_artifact: dict[str, float]
    after_projected: dict[str, float]
    model: ModelSpec
    seconds: float
    space: Space = "feature"
    pixels: ArtifactPixels | None = None
    tuning: Tuning | None = None

    def rows(self) -> list[tuple[str, float, float, float, float]]:
        """(number, before, after, after with the artifact added, after + P-ClArC (NaN in input space))."""
        return [(k, self.before[k], self.after[k], self.after_artifact[k], self.after_projected.get(k, math.nan))
                for k in self.before]


def _span(progress: Progress | None, lo: float, hi: float) -> Progress | None:
    """``progress`` with fractions mapped onto [lo, hi] of the whole job (it may still raise Cancelled)."""
    if progress is None:
        return None
    whole = progress

    def part(fraction: float, text: str) -> None:
        whole(lo + (hi - lo) * fraction, text)

    return part


def before_after_aclarc(model: ModelSpec | Workbench, layer: str, direction: torch.Tensor, *,
                        space: Space = "input", trainable: Trainable = "after", reference: float = 0.0,
                        fraction: float = 0.1, train_n: int = 3000, probe_n: int = 800, epochs: int = 4,
                        lr: float = 2e-3, batch: int = 32, budget_s: float | None = 120.0, n: int = 300,
                        seed: int = 123, progress: Progress | None = None) -> AclarcResult:
    """A-ClArC end to end on the lab CNN, as a background job (``progress`` may raise Cancelled): a fresh
    training-distribution set of ``train_n`` images; the artifact found on its first ``probe_n`` without flags; the
    fine-tuned copy; :func:`lab_numbers` (on ``n`` images per set) before and after, side by side.

    ``space="input"`` (the default, :mod:`.aclarc_input`): the artifact located in pixels and pasted onto every image,
    all layers fine-tuned for ``epochs`` with Adam (``lr``, ``batch``), stopped after ``budget_s`` seconds of training
    if not done. ``space="feature"``: the level added at ``layer`` by a hook and ``trainable`` layers fine-tuned
    (:func:`aclarc`). Measured defaults in tests/test_concepts_aclarc.py."""
    if space not in ("input", "feature"):
        raise ConceptError(f"A-ClArC adds the artifact in 'input' or 'feature' space; got {space!r}.")
    wb = as_workbench(model)
    report = progress or (lambda _f, _t: None)
    report(0.0, "making the training set and finding the artifact")
    train = make_dataset(train_n, seed=seed + 10, tag_fraction=TRAIN["tag_fraction"])
    probe = to_tensor(train.images[:probe_n])
    pixels, tuning = None, None
    if space == "input":
        pixels = find_artifact_pixels(wb, layer, direction, probe)
        artifact = Artifact(pixels.layer, pixels.direction, pixels.level, pixels.carriers)
        tuned, tuning = aclarc_input(wb, pixels, train, epochs=epochs, lr=lr, batch=batch, seed=seed,
                                     budget_s=budget_s, progress=_span(progress, 0.05, 0.85))
        trainable, seconds = "all", tuning.seconds
    else:
        artifact = artifact_level(wb, layer, direction, probe, fraction=fraction)
        t0 = time.perf_counter()
        tuned = aclarc(wb, artifact, train, trainable=trainable, epochs=epochs, lr=lr, batch=batch, seed=seed,
                       progress=_span(progress, 0.05, 0.85))
        seconds = time.perf_counter() - t0
    report(0.85, "measuring the model before and after")
    before = lab_numbers(wb, n=n, seed=seed)
    after = lab_numbers(tuned, n=n, seed=seed)
    report(0.95, "measuring the copy with the artifact added to every input")
    with pasted(tuned, pixels) if pixels is not None else artifact_added(tuned, artifact):
        after_artifact = lab_numbers(tuned, n=n, seed=seed)
    after_projected: dict[str, float] = {}
    if space == "feature":
        with projected(tuned, artifact.layer, artifact.direction, reference=reference):
            after_projected = lab_numbers(tuned, n=n, seed=seed)
    report(1.0, "done")
    return AclarcResult(artifact.layer, trainable, reference, artifact, before, after, after_artifact, after_projected,
                        tuned, seconds, space, pixels, tuning)


def flagged_precision(artifact: Artifact, tagged: np.ndarray) -> float:
    """For evaluation only: the share of the images taken as carrying the artifact whose flag says they do."""
    return float(np.mean(tagged[list(artifact.images)])) if artifact.images else float("nan")
