"""The capability matrix: for one model, which registered explainers apply and, for the others, why not.

For a model that is not a classifier the matrix is per kind of target (:mod:`.targets`: a prompt, a reference image,
a region, a box): an explainer declares the kinds whose scalar it can explain (``targets``), and answers for the
model as it is once bound to such a target (no classifier head, one output).

Each explainer answers for itself through its registry metadata (``applies``: the same check it makes when it runs,
e.g. LRP's refusal of LayerNorm, CAM's GAP + linear head, the attention methods' token layout); methods that take a
layer also need a layer to sit on. Nothing is run on the model here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from . import explainers  # noqa: F401 - registers every explainer
from .models.spec import ModelSpec
from .registry import list_explainers
from .targets.values import KINDS, why_not

NO_LAYER = ("{title} has no convolutional or token layer that this method could sit on. Use a gradient or "
            "perturbation method.")


@dataclass(frozen=True)
class Capability:
    """One row of the matrix: ``why`` is empty when the method applies."""

    id: str
    title: str
    family: str
    applies: bool
    why: str = ""


def target_kinds(model: ModelSpec) -> list[str]:
    """The kinds of target ``model`` can be explained for: "class" for a classifier, else its task's (e.g. a dual
    encoder: "prompt", "similarity")."""
    return ["class"] if model.task == "classifier" else [k for k, tasks in KINDS.items() if model.task in tasks]


def capabilities(model: ModelSpec, kind: str | None = None) -> list[Capability]:
    """One row per registered explainer, in registration order, for targets of ``kind`` (default: the model's
    first, :func:`target_kinds`)."""
    kind = kind or target_kinds(model)[0]
    unfit = why_not(model.task, kind)
    view = model if kind == "class" or model.target_kind else replace(model, fc_layer=None, target_kind=kind)
    rows = []
    for spec in list_explainers():
        why = unfit or spec.why_not(view)
        if why is None and any(p.kind == "layer" for p in spec.params) and not model.cam_layer:
            why = NO_LAYER.format(title=model.title)
        rows.append(Capability(spec.id, spec.title, spec.family, why is None, why or ""))
    return rows
