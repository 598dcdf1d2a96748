"""Model registry: the bundled offline model, torchvision classifiers, user checkpoints, any module."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..device import resolve_device
from ..errors import ModelLoadError
from . import zoo
from .bundled import load_lite0
from .labels import imagenet_labels, parse_labels
from .open_clip_models import names as open_clip_names
from .own import FORMATS, architectures, load_own_model, missing_packages, torchscript_allowed
from .spec import IMAGENET_MEAN, IMAGENET_STD, ModelSpec
from .tv_dense import ARCHS as DENSE_ARCHITECTURES
from .upload import ARCHITECTURES, load_checkpoint

DEFAULT_MODEL = "efficientnet_lite0"

__all__ = ["ARCHITECTURES", "DEFAULT_MODEL", "DENSE_ARCHITECTURES", "FORMATS", "ModelSpec", "architectures",
           "from_module", "imagenet_labels", "list_models", "load_checkpoint", "load_model", "load_own_model",
           "missing_packages", "model_status", "model_title", "open_clip_names", "parse_labels", "register_model",
           "torchscript_allowed"]


Loader = Callable[[torch.device | None], ModelSpec]
_REGISTERED: dict[str, tuple[str, Loader]] = {}


def register_model(name: str, title: str, loader: Loader) -> None:
    """Offer a model that ships with the library (the lab registers its CNN): ``loader(device)`` builds it offline.
    models/ is a leaf: other packages register here, it imports none of them."""
    _REGISTERED[name] = (title, loader)


def list_models() -> list[str]:
    """Ids of the models the picker offers: the bundled one first, the registered ones, then torchvision's."""
    return [DEFAULT_MODEL, *_REGISTERED, *zoo.ARCHS]


def model_title(name: str) -> str:
    if name in _REGISTERED:
        return _REGISTERED[name][0]
    return "EfficientNet-Lite0 (bundled, offline)" if name == DEFAULT_MODEL else f"{zoo.ARCHS[name].title} (torchvision)"


def model_status(name: str) -> str | None:
    """``None`` when ``name`` loads offline now, else the instruction that makes it loadable."""
    if name == DEFAULT_MODEL or name in _REGISTERED or zoo.is_cached(name):
        return None
    return zoo.how_to_get(name)


def load_model(name: str, device: torch.device | str | None = None, *, allow_download: bool = False) -> ModelSpec:
    """A ready :class:`ModelSpec` by id (see :func:`list_models`)."""
    dev = torch.device(device) if device is not None else None
    if name == DEFAULT_MODEL:
        return load_lite0(dev)
    if name in _REGISTERED:
        return _REGISTERED[name][1](dev)
    if name in zoo.ARCHS:
        return zoo.load(name, dev, allow_download=allow_download)
    raise ModelLoadError(f"Unknown model {name!r}; choose one of {', '.join(list_models())}.")


def from_module(module: nn.Module, labels: list[str], *, id: str = "custom", title: str | None = None,
                input_size: tuple[int, int] = (224, 224), mean: tuple[float, float, float] = IMAGENET_MEAN,
                std: tuple[float, float, float] = IMAGENET_STD, cam_layer: str | None = None,
                fc_layer: str | None = None, reshape: Callable[[torch.Tensor], torch.Tensor] | None = None,
                device: torch.device | str | None = None, provenance: str = "in-memory module") -> ModelSpec:
    """Wrap any classifier module (tests, the lab CNN); ``cam_layer`` defaults to the last Conv2d."""
    if cam_layer is None:
        convs = [n for n, m in module.named_modules() if isinstance(m, nn.Conv2d)]
        cam_layer = convs[-1] if convs else None
    return ModelSpec(id=id, title=title or id, module=module, labels=labels, input_size=input_size, mean=mean,
                     std=std, cam_layer=cam_layer, fc_layer=fc_layer, reshape=reshape, provenance=provenance,
                     device=resolve_device(device))
