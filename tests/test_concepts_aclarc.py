"""A-ClArC (xai_core.concepts.aclarc, .aclarc_input, .artifact_pixels): the artifact found in pixels without flags,
pasting and the feature shift set what they claim, the shared model is never changed, and the proof on the lab CNN:
with the discovered (not told) tag concept, A-ClArC in input space makes the Clever Hans model call untagged horses
'horse' while keeping tagged horses."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import torch
from helpers import f32_tol

from xai_core import lab
from xai_core.concepts.aclarc import (
    TAGGED_HORSES,
    Artifact,
    aclarc,
    add_artifact,
    artifact_level,
    before_after_aclarc,
    flagged_precision,
    layers_after,
)
from xai_core.concepts.aclarc_input import aclarc_input
from xai_core.concepts.artifact_pixels import find_artifact_pixels, otsu, paste, pasted
from xai_core.concepts.craft import Discovery, discover
from xai_core.concepts.errors import ConceptError
from xai_core.errors import Cancelled
from xai_core.workbench import Workbench

UNTAGGED, TAGGED_OTHERS, OTHERS = ("accuracy on horses without the tag", "non-horses called horse once tagged",
                                   "non-horses called horse (no tag)")


@cache
def tag_discovery() -> Discovery:
    """The horse concepts of the shipped lab CNN; the most important one sits on the tag (test_concepts_craft)."""
    data = lab.make_dataset(300, seed=7)
    horses = lab.to_tensor(data.subset(data.labels == 1).images)
    return discover(lab.load_lab_model("cpu"), horses, 1, rank=8, crop=0.375, stride=0.125, resize=False)


def test_add_artifact_sets_the_component_per_position_and_keeps_the_rest() -> None:
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(3, 6, 4, 5, generator=gen)
    v = torch.nn.functional.normalize(torch.rand(6, generator=gen), dim=0)
    level = torch.rand(4, 5, generator=gen)
    out = add_artifact(a, v, level)
    torch.testing.assert_close(torch.einsum("c,nchw->nhw", v, out), level.expand(3, 4, 5))
    diff = out - a
    orth = diff - v.view(1, -1, 1, 1) * torch.einsum("c,nchw->nhw", v, diff).unsqueeze(1)
    assert float(orth.abs().max()) <= f32_tol(float(a.abs().max()), terms=12)
    assert layers_after(lab.LabCNN(), "features.9") == ["fc"]


def test_otsu_splits_two_groups_and_paste_moves_the_region() -> None:
    rng = np.random.default_rng(0)
    two = np.concatenate([rng.normal(0, 1, 80), rng.normal(50, 1, 20)])
    threshold, separation = otsu(two)
    assert 5 < threshold < 45 and separation > 0.95
    assert otsu(rng.normal(0, 1, 100))[1] < 0.85  # one group: no clear split
    x, src = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    region = torch.zeros(8, 8)
    region[5:, :4] = 1
    out = paste(x, region, src)
    assert torch.equal(out[:, :, 5:, :4], src[:, :, 5:, :4]) and torch.equal(out[:, :, :5], x[:, :, :5])
    with pytest.raises(ConceptError, match="locate it again"):
        paste(x, torch.zeros(4, 4), src)


def test_the_tag_is_found_in_pixels_without_flags() -> None:
    wb = Workbench(lab.load_lab_model("cpu"))
    found = tag_discovery()
    data = lab.make_dataset(400, seed=133)
    pixels = find_artifact_pixels(wb, found.layer, found.concepts[0].direction, lab.to_tensor(data.images))
    # picked by the projection alone; the flags only check them (measured: 176 carriers, all tagged, 0 tagged missed;
    # 97 % of the peak scores' variance between the groups)
    assert flagged_precision(Artifact(pixels.layer, pixels.direction, pixels.level, pixels.carriers),
                             data.tagged) >= 0.95
    assert len(pixels.carriers) >= 0.95 * data.tagged.sum() and pixels.separation > 0.9
    # the region covers the tag as lab.add_tag draws it (measured: 99 % of its pixels, region 463 px = 11 % of the image)
    others = lab.make_dataset(20, seed=3, horse_fraction=0.0).images
    drawn = np.stack([(lab.add_tag(im)[0].astype(int) != im).any(-1) for im in others])
    assert (drawn & (pixels.region.numpy() > 0)).sum() / drawn.sum() >= 0.9
    assert float(pixels.region.mean()) < 0.2
    # deployed, every input carries the strongest carrier's artifact; the hook goes with the block
    x = lab.to_tensor(others[:4])
    with pasted(wb, pixels) as spec, torch.no_grad():
        got = spec.module(x)
        want = spec.module.fc(spec.module.flat(spec.module.pool(spec.module.features(
            paste(x, pixels.region, pixels.sources[0])))))
    torch.testing.assert_close(got, want)
    assert not wb.model.module._forward_pre_hooks
    with pytest.raises(ConceptError, match="does not split"):  # no image of a tag-free set carries it
        find_artifact_pixels(wb, found.layer, found.concepts[0].direction,
                             lab.to_tensor(lab.make_dataset(200, seed=3, tag_fraction=0.0).images))


def test_input_space_fine_tuning_is_a_bounded_job_on_a_copy() -> None:
    model = lab.load_lab_model("cpu")
    state = {k: t.clone() for k, t in model.module.state_dict().items()}
    found = tag_discovery()
    data = lab.make_dataset(200, seed=21)
    pixels = find_artifact_pixels(model, found.layer, found.concepts[0].direction, lab.to_tensor(data.images))
    small = data.subset(np.arange(96))
    seen: list[float] = []
    tuned, tuning = aclarc_input(model, pixels, small, epochs=1, batch=32, progress=lambda f, _t: seen.append(f))
    assert tuning.steps == tuning.planned == 3 and not tuning.stopped_early and seen[-1] == 1.0
    assert tuned.module is not model.module and not torch.equal(tuned.module.features[0].weight,
                                                                 model.module.features[0].weight)  # all layers
    _, cut = aclarc_input(model, pixels, small, epochs=5, batch=32, budget_s=0.0)
    assert cut.stopped_early and cut.steps == 1 and cut.planned == 15

    def cancel(_f: float, _t: str) -> None:
        raise Cancelled("stopped")

    with pytest.raises(Cancelled):
        aclarc_input(model, pixels, small, epochs=5, batch=32, progress=cancel)
    with pytest.raises(ConceptError, match="'input' or 'feature'"):
        before_after_aclarc(model, found.layer, found.concepts[0].direction, space="pixels")  # type: ignore[arg-type]
    assert all(torch.equal(state[k], t) for k, t in model.module.state_dict().items())


def test_feature_space_aclarc_fine_tunes_a_copy_only() -> None:
    model = lab.load_lab_model("cpu")
    state = {k: t.clone() for k, t in model.module.state_dict().items()}
    found = tag_discovery()
    data = lab.make_dataset(160, seed=11)
    artifact = artifact_level(model, found.layer, found.concepts[0].direction, lab.to_tensor(data.images))
    tuned = aclarc(model, artifact, data, trainable="after", epochs=1, batch=32)
    assert tuned.module is not model.module and not model.module.features[9]._forward_hooks
    assert not torch.equal(tuned.module.fc.weight, model.module.fc.weight)
    assert torch.equal(tuned.module.features[0].weight, model.module.features[0].weight)  # only the layers after it
    assert all(torch.equal(state[k], t) for k, t in model.module.state_dict().items())


def test_lab_cnn_a_clarc_in_input_space_raises_untagged_horses() -> None:
    """The proof run: ~40 s of CPU on one thread (discovery 2 s, fine-tuning 21-34 s, numbers 8 s); 58-80 s of wall
    time on this shared 2-core machine under a load of 4-6."""
    model = lab.load_lab_model("cpu")
    state = {k: t.clone() for k, t in model.module.state_dict().items()}
    wb = Workbench(model)
    found = tag_discovery()
    r = before_after_aclarc(wb, found.layer, found.concepts[0].direction, budget_s=None)
    b, a, dep = r.before, r.after, r.after_artifact
    # Measured (seed 123, n = 300 per set; 3000 training images, the tag pasted on all, head then all layers, 4 epochs,
    # Adam 2e-3, batch 32; 33.8 s of fine-tuning, 8.5 s per epoch, on one thread under a load of ~4):
    #                               before   after   deployed (artifact pasted on every input)
    #   untagged horses              0.000   0.967   0.997
    #   tagged horses                1.000   0.983   0.983
    #   tagged non-horses → horse    1.000   0.367   0.373
    #   non-horses → horse (no tag)  0.000   0.270   0.373
    #   test accuracy                0.933   0.837   0.810
    #   Grad-CAM on the tag (pointing / mass)  1.00 / 0.78   1.00 / 0.32   1.00 / 0.34
    # Seeds 124-126: untagged horses 0.97 / 0.98 / 0.76, tagged horses 0.98 / 0.97 / 0.83, tagged non-horses called
    # horse 0.33 / 0.39 / 0.24. The price: non-horses without the tag are now called horse 16-34 % of the time (the
    # horse evidence learnt in seconds is weak), and Grad-CAM of 'horse' still peaks on the tag (its activations stay
    # large; they now enter both logits), with less of its mass there.
    assert b[UNTAGGED] <= 0.05 and b[TAGGED_HORSES] >= 0.95 and b[TAGGED_OTHERS] >= 0.95
    assert a[UNTAGGED] >= 0.5 and dep[UNTAGGED] >= 0.5  # the aim: >= 50 %
    assert a[TAGGED_HORSES] >= 0.7 and dep[TAGGED_HORSES] >= 0.7  # tagged horses kept
    assert a[TAGGED_OTHERS] <= 0.6 and a[OTHERS] <= 0.6 and a["test accuracy"] >= 0.65
    assert (a[UNTAGGED] + 1 - a[OTHERS]) / 2 >= 0.65  # balanced accuracy without the tag: horse evidence, not a bias
    assert abs(dep[TAGGED_OTHERS] - dep[OTHERS]) <= 0.1  # deployed, the tag changes (almost) nothing
    assert a["mass on the tag"] <= b["mass on the tag"] - 0.15
    assert r.space == "input" and r.tuning is not None and not r.tuning.stopped_early
    assert r.tuning.steps == r.tuning.planned == 4 * 94 and r.seconds < 300
    # the shared model is untouched and hook-free; the copy is a new ModelSpec
    assert r.model.module is not model.module and not model.module._forward_pre_hooks
    assert all(torch.equal(state[k], t) for k, t in model.module.state_dict().items())
