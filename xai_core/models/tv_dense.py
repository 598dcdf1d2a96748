"""torchvision segmenters (FCN, DeepLabV3, LR-ASPP) and detectors (Faster R-CNN, RetinaNet, FCOS, SSDlite) from an
uploaded state dict, by architecture name.

Each is built with ``weights=None, weights_backbone=None`` (nothing downloaded) and the class count the state dict's
classifier implies (an FCN/DeepLabV3 with an auxiliary head when the file has one), its cost checked on the meta
device first (a detector's backbone forward at the input size: its heads do not run on meta), the file checked by
:func:`.upload.check_state`. Segmenters take ImageNet-normalised inputs and return ``{"out": [B, K, H, W]}``;
detectors normalise inside, so their ModelSpec's mean/std are 0/1, and return torchvision's eval detections in input
pixels. A detector's internal resize is set to the input size (``min_size``/``max_size`` default to its shorter and
longer side), so it runs at the size it is shown (CPU-friendly 320 px unless ``input_size`` says otherwise; SSDlite
always resizes to its fixed 320×320). Class names: a labels file, else COCO's (91) or Pascal VOC's (21) from
torchvision's weight metadata (offline) when the count matches, else "class i". References: Long et al. 2015 (FCN),
Chen et al. 2017 (DeepLabV3), Howard et al. 2019 (LR-ASPP), Ren et al. 2015 (Faster R-CNN), Lin et al. 2017
(RetinaNet), Tian et al. 2019 (FCOS), Liu et al. 2016 / Sandler et al. 2018 (SSD, SSDlite).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..errors import ModelLoadError
from ..untrusted.checkpoints import read_state_dict
from ..untrusted.modelargs import check_classes, check_input_size, check_side
from . import cost
from .spec import ModelSpec
from .upload import check_state

# name -> (task, CAM layer, the state-dict key whose first dimension counts the classes (times anchors))
ARCHS: dict[str, tuple[str, str, str]] = {
    "fcn_resnet50": ("segmenter", "backbone.layer4", "classifier.4.weight"),
    "fcn_resnet101": ("segmenter", "backbone.layer4", "classifier.4.weight"),
    "deeplabv3_resnet50": ("segmenter", "backbone.layer4", "classifier.4.weight"),
    "deeplabv3_resnet101": ("segmenter", "backbone.layer4", "classifier.4.weight"),
    "deeplabv3_mobilenet_v3_large": ("segmenter", "backbone.16", "classifier.4.weight"),
    "lraspp_mobilenet_v3_large": ("segmenter", "backbone.16", "classifier.high_classifier.weight"),
    "fasterrcnn_resnet50_fpn": ("detector", "backbone.body.layer4", "roi_heads.box_predictor.cls_score.weight"),
    "fasterrcnn_resnet50_fpn_v2": ("detector", "backbone.body.layer4", "roi_heads.box_predictor.cls_score.weight"),
    "fasterrcnn_mobilenet_v3_large_fpn": ("detector", "backbone.body.16", "roi_heads.box_predictor.cls_score.weight"),
    "fasterrcnn_mobilenet_v3_large_320_fpn": ("detector", "backbone.body.16",
                                              "roi_heads.box_predictor.cls_score.weight"),
    "retinanet_resnet50_fpn": ("detector", "backbone.body.layer4", "head.classification_head.cls_logits.weight"),
    "retinanet_resnet50_fpn_v2": ("detector", "backbone.body.layer4", "head.classification_head.cls_logits.weight"),
    "fcos_resnet50_fpn": ("detector", "backbone.body.layer4", "head.classification_head.cls_logits.weight"),
    "ssdlite320_mobilenet_v3_large": ("detector", "backbone.features.0",
                                      "head.classification_head.module_list.0.1.weight"),
}
DEFAULT_SIDE = 320
ZERO, ONE = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _builder(arch: str, n: int, aux: bool = False) -> nn.Module:
    from torchvision.models import detection, segmentation

    if ARCHS[arch][0] == "segmenter":
        kw = {} if arch.startswith("lraspp") else {"aux_loss": aux}
        return getattr(segmentation, arch)(weights=None, weights_backbone=None, num_classes=n, **kw)
    return getattr(detection, arch)(weights=None, weights_backbone=None, num_classes=n)


@functools.cache
def default_labels(task: str, n: int) -> tuple[str, ...] | None:
    """COCO's 91 detection categories or Pascal VOC's 21 segmentation classes (torchvision's metadata, offline)."""
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights
    from torchvision.models.segmentation import DeepLabV3_ResNet50_Weights

    meta = (FasterRCNN_ResNet50_FPN_Weights if task == "detector" else DeepLabV3_ResNet50_Weights).DEFAULT.meta
    names = tuple(meta["categories"])
    return names if len(names) == n else None


def classes_in(state: dict[str, torch.Tensor], arch: str) -> int:
    """The class count the file's classifier implies (its output rows divided by the anchors per location)."""
    key = ARCHS[arch][2]
    w = state.get(key)
    if w is None or w.dim() < 1:
        raise ModelLoadError(f"The checkpoint has no {key}, the classifier of {arch}. It is probably a checkpoint of another "
                             "architecture.")
    with torch.device("meta"):
        probe = _builder(arch, 2).state_dict()[key].shape[0]  # rows for 2 classes = 2 × anchors
    per = probe // 2
    if w.shape[0] % per:
        raise ModelLoadError(f"The checkpoint's {key} has {w.shape[0]} rows, not a multiple of the {per} anchors per "
                             f"location {arch} has. It is probably a checkpoint of another architecture.")
    return check_classes(w.shape[0] // per)


def _check_cost(arch: str, n: int, aux: bool, size: tuple[int, int]) -> None:
    with torch.device("meta"):
        meta = _builder(arch, n, aux)
    what = f"{n:,} classes on {arch} at {size[1]}×{size[0]} make"
    whole = cost.measure(meta, size, forward=False)
    cost.check(whole, what)
    measured = cost.measure(meta if ARCHS[arch][0] == "segmenter" else meta.get_submodule("backbone"), size)
    cost.check(dataclasses.replace(whole, activation_bytes=measured.activation_bytes, flops=measured.flops), what)


def _resize_to(module: nn.Module, arch: str, size: tuple[int, int], opts: dict[str, Any]) -> str:
    """Set a detector's internal resize (not SSDlite's fixed one); returns a note."""
    t: Any = module.transform
    if arch.startswith("ssdlite"):
        return "SSDlite resizes every input to 320×320 inside"
    lo = check_side(opts.get("min_size") or min(size), "The detector's min_size")
    hi = check_side(opts.get("max_size") or max(size), "The detector's max_size")
    if lo > hi:
        raise ModelLoadError(f"The detector's min_size ({lo}) is larger than its max_size ({hi}).")
    t.min_size, t.max_size = (lo,), hi
    return f"internal resize min_size {lo}, max_size {hi}"


def load(data: bytes, filename: str, arch: str, *, labels: Callable[[int], list[str] | None], device: torch.device,
         options: dict[str, Any]) -> ModelSpec:
    """A segmenter or detector ModelSpec from a state dict (``labels(n)``: the user's names for ``n`` classes, or
    None); options ``num_classes`` (must match the file), ``input_size``, ``min_size``, ``max_size``."""
    task, cam, _ = ARCHS[arch]
    size = check_input_size(options.get("input_size") or (DEFAULT_SIDE, DEFAULT_SIDE), f"The {arch}")
    state = read_state_dict(data, filename)
    n = classes_in(state, arch)
    wanted = options.get("num_classes")
    if wanted is not None and wanted != n:
        raise ModelLoadError(f"The checkpoint's classifier has {n} classes, not the {wanted} chosen: set the number of "
                             f"classes to {n}.")
    aux = any(k.startswith("aux_classifier.") for k in state)
    _check_cost(arch, n, aux, size)
    module = _builder(arch, n, aux)
    check_state(state, module, arch, n, None)
    module.load_state_dict(state)
    names = labels(n) or list(default_labels(task, n) or [f"class {i}" for i in range(n)])
    note = "input normalised as ImageNet's" if task == "segmenter" else _resize_to(module, arch, size, options)
    mean, std = IMAGENET if task == "segmenter" else (ZERO, ONE)
    return ModelSpec(id=f"upload:{arch}:{filename}", title=f"{filename} ({arch} {task}, {n} classes)", module=module,
                     labels=names, input_size=size, mean=mean, std=std, cam_layer=cam, task=task, device=device,
                     provenance=f"uploaded state dict {filename} on torchvision {arch} (weights=None), loaded with "
                                f"weights_only; {size[1]}×{size[0]} input, {note}; CAM layer {cam}")
