"""Input manipulation of explanations (Dombrowski et al. 2019, 'Explanations can be manipulated and geometry is
to blame', NeurIPS, arXiv:1906.07983), and the paper's defence: explain with softplus(β) instead of ReLU."""

from __future__ import annotations

import copy
import dataclasses
import threading
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..engine import class_probabilities, select
from ..errors import ExplainerError
from ..models.spec import ModelSpec
from ..types import Progress
from ..workbench import Workbench, as_workbench

METHODS = ("gradient", "input_x_gradient")


class SoftplusClamp(nn.Module):
    """A smooth ReLU6: softplus_β(x) − softplus_β(x − 6)."""

    def __init__(self, beta: float) -> None:
        super().__init__()
        self.beta = beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.softplus(x, self.beta) - F.softplus(x - 6.0, self.beta)


def smoothed(model: ModelSpec | Workbench, beta: float) -> ModelSpec:
    """A deep copy with every ReLU / ReLU6 module replaced by its softplus-β version (β → ∞ gives ReLU back)."""
    with as_workbench(model).session() as model:  # copied under the lock (no other session's hooks or folding)
        module = copy.deepcopy(model.module)
    count = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU6) or (isinstance(child, nn.Hardtanh) and (child.min_val, child.max_val) == (0, 6)):
                setattr(parent, name, SoftplusClamp(beta))
                count += 1
            elif isinstance(child, nn.ReLU):
                setattr(parent, name, nn.Softplus(beta))
                count += 1
    if not count:
        raise ExplainerError("This model has no ReLU or ReLU6 modules to smooth (functional F.relu calls cannot be "
                             "swapped); the softplus defence and the attack need them.")
    return dataclasses.replace(model, module=module, lock=threading.RLock())


def explanation_map(module: nn.Module, x: torch.Tensor, target: torch.Tensor, method: str,
                    create_graph: bool = False) -> torch.Tensor:
    """Gradient (|∂f/∂x| summed over colours) or Input × Gradient (summed), differentiable when asked."""
    with torch.inference_mode(False), torch.enable_grad():
        xi = x if x.requires_grad else x.detach().clone().requires_grad_(True)
        score = select(module(xi), target)
        (g,) = torch.autograd.grad(score.sum(), xi, create_graph=create_graph)
    return g.abs().sum(1) if method == "gradient" else (g * xi).sum(1)


def _unit(h: torch.Tensor) -> torch.Tensor:
    h = h.abs().flatten(1)
    return h / h.sum(1, keepdim=True).clamp_min(1e-12)


def distance(h: torch.Tensor, target_map: torch.Tensor) -> float:
    """Mean squared difference of the two maps, each scaled to sum to 1 (×1e6 per pixel², for readable numbers)."""
    return float(((_unit(h) - _unit(target_map)) ** 2).sum(1).mean() * 1e6 / h[0].numel())


@dataclass
class AttackResult:
    original: np.ndarray
    manipulated: np.ndarray
    map_before: np.ndarray
    map_after: np.ndarray
    target_map: np.ndarray
    probability_before: float
    probability_after: float
    distance_before: float
    distance_after: float
    defended_before: float
    defended_after: float
    beta: float

    @property
    def success(self) -> float:
        """Share of the distance to the target map the attack removed (1 = reached it, 0 = no effect)."""
        return 1.0 - self.distance_after / max(self.distance_before, 1e-12)

    @property
    def defended_success(self) -> float:
        """The same, for maps computed with softplus(β): how much of the attack survives the defence."""
        return 1.0 - self.defended_after / max(self.defended_before, 1e-12)


def manipulate(model: ModelSpec | Workbench, image: np.ndarray, target_map: np.ndarray, *, method: str = "gradient",
               epsilon: float = 8 / 255, steps: int = 150, lr: float = 1e-3, attack_beta: float = 10.0,
               gamma: float = 1e3, defence_beta: float = 2.0, target: int | None = None,
               progress: Progress | None = None) -> AttackResult:
    """Find δ with ‖δ‖∞ ≤ ``epsilon`` (pixels in [0, 1]) so that the map of ``image + δ`` matches ``target_map``
    while the class probabilities stay close (loss: map distance + ``gamma`` · ‖softmax change‖²).

    The map's gradient needs second derivatives, which ReLU lacks: the attack differentiates a softplus
    copy (β = ``attack_beta``) as in the paper, and is judged on the real model. The defence computes the
    same maps with softplus(``defence_beta``). The shared model runs only inside the Workbench's session; the
    long optimisation runs on the smoothed copy, so other sessions are not held up by it.
    """
    if method not in METHODS:
        raise ExplainerError(f"The attack supports {', '.join(METHODS)}; got {method!r}.")
    wb = as_workbench(model)
    model = wb.model
    x = model.preprocess(image)
    h, w = x.shape[-2:]
    tmap = torch.from_numpy(np.ascontiguousarray(target_map, dtype=np.float32))[None, None].to(x.device)
    tmap = F.interpolate(tmap, size=(h, w), mode="bilinear", align_corners=False)[:, 0]
    p0 = class_probabilities(wb.logits(x)).clone()  # a normal tensor: the loss below differentiates through it
    tgt = torch.tensor([int(p0.argmax()) if target is None else int(target)], device=x.device)
    smooth = smoothed(wb, attack_beta)
    x01 = model.denormalise(x).detach()
    delta = torch.zeros_like(x01, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=lr)
    with torch.inference_mode(False), torch.enable_grad():
        for it in range(steps):
            xa = model.normalise((x01 + delta).clamp(0, 1))
            hm = explanation_map(smooth.module, xa, tgt, method, create_graph=True)
            out = class_probabilities(smooth.module(xa))
            loss = ((_unit(hm) - _unit(tmap)) ** 2).sum() * 1e4 + gamma * ((out - p0) ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                delta.clamp_(-epsilon, epsilon)
            if progress is not None and ((it + 1) % 10 == 0 or it + 1 == steps):
                progress((it + 1) / steps, f"attack step {it + 1}/{steps}")
    xadv01 = (x01 + delta.detach()).clamp(0, 1)
    xadv = model.normalise(xadv01)
    with wb.session():
        before, after = (explanation_map(model.module, z, tgt, method) for z in (x, xadv))
    defence = smoothed(wb, defence_beta)
    d_before, d_after = (explanation_map(defence.module, z, tgt, method) for z in (x, xadv))
    p1 = class_probabilities(wb.logits(xadv))

    def img(z: torch.Tensor) -> np.ndarray:
        return (z[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)

    return AttackResult(img(x01), img(xadv01), before[0].detach().cpu().numpy(), after[0].detach().cpu().numpy(),
                        tmap[0].cpu().numpy(), float(p0[0, tgt]), float(p1[0, tgt]), distance(before, tmap),
                        distance(after, tmap), distance(d_before, tmap), distance(d_after, tmap), defence_beta)
