"""torchvision classifiers: architectures, default CAM layers, and offline-aware weight loading.

Weights come from the torch hub cache. Without them, loading raises :class:`ModelLoadError`
that says exactly where the file must go and how to get it; a download is attempted only when
the caller asks for it (and then with a short network timeout, so the app never hangs).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision

from ..device import resolve_device
from ..errors import ModelLoadError
from .spec import ModelSpec


def vit_tokens_to_grid(tokens: torch.Tensor) -> torch.Tensor:
    """ViT tokens ``[B, 1 + h*w, C]`` -> ``[B, C, h, w]`` (class token dropped)."""
    b, n, c = tokens.shape
    side = int(round((n - 1) ** 0.5))
    return tokens[:, 1:, :].reshape(b, side, side, c).permute(0, 3, 1, 2)


@dataclass(frozen=True)
class Arch:
    """How to build one torchvision classifier and where CAM methods sit on it."""

    title: str
    cam_layer: str | None
    fc_layer: str | None = None
    reshape: Callable[[torch.Tensor], torch.Tensor] | None = None


ARCHS: dict[str, Arch] = {
    "resnet18": Arch("ResNet-18", "layer4", "fc"),
    "resnet50": Arch("ResNet-50", "layer4", "fc"),
    "vgg16": Arch("VGG-16", "features.29"),
    "densenet121": Arch("DenseNet-121", "features"),
    "mobilenet_v3_large": Arch("MobileNetV3-Large", "features"),
    "efficientnet_b0": Arch("EfficientNet-B0", "features", "classifier.1"),
    "convnext_tiny": Arch("ConvNeXt-Tiny", "features"),
    "vit_b_16": Arch("ViT-B/16", "encoder.layers.encoder_layer_11.ln_1", None, vit_tokens_to_grid),
}


def build(arch: str, num_classes: int = 1000) -> torch.nn.Module:
    """An untrained torchvision architecture with ``num_classes`` outputs."""
    if arch not in ARCHS:
        raise ModelLoadError(f"Unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}.")
    return torchvision.models.get_model(arch, weights=None, num_classes=num_classes)


def _weights(arch: str) -> torchvision.models.WeightsEnum:
    return torchvision.models.get_model_weights(arch).DEFAULT


def cache_path(arch: str) -> Path:
    """Where torch hub keeps this architecture's ImageNet weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(_weights(arch).url).name


def is_cached(arch: str) -> bool:
    return cache_path(arch).is_file()


def how_to_get(arch: str) -> str:
    """The exact steps that make ``arch``'s weights available offline."""
    w, path = _weights(arch), cache_path(arch)
    return (f"The ImageNet weights for {ARCHS[arch].title} are not in the torch hub cache ({path}). "
            f"On a machine with internet run `python -c \"import torchvision; torchvision.models.{arch}(weights='DEFAULT')\"`, "
            f"or download {w.url} and copy it to {path}. Until then the bundled EfficientNet-Lite0 is used; "
            "you can also upload the checkpoint under 'Your own model'.")


def load(arch: str, device: torch.device | None = None, *, allow_download: bool = False,
         timeout_s: float = 20.0) -> ModelSpec:
    """A pretrained torchvision classifier from the hub cache (or a bounded download if allowed)."""
    if arch not in ARCHS:
        raise ModelLoadError(f"Unknown model {arch!r}; choose one of {', '.join(ARCHS)}.")
    weights, path = _weights(arch), cache_path(arch)
    if path.is_file():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - a corrupt cache file gets a clear message
            raise ModelLoadError(f"The cached weights file {path} is corrupt ({type(e).__name__}); "
                                 "delete it and get it again.") from None
    elif allow_download:
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(timeout_s)
        try:
            state = torch.hub.load_state_dict_from_url(weights.url, progress=False, check_hash=True,
                                                       map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - every network failure becomes the same instruction
            raise ModelLoadError(f"Downloading failed ({type(e).__name__}). " + how_to_get(arch)) from None
        finally:
            socket.setdefaulttimeout(old)
    else:
        raise ModelLoadError(how_to_get(arch))
    module = build(arch)
    module.load_state_dict(state)
    a = ARCHS[arch]
    return ModelSpec(id=arch, title=f"{a.title} (torchvision, ImageNet)", module=module,
                     labels=list(weights.meta["categories"]), cam_layer=a.cam_layer, fc_layer=a.fc_layer,
                     reshape=a.reshape, provenance=f"torchvision {weights} from {path}", device=resolve_device(device))
