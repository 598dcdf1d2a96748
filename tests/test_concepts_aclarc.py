"""A-ClArC (xai_core.concepts.aclarc): the artifact shift sets the component along v and keeps the rest, the shared
model is never changed, and the before/after numbers on the lab CNN with the discovered (not told) tag concept."""

from __future__ import annotations

import torch
from helpers import f32_tol

from xai_core import lab
from xai_core.concepts.aclarc import TAGGED_HORSES, add_artifact, before_after_aclarc, flagged_precision, layers_after
from xai_core.concepts.craft import discover
from xai_core.workbench import Workbench


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


def test_lab_cnn_a_clarc_on_the_discovered_tag_concept() -> None:
    model = lab.load_lab_model("cpu")
    state = {k: t.clone() for k, t in model.module.state_dict().items()}
    wb = Workbench(model)
    data = lab.make_dataset(300, seed=7)
    horses = data.subset(data.labels == 1)
    found = discover(wb, lab.to_tensor(horses.images), 1, rank=8, crop=0.375, stride=0.125, resize=False)
    tag = found.concepts[0]  # the most important concept; its crops all overlap the tag (test_concepts_craft)
    r = before_after_aclarc(wb, found.layer, tag.direction, trainable="after", n=300)
    # the artifact images were picked by their projection alone; the flags only check them (measured: 80 of 80 tagged)
    assert flagged_precision(r.artifact, lab.make_dataset(800, seed=133, tag_fraction=0.9).tagged) >= 0.95
    b, a, art = r.before, r.after, r.after_artifact
    # Measured (n = 300; 800 training-set images, 3 epochs, Adam 3e-3, only fc after features.9; 3.3 s of
    # fine-tuning): before — untagged horses 0.00, tagged horses 1.00, tagged non-horses called horse 1.00, test 0.933,
    # Grad-CAM on the tag 1.00. After (no hook) — untagged horses 0.00, tagged horses 0.67, tagged non-horses called
    # horse 0.67, test 0.783. With the artifact kept at inference — 0.007 / 0.89 / 0.88 / 0.890. With P-ClArC on top —
    # 0.00 / 0.00 / 0.00 / 0.443. Fine-tuning all layers (7.3 s) changes less: 0.00 / 1.00 / 1.00 / 0.933.
    assert b["accuracy on horses without the tag"] <= 0.05 and b[TAGGED_HORSES] >= 0.95
    assert b["non-horses called horse once tagged"] >= 0.95
    # The aim (untagged horses >= 50 %) is NOT reached: A-ClArC moves them by at most 1 point. Two reasons, both
    # measured: (1) the tag lives in more than the one direction: with the artifact added to every image the copy
    # still separates its training set by the tag left in the other channels (train accuracy 0.455 → 0.905 in 3
    # epochs), so the fine-tune re-learns the shortcut rather than the horse; (2) horse evidence needs far more
    # training than seconds allow: even on tag-free data, 6 epochs on 1500 images (31 s) give a model that calls
    # almost everything horse (non-horses 0.87), and from scratch, 6 epochs on 3000 (72 s) reach 0.80 test accuracy.
    assert a["accuracy on horses without the tag"] <= 0.05 and art["accuracy on horses without the tag"] <= 0.05
    # ...what it does: tagged non-horses called horse fall (1.00 → 0.67), paid for by tagged horses (1.00 → 0.67)
    assert a["non-horses called horse once tagged"] <= 0.8 and a[TAGGED_HORSES] <= 0.8
    assert abs(a[TAGGED_HORSES] - a["non-horses called horse once tagged"]) <= 0.1  # still one feature: the tag
    assert r.after_projected["non-horses called horse once tagged"] <= 0.05
    assert r.seconds < 15  # measured 3.3 s (one thread)
    # the shared model is untouched and hook-free; the copy is a new ModelSpec
    assert r.model.module is not model.module and not model.module.features[9]._forward_hooks
    assert all(torch.equal(state[k], t) for k, t in model.module.state_dict().items())
