"""Your own model, whatever it is: :func:`load_own_model` reads a state dict (torchvision or timm architecture), a
zipped Hugging Face folder, an ONNX file or, when the operator allows it, a TorchScript file, through the upload
boundary, and returns a ready :class:`ModelSpec` whose CAM layer, classifier and token layout were found by
:func:`.layout.analyse`.

TorchScript is off unless the environment variable ``XAI_ALLOW_TORCHSCRIPT=1`` is set on the server: a TorchScript
file carries its own program, which ``torch.jit.load`` compiles and runs; it cannot be checked the way tensors can.
"""

from __future__ import annotations

import importlib.util
import io
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..device import resolve_device
from ..errors import ModelLoadError
from ..untrusted import zipscan
from ..untrusted.checkpoints import read_state_dict
from ..untrusted.limits import LIMITS
from ..untrusted.modelargs import check_classes, check_input_size, check_normalisation
from ..untrusted.modelfiles import read_model_folder
from . import choices, hf, hf_dual, onnx_models, open_clip_models, timm_models, tv_dense
from .labels import parse_labels
from .layout import analyse
from .spec import IMAGENET_MEAN, IMAGENET_STD, ModelSpec
from .upload import ARCHITECTURES, check_state, load_checkpoint

TORCHSCRIPT_ENV = "XAI_ALLOW_TORCHSCRIPT"


@dataclass(frozen=True)
class Format:
    """One kind of model file the sidebar offers."""

    id: str
    title: str
    extensions: tuple[str, ...]
    packages: tuple[str, ...]
    export: str


FORMATS = (
    Format("state_dict", "State dict (torchvision, timm or open_clip architecture)", ("pth", "pt", "bin", "safetensors"), (),
           "torch.save(model.state_dict(), 'weights.pth')  # or safetensors.torch.save_file(model.state_dict(), ...)"),
    Format("huggingface", "Hugging Face folder (zip): classifier, CLIP, SigLIP or DINOv2", ("zip",), ("transformers",),
           "model.save_pretrained('my_model'); processor.save_pretrained('my_model')  # then zip the folder"),
    Format("onnx", "ONNX", ("onnx",), ("onnx", "onnx2torch"),
           "torch.onnx.export(model, torch.randn(1, 3, 224, 224), 'model.onnx', dynamo=False)"),
    Format("torchscript", "TorchScript (operator opt-in)", ("pt", "pth"), (),
           "torch.jit.save(torch.jit.script(model), 'model.pt')"),
)


def torchscript_allowed() -> bool:
    return os.environ.get(TORCHSCRIPT_ENV, "") == "1"


def missing_packages(fmt: str) -> list[str]:
    """The optional packages format ``fmt`` needs that are not installed (``timm``, ``open_clip`` for their architectures)."""
    wanted = {f.id: f.packages for f in FORMATS}.get(fmt, (fmt,) if fmt in ("timm", "open_clip") else ())
    return [p for p in wanted if importlib.util.find_spec(p) is None]


def architectures() -> list[str]:
    """State-dict architectures: torchvision's classifiers (and the bundled EfficientNet-Lite0), segmenters and
    detectors; timm ones are ``timm/<name>``, open_clip ones ``open_clip/<name>``."""
    return [*ARCHITECTURES, *tv_dense.ARCHS]


def _labels(labels: list[str] | bytes | None, n: int, fallback: list[str] | None = None) -> list[str]:
    """The class names: given as a list, or as the bytes of a labels file parsed for ``n`` classes (its count is
    known only once the model is built)."""
    if isinstance(labels, (bytes, bytearray)):
        labels = parse_labels(bytes(labels), n)
    if labels is not None and len(labels) != n:
        raise ModelLoadError(f"{len(labels)} labels were given for a model with {n} classes.")
    return list(labels or fallback or [f"class {i}" for i in range(n)])


def wrap(module: nn.Module, *, id: str, title: str, labels: list[str], provenance: str = "in-memory module",
         device: Any = None, **kw: Any) -> ModelSpec:
    """A ModelSpec for any classifier module with its CAM layer, head and token layout found by :func:`analyse`."""
    lay = analyse(module.eval(), kw.get("input_size", (224, 224)), len(labels))
    notes = " ".join(lay.notes)
    return ModelSpec(id=id, title=title, module=module, labels=labels, cam_layer=lay.cam_layer, fc_layer=lay.fc_layer,
                     reshape=lay.reshape, tokens=lay.tokens, provenance=f"{provenance}. {notes}".strip(),
                     device=resolve_device(device), **kw)


