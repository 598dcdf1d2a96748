"""Concept Relevance Propagation and relevance maximisation (xai_core.concepts.crp, .relmax): zennit-crp 0.6.0 as
the oracle (conditional heatmaps, concept ranking, RelMax/ActMax references and crops), conservation, a planted
concept, the lab CNN's tag concept found without being told, and a sentence for what cannot run.

zennit-crp pins zennit<=0.4.6; with our zennit 0.5.1 everything used here runs unchanged (CondAttribution,
ChannelConcept, FeatureVisualization.run/get_max_reference). Note its broadcast: with as many images as
conditions it pairs image i with condition i, so the tests repeat the images themselves (as we do)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from helpers import assert_close_f32, random_input, spearman, tiny_spec
from torch import nn

import xai_core
from xai_core import concepts, get_explainer, lab
from xai_core.concepts import ConceptError, concept_relevance, conditional_heatmaps, relevance_maximisation
from xai_core.concepts.crp import lrp_batch
from xai_core.hooks import has_hooks
from xai_core.workbench import Workbench

crp_attribution = pytest.importorskip("crp.attribution")
from crp.concepts import ChannelConcept  # noqa: E402
from crp.helper import load_maximization, max_norm  # noqa: E402
from crp.image import get_crop_range  # noqa: E402
from crp.visualization import FeatureVisualization  # noqa: E402
from torchvision.transforms.functional import gaussian_blur  # noqa: E402
from zennit.canonizers import SequentialMergeBatchNorm  # noqa: E402
from zennit.composites import EpsilonAlpha2Beta1Flat, EpsilonPlusFlat  # noqa: E402

WIDE = 64 * 9  # the widest dot product in the lab CNN: a 3×3 convolution over 64 channels


def theirs(spec: xai_core.ModelSpec, x: torch.Tensor, target: int, layer: str, concepts: list[int],
           composite: object) -> torch.Tensor:
    """zennit-crp's conditional heatmaps [N, k, H, W]: conditions {'y': [target], layer: [k]} per row."""
    attr = crp_attribution.CondAttribution(copy.deepcopy(spec.module))
    rows = x.repeat_interleave(len(concepts), 0).requires_grad_(True)
    res = attr(rows, [{"y": [target], layer: [k]} for k in concepts] * len(x), composite)
    return res.heatmap.view(len(x), len(concepts), *x.shape[-2:])


