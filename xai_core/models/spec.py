"""ModelSpec: a classifier plus everything an explainer needs to know about it."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..device import default_device
from ..errors import ExplainerError
from .layout import TokenLayout

TASKS = ("classifier", "dual_encoder", "embedder", "segmenter", "detector")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(eq=False)
class ModelSpec:
    """A frozen classifier in eval mode on its device, with preprocessing and metadata.

    ``cam_layer`` names the module whose output CAM methods use by default; ``fc_layer`` the final
    linear layer (CAM needs it); ``reshape`` turns token activations ``[B, N, C]`` into a grid
    ``[B, C, h, w]`` (ViT). ``tokens`` describes a ViT-style model's blocks and attention modules (the attention
    explainers need it; :func:`.layout.analyse` finds it). ``lock`` serialises explainers that temporarily hook the
    module. ``interpolation`` ("bilinear" or "bicubic") is how images are resized to ``input_size``.

    ``task`` says what ``module(x)`` returns (see :data:`TASKS`): a classifier's logits ``[B, classes]``; a dual
    encoder's or an embedder's image embeddings ``[B, D]`` (a dual encoder also has ``text_encoder``: prompts ->
    text embeddings ``[T, D]``, run inside the Workbench); a segmenter's class scores ``[B, classes, H, W]`` (or a
    mapping whose ``"out"`` is that, as torchvision's); a detector's list of ``{"boxes" [n, 4] (x0, y0, x1, y1 in
    input pixels), "labels" [n], "scores" [n]}`` per image (torchvision's eval convention). Explainers explain a
    scalar: other tasks are bound to a target first (:mod:`xai_core.targets`), which gives a one-output model.
    ``target_kind`` is the kind of target such a bound model explains ("" for a model as loaded).
    """

    id: str
    title: str
    module: nn.Module
    labels: list[str]
    input_size: tuple[int, int] = (224, 224)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    cam_layer: str | None = None
    fc_layer: str | None = None
    reshape: Callable[[torch.Tensor], torch.Tensor] | None = None
    provenance: str = ""
    tokens: TokenLayout | None = None
    interpolation: str = "bilinear"
    device: torch.device = field(default_factory=default_device)
    task: str = "classifier"
    text_encoder: Callable[[list[str]], torch.Tensor] | None = field(default=None, repr=False)
    target_kind: str = ""
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _fingerprint: tuple[int, str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ExplainerError(f"Unknown model task {self.task!r}; one of {', '.join(TASKS)}.")
        # Frozen (no weight gradients are ever computed) and channels-last: measured +35-55% CPU
        # throughput on the bundled model for forward and forward+backward.
        # torch's stub lists device and memory_format in separate overloads; Module.to accepts both at once.
        self.module = self.module.eval().requires_grad_(False).to(  # type: ignore[call-overload]
            self.device, memory_format=torch.channels_last)
        self._mean = torch.tensor(self.mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(self.std, device=self.device).view(1, 3, 1, 1)

    def fingerprint(self) -> str:
        """A digest of the weights and buffers (content, not identity): cache keys for models built in a session.
        Recomputed when any tensor's version counter moved (weights changed in place)."""
        tensors = [*self.module.parameters(), *self.module.buffers()]
        version = sum(t._version for t in tensors)
        if self._fingerprint is None or self._fingerprint[0] != version:
            h = hashlib.blake2b(digest_size=16)
            h.update(f"{self.id}:{self.input_size}:{self.mean}:{self.std}:{len(self.labels)}".encode())
            for name, t in (*self.module.named_parameters(), *self.module.named_buffers()):
                h.update(name.encode())
                h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
            self._fingerprint = (version, h.hexdigest())
        return self._fingerprint[1]

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def label(self, index: int) -> str:
        return self.labels[index] if 0 <= index < len(self.labels) else f"class {index}"

    def normalise(self, x01: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1] -> model input."""
        return (x01.to(self.device) - self._mean) / self._std

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        """Model input -> pixels in [0, 1]."""
        return x * self._std + self._mean

    def resized(self, image: np.ndarray) -> np.ndarray:
        """RGB uint8 (H, W, 3) of any size -> RGB uint8 at the model's input size: what the model sees."""
        h, w = self.input_size
        how = Image.Resampling.BICUBIC if self.interpolation == "bicubic" else Image.Resampling.BILINEAR
        return np.array(Image.fromarray(image).resize((w, h), how, reducing_gap=3.0))

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        """RGB uint8 (H, W, 3) of any size -> normalised ``[1, 3, h, w]`` at the model's input size.

        The whole image is resized (not cropped), so a map computed on it covers the whole image.
        """
        x = torch.from_numpy(self.resized(image)).permute(2, 0, 1).float().div_(255)
        return self.normalise(x.unsqueeze(0).to(self.device)).contiguous(memory_format=torch.channels_last)

    def submodule(self, name: str | None) -> nn.Module:
        """The module called ``name`` (``None``/empty: the default CAM layer)."""
        name = name or self.cam_layer
        if not name:
            raise ExplainerError(f"{self.title} has no convolutional layer to take a class activation map at. "
                                 "Use a gradient method (Gradient, Integrated Gradients, ...) instead.")
        try:
            return self.module.get_submodule(name)
        except AttributeError:
            raise ExplainerError(f"{self.title} has no layer named {name!r}; pick one from the layer list.") from None

    def layer_names(self) -> list[str]:
        """Names of layers a CAM method can sit on (convolutions and the blocks containing them)."""
        names = []
        for name, m in self.module.named_modules():
            if name and (isinstance(m, nn.Conv2d) or any(isinstance(c, nn.Conv2d) for c in m.modules())):
                names.append(name)
        if self.cam_layer and self.cam_layer not in names:
            names.append(self.cam_layer)
        return names

    def as_grid(self, activation: torch.Tensor) -> torch.Tensor:
        """Activations as ``[B, C, h, w]`` (token models go through ``reshape``)."""
        if self.reshape is not None:
            return self.reshape(activation)
        if activation.dim() != 4:
            raise ExplainerError(f"The chosen layer outputs a {activation.dim()}-D tensor, not a feature map "
                                 "[batch, channels, height, width]; choose a convolutional layer.")
        return activation
