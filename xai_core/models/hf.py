"""Hugging Face image classifiers from an uploaded folder whose config.json passed the allow-lists of
:mod:`xai_core.untrusted.hfconfig`: built from the config by the model type's own class (offline; no path, URL or hub id
in the upload is ever opened or fetched), first on the ``meta`` device to count what it costs
(:mod:`.cost`: parameters, modules, activations and FLOPs at the input size the model will run at), and only within
the limits for real, in float32 with eager attention (so attention explainers can read the probabilities), from a
private temporary folder that holds only the checked config and the weights. The weights, from safetensors only, must
fit the model exactly."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from ..errors import ModelLoadError
from ..untrusted.hfconfig import DUAL_KEYS, KEYS, TOWER_KEYS, TOWERS, towers
from ..untrusted.messages import shown
from ..untrusted.modelargs import check_normalisation, check_side
from ..untrusted.modelfiles import ModelFolder
from . import cost
from .spec import IMAGENET_MEAN, IMAGENET_STD

MISSING = "Hugging Face models need the optional package transformers: run `pip install transformers` on the server."
HINT = "save the model again with save_pretrained from a released transformers version and zip that folder"


class HFClassifier(nn.Module):
    """A transformers image classifier as a plain ``images -> logits`` module."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).logits

    @property
    def config(self) -> Any:
        """The wrapped model's transformers config (``num_labels``, ``model_type``, ...)."""
        return self.model.config


def _library() -> tuple[Any, Any, Any]:
    try:
        import transformers
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING
        from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES
    except ImportError:
        raise ModelLoadError(MISSING) from None
    return transformers, CONFIG_MAPPING, MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES


def _config(folder: ModelFolder, kind: str, class_name: str | None = None) -> tuple[Any, Any, dict[str, Any]]:
    """(model class: ``class_name`` or the kind's image classifier, config object, the class's default config as a dict);
    ``_name_or_path`` is dropped unread (from the towers too)."""
    transformers, configs, names = _library()
    name = class_name or names.get(kind)
    name = name[0] if isinstance(name, tuple) else name
    clean = {k: {a: b for a, b in v.items() if a != "_name_or_path"} if isinstance(v, dict) and k.endswith(
        ("_config", "_config_dict")) else v for k, v in folder.config.items() if k != "_name_or_path"}
    try:
        cls = getattr(transformers, name)
        config = configs[kind].from_dict(clean)
        defaults = configs[kind]().to_dict()
    except Exception as e:  # noqa: BLE001 - a config class raises many types for odd values
        raise ModelLoadError(f"The transformers library cannot read this {kind} config.json ({type(e).__name__}); "
                             f"{HINT}.") from None
    return cls, config, defaults


def input_size(folder: ModelFolder, config: Any) -> tuple[int, int]:
    """(H, W) the model runs at: the preprocessor's size, else the config's image_size, else 224."""
    side = getattr(config, "image_size", 224)
    h, w = (side, side) if isinstance(side, int) else tuple(side) if isinstance(side, (list, tuple)) else (224, 224)
    size = (folder.preprocessor or {}).get("size")
    if isinstance(size, dict):
        h = size.get("height") or size.get("shortest_edge") or h
        w = size.get("width") or size.get("shortest_edge") or w
    elif isinstance(size, int):
        h = w = size
    where = "preprocessor_config.json's size" if folder.preprocessor and "size" in folder.preprocessor else \
        "config.json's image_size"
    return check_side(h, f"The {where}"), check_side(w, f"The {where}")


def _culprit(folder: ModelFolder, kind: str, defaults: dict[str, Any], size: tuple[int, int]) -> str:
    """The field that grows the model most over its library default (by ratio; a smaller patch costs more), to name
    it when the model is too large (a dual encoder's tower fields as ``text_config.vocab_size``)."""
    def total(v: object) -> float:
        items = v if isinstance(v, list) else [v]
        return float(sum(x for x in items if isinstance(x, (int, float)) and not isinstance(x, bool)))

    def fields(config: dict[str, Any], base: dict[str, Any], keys: frozenset[str], where: str = "") -> list[tuple]:
        return [(where + k, v, base.get(k)) for k, v in config.items() if k in keys]

    best, name, value = 1.0, "", ""
    found = fields(folder.config, defaults, KEYS.get(kind) or DUAL_KEYS.get(kind) or frozenset())
    if kind in TOWERS:
        for key, tower, sub in towers(folder.config):
            found += fields(sub, defaults.get(key.removesuffix("_dict")) or {}, TOWER_KEYS[tower], f"{key}.")
    found += [("image_size", max(size), 224), ("num_labels", len(folder.config.get("id2label") or {}) or
                                               folder.config.get("num_labels"), 2)]
    for k, v, d in found:
        grow, base = total(v), total(d)
        small = k.rsplit(".", 1)[-1].startswith("patch_size")
        ratio = (base / grow if small else grow / base) if grow > 0 and base > 0 else 0
        if ratio > best:
            best, name, value = ratio, k, shown(repr(v), 40)
    where = "config.json"
    if name == "image_size" and "size" in (folder.preprocessor or {}):
        where, name = "preprocessor_config.json", "size"
    return f"The {where} sets {name} to {value}, which describes" if name else "The config.json describes"


