"""timm architectures for uploaded state dicts: ``timm/<name>``, built with random weights (never downloaded), with the
preprocessing timm records for the model (``pretrained_cfg``: input size, mean, std, interpolation).

The name is a recipe for an allocation (``vit_giant_patch14_224`` is a billion parameters), so the model is first built
on the ``meta`` device and measured (:mod:`.cost`); only a model within the limits is built for real. Names are plain
architecture names (an optional ``.tag``): no ``hf-hub:`` or ``local-dir:`` scheme, so timm never opens or fetches
anything an upload names."""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from ..errors import ModelLoadError
from ..untrusted.messages import shown
from ..untrusted.modelargs import check_classes, check_normalisation, check_side
from . import cost
from .spec import IMAGENET_MEAN, IMAGENET_STD

PREFIX = "timm/"
MISSING = "timm models need the optional package timm: run `pip install timm` on the server."
_NAME = re.compile(r"[a-z0-9_]{1,100}(\.[a-z0-9_]{1,100})?")


def _timm() -> Any:
    try:
        import timm
    except ImportError:
        raise ModelLoadError(MISSING) from None
    return timm


def check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ModelLoadError(f"The timm model name {shown(repr(name), 60)} is not an architecture name (lower-case "
                             "letters, digits and underscores, e.g. timm/resnet50); hub ids and paths are not opened.")
    timm = _timm()
    if not timm.is_model(name):
        close = timm.list_models(f"*{name[:12]}*")[:5]
        hint = f" (close names: {', '.join(close)})" if close else "; timm.list_models() lists the names"
        raise ModelLoadError(f"The timm library has no model called {name!r}{hint}.")


def default_cfg(name: str) -> dict[str, Any]:
    """The preprocessing record of ``name`` without building it (timm's default tag)."""
    check_name(name)
    cfg = _timm().models.get_pretrained_cfg(name)
    return cfg.to_dict() if cfg is not None else {}


def classes_in(state: dict[str, torch.Tensor], cfg: dict[str, Any]) -> int | None:
    """The class count the checkpoint's classifier implies (timm names it in ``pretrained_cfg['classifier']``)."""
    head = cfg.get("classifier")
    w = state.get(f"{head}.weight") if isinstance(head, str) else None
    return int(w.shape[0]) if w is not None and w.dim() >= 2 else None


def _create(name: str, num_classes: int) -> nn.Module:
    try:
        return _timm().create_model(name, pretrained=False, num_classes=num_classes)
    except Exception as e:  # noqa: BLE001 - timm raises many types for odd arguments
        raise ModelLoadError(f"The timm library could not build {name} with {num_classes} classes "
                             f"({type(e).__name__}).") from None


def check_cost(name: str, num_classes: int, input_size: tuple[int, int]) -> cost.ModelCost:
    """What ``name`` with ``num_classes`` outputs costs at ``input_size``, measured on the meta device; a model over a
    limit is refused, naming the architecture and the limit."""
    check_classes(num_classes)
    with torch.device("meta"):
        meta = _create(name, num_classes)
    what = f"The timm architecture {name} with {num_classes:,} classes is"
    cost.check(cost.measure(meta, input_size, forward=False), what)
    measured = cost.measure(meta, input_size)
    cost.check(measured, what)
    return measured


def build(name: str, num_classes: int, input_size: tuple[int, int] = (224, 224), *, checked: bool = False) -> nn.Module:
    """``timm.create_model(name, pretrained=False, num_classes=num_classes)`` once :func:`check_cost` passes (the
    caller says ``checked`` when it already ran it for these arguments)."""
    check_name(name)
    if not checked:
        check_cost(name, num_classes, input_size)
    return _create(name, num_classes)


def module_cfg(module: nn.Module) -> dict[str, Any]:
    """The ``pretrained_cfg`` dict timm sets on every model it creates (empty when there is none)."""
    cfg = getattr(module, "pretrained_cfg", None)
    return cfg if isinstance(cfg, dict) else {}


def preprocessing(cfg: dict[str, Any]) -> dict[str, Any]:
    """ModelSpec keyword arguments from a timm ``pretrained_cfg``."""
    size = cfg.get("input_size") or (3, 224, 224)
    h, w = (check_side(s, f"The timm input size of {cfg.get('architecture', 'this model')}") for s in size[1:3])
    mean, std = check_normalisation(tuple(cfg.get("mean") or IMAGENET_MEAN), tuple(cfg.get("std") or IMAGENET_STD),
                                    "The timm record's")
    return {"input_size": (h, w), "mean": mean, "std": std,
            "interpolation": "bicubic" if cfg.get("interpolation") == "bicubic" else "bilinear"}