def _num_classes(options: dict[str, Any]) -> int | None:
    """The ``num_classes`` option (or the length of a labels list), checked before anything is read or built."""
    n, labels = options.get("num_classes"), options.get("labels")
    n = n if n is not None else len(labels) if isinstance(labels, list) else None
    return None if n is None else check_classes(n)


def _inputs(opts: dict[str, Any], fixed: object = None) -> dict[str, Any]:
    """input_size, mean and std of an ONNX or TorchScript model: the options, else the graph's size or 224×224 and
    ImageNet's mean and std; checked in the one place every format uses."""
    def given(key: str, default: object) -> object:
        return default if opts.get(key) is None else opts[key]  # a 0 typed in the sidebar is checked, not ignored

    size = check_input_size(given("input_size", fixed or (224, 224)), "The model's")
    mean, std = check_normalisation(given("mean", IMAGENET_MEAN), given("std", IMAGENET_STD), "The normalisation")
    return {"input_size": size, "mean": mean, "std": std}


def _timm(data: bytes, filename: str, name: str, num_classes: int | None, labels: list[str] | None,
          device: Any) -> ModelSpec:
    cfg = timm_models.default_cfg(name)
    size = timm_models.preprocessing(cfg)["input_size"]
    if num_classes is not None:
        timm_models.check_cost(name, num_classes, size)  # before the file is read
    state = read_state_dict(data, filename)
    n = num_classes or timm_models.classes_in(state, cfg) or 1000
    if num_classes is None:
        timm_models.check_cost(name, n, size)  # the class count the checkpoint's classifier implies
    module = timm_models.build(name, n, size, checked=True)
    check_state(state, module, f"timm/{name}", n, cfg.get("classifier"))
    module.load_state_dict(state)
    return wrap(module, id=f"upload:timm/{name}:{filename}", title=f"{filename} (timm {name}, {n} classes)",
                 labels=_labels(labels, n), provenance=f"uploaded state dict {filename} on timm {name}; preprocessing "
                 "from timm's pretrained_cfg", device=device, **timm_models.preprocessing(timm_models.module_cfg(module)))


def _huggingface(data: bytes, filename: str, labels: list[str] | None, device: Any) -> ModelSpec:
    folder = read_model_folder(data)
    if folder.config["model_type"] in hf_dual.DUAL or hf_dual.is_embedder(folder):
        return hf_dual.load(folder, id=f"upload:hf:{filename}", title=filename, device=resolve_device(device),
                            provenance=f"uploaded Hugging Face folder {filename}")
    module, names, size = hf.build(folder)
    kw, note = hf.preprocessing(folder, size)
    n = module.config.num_labels
    kind = module.config.model_type
    return wrap(module, id=f"upload:hf:{filename}", title=f"{filename} (Hugging Face {kind}, {n} classes)",
                 labels=_labels(labels, n, names), provenance=f"uploaded Hugging Face folder {filename}; {note}",
                 device=device, **kw)


def _onnx(data: bytes, filename: str, labels: list[str] | None, device: Any, opts: dict[str, Any]) -> ModelSpec:
    _inputs(opts)  # the options, before the graph is converted
    module, fixed = onnx_models.convert(data)
    kw = _inputs(opts, fixed)
    size, mean, std = kw["input_size"], kw["mean"], kw["std"]
    n = onnx_models.num_outputs(module, size)
    return wrap(module, id=f"upload:onnx:{filename}", title=f"{filename} (ONNX, {n} classes)", labels=_labels(labels, n),
                 provenance=f"uploaded ONNX graph {filename}, converted to torch by onnx2torch (gradients available); "
                 f"input {size[1]}×{size[0]}, mean {mean}, std {std}", device=device, input_size=size, mean=mean, std=std)


def _is_torchscript(data: bytes) -> bool:
    try:
        names = [i.filename for i in zipscan.open_zip(data, LIMITS.checkpoint_records).infolist()]
    except zipscan.ZipStructureError:
        return False
    return any(n.endswith("/constants.pkl") or "/code/" in n for n in names)


