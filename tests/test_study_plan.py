"""Study designs and their assignment (xai_core.study.design, .plan, .sources): the randomisation is seeded and
reproducible, counterbalanced (between-subject counts within one after any number of participants; within-subject
counts within one per participant and a Latin square over participants), attention checks never come first; items
for each task are well-formed from a real pool (the lab CNN on lab images); bad designs are one sentence."""

from __future__ import annotations

import io
from collections import Counter

import numpy as np
import pytest
from PIL import Image
from test_batch import FAST, make_tree

import xai_core as xc
from xai_core import lab
from xai_core.batch.__main__ import main
from xai_core.batch.results import open_run
from xai_core.study import Design, Item, StudyError, make, pictures, plan, sources
from xai_core.study.design import NO, YES


def _design(layout: str, conditions=("none", "gradcam", "gradient"), n_items: int = 9, per: int = 9, checks: int = 2,
            seed: int = 0) -> Design:
    items = [Item(f"i{j:02d}", (j,), "horse", (YES, NO), YES) for j in range(n_items)]
    check = [Item(f"check{j}", (), "", (YES, NO), NO, attention=True) for j in range(checks)]
    return make("s", "agreement", list(conditions), layout, per, items, checks=check, seed=seed)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_between_subject_assignment_is_balanced_after_any_number_of_participants(seed):
    d = _design("between", seed=seed)
    for n in range(1, 40):
        counts = Counter(plan.between_condition(d, s) for s in range(n))
        assert max(counts.values()) - min(counts.get(c, 0) for c in d.conditions) <= 1, (n, counts)
    first = [plan.between_condition(d, s) for s in range(30)]
    assert first == [plan.between_condition(d, s) for s in range(30)]  # reproducible
    other = _design("between", seed=seed + 10)
    assert first != [plan.between_condition(other, s) for s in range(30)]  # the seed matters
    for s in range(12):  # every trial of a between-subject participant is under their one condition
        assert {t.condition for t in plan.plan(d, s) if t.condition != plan.CHECK} == {plan.between_condition(d, s)}


def test_within_subject_plans_are_latin_squares_balanced_per_participant():
    d = _design("within")
    k = len(d.conditions)
    for s in range(3 * k):
        trials = plan.plan(d, s)
        assert len(trials) == d.trials and trials[0].condition != plan.CHECK  # no check first
        assert sum(t.item.attention for t in trials) == 2 and [t.index for t in trials] == list(range(d.trials))
        counts = Counter(t.condition for t in trials if t.condition != plan.CHECK)
        assert max(counts.values()) - min(counts.values()) <= 1 and set(counts) == set(d.conditions)
        assert len({t.item.id for t in trials}) == d.trials  # no item twice
        assert plan.plan(d, s) == trials
    for item in d.items:  # every k consecutive participants see each item once under each condition
        for block in range(3):
            seen = [next(t.condition for t in plan.plan(d, s) if t.item.id == item.id)
                    for s in range(block * k, (block + 1) * k)]
            assert sorted(seen) == sorted(d.conditions)
    subset = _design("within", n_items=9, per=5)
    for s in range(10):
        counts = Counter(t.condition for t in plan.plan(subset, s) if t.condition != plan.CHECK)
        assert sum(counts.values()) == 5 and max(counts.values()) - min(counts.values()) <= 1
    orders = {tuple(t.item.id for t in plan.plan(d, s)) for s in range(6)}
    assert len(orders) == 6  # the order is shuffled per participant


def test_bad_designs_are_one_sentence():
    items = [Item("i00", (0,), "x", (YES, NO), YES)]
    cases = [(dict(name=" \x00 "), "name"), (dict(task="vote"), "task"), (dict(conditions=["none"]), "2 to 4"),
             (dict(layout="mixed"), "between"), (dict(per=5), "Items per participant"),
             (dict(layout="within", per=1), "within-subject")]
    for change, words in cases:
        args = dict(name="s", task="agreement", conditions=["none", "gradcam"], layout="between", per=1)
        args.update(change)
        with pytest.raises(StudyError, match=words):
            make(args["name"], args["task"], args["conditions"], args["layout"], args["per"], items)
    with pytest.raises(StudyError, match="options"):
        Item("bad", (), "", (YES,), YES)
    d = _design("between")
    assert Design.from_json(d.to_json()) == d  # stored and read back unchanged


@pytest.fixture(scope="module")
def pool():
    wb = xc.Workbench(lab.load_lab_model("cpu"))
    return wb, sources.lab_pool(wb, 32, seed=0)


@pytest.mark.parametrize("task", ["agreement", "forward", "distinction"])
def test_items_of_every_task_from_the_lab_pool(pool, task):
    wb, found = pool
    assert {c.correct for c in found} == {True, False}  # the shortcut makes the CNN wrong on some images
    items = sources.build_items(task, found, 10, seed=3, choices=3)
    assert len(items) == 10 and len({i.id for i in items}) == 10
    for it in items:
        assert it.truth in it.options and all(isinstance(o, str) for o in it.options)
        c = found[it.pictures[0]]
        if task == "agreement":
            assert it.prompt == c.prediction and (it.truth == YES) == c.correct
        elif task == "forward":
            assert it.truth == c.prediction and len(it.options) == 2  # the lab CNN has two classes
        else:
            hit = found[it.pictures[int(it.truth.split()[1]) - 1]]
            assert len(it.pictures) == 3 and hit.prediction == it.prompt
            assert sum(found[p].prediction == it.prompt for p in it.pictures) == 1  # exactly one right answer
    if task == "agreement":
        wrong = sum(i.truth == NO for i in items)
        assert wrong == 5  # half wrong, half right
    kept, used = sources.compact(items, found)
    assert [[used[p].name for p in k.pictures] for k in kept] == [[found[p].name for p in i.pictures] for i in items]
    pngs = pictures.render_all(used[:2], ("none", "gradcam"), wb)
    assert set(pngs) == {(0, "none"), (0, "gradcam"), (1, "none"), (1, "gradcam")}
    shown = np.asarray(Image.open(io.BytesIO(pngs[(0, "none")])))
    assert shown.shape == (pictures.DISPLAY, pictures.DISPLAY, 3)  # 64 px enlarged, pixels kept (nearest)
    assert np.array_equal(shown[::4, ::4], used[0].image)
    assert pngs[(0, "none")] != pngs[(0, "gradcam")]


def test_a_batch_run_is_a_source_with_its_own_maps(tmp_path):
    make_tree(tmp_path / "tree", per_class=3)
    assert main([str(tmp_path / "tree"), "--out", str(tmp_path / "run"), "--model", "lab_horse_cnn", "--explainer",
                 "gradient", "--no-progress", *FAST]) == 0
    found = sources.run_pool(open_run(tmp_path / "run"))
    assert len(found) == 6 and {c.label for c in found} == {"horse", "other"}
    assert all(set(c.maps) == {"gradient"} and c.maps["gradient"][0].ndim == 2 for c in found)
    items = sources.build_items("agreement", found, 4, seed=0)
    kept, used = sources.compact(items, found)
    pngs = pictures.render_all(used, ("none", "gradient"), None)  # no model: the run's maps are drawn
    assert len(pngs) == 2 * len(used)
    with pytest.raises(StudyError, match="run's explainers"):
        pictures.render_all(used, ("none", "gradcam"), None)
