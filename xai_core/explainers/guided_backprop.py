"""Guided Backpropagation for ReLU *and* ReLU6 / clamp-style (and smooth) activation modules."""

from __future__ import annotations

import torch
from torch import nn

from ..engine import input_gradients
from ..errors import ExplainerError
from ..hooks import output_grad_hooks
from ..models.spec import ModelSpec
from ..registry import Cost, Diagnostic, attribution
from ..result import Attribution

ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Hardtanh, nn.LeakyReLU, nn.ELU, nn.SiLU, nn.GELU, nn.Hardswish, nn.Mish)


GUIDED = Diagnostic("guided_activation_modules", "Activation modules guided", fmt="{} activations guided")


def _positive(grad: torch.Tensor) -> torch.Tensor:
    """The guided rule: only positive gradients pass back through an activation."""
    return grad.clamp(min=0)


def activation_modules(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, ACTIVATIONS)]


NO_ACTIVATIONS = ("Guided Backprop needs the model's activations as modules (nn.ReLU, nn.ReLU6, ...); this model has "
                  "none. Use Gradient or Integrated Gradients.")


def applies(model: ModelSpec) -> str | None:
    return None if activation_modules(model.module) else NO_ACTIVATIONS


@attribution(
    "guided_backprop", title="Guided Backprop", family="gradient",
    summary="Gradient where only positive gradients pass back through each activation; sharp, but known "
            "to ignore the top layers (see sanity checks).",
    reference="Springenberg et al. 2015, 'Striving for Simplicity: The All Convolutional Net', ICLR workshop. "
              "arXiv:1412.6806",
    cost=Cost(1, 1), reports_logits=True, applies=applies,
    diagnostics=(GUIDED,),
)
def attribute(model: ModelSpec, x: torch.Tensor, target: torch.Tensor) -> Attribution:
    """Guided Backprop (Springenberg et al. 2015, arXiv:1412.6806).

    The guided rule is applied after every activation module: the activation's own backward then
    multiplies by its derivative, so ReLU gives ``relu(g) · 1[x > 0]`` and ReLU6 / Hardtanh give
    ``relu(g) · 1[0 < x < 6]`` (Captum's GuidedBackprop only overrides nn.ReLU and silently returns the
    plain gradient through ReLU6). Reports how many activation modules were guided.
    """
    acts = activation_modules(model.module)
    if not acts:
        raise ExplainerError(NO_ACTIVATIONS)
    with output_grad_hooks(acts, _positive) as n:
        g = input_gradients(model.module, x, target)
    return Attribution.of(g.grad, g.forward, {GUIDED.name: [n] * len(x)})
