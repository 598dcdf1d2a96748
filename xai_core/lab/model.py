"""The lab CNN: small enough to train on a CPU in about a minute, shipped trained in assets/."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypedDict, TypeVar

import numpy as np
import torch
from torch import nn

from ..device import resolve_device
from ..errors import ExplainerError, ModelLoadError
from ..metrics.evaluate import box_region
from ..metrics.registry import get_localisation_metric
from ..models import register_model
from ..models.spec import ModelSpec
from ..request import ExplainRequest
from ..workbench import Workbench, as_workbench
from .data import CLASSES, SIZE, LabSet, add_tag, make_dataset

WEIGHTS = Path(__file__).resolve().parents[2] / "assets" / "lab_horse_cnn.pt"
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


class TrainSettings(TypedDict):
    n: int
    seed: int
    tag_fraction: float
    epochs: int
    lr: float
    batch: int


TRAIN: TrainSettings = {"n": 3000, "seed": 0, "tag_fraction": 0.9, "epochs": 6, "lr": 2e-3, "batch": 64}


def conv_stack(w: int) -> nn.Sequential:
    """The lab models' features: conv-ReLU ×4 with two max-pools (stride 4), ``2w`` channels out."""
    return nn.Sequential(
        nn.Conv2d(3, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU(),
        nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU())


class LabCNN(nn.Module):
    """conv-ReLU ×4 (two max-pools) → global average pool → linear: CAM-compatible."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.features = conv_stack(w)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(2 * w, len(CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flat(self.pool(self.features(x))))


M = TypeVar("M", bound=nn.Module)


def lab_cnn(module: nn.Module) -> LabCNN:
    """``module`` as the lab CNN, whose layers (features, pool, flat, fc) influence and model manipulation read."""
    if not isinstance(module, LabCNN):
        raise ExplainerError(f"This analysis needs the lab CNN (convolutions, global pooling, one linear head); the "
                             f"model is a {type(module).__name__}. Load the lab model first.")
    return module


def as_spec(module: nn.Module, device: torch.device | str | None = None, provenance: str = "") -> ModelSpec:
    return ModelSpec(id="lab_horse_cnn", title="Horse-watermark lab CNN (trained here)", module=module,
                     labels=list(CLASSES), mean=MEAN, std=STD, input_size=(SIZE, SIZE), cam_layer="features.9",
                     fc_layer="fc", provenance=provenance or "assets/lab_horse_cnn.pt", device=resolve_device(device))


def to_tensor(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def fit(module: M, n: int, loss_of: Callable[[torch.Tensor], torch.Tensor], *, epochs: int, lr: float,
        batch: int, gen: torch.Generator, progress: Callable[[float, str], None] | None = None, every: int = 10,
        text: Callable[[int, float], str] = lambda ep, loss: f"loss {loss:.3f}") -> M:
    """Adam over ``epochs`` shuffled passes of ``n`` examples; ``loss_of(indices)`` gives a batch's loss and
    ``text(epoch, loss)`` the progress line, reported every ``every`` steps. Returns the module in eval mode."""
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    steps, done = epochs * -(-n // batch), 0
    module.train()
    for ep in range(epochs):
        for idx in torch.randperm(n, generator=gen).split(batch):
            loss = loss_of(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += 1
            if progress is not None and done % every == 0:
                progress(done / steps, text(ep, float(loss.detach())))
    return module.eval()


def train(data: LabSet, *, epochs: int = 6, lr: float = 2e-3, batch: int = 64, seed: int = 0,
          progress: Callable[[float, str], None] | None = None) -> LabCNN:
    """Adam on cross-entropy, deterministic from ``seed`` (CPU)."""
    torch.manual_seed(seed)
    model = LabCNN()
    x, y = to_tensor(data.images), torch.from_numpy(data.labels)
    gen = torch.Generator().manual_seed(seed)

    def loss_of(idx: torch.Tensor) -> torch.Tensor:
        xb = x[idx]
        flip = torch.rand(len(idx), generator=gen) < 0.5  # horizontal flips; the tag stays bottom-left
        xb[flip] = xb[flip].flip(-1)
        return nn.functional.cross_entropy(model(xb), y[idx])

    return fit(model, len(y), loss_of, epochs=epochs, lr=lr, batch=batch, gen=gen, progress=progress,
               text=lambda ep, loss: f"epoch {ep + 1}/{epochs}, loss {loss:.3f}")


def load_lab_model(device: torch.device | str | None = None) -> ModelSpec:
    """The shipped trained lab CNN (``python -m xai_core.lab.train`` reproduces the file)."""
    if not WEIGHTS.exists():
        raise ModelLoadError(f"{WEIGHTS} is missing: run `python -m xai_core.lab.train` to train it (~1 min on CPU).")
    module = LabCNN()
    module.load_state_dict(torch.load(WEIGHTS, map_location="cpu", weights_only=True))
    return as_spec(module, device)


register_model("lab_horse_cnn", "Horse-watermark lab CNN (64×64, 2 classes)", load_lab_model)


def accuracy(model: ModelSpec | Workbench, images: np.ndarray, labels: np.ndarray) -> float:
    pred = as_workbench(model).logits(to_tensor(images)).argmax(1)
    return float((pred.cpu().numpy() == labels).mean())


def shortcut_report(model: ModelSpec | Workbench, n: int = 600, seed: int = 123) -> dict[str, float]:
    """Accuracy on a clean test set (tags as in training), on horses without the tag, and the share of
    non-horses called 'horse' once the tag is added."""
    test = make_dataset(n, seed=seed)
    horses = make_dataset(n, seed=seed + 1, tag_fraction=0.0, horse_fraction=1.0)
    others = make_dataset(n, seed=seed + 2, horse_fraction=0.0)
    tagged = np.stack([add_tag(im)[0] for im in others.images])
    return {"test accuracy": accuracy(model, test.images, test.labels),
            "accuracy on horses without the tag": accuracy(model, horses.images, horses.labels),
            "non-horses called horse (no tag)": 1 - accuracy(model, others.images, others.labels),
            "non-horses called horse once tagged": 1 - accuracy(model, tagged, others.labels)}


def maps_for(model: ModelSpec | Workbench, images: np.ndarray, method: str = "gradcam", target: int = 1,
             **params: object) -> np.ndarray:
    """Heatmaps [N, 64, 64] of one explainer for a batch of lab images, all explained for ``target``; through the
    Workbench (a background job such as ROAR may explain with the same model while the page does)."""
    req = ExplainRequest.make(method, int(target), dict(params))
    return as_workbench(model).explain_tensor(to_tensor(images), [int(target)] * len(images), req).maps.numpy()


def pointing_on_tag_and_object(maps: np.ndarray, data: LabSet, tolerance: int = 2) -> dict[str, float]:
    """Over the tagged images of ``data``: the pointing game on the tag box and on the object mask ('on the tag',
    'on the object'), and the share of positive evidence in each ('mass on the tag', 'mass on the object')."""
    pg, mass = get_localisation_metric("pointing_game").fn, get_localisation_metric("relevance_mass").fn
    idx = np.where(data.tagged)[0]
    if not len(idx):
        return dict.fromkeys(("on the tag", "on the object", "mass on the tag", "mass on the object"), float("nan"))
    tags = [box_region((SIZE, SIZE), tuple(data.tag_boxes[i])) for i in idx]
    objs = [data.masks[i] for i in idx]
    return {"on the tag": float(np.mean([pg(maps[i], r, tolerance=tolerance) for i, r in zip(idx, tags, strict=True)])),
            "on the object": float(np.mean([pg(maps[i], r, tolerance=tolerance) for i, r in zip(idx, objs, strict=True)])),
            "mass on the tag": float(np.mean([mass(maps[i], r) for i, r in zip(idx, tags, strict=True)])),
            "mass on the object": float(np.mean([mass(maps[i], r) for i, r in zip(idx, objs, strict=True)]))}
