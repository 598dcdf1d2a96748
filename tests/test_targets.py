"""Targets beyond a class logit (issue 24): values, binding, and explainers on prompt / similarity / region / box
scores. Toy "redness" models make the planted-patch property exact: only red pixels raise any of the four scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import xai_core as xc
from xai_core import targets as T
from xai_core.errors import ExplainerError
from xai_core.models.spec import ModelSpec

SIZE = 48
PATCH = (28, 8, 40, 20)  # x0, y0, x1, y1 in pixels: the red patch
ZERO, ONE = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)


def redness(x: torch.Tensor) -> torch.Tensor:
    """How much redder than grey each pixel is, above a threshold: [B, H, W] (0 on grey pixels)."""
    return F.relu(x[:, 0] - (x[:, 1] + x[:, 2]) / 2 - 0.2)


class Embedder(nn.Module):
    """Embedding [mean redness, 1]: its cosine with [1, 1] (a red reference, or the prompt 'red') grows with red."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        nn.init.dirac_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = redness(self.conv(x)).mean((1, 2))
        return torch.stack([4 * r, torch.ones_like(r)], 1)


class Segmenter(Embedder):
    """Class 1 ('red') scores = local mean of redness; class 0 a constant."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # type: ignore[override]
        r = F.avg_pool2d(redness(self.conv(x))[:, None], 5, 1, 2)
        return {"out": torch.cat([torch.full_like(r, 0.02), r], 1)}


class Detector(Embedder):
    """Fixed 16-pixel windows (stride 4), label 1, score = sigmoid(8 · mean redness in the window − 1); no NMS."""

    def forward(self, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:  # type: ignore[override]
        heat = F.avg_pool2d(redness(self.conv(x))[:, None], 16, 4)[:, 0]  # [B, h, w]
        h, w = heat.shape[1:]
        ys, xs = torch.meshgrid(torch.arange(h) * 4.0, torch.arange(w) * 4.0, indexing="ij")
        boxes = torch.stack([xs, ys, xs + 16, ys + 16], -1).reshape(-1, 4)
        return [{"boxes": boxes, "labels": torch.ones(len(boxes), dtype=torch.long),
                 "scores": torch.sigmoid(8 * hb.reshape(-1) - 1)} for hb in heat]


def spec(module: nn.Module, task: str, labels: list[str], **kw: object) -> ModelSpec:
    return ModelSpec(id=f"toy-{task}", title=f"toy {task}", module=module, labels=labels, input_size=(SIZE, SIZE),
                     mean=ZERO, std=ONE, cam_layer="conv", device=torch.device("cpu"), task=task, **kw)


def text(prompts: list[str]) -> torch.Tensor:
    table = {"red": [1.0, 1.0], "grey": [0.0, 1.0]}
    return torch.tensor([table.get(p, [0.5, 1.0]) for p in prompts])


def image(patch: bool = True) -> np.ndarray:
    im = np.full((SIZE, SIZE, 3), 128, np.uint8)
    if patch:
        x0, y0, x1, y1 = PATCH
        im[y0:y1, x0:x1] = (230, 40, 40)
    return im


def red_reference() -> np.ndarray:
    return np.tile(np.array([220, 30, 30], np.uint8), (SIZE, SIZE, 1))


BOX = tuple(v / SIZE for v in PATCH)
CASES = {
    "prompt": (lambda: spec(Embedder(), "dual_encoder", ["embedding"], text_encoder=text),
               lambda: T.PromptTarget("red", "grey")),
    "similarity": (lambda: spec(Embedder(), "embedder", ["embedding"]), lambda: T.SimilarityTarget(red_reference(), "red")),
    "region": (lambda: spec(Segmenter(), "segmenter", ["background", "red"]), lambda: T.RegionTarget(1)),
    "region box": (lambda: spec(Segmenter(), "segmenter", ["background", "red"]), lambda: T.RegionTarget(1, box=BOX)),
    "detection": (lambda: spec(Detector(), "detector", ["background", "red"]), lambda: T.DetectionTarget(BOX, 1)),
    "detection drise": (lambda: spec(Detector(), "detector", ["background", "red"]),
                        lambda: T.DetectionTarget(BOX, 1, "drise")),
}


def inside_share(m: np.ndarray, margin: int = 3) -> float:
    """The share of the map's mass above its median inside the patch (grown by ``margin`` pixels for smoothing; the
    median: RISE's map of a signed score is offset by the mean score)."""
    x0, y0, x1, y1 = PATCH
    pos = np.clip(m - np.median(m), 0, None)
    return float(pos[max(0, y0 - margin):y1 + margin, max(0, x0 - margin):x1 + margin].sum() / max(pos.sum(), 1e-12))


