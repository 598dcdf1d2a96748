"""CAM: class activation mapping for global-average-pool + linear heads."""

from __future__ import annotations

import torch

from ..errors import ExplainerError
from ..hooks import capture, capture_input
from ..models.spec import ModelSpec
from ..registry import Cost, explainer
from ..result import ExplainerResult, first_forward
from .common import upsample

_NO_HEAD = ("CAM needs a model whose last feature maps go through global average pooling straight into one "
            "linear layer, and {title} is not built that way. Use Grad-CAM, which generalises CAM to any "
            "architecture.")


def _applies(model: ModelSpec) -> str | None:
    tokens = model.tokens is not None or type(model.reshape).__name__ == "TokenGrid"
    return None if model.fc_layer and model.cam_layer and not tokens else _NO_HEAD.format(title=model.title)


@explainer(
    "cam", title="CAM", family="CAM", signed=True,
    summary="The last feature maps weighted by the linear classifier's weights for the class.",
    reference="Zhou et al. 2016, 'Learning Deep Features for Discriminative Localization', CVPR. arXiv:1512.04150",
    cost=Cost(1, 0), reports_logits=True, applies=_applies, targets=("class",),
)
def cam(model: ModelSpec, x: torch.Tensor, target: torch.Tensor) -> ExplainerResult:
    """M_c = Σ_k w_k^c A_k (Zhou et al. 2016, arXiv:1512.04150), signed, at the input size.

    The GAP-linear structure is checked on this very input: the features entering the linear layer
    must equal the spatial mean of the CAM layer's maps, or a clear error is raised.
    """
    if not model.fc_layer or not model.cam_layer:
        raise ExplainerError(_NO_HEAD.format(title=model.title))
    fc = model.module.get_submodule(model.fc_layer)
    with torch.inference_mode(), capture(model.submodule(None)) as act, capture_input(fc) as feat:
        fwd = first_forward(model.module(x), target)
        if act.activation is None or feat.activation is None:  # the CAM layer or the head is off the forward path
            raise ExplainerError(_NO_HEAD.format(title=model.title))
        maps = model.as_grid(act.activation).float()
        pooled = feat.activation.float().flatten(1)
        ok = pooled.shape == maps.shape[:2] and torch.allclose(
            maps.mean(dim=(2, 3)), pooled, rtol=1e-3, atol=1e-4 * float(pooled.abs().max().clamp_min(1)))
        if not ok or not isinstance(fc, torch.nn.Linear):
            raise ExplainerError(_NO_HEAD.format(title=model.title))
        weights = fc.weight[fwd.target.to(fc.weight.device)].float()
        out = torch.einsum("bc,bchw->bhw", weights, maps)
    return ExplainerResult.of(upsample(out.clone(), model.input_size), fwd)