class BnNet(nn.Module):
    """conv-BN-ReLU ×2 → GAP → linear, BatchNorm with non-trivial statistics (folded by both sides)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.Conv2d(8, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(12, 5))
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.data.uniform_(0.5, 1.5), m.bias.data.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2), m.running_var.uniform_(0.5, 2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@pytest.mark.parametrize("case", ["tiny", "lab-last", "lab-conv", "tiny-alpha-beta", "batchnorm"])
def test_conditional_heatmaps_equal_zennit_crp(case: str) -> None:
    torch.manual_seed(0)
    if case.startswith("lab"):
        spec, layer = lab.load_lab_model("cpu"), "features.9" if case == "lab-last" else "features.4"
        x, concepts = lab.to_tensor(lab.make_dataset(6, seed=3).images), [11, 16, 47, 3]
    elif case == "batchnorm":
        spec = xai_core.from_module(BnNet().eval(), [str(i) for i in range(5)], input_size=(32, 32), device="cpu")
        layer, x, concepts = "features.5", None, [1, 3, 8, 11]
    else:
        spec, layer, x, concepts = tiny_spec(0), "act2", None, [0, 5, 8, 15]
    x = random_input(spec, 4, seed=1) if x is None else x
    name = "epsilon_alpha2_beta1_flat" if case == "tiny-alpha-beta" else "epsilon_plus_flat"
    ref_comp = EpsilonAlpha2Beta1Flat() if case == "tiny-alpha-beta" else \
        EpsilonPlusFlat(canonizers=[SequentialMergeBatchNorm()] if case == "batchnorm" else None)
    before = {k: v.clone() for k, v in spec.module.state_dict().items()}
    ours = conditional_heatmaps(spec, x, 1, layer, concepts, composite=name)
    ref = theirs(spec, x, 1, layer, concepts, ref_comp)
    assert ours.shape == ref.shape == (len(x), len(concepts), *x.shape[-2:])
    # Same rules, same rows in one batch: measured bit-identical on this CPU (max |Δ| 0.0); allow float32 round-off.
    assert_close_f32(ours, ref, terms=WIDE)
    live = [(a, b) for a, b in zip(ours.flatten(0, 1), ref.flatten(0, 1), strict=True) if b.abs().max() > 0]
    assert len(live) >= len(x) and all(spearman(a, b) >= 0.99 for a, b in live)
    assert not has_hooks(spec.module) and all(torch.equal(before[k], v) for k, v in spec.module.state_dict().items())


def test_concept_ranking_equals_zennit_crp_channel_attribution() -> None:
    spec = lab.load_lab_model("cpu")
    x = lab.to_tensor(lab.make_dataset(12, seed=4).images)
    ours = concept_relevance(spec, x, 1, "features.9")
    attr = crp_attribution.CondAttribution(copy.deepcopy(spec.module))
    res = attr(x.clone().requires_grad_(True), [{"y": [1]}] * len(x), EpsilonPlusFlat(), record_layer=["features.9"])
    share = ChannelConcept().attribute(res.relevances["features.9"], abs_norm=True)
    assert_close_f32(ours.share, share, terms=WIDE)
    for a, b in zip(ours.share, share, strict=True):
        assert torch.argsort(a, descending=True)[:5].tolist() == torch.argsort(b, descending=True)[:5].tolist()
    assert [c for c, _s in ours.top(5)] == torch.argsort(share.mean(0), descending=True)[:5].tolist()
    # the LRP heatmap of the same pass is the registered LRP explainer's; weighted channel groups add up
    assert_close_f32(ours.heatmap, get_explainer("lrp")(spec, x, torch.ones(len(x), dtype=torch.long)), terms=WIDE)
    groups = torch.zeros(2, 64)
    groups[0, [16, 47]], groups[1] = 1.0, 0.5
    grouped = concept_relevance(spec, x, 1, "features.9", directions=groups).relevance
    assert_close_f32(grouped[:, 0], ours.relevance[:, [16, 47]].sum(1), terms=64)
    assert_close_f32(grouped[:, 1], 0.5 * ours.relevance.sum(1), terms=64)


def test_reference_images_and_crops_equal_zennit_crp_feature_visualization(tmp_path) -> None:
    """One zennit-crp run gives both its RelMax and ActMax tables (abs_norm, max_target 'sum': its defaults)."""
    spec, layer, top = lab.load_lab_model("cpu"), "features.9", 6
    x = lab.to_tensor(lab.make_dataset(30, seed=5).images)
    concepts = [16, 47, 34, 44]  # live channels: their scores differ between images (dead ones tie at 0)
    fv = FeatureVisualization(crp_attribution.CondAttribution(copy.deepcopy(spec.module)),
                              [(x[i], 1) for i in range(len(x))], {layer: ChannelConcept()}, path=str(tmp_path))
    fv.run(EpsilonPlusFlat(), 0, len(x), batch_size=lrp_batch(spec, x))  # our batches: the same sums in the same order
    for mode, path in (("relevance", fv.RelMax.PATH), ("activation", fv.ActMax.PATH)):
        ours = relevance_maximisation(spec, x, 1, layer, concepts, top=top, mode=mode)
        images, scores, _ = load_maximization(path, layer)
        refs = fv.get_max_reference(concepts, layer, mode, (0, top), composite=EpsilonPlusFlat(), rf=True, plot_fn=None)
        for c in concepts:
            mine = ours.of(c)
            assert list(mine.images) == images[:top, c].tolist(), (mode, c)
            np.testing.assert_allclose(mine.scores, scores[:top, c], rtol=1e-5, atol=1e-7)
            boxes = []  # zennit-crp's crop of its receptive-field heatmap (its end index excludes the last pixel)
            for heat in refs[c][1]:
                r1, r2, c1, c2 = get_crop_range(max_norm(gaussian_blur(heat[None], kernel_size=19)[0]), 0.1)
                boxes.append((int(c1), int(r1), int(c2) + 1, int(r2) + 1) if r2 >= 0 else (0, 0, 64, 64))  # empty: all
            assert [crop.box for crop in mine.crops] == boxes, (mode, c)
            assert [crop.image for crop in mine.crops] == list(mine.images)


def test_conservation_and_batched_equals_unbatched_on_a_bias_free_cnn() -> None:
    spec = tiny_spec(2)
    for m in spec.module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.bias = None
    x = random_input(spec, 3, seed=2)
    every = conditional_heatmaps(xai_core.Workbench(spec), x, 2, "act2", list(range(16)))
    lrp = get_explainer("lrp")(spec, x, torch.full((3,), 2))
    assert_close_f32(every.sum(1), lrp, terms=16 * 72, magnitude=float(every.abs().amax()))
    with torch.no_grad():
        logit = spec.module(x)[:, 2]
    torch.testing.assert_close(every.sum(dim=(1, 2, 3)), logit, rtol=1e-3, atol=1e-6)  # bias-free: Σ R = f_c(x)
    alone = torch.cat([conditional_heatmaps(spec, x[i:i + 1], 2, "act2", [3, 7]) for i in range(3)])
    assert_close_f32(alone, every[:, [3, 7]])


class RedDetector(nn.Module):
    """3×3 conv → ReLU → GAP → linear. Channel 0 fires only on red (2R − G − B − 0.6 > 0 at the centre tap); 1-3 on
    green, blue, brightness. Class 0 reads channel 0 with weight 3, both classes read the rest alike."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.relu, self.pool = nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 2)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[:, :, 1, 1] = torch.tensor([[2.0, -1, -1], [0, 1, 0], [0, 0, 1], [1 / 3, 1 / 3, 1 / 3]])
            self.conv.bias.copy_(torch.tensor([-0.6, -0.3, -0.3, -0.2]))
            self.fc.weight.copy_(torch.tensor([[3.0, 0.5, 0.5, 0.2], [0.0, 0.5, 0.5, 0.2]]))
            self.fc.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.relu(self.conv(x))).flatten(1))