def top_share(m: np.ndarray, grow: int = 4) -> float:
    """The share of the map's top-5% pixels inside the patch grown by ``grow`` pixels."""
    x0, y0, x1, y1 = PATCH
    inside = np.zeros(m.shape, bool)
    inside[max(0, y0 - grow):y1 + grow, max(0, x0 - grow):x1 + grow] = True
    top = m >= np.quantile(m, 0.95)
    return float((top & inside).sum() / top.sum())


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("method", ["gradient", "input_x_gradient", "occlusion", "rise"])
def test_planted_patch_is_where_the_map_points(case: str, method: str) -> None:
    make_model, make_target = CASES[case]
    wb = xc.Workbench(make_model())
    params = {"window": 8, "stride": 4} if method == "occlusion" else {"masks": 2000, "cells": 6} if method == "rise" else {}
    e = wb.explain(image(), xc.ExplainRequest.make(method, make_target(), params))
    assert e.target_kind == make_target().kind and e.class_name == make_target().named(wb.model.labels)
    if method == "rise":  # a sampled, smooth map: its top 5% lies on the patch (grown by RISE's cell blur)
        assert top_share(e.map) >= 0.75, f"{case}/{method}: {top_share(e.map):.2f} of the top 5% on the patch"
    else:
        assert inside_share(e.map) > 0.9, f"{case}/{method}: {inside_share(e.map):.2f} of the map on the patch"
    # the score is the target's scalar: higher with the patch than without
    plain = wb.bound(make_target(), image()).logits(wb.model.preprocess(image(False)))
    with_patch = wb.bound(make_target(), image()).logits(wb.model.preprocess(image()))
    assert float(with_patch[0, 0]) > float(plain[0, 0])
    assert e.probability == pytest.approx(float(with_patch[0, 0]), rel=1e-5, abs=1e-6)


def test_every_scalar_explainer_runs_on_every_target_and_leaves_no_hooks() -> None:
    from xai_core.hooks import has_hooks
    for case in ("prompt", "region", "detection"):
        make_model, make_target = CASES[case]
        model = make_model()
        wb = xc.Workbench(model)
        for method in ("integrated_gradients", "smoothgrad", "gradcam", "scorecam", "lime", "kernel_shap"):
            params = {"samples": 64} if method in ("lime", "kernel_shap") else {}
            e = wb.explain(image(), xc.ExplainRequest.make(method, make_target(), params))
            assert e.map.shape == (SIZE, SIZE) and np.isfinite(e.map).all(), (case, method)
        assert not any(has_hooks(m) for m in model.module.modules())


def test_request_keys_follow_the_target() -> None:
    a = xc.ExplainRequest.make("gradient", T.PromptTarget("a  photo\u200bof a horse"))
    b = xc.ExplainRequest.make("gradient", T.PromptTarget("a photo of a horse"))
    c = xc.ExplainRequest.make("gradient", T.PromptTarget("a photo of a horse", "a dog"))
    assert a.key != c.key and b.key != c.key
    r1 = xc.ExplainRequest.make("gradient", T.SimilarityTarget(red_reference()))
    r2 = xc.ExplainRequest.make("gradient", T.SimilarityTarget(red_reference().copy()))
    assert r1.key == r2.key and r1.target_kind == "similarity"
    assert xc.ExplainRequest.make("gradient", T.RegionTarget(1, box=BOX)).key != \
        xc.ExplainRequest.make("gradient", T.RegionTarget(1)).key
    assert xc.ExplainRequest.make("gradient", 3).target_kind == "class"


