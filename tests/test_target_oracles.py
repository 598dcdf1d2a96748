"""Issue 24's oracles: our Grad-CAM on a region, a box and an embedding target agrees with pytorch-grad-cam's
``SemanticSegmentationTarget``, ``FasterRCNNBoxScoreTarget`` and ``SimilarityToConceptTarget`` on the same random-init
torchvision model, layer and target (Spearman ≥ 0.99 over the pixels; the scalars equal to float32 resolution)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

import xai_core as xc
from xai_core import targets as T
from xai_core.models.spec import ModelSpec

pytest.importorskip("pytorch_grad_cam")
from pytorch_grad_cam import GradCAM  # noqa: E402
from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget, SemanticSegmentationTarget  # noqa: E402
from torchvision.models import resnet18  # noqa: E402
from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_320_fpn  # noqa: E402
from torchvision.models.segmentation import lraspp_mobilenet_v3_large  # noqa: E402

ZERO, ONE = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)


class SimilarityToConceptTarget:
    """pytorch-grad-cam's embedding target, as its tutorial "Pixel attribution for embeddings" defines it (grad-cam
    1.5.7 does not ship it as a class): the cosine similarity of the model's output and a concept's features."""

    def __init__(self, features: torch.Tensor) -> None:
        self.features = features

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        return torch.nn.CosineSimilarity(dim=0)(model_output, self.features)


def picture(size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    im = rng.integers(0, 256, (size // 8, size // 8, 3)).astype(np.uint8)
    return np.kron(im, np.ones((8, 8, 1), np.uint8))  # blocks: structure for the layers to respond to


def theirs(module: torch.nn.Module, layer: torch.nn.Module, x: torch.Tensor, target: object) -> np.ndarray:
    with GradCAM(model=module, target_layers=[layer]) as cam:  # our ModelSpec froze the weights: the input carries
        return cam(input_tensor=x.detach().clone().requires_grad_(True), targets=[target])[0]  # the graph


def ours(wb: xc.Workbench, image: np.ndarray, target: T.Target, layer: str) -> np.ndarray:
    with wb.session() as model:
        run = wb.explain_tensor(model.preprocess(image), None, xc.ExplainRequest.make("gradcam", target,
                                                                                     {"layer": layer}))
    return run.maps[0].numpy()


def agree(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape and np.ptp(a) > 0 and np.ptp(b) > 0
    return float(spearmanr(a.ravel(), b.ravel()).statistic)


class SegOut(torch.nn.Module):
    """pytorch-grad-cam's tutorial wrapper: the segmenter's "out" tensor."""

    def __init__(self, m: torch.nn.Module) -> None:
        super().__init__()
        self.m = m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.m(x)["out"]


def test_region_target_agrees_with_semantic_segmentation_target() -> None:
    torch.manual_seed(0)
    net = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=3).eval()
    spec = ModelSpec(id="lraspp", title="LR-ASPP", module=net, labels=["a", "b", "c"], input_size=(96, 96),
                     device=torch.device("cpu"), task="segmenter", cam_layer="backbone.16")
    wb, image = xc.Workbench(spec), picture(96)
    x = spec.preprocess(image).contiguous()
    with torch.no_grad():
        pred = net(x)["out"][0].argmax(0)
    c = int(torch.bincount(pred.flatten()).argmax())
    mask = (pred == c).numpy()
    mine = ours(wb, image, T.RegionTarget(c, mask=mask), "backbone.16")
    ref = theirs(SegOut(net), net.backbone["16"], x, SemanticSegmentationTarget(c, mask.astype(np.float32)))
    assert agree(mine, ref) >= 0.99
    # the same scalar: the predicted region (no mask given) is that mask
    bound = wb.bound(T.RegionTarget(c), image)
    score = float(bound.logits(x)[0, 0])
    with torch.no_grad():
        expect = float(SemanticSegmentationTarget(c, mask.astype(np.float32))(net(x)["out"][0]))
    assert score == pytest.approx(expect, rel=1e-5)


def test_detection_target_agrees_with_faster_rcnn_box_score_target() -> None:
    torch.manual_seed(0)
    net = fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None, num_classes=3,
                                                box_score_thresh=0.0, min_size=128, max_size=128).eval()
    spec = ModelSpec(id="frcnn", title="Faster R-CNN", module=net, labels=["bg", "a", "b"], input_size=(128, 128),
                     mean=ZERO, std=ONE, device=torch.device("cpu"), task="detector", cam_layer="backbone.body.12")
    wb, image = xc.Workbench(spec), picture(128, 1)
    x = spec.preprocess(image).contiguous()
    with wb.session():
        dets = T.describe_output(spec, x)
    assert len(dets["scores"]) > 0
    i = int(np.argmax(dets["scores"]))
    box, label = dets["boxes"][i], int(dets["labels"][i])
    pixels = box * 128
    mine = ours(wb, image, T.DetectionTarget(tuple(box), label), "backbone.body.12")
    ref = theirs(net, net.backbone.body["12"], x, FasterRCNNBoxScoreTarget([label], [pixels]))
    assert agree(mine, ref) >= 0.99
    with torch.no_grad():
        expect = float(FasterRCNNBoxScoreTarget([label], [pixels])(net(x)[0])[0])
    assert float(wb.bound(T.DetectionTarget(tuple(box), label), image).logits(x)[0, 0]) == pytest.approx(expect, rel=1e-4)


def test_similarity_target_agrees_with_similarity_to_concept_target() -> None:
    torch.manual_seed(0)
    net = resnet18(num_classes=32).eval()
    spec = ModelSpec(id="r18-embed", title="ResNet-18 embedder", module=net, labels=["embedding"],
                     input_size=(96, 96), device=torch.device("cpu"), task="embedder", cam_layer="layer4")
    wb, image, reference = xc.Workbench(spec), picture(96, 2), picture(96, 3)
    with torch.no_grad():
        concept = net(spec.preprocess(reference))[0]
    x = spec.preprocess(image).contiguous()
    for target in (T.SimilarityTarget(reference, "ref"), ):
        mine = ours(wb, image, target, "layer3")
        ref = theirs(net, net.layer3, x, SimilarityToConceptTarget(concept))
        assert agree(mine, ref) >= 0.99
    with torch.no_grad():
        expect = float(SimilarityToConceptTarget(concept)(net(x)[0]))
    assert float(wb.bound(T.SimilarityTarget(reference), image).logits(x)[0, 0]) == pytest.approx(expect, abs=1e-6)
