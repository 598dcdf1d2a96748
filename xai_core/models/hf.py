"""Hugging Face image classifiers from an uploaded folder: built from its config by ``AutoModelForImageClassification``
(an architecture transformers ships; ``auto_map`` and custom code are refused by the upload boundary), eager
attention (so attention explainers can read the probabilities), weights from safetensors only."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from ..errors import ModelLoadError
from ..untrusted.modelfiles import ModelFolder
from .spec import IMAGENET_MEAN, IMAGENET_STD

MISSING = "Hugging Face models need the optional package transformers: run `pip install transformers` on the server."


class HFClassifier(nn.Module):
    """A transformers image classifier as a plain ``images -> logits`` module."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).logits


def _from_folder(folder: ModelFolder, tmp: Path) -> tuple[nn.Module, dict]:
    try:
        from transformers import AutoModelForImageClassification
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    except ImportError:
        raise ModelLoadError(MISSING) from None
    kind = folder.config.get("model_type")
    if not isinstance(kind, str) or kind not in CONFIG_MAPPING:
        raise ModelLoadError(f"The config.json names model_type {kind!r}, which this transformers version does not ship; "
                             "custom architectures are never run here.")
    (tmp / "config.json").write_text(json.dumps(folder.config), encoding="utf-8")
    save_file({k: v.contiguous() for k, v in folder.state.items()}, str(tmp / "model.safetensors"))
    try:
        model, info = AutoModelForImageClassification.from_pretrained(
            str(tmp), local_files_only=True, trust_remote_code=False, use_safetensors=True, attn_implementation="eager",
            output_loading_info=True)
    except (ValueError, KeyError, TypeError, RuntimeError, OSError) as e:
        raise ModelLoadError(f"The transformers library cannot build an image classifier from this config ({type(e).__name__}: "
                             f"{str(e)[:150]}).") from None
    return model, info


def build(folder: ModelFolder) -> tuple[nn.Module, list[str] | None]:
    """(classifier module, labels from ``id2label`` or None)."""
    with tempfile.TemporaryDirectory(prefix="xai-hf-") as tmp:
        model, info = _from_folder(folder, Path(tmp))
    missing, mismatched = info.get("missing_keys") or [], info.get("mismatched_keys") or []
    if missing or mismatched:
        bad = sorted(missing)[:1] or [str(mismatched[0])[:80]]
        raise ModelLoadError(f"The model.safetensors does not fit its config.json: {len(missing)} missing and {len(mismatched)} "
                             f"mismatched tensor(s), e.g. {bad[0]}. Save the folder again with save_pretrained.")
    id2label = getattr(model.config, "id2label", None) or {}
    n = model.config.num_labels
    labels = [str(id2label.get(i, id2label.get(str(i), f"class {i}"))) for i in range(n)] if id2label else None
    return HFClassifier(model.eval()), labels


def preprocessing(folder: ModelFolder, module: HFClassifier) -> tuple[dict[str, Any], str]:
    """ModelSpec keyword arguments from ``preprocessor_config.json`` (defaults stated when it is absent)."""
    cfg = module.model.config
    side = getattr(cfg, "image_size", 224)
    side = side if isinstance(side, int) else 224
    pre = folder.preprocessor or {}
    size = pre.get("size") if isinstance(pre.get("size"), dict) else {}
    h = size.get("height") or size.get("shortest_edge") or side
    w = size.get("width") or size.get("shortest_edge") or side
    mean, std = pre.get("image_mean", IMAGENET_MEAN), pre.get("image_std", IMAGENET_STD)
    ok = all(isinstance(v, (list, tuple)) and len(v) == 3 and all(isinstance(c, (int, float)) for c in v)
             for v in (mean, std))
    if not ok or not all(isinstance(v, int) and 8 <= v <= 4096 for v in (h, w)):
        raise ModelLoadError("The preprocessor_config.json has an odd size, image_mean or image_std; save it again with "
                             "the image processor's save_pretrained.")
    note = ("preprocessing from preprocessor_config.json" if folder.preprocessor else
            f"no preprocessor_config.json: {w}×{h} input and ImageNet mean/std assumed")
    kw = {"input_size": (int(h), int(w)), "mean": tuple(map(float, mean)), "std": tuple(map(float, std)),
          "interpolation": "bicubic" if pre.get("resample") == 3 else "bilinear"}
    return kw, note
