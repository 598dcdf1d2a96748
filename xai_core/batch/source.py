"""Where a batch run's model comes from, as a small picklable value: a Ray actor loads it once in its own process.

``name``: a model id of :func:`xai_core.load_model` (bundled, lab, torchvision from the hub cache); ``file``: the
operator's own weights file for ``architecture`` with ``classes`` outputs (and optional ``labels`` file), read
through the same boundary as an upload (:func:`xai_core.load_checkpoint`: never unpickled). New kinds of own model
(timm, Hugging Face, ONNX) become one more ``kind`` here, loaded by the library's loader for them.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelLoadError
from ..models import DEFAULT_MODEL, load_checkpoint, load_model, parse_labels
from ..models.spec import ModelSpec
from ..untrusted.limits import LIMITS
from ..untrusted.runfiles import read_file


@dataclass(frozen=True)
class ModelSource:
    name: str = DEFAULT_MODEL
    file: str | None = None
    architecture: str | None = None
    classes: int | None = None
    labels: str | None = None

    @property
    def kind(self) -> str:
        return "file" if self.file else "name"

    def load(self, device: str | None = None) -> ModelSpec:
        dev = torch.device(device) if device else None
        if not self.file:  # kind == "name"
            return load_model(self.name, dev)
        if not self.architecture or not self.classes:
            raise ModelLoadError("--model-file needs --architecture NAME and --classes N (the file's output count).")
        path = Path(self.file).resolve()
        if not path.is_file():
            raise ModelLoadError(f"The model file {path.name} does not exist; give the path of a .pth/.pt/.safetensors "
                                 "file.")
        data = read_file(path.parent, path, LIMITS.checkpoint_bytes, f"the model file {path.name}", ModelLoadError)
        labels = None
        if self.labels:
            lab = Path(self.labels).resolve()
            labels = parse_labels(read_file(lab.parent, lab, LIMITS.labels_bytes, f"the labels file {lab.name}",
                                            ModelLoadError), self.classes)
        return load_checkpoint(data, path.name, self.architecture, self.classes, labels, dev)

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        g = p.add_argument_group("model")
        g.add_argument("--model", default=DEFAULT_MODEL, help="a model id: bundled, lab or torchvision (default: %(default)s)")
        g.add_argument("--model-file", default=None, help="your own weights (state dict) instead of --model")
        g.add_argument("--architecture", default=None, help="the architecture of --model-file, e.g. resnet18")
        g.add_argument("--classes", type=int, default=None, help="the number of classes of --model-file")
        g.add_argument("--labels", default=None, help="class names of --model-file: one per line or JSON")

    @classmethod
    def from_args(cls, ns: argparse.Namespace) -> ModelSource:
        f = str(Path(ns.model_file).resolve()) if ns.model_file else None
        labels = str(Path(ns.labels).resolve()) if ns.labels else None
        return cls(ns.model, f, ns.architecture, ns.classes, labels)


def provenance(model: ModelSpec, source: ModelSource | None) -> dict[str, Any]:
    """What run.json says about the model: where it came from and a digest of its weights."""
    return {"id": model.id, "title": model.title, "provenance": model.provenance, "weights_digest": model.fingerprint(),
            "classes": model.num_classes, "input_size": list(model.input_size), "mean": list(model.mean),
            "std": list(model.std), "cam_layer": model.cam_layer, "device": str(model.device),
            "source": None if source is None else {"kind": source.kind, **source.__dict__}}
