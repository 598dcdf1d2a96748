"""timm architectures for uploaded state dicts: ``timm/<name>``, built with random weights (never downloaded), with the
preprocessing timm records for the model (``pretrained_cfg``: input size, mean, std, interpolation)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import ModelLoadError
from .spec import IMAGENET_MEAN, IMAGENET_STD

PREFIX = "timm/"
MISSING = "timm models need the optional package timm: run `pip install timm` on the server."


def _timm() -> Any:
    try:
        import timm
    except ImportError:
        raise ModelLoadError(MISSING) from None
    return timm


def check_name(name: str) -> None:
    timm = _timm()
    if not timm.is_model(name):
        close = timm.list_models(f"*{name[:12]}*")[:5]
        hint = f" (close names: {', '.join(close)})" if close else "; timm.list_models() lists the names"
        raise ModelLoadError(f"The timm library has no model called {name!r}{hint}.")


def default_cfg(name: str) -> dict[str, Any]:
    """The preprocessing record of ``name`` without building it (timm's default tag)."""
    check_name(name)
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    return cfg.to_dict() if cfg is not None else {}


def classes_in(state: dict[str, torch.Tensor], cfg: dict[str, Any]) -> int | None:
    """The class count the checkpoint's classifier implies (timm names it in ``pretrained_cfg['classifier']``)."""
    head = cfg.get("classifier")
    w = state.get(f"{head}.weight") if isinstance(head, str) else None
    return int(w.shape[0]) if w is not None and w.dim() >= 2 else None


def build(name: str, num_classes: int) -> nn.Module:
    """``timm.create_model(name, pretrained=False, num_classes=num_classes)``, errors as sentences."""
    check_name(name)
    try:
        return _timm().create_model(name, pretrained=False, num_classes=num_classes)
    except Exception as e:  # noqa: BLE001 - timm raises many types for odd arguments
        raise ModelLoadError(f"The timm library could not build {name} with {num_classes} classes "
                             f"({type(e).__name__}: {e}).") from None


def preprocessing(cfg: dict[str, Any]) -> dict[str, Any]:
    """ModelSpec keyword arguments from a timm ``pretrained_cfg``."""
    size = cfg.get("input_size") or (3, 224, 224)
    return {"input_size": (int(size[1]), int(size[2])), "mean": tuple(cfg.get("mean") or IMAGENET_MEAN),
            "std": tuple(cfg.get("std") or IMAGENET_STD),
            "interpolation": "bicubic" if cfg.get("interpolation") == "bicubic" else "bilinear"}
