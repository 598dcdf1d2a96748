"""A-ClArC in feature space, augmentative Class Artifact Compensation (Anders et al., 'Finding and removing Clever
Hans: using explanation methods to debug and improve deep models', Information Fusion 2022), on the lab CNN.

The artifact's level ``z_art`` is measured, not told: the images of a set whose activations project most onto the
concept's unit direction ``v`` (their peak of ``vᵀa`` over positions; the top ``fraction``) are taken as carrying
the artifact, and ``z_art`` is their mean ``vᵀa`` **per position** [h, w] (the tag of the lab set sits in one corner;
a single number spread over every position would paint the artifact everywhere). A copy of the model is then
fine-tuned with a forward hook at the concept's layer that gives every activation of every class the artifact,
``a ← a + v (z_art − vᵀa)``, so the artifact no longer separates the classes. The shared model is never changed:
the copy is a new :class:`ModelSpec`.

Measured on the lab CNN (the discovered tag concept at ``features.9``): it does not make the model call untagged
horses 'horse' (0.00 → 0.00; 0.007 with the hook kept; fc only, 3 epochs, Adam 3e-3, 800 images). The tag lives in
more than the one direction, so the fine-tune re-learns it from the others, and the layers after ``features.9``
hold no horse evidence to fall back on. A-ClArC in input space (:mod:`.aclarc_input`) does.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..lab.data import LabSet
from ..lab.model import as_spec, fit, lab_cnn, to_tensor
from ..models.spec import ModelSpec
from ..types import Progress
from ..workbench import Workbench, as_workbench
from .activations import activations, layer_name
from .clarc import project, unit
from .errors import ConceptError, require_images

Trainable = Literal["after", "all"]
MIN_ARTIFACT_SET = 10


@dataclass(frozen=True)
class Artifact:
    """The artifact at ``layer``: unit ``direction`` [C], its level ``level`` [h, w] (mean ``vᵀa`` per position over
    the images found to carry it) and those images' indices in the set it was measured on, strongest first."""

    layer: str
    direction: torch.Tensor
    level: torch.Tensor
    images: tuple[int, ...]


def artifact_level(model: ModelSpec | Workbench, layer: str, direction: torch.Tensor, x: torch.Tensor, *,
                   fraction: float = 0.1) -> Artifact:
    """A-ClArC's ``z_art`` from normalised images ``x`` [N, 3, H, W] with no labels or flags: the top ``fraction``
    of them by peak ``vᵀa`` are taken to carry the artifact (it must be in at least that share of ``x``)."""
    require_images(len(x), MIN_ARTIFACT_SET, "The set", "finding the images that carry the artifact")
    if not 0.0 < fraction <= 1.0:
        raise ConceptError(f"The share of images taken as carrying the artifact must be in (0, 1]; got {fraction}.")
    v = unit(direction)
    data = activations(model, x, layer)
    s = torch.einsum("c,nchw->nhw", v, data.acts)
    order = torch.argsort(s.flatten(1).amax(1), descending=True)[: max(1, round(fraction * len(x)))]
    return Artifact(data.layer, v, s[order].mean(0), tuple(int(i) for i in order))


def add_artifact(a: torch.Tensor, v: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """``a + v (level − vᵀa)`` for feature maps ``a`` [B, C, h, w]: the component along unit ``v`` becomes ``level``
    [h, w] (or a scalar) at every position; everything orthogonal to ``v`` is kept."""
    if a.dim() != 4:
        raise ConceptError(f"The layer outputs a {a.dim()}-D tensor; A-ClArC here needs feature maps [B, C, h, w].")
    if level.dim() == 2 and tuple(level.shape) != tuple(a.shape[-2:]):
        raise ConceptError(f"The artifact level is {tuple(level.shape)} but the layer's maps are "
                           f"{tuple(a.shape[-2:])}; measure the level on images of the model's input size.")
    return project(a, v) + v.view(1, -1, 1, 1) * level.to(a.dtype)


@contextmanager
def _artifact_everywhere(module: nn.Module, artifact: Artifact) -> Iterator[None]:
    """The artifact hook on ``module``'s layer, removed on exit: called on a private copy while fine-tuning, or
    under the model's lock by :func:`artifact_added`."""
    v, level = artifact.direction.to(torch.float32), artifact.level.to(torch.float32)

    def hook(_m: nn.Module, _i: tuple, out: torch.Tensor) -> torch.Tensor:
        return add_artifact(out, v.to(out.device, out.dtype), level.to(out.device))

    handle = module.get_submodule(artifact.layer).register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def artifact_added(model: ModelSpec | Workbench, artifact: Artifact) -> Iterator[ModelSpec]:
    """Inside the block every forward of ``model`` carries the artifact at its layer (A-ClArC's model as the paper
    deploys it: the artifact layer kept at inference); yields the model with its lock held."""
    with as_workbench(model).session() as spec, _artifact_everywhere(spec.module, artifact):
        yield spec


def layers_after(module: nn.Module, layer: str) -> list[str]:
    """Names of the modules with parameters registered after ``layer`` (not its ancestors): for the lab CNN, whose
    modules are registered in the order they run, the layers between the concept and the output."""
    names = [n for n, _m in module.named_modules()]
    if layer not in names:
        raise ConceptError(f"The model has no layer {layer!r}.")
    later = names[names.index(layer) + 1:]
    return [n for n in later
            if not layer.startswith(n + ".") and any(True for _ in module.get_submodule(n).parameters(recurse=False))]


def aclarc(model: ModelSpec | Workbench, artifact: Artifact, data: LabSet, *, trainable: Trainable = "after",
           epochs: int = 3, lr: float = 3e-3, batch: int = 64, seed: int = 0,
           progress: Progress | None = None) -> ModelSpec:
    """A fine-tuned copy of the lab CNN: Adam on cross-entropy over ``data`` (its labels; never its tag flags) with
    the artifact added at ``artifact.layer`` to every image; ``trainable``: only the layers after the concept's layer
    (``"after"``) or every layer (``"all"``). The copy comes back without the hook, in eval mode."""
    with as_workbench(model).session() as spec:  # copied under the lock
        layer_name(spec, artifact.layer)
        module = lab_cnn(copy.deepcopy(spec.module)).cpu().float().requires_grad_(trainable == "all")
        device = spec.device
    if trainable == "after":
        later = layers_after(module, artifact.layer)
        if not later:
            raise ConceptError(f"Nothing with weights comes after {artifact.layer!r}; fine-tune all layers instead.")
        for name in later:
            module.get_submodule(name).requires_grad_(True)
    torch.manual_seed(seed)
    x, y = to_tensor(data.images), torch.from_numpy(data.labels)

    def loss_of(idx: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(module(x[idx]), y[idx])

    with _artifact_everywhere(module, artifact):
        fit(module, len(y), loss_of, epochs=epochs, lr=lr, batch=batch, gen=torch.Generator().manual_seed(seed),
            progress=progress, text=lambda ep, loss: f"A-ClArC fine-tuning, epoch {ep + 1}/{epochs}, loss {loss:.3f}")
    module.eval().requires_grad_(False)
    return as_spec(module, device, provenance=f"A-ClArC at {artifact.layer}: fine-tuned ({trainable} layers, "
                                              f"{epochs} epochs on {len(y)} images) with the artifact added to every image")
