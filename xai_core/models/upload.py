"""The user's own checkpoint: a state dict (.pth/.pt/.safetensors) for a known architecture.

The bytes are read by the upload boundary (:func:`xai_core.untrusted.read_state_dict`: never unpickled, archive
inspected before ``torch.load(weights_only=True)``, odd tensors refused). Here each way a state dict can fail to
fit gets its own message: shape mismatches (with the class count the file implies), missing or unexpected keys,
NaN weights.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from ..device import resolve_device
from ..errors import ModelLoadError
from ..untrusted.checkpoints import read_state_dict
from ..untrusted.limits import LIMITS
from ..untrusted.modelargs import check_classes
from . import cost, zoo
from .bundled import build_lite0
from .spec import ModelSpec

MAX_CHECKPOINT_BYTES = LIMITS.checkpoint_bytes
__all__ = ["ARCHITECTURES", "MAX_CHECKPOINT_BYTES", "check_cost", "check_state", "load_checkpoint", "read_state_dict"]


# (builder of the module for a class count, CAM layer, classifier layer, token reshape)
_Arch = tuple[Callable[[int], nn.Module], str | None, str | None, Callable[[torch.Tensor], torch.Tensor] | None]


def _architectures() -> dict[str, _Arch]:
    archs: dict[str, _Arch] = {"efficientnet_lite0": (build_lite0, "_swish", "_fc", None)}
    for name, a in zoo.ARCHS.items():
        archs[name] = (partial(zoo.build, name), a.cam_layer, a.fc_layer, a.reshape)
    return archs


ARCHITECTURES = tuple(_architectures())


def check_state(state: dict[str, torch.Tensor], module: nn.Module, arch: str, num_classes: int,
           fc_layer: str | None) -> None:
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ModelLoadError(f"The checkpoint has NaN or infinite values in {len(bad)} tensor(s), e.g. {bad[0]}: "
                             "training probably diverged. Use an earlier checkpoint.")
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing and len(missing) == len(expected):
        raise ModelLoadError(f"None of the checkpoint's layer names match {arch} (it has e.g. {next(iter(state))!r}). "
                             "It is probably a checkpoint of another architecture.")
    mismatched = [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in expected.items()
                  if k in state and state[k].shape != v.shape]
    head = f"{fc_layer}." if fc_layer else None
    only_head = head is not None and not missing and not unexpected and all(k.startswith(head) for k, _, _ in mismatched)
    if mismatched and not only_head and (missing or unexpected):
        raise ModelLoadError(f"The checkpoint's layers do not fit {arch}: {len(mismatched)} shape mismatch(es), "
                             f"{len(missing)} missing and {len(unexpected)} extra tensor(s) (e.g. {mismatched[0][0]}). "
                             "It is probably a checkpoint of another architecture.")
    if mismatched:
        k, got, want = mismatched[0]
        hint = ""
        w = state.get(f"{head}weight") if head else None
        if only_head and w is not None and w.dim() == 2 and w.shape[0] != num_classes:
            hint = f" The file's classifier has {w.shape[0]} outputs: set the number of classes to that."
        raise ModelLoadError(f"{len(mismatched)} tensor shape(s) do not fit {arch} with {num_classes} classes: "
                             f"{k} is {list(got)} in the file but {list(want)} is expected.{hint}")
    if missing:
        raise ModelLoadError(f"The checkpoint lacks {len(missing)} tensor(s) {arch} needs, e.g. {missing[0]}. "
                             "It is probably a checkpoint of another architecture, or a partial save.")
    if unexpected:
        raise ModelLoadError(f"The checkpoint has {len(unexpected)} tensor(s) {arch} does not have, e.g. {unexpected[0]}. "
                             "It is probably a checkpoint of another architecture.")


def check_cost(builder: Callable[[int], nn.Module], arch: str, num_classes: int, fc_name: str | None) -> None:
    """Refuse ``num_classes`` outside 1..``model_classes``, then measure the architecture with that head on the meta
    device (its classifier's size is ``(features + 1) × num_classes``) and refuse a model over the limits."""
    check_classes(num_classes)
    with torch.device("meta"):
        meta = builder(num_classes)
    head = meta.get_submodule(fc_name) if fc_name else None
    size = f" (a classifier of {sum(p.numel() for p in head.parameters()) / 1e6:,.1f} M parameters)" if head is not None else ""
    what = f"{num_classes:,} classes on {arch}{size} make"
    cost.check(cost.measure(meta, (224, 224), forward=False), what)
    cost.check(cost.measure(meta, (224, 224)), what)


def load_checkpoint(data: bytes, filename: str, arch: str, num_classes: int,
                    labels: list[str] | None = None, device: torch.device | None = None) -> ModelSpec:
    """The user's state dict on a chosen architecture with ``num_classes`` outputs, validated."""
    archs = _architectures()
    if arch not in archs:
        raise ModelLoadError(f"Unknown architecture {arch!r}; choose one of {', '.join(archs)}.")
    builder, cam_layer, fc_layer, reshape = archs[arch]
    fc_name = fc_layer or {"vgg16": "classifier.6", "mobilenet_v3_large": "classifier.3", "densenet121": "classifier",
                           "convnext_tiny": "classifier.2", "vit_b_16": "heads.head"}.get(arch)
    check_cost(builder, arch, num_classes, fc_name)
    state = read_state_dict(data, filename)
    module = builder(num_classes)
    check_state(state, module, arch, num_classes, fc_name)
    module.load_state_dict(state)
    if labels is not None and len(labels) != num_classes:
        raise ModelLoadError(f"{len(labels)} labels were given for {num_classes} classes.")
    names = labels or [f"class {i}" for i in range(num_classes)]
    return ModelSpec(id=f"upload:{arch}:{filename}", title=f"{filename} ({arch}, {num_classes} classes)",
                     module=module, labels=names, cam_layer=cam_layer, fc_layer=fc_layer, reshape=reshape,
                     provenance=f"uploaded state dict {filename}, loaded with weights_only", device=resolve_device(device))