@pytest.mark.parametrize("bad", ["", "x" * 301, 42, None])
def test_prompts_are_untrusted_text(bad: object) -> None:
    with pytest.raises(ExplainerError):
        T.PromptTarget(bad)  # type: ignore[arg-type]


def test_prompt_text_is_cleaned_not_rendered() -> None:
    t = T.PromptTarget("<script>alert(1)</script>\x00\u202e  horse")
    assert "\x00" not in t.text and "\u202e" not in t.text and t.text.endswith("horse")


@pytest.mark.parametrize("box", [(0.5, 0.5, 0.4, 0.9), (0, 0, 1, 1.5), (float("nan"), 0, 1, 1), (0, 0, 1), "abcd"])
def test_bad_boxes_are_one_sentence(box: object) -> None:
    with pytest.raises(ExplainerError, match="box"):
        T.DetectionTarget(box, 1)  # type: ignore[arg-type]


def test_a_target_that_does_not_fit_the_model_is_one_sentence() -> None:
    seg = xc.Workbench(spec(Segmenter(), "segmenter", ["background", "red"]))
    with pytest.raises(ExplainerError, match="dual encoder"):
        seg.explain(image(), xc.ExplainRequest.make("gradient", T.PromptTarget("red")))
    with pytest.raises(ExplainerError, match="no classes"):
        seg.explain(image(), xc.ExplainRequest.make("gradient", 1))
    lab = xc.Workbench(xc.lab.load_lab_model("cpu"))
    with pytest.raises(ExplainerError, match="segmenter"):
        lab.explain(np.zeros((64, 64, 3), np.uint8), xc.ExplainRequest.make("gradient", T.RegionTarget(1, box=BOX)))
    with pytest.raises(ExplainerError, match="no pixel"):
        seg.explain(image(False), xc.ExplainRequest.make("gradient", T.RegionTarget(1)))


def test_describe_output_lists_regions_and_boxes() -> None:
    seg = spec(Segmenter(), "segmenter", ["background", "red"])
    share = T.describe_output(seg, seg.preprocess(image()))["share"]
    x0, y0, x1, y1 = PATCH
    assert share[1] == pytest.approx((x1 - x0) * (y1 - y0) / SIZE**2, abs=0.05)
    det = spec(Detector(), "detector", ["background", "red"])
    d = T.describe_output(det, det.preprocess(image()))
    best = d["boxes"][int(np.argmax(d["scores"]))] * SIZE
    assert best[0] <= x0 + 4 and best[2] >= x1 - 4 and best[1] <= y0 + 4 and best[3] >= y1 - 4


def test_metrics_and_the_random_target_check_use_the_targets_scalar() -> None:
    from xai_core import metrics, sanity
    make_model, make_target = CASES["region box"]
    wb = xc.Workbench(make_model())
    bound = wb.bound(make_target(), image())
    m = bound.explain(image(), xc.ExplainRequest.make("gradient", 0)).map
    report = metrics.evaluate(bound, image(), {"Gradient": m}, 0, metrics=["deletion"])
    curve = report.curves[("Gradient", "deletion")]
    # deleting the patch first takes the region's score (not a softmax of one column, which would stay 1) to ~0
    assert curve.probs[0] == pytest.approx(float(bound.logits(bound.model.preprocess(image()))[0, 0]), rel=1e-4)
    assert curve.probs[-1] < 0.05 * curve.probs[0]
    check = sanity.random_target_check(wb, image(), [("gradient", {})], target=make_target(), seeds=3)
    assert len(check.other["Gradient (saliency)"]) == 3 and all("over the box" in n for n in check.class_names)
    assert check.spreads["Gradient (saliency)"].median < 0.5  # a box elsewhere: another map
    prompt = sanity.random_target(1, T.PromptTarget("red", "grey"))
    assert isinstance(prompt, T.PromptTarget) and prompt.text != "red" and prompt.contrast == "grey"