class _Scripted(nn.Module):
    """A TorchScript module behind a plain module (ModelSpec freezes parameters one by one, which ScriptModules refuse
    as a whole)."""

    def __init__(self, scripted: nn.Module) -> None:
        super().__init__()
        self.scripted = scripted

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scripted(x)


def _torchscript(data: bytes, filename: str, labels: list[str] | None, device: Any, opts: dict[str, Any]) -> ModelSpec:
    kw = _inputs(opts)
    try:
        module = _Scripted(torch.jit.load(io.BytesIO(data), map_location="cpu"))
    except Exception as e:  # noqa: BLE001
        raise ModelLoadError(f"This TorchScript file does not load ({type(e).__name__}).") from None
    with torch.no_grad():
        n = int(module(torch.zeros(1, 3, *kw["input_size"])).shape[-1])
    return ModelSpec(id=f"upload:torchscript:{filename}", title=f"{filename} (TorchScript, {n} classes)", module=module,
                     labels=_labels(labels, n), **kw,
                     provenance=f"uploaded TorchScript {filename} (enabled by the operator)",
                     device=resolve_device(device))


def load_own_model(data: bytes, filename: str, **options: Any) -> ModelSpec:
    """The user's model from the bytes of one uploaded file.

    ``filename``'s extension picks the reader: ``.zip`` a Hugging Face folder (an image classifier, a CLIP or SigLIP
    dual encoder, a DINOv2 embedder), ``.onnx`` an ONNX graph, else a state dict for ``options["architecture"]``: a
    torchvision classifier, segmenter or detector name (:data:`.tv_dense.ARCHS`), ``timm/<name>`` or
    ``open_clip/<name>``. Options: ``num_classes``, ``labels`` (a list of names, or the bytes of a labels file, parsed
    once the class count is known), ``device``; for ONNX and TorchScript ``input_size`` (H, W), ``mean``, ``std``
    (defaults: the size fixed in the graph or 224×224, ImageNet mean and std); for segmenters and detectors
    ``input_size`` (default 320×320), for detectors ``min_size``/``max_size``; for every model ``cam_layer`` and
    ``attention_blocks`` (:mod:`.choices`).
    """
    return choices.apply(_load(data, filename, options), options)


def _load(data: bytes, filename: str, options: dict[str, Any]) -> ModelSpec:
    labels, device = options.get("labels"), options.get("device")
    num_classes = _num_classes(options)
    name = filename.lower()
    if name.endswith(".zip"):
        return _huggingface(data, filename, labels, device)
    if name.endswith(".onnx"):
        return _onnx(data, filename, labels, device, options)
    if data.startswith(b"PK\x03\x04") and _is_torchscript(data):
        if not torchscript_allowed():
            raise ModelLoadError("This is a TorchScript file: it carries its own program, which is not run on this "
                                 f"server (the operator can allow it with {TORCHSCRIPT_ENV}=1). Upload a state dict, "
                                 "an ONNX export or a Hugging Face folder instead.")
        return _torchscript(data, filename, labels, device, options)
    arch = str(options.get("architecture") or "")
    if arch.startswith(timm_models.PREFIX):
        return _timm(data, filename, arch[len(timm_models.PREFIX):], num_classes, labels, device)
    if arch.startswith(open_clip_models.PREFIX):
        return open_clip_models.load(data, filename, arch[len(open_clip_models.PREFIX):], resolve_device(device))
    if arch in tv_dense.ARCHS:
        return tv_dense.load(data, filename, arch, device=resolve_device(device), options={**options,
                             "num_classes": num_classes}, labels=lambda n: None if labels is None else _labels(labels, n))
    if arch not in ARCHITECTURES:
        raise ModelLoadError(f"Choose the architecture of this state dict: one of {', '.join(architectures())}, or "
                             "timm/<name> for a timm model, or open_clip/<name> for an open_clip model.")
    n = num_classes or 1000
    names = parse_labels(bytes(labels), n) if isinstance(labels, (bytes, bytearray)) else labels
    spec = load_checkpoint(data, filename, arch, n, names, torch.device(device) if device is not None else None)
    if spec.tokens is None and spec.reshape is not None:
        spec.tokens = analyse(spec.module, spec.input_size, spec.num_classes).tokens
    return spec