def test_a_planted_concept_is_the_top_concept_and_its_heatmap_sits_on_the_patch() -> None:
    spec = xai_core.from_module(RedDetector(), ["red", "other"], input_size=(32, 32), mean=(0.0, 0.0, 0.0),
                                std=(1.0, 1.0, 1.0), device="cpu")
    rng = np.random.default_rng(0)
    x = torch.from_numpy(np.stack([np.stack([rng.uniform(0, 0.35, (4, 4)), rng.uniform(0.2, 1, (4, 4)),
                                             rng.uniform(0.2, 1, (4, 4))]).repeat(8, 1).repeat(8, 2)
                                   for _ in range(6)]).astype(np.float32))
    inside = torch.zeros(6, 32, 32, dtype=torch.bool)
    for i in range(6):
        y0, x0 = rng.integers(0, 25, 2)
        x[i, :, y0:y0 + 8, x0:x0 + 8] = torch.tensor([1.0, 0, 0]).view(3, 1, 1)
        inside[i, y0:y0 + 8, x0:x0 + 8] = True
    ranking = concept_relevance(spec, x, 0, "relu").top(4)
    assert ranking[0][0] == 0 and ranking[0][1] > 1.3 * ranking[1][1]  # measured share 0.40 vs 0.27 (green)
    red = conditional_heatmaps(spec, x, 0, "relu", [0])[:, 0]
    near = torch.nn.functional.max_pool2d(inside[:, None].float(), 3, stride=1, padding=1)[:, 0].bool()
    # only the patch fires channel 0; the flat rule of the first 3×3 layer spreads its relevance by one pixel
    assert (red[~near] == 0).all() and (red[inside] > 0).all()
    assert ((red * inside).sum((1, 2)) / red.sum((1, 2)) > 0.8).all()  # measured 0.84-0.88, the rest on that ring
    ref = relevance_maximisation(spec, x, 0, "relu", [0], top=3)  # its reference crops hold the red patch
    assert all(inside[c.image, c.box[1]:c.box[3], c.box[0]:c.box[2]].any() for c in ref.of(0).crops)


def overlaps(a: tuple[int, int, int, int], b: np.ndarray) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def test_lab_cnn_tag_concept_is_among_the_top_crp_concepts_without_being_told() -> None:
    """The analysis sees the images and 'horse' only (labels pick the horses for the ranking); tags and boxes are used
    to score the result afterwards. Layer: the last feature layer (features.9, as the CRAFT test)."""
    spec = lab.load_lab_model("cpu")
    data = lab.make_dataset(300, seed=7)
    x = lab.to_tensor(data.images)
    horses = np.flatnonzero(data.labels == 1)
    top3 = [c for c, _s in concept_relevance(spec, x[horses], 1, "features.9").top(3)]
    refs = relevance_maximisation(spec, x, 1, "features.9", top3, top=10)  # references drawn from the whole set
    overlap = [np.mean([data.tagged[c.image] and overlaps(c.box, data.tag_boxes[c.image]) for c in refs.of(k).crops])
               for k in top3]
    tagged = horses[data.tagged[horses]][:48]  # 48 of the 128 tagged horses keep the test short
    heat = conditional_heatmaps(spec, x[tagged], 1, "features.9", top3).clamp(min=0)
    box = torch.zeros(len(tagged), 1, 64, 64)
    for i, n in enumerate(tagged):
        x0, y0, x1, y1 = data.tag_boxes[n]
        box[i, 0, y0:y1, x0:x1] = 1.0
    on_tag = ((heat * box).sum((2, 3)) / heat.sum((2, 3)).clamp(min=1e-12)).mean(0).tolist()
    # Measured (140 horses, 128 tagged; top 3 channels 16, 47, 34 with shares 0.052, 0.046, 0.045): every one of the
    # 10 reference crops of each overlaps a tag box (1.00; crops ~20×20 px, which at random places overlap a tag box of
    # a tagged horse in 33 % of cases), all references are tagged horses, and
    # 97-98 % of each conditional heatmap's positive relevance lies in the tag box (mean over all 128 tagged horses;
    # worst image 94 %; 0.971-0.976 on the 48 used here), which covers 14 % of the image.
    good = [k for k, o, t in zip(top3, overlap, on_tag, strict=True) if o >= 0.8 and t >= 0.8]
    assert good, (top3, overlap, on_tag)


