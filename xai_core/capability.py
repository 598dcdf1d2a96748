"""The capability matrix: for one model, which registered explainers apply and, for the others, why not.

Each explainer answers for itself through its registry metadata (``applies``: the same check it makes when it runs,
e.g. LRP's refusal of LayerNorm, CAM's GAP + linear head, the attention methods' token layout); methods that take a
layer also need a layer to sit on. Nothing is run on the model here.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import explainers  # noqa: F401 - registers every explainer
from .models.spec import ModelSpec
from .registry import list_explainers

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


def capabilities(model: ModelSpec) -> list[Capability]:
    """One row per registered explainer, in registration order."""
    rows = []
    for spec in list_explainers():
        why = spec.why_not(model)
        if why is None and any(p.kind == "layer" for p in spec.params) and not model.cam_layer:
            why = NO_LAYER.format(title=model.title)
        rows.append(Capability(spec.id, spec.title, spec.family, why is None, why or ""))
    return rows