def _build(cls: Any, config: Any, kind: str) -> nn.Module:
    try:
        return cls._from_config(config, attn_implementation="eager", dtype=torch.float32)
    except Exception as e:  # noqa: BLE001 - model constructors raise many types for odd sizes
        raise ModelLoadError(f"The transformers library cannot build a {kind} image classifier from this config.json "
                             f"({type(e).__name__}); {HINT}.") from None


def _load(cls: Any, config: Any, folder: ModelFolder, kind: str) -> nn.Module:
    """The real model with the folder's weights: ``from_pretrained`` on a private temporary folder holding only the
    checked config (``_name_or_path`` dropped) and the weights, offline (transformers maps the names a checkpoint
    was saved with); every missing, unexpected or mismatched tensor is refused."""
    with tempfile.TemporaryDirectory(prefix="xai-hf-") as tmp:
        config.save_pretrained(tmp)
        save_file({k: v.contiguous() for k, v in folder.state.items()}, str(Path(tmp) / "model.safetensors"))
        try:
            model, info = cls.from_pretrained(tmp, config=config, local_files_only=True, trust_remote_code=False,
                                              use_safetensors=True, attn_implementation="eager", dtype=torch.float32,
                                              output_loading_info=True)
        except Exception as e:  # noqa: BLE001 - loading raises many types for weights that do not fit
            raise ModelLoadError(f"The model.safetensors does not load into the {kind} its config.json describes "
                                 f"({type(e).__name__}); {HINT}.") from None
    bad = {k: sorted(map(str, info.get(k) or [])) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if any(bad.values()):
        first = next(v[0] for v in bad.values() if v)
        raise ModelLoadError(f"The model.safetensors does not fit its config.json: {len(bad['missing_keys'])} missing, "
                             f"{len(bad['unexpected_keys'])} unexpected and {len(bad['mismatched_keys'])} mismatched "
                             f"tensor(s), e.g. {shown(first, 80)}. Save the folder again with save_pretrained.")
    return model


def checked(folder: ModelFolder, class_name: str | None, size: Callable[[Any], tuple[int, int]],
            wrapper: Callable[[nn.Module], nn.Module], more: Callable[[nn.Module, str], None] | None = None
            ) -> tuple[Any, tuple[int, int]]:
    """(the folder's model with its weights, input size): the config read by ``class_name`` (default: the kind's image
    classifier), first built on the meta device inside ``wrapper`` (what will run) to check its cost at the input
    size ``size(config)`` gives (``more(meta, what)`` checks more, e.g. a text tower), then loaded for real."""
    kind = folder.config["model_type"]
    cls, config, defaults = _config(folder, kind, class_name)
    side = size(config)
    with torch.device("meta"):
        meta = wrapper(_build(cls, config, kind))
    what = _culprit(folder, kind, defaults, side)
    cost.check(cost.measure(meta, side, forward=False), what)  # parameters and modules before any forward
    measured = cost.measure(meta, side)
    if measured.activation_bytes is None:
        raise ModelLoadError(f"The {kind} model this config.json describes does not run on a {side[1]}×{side[0]} input "
                             "(the preprocessor's size); make config.json's image_size, its layer sizes and the "
                             "preprocessor's size agree.")
    cost.check(measured, what)
    if more is not None:
        more(meta, what)
    del meta
    return _load(cls, config, folder, kind).eval(), side


def build(folder: ModelFolder) -> tuple[HFClassifier, list[str] | None, tuple[int, int]]:
    """(classifier module, labels from ``id2label`` or None, input size), the cost checked before it is built."""
    model, size = checked(folder, None, lambda config: input_size(folder, config), HFClassifier)
    config = model.config
    n = config.num_labels
    id2label = getattr(config, "id2label", None) or {}
    labels = [str(id2label.get(i, id2label.get(str(i), f"class {i}"))) for i in range(n)] if id2label else None
    return HFClassifier(model), labels, size


def preprocessing(folder: ModelFolder, size: tuple[int, int]) -> tuple[dict[str, Any], str]:
    """ModelSpec keyword arguments from ``preprocessor_config.json`` (defaults stated when it is absent)."""
    pre = folder.preprocessor or {}
    mean, std = check_normalisation(pre.get("image_mean", IMAGENET_MEAN), pre.get("image_std", IMAGENET_STD),
                                    "The preprocessor_config.json's image")
    h, w = size
    note = ("preprocessing from preprocessor_config.json" if folder.preprocessor else
            f"no preprocessor_config.json: {w}×{h} input and ImageNet mean/std assumed")
    kw = {"input_size": (h, w), "mean": mean, "std": std,
          "interpolation": "bicubic" if pre.get("resample") == 3 else "bilinear"}
    return kw, note