class SideBranch(nn.Module):
    """A convolution that runs on the input but whose output never reaches the logits."""

    def __init__(self) -> None:
        super().__init__()
        self.side = nn.Conv2d(3, 4, 3)
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.side(x)
        return self.net(x)


def test_what_cannot_run_gets_a_sentence() -> None:
    spec = tiny_spec(0)
    x = random_input(spec, 2)
    norm = xai_core.from_module(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.LayerNorm(4 * 32 * 32),
                                              nn.Linear(4 * 32 * 32, 2)), ["a", "b"], input_size=(32, 32), device="cpu")
    shared = nn.ReLU()
    twice = xai_core.from_module(nn.Sequential(nn.Conv2d(3, 4, 3), shared, nn.Conv2d(4, 4, 3), shared,
                                               nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)),
                                 ["a", "b"], input_size=(32, 32), device="cpu")
    side = xai_core.from_module(SideBranch(), ["a", "b"], input_size=(32, 32), device="cpu")
    cases = [(lambda: conditional_heatmaps(norm, x, 0, "0", [0]), "LRP has no rule here for LayerNorm"),
             (lambda: conditional_heatmaps(side, x, 0, "side", [0]), "does not lead to the output"),
             (lambda: conditional_heatmaps(spec, x, 0, "nope", [0]), "no layer named 'nope'"),
             (lambda: concept_relevance(spec, x[:0], 0, "act2"), "at least 1"),
             (lambda: conditional_heatmaps(spec, x, 0, "act2", [16]), "Concept 16 does not exist.*0..15"),
             (lambda: conditional_heatmaps(spec, x, 0, "act2", []), "No concepts"),
             (lambda: conditional_heatmaps(spec, x, 9, "act2", [0]), "Class 9 does not exist"),
             (lambda: conditional_heatmaps(twice, x, 0, "1", [0]), "runs 2 times"),
             (lambda: relevance_maximisation(spec, x, 0, "act2", [0], mode="loudest"), "Unknown maximisation mode"),
             (lambda: concept_relevance(spec, x, 0, "act2", directions=torch.ones(2, 3)), "rows of 16 weights")]
    for run, message in cases:
        with pytest.raises(ConceptError, match=message):
            run()
    assert not any(has_hooks(m.module) for m in (spec, norm, twice, side))


def test_crp_concepts_are_the_top_channels_with_their_relmax_crops_and_projecting_one_out_removes_its_relevance() -> None:
    """``crp_concepts`` (the page's CRP mode) is ``concept_relevance(...).top`` with ``relevance_maximisation``'s crops,
    in CRAFT's Discovery shape; P-ClArC on a found channel's direction leaves that channel no relevance, and its
    conditional heatmap is then zero, while another channel keeps its relevance."""
    model = lab.load_lab_model("cpu")
    wb = Workbench(model)
    data = lab.make_dataset(60, seed=7)
    x = lab.to_tensor(data.images[data.labels == 1][:12])
    found = concepts.crp_concepts(wb, x, 1, layer="features.9", top=3, top_crops=4)
    rel = concepts.concept_relevance(wb, x, 1, "features.9")
    assert [c.index for c in found.concepts] == [k for k, _s in rel.top(3)] and concepts.is_crp(found)
    refs = concepts.relevance_maximisation(wb, x, 1, "features.9", [c.index for c in found.concepts], top=4)
    assert all(c.crops == refs.of(c.index).crops for c in found.concepts)
    first, second = found.concepts[0], found.concepts[1]
    assert float(first.direction.sum()) == 1.0 and int(first.direction.argmax()) == first.index
    with concepts.projected(wb, "features.9", first.direction):
        after = concepts.concept_relevance(wb, x, 1, "features.9")
        heat = concepts.maps_of(wb, found, x[:2])
    assert float(after.relevance[:, first.index].abs().max()) == 0.0
    assert float(heat[:, 0].abs().max()) == 0.0
    assert float(after.relevance[:, second.index].abs().sum()) > 0.0
