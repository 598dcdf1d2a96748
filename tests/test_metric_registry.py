"""The metric registry: one shape (add / get / list / resolve / validate), one typed spec per kind, signatures checked
when a metric registers, and adding a metric is one file plus one decorator."""

from __future__ import annotations

import importlib.util
import inspect
import pkgutil
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import PATCH_COLS, PATCH_ROWS, SIZE, random_image

from xai_core import ExplainerError, metrics
from xai_core.metrics import registry as metric_registry
from xai_core.registries import Registry
from xai_core.request import ExplainRequest
from xai_core.types import ParamSpec
from xai_core.workbench import Workbench

CURVE_FILE = '''
"""Deletion to black, written as a new metric file would be."""
from xai_core.metrics import Plan, metric, order_of
from xai_core.metrics.deletion import auc, fractions
from xai_core.types import ParamSpec


@metric("scratch_deletion", title="Scratch deletion", kind="curve", better="lower", summary="Deletion to black.",
        reference="Petsiuk et al. 2018", params=(ParamSpec("steps", "int", 8, "Steps", "", 2, 64, 1),))
def scratch_deletion(model, x, small_map, *, steps: int = 8, seed: int = 0) -> Plan:
    """Pixels in the map's order become black (Petsiuk et al. 2018)."""
    xs, counts = fractions(steps, small_map.numel())
    return Plan(order_of(small_map, seed), counts, x, model.normalise(x.new_zeros(x.shape)), xs, auc)
'''

LOCALISATION_FILE = '''
"""Peak share: the largest value inside the region over the largest anywhere."""
from xai_core.metrics import metric
from xai_core.types import ParamSpec


@metric("scratch_peak", title="Peak share", kind="localisation", better="higher", summary="Peak in / peak overall.",
        reference="a test", params=(ParamSpec("power", "float", 1.0, "Power", "", 0.5, 4.0, 0.5),))
def scratch_peak(heatmap, region, *, power: float = 1.0) -> float:
    """(max inside the region / max overall) ** power."""
    return float((heatmap[region].max() / heatmap.max()) ** power)
'''


@pytest.fixture
def scratch(monkeypatch) -> Registry:
    """A registry holding the real metrics, in place of the real one for the test (nothing leaks into other tests)."""
    reg = Registry("metric", ExplainerError)
    for spec in metric_registry.METRICS:
        reg.add(spec)
    monkeypatch.setattr(metric_registry, "METRICS", reg)
    return reg


def load(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(text))
    spec = importlib.util.spec_from_file_location(name, path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))


def test_adding_a_metric_is_one_file_and_one_decorator(scratch, tmp_path, planted):
    load(tmp_path, "scratch_curve", CURVE_FILE)
    load(tmp_path, "scratch_localisation", LOCALISATION_FILE)
    assert [m.id for m in metrics.list_metrics("curve")][-1] == "scratch_deletion"
    assert metrics.get_metric("scratch_peak").kind == "localisation" and "scratch_peak" in scratch
    image = random_image(*SIZE, seed=5)
    image[PATCH_ROWS, PATCH_COLS] = 255
    heat = np.zeros(SIZE, np.float32)
    heat[PATCH_ROWS, PATCH_COLS] = 1.0
    heat[0, 0] = 2.0
    heat += np.linspace(0, 1e-3, heat.size, dtype=np.float32).reshape(SIZE)
    region = metrics.box_region(SIZE, (PATCH_COLS.start, PATCH_ROWS.start, PATCH_COLS.stop, PATCH_ROWS.stop))
    report = metrics.evaluate(planted, image, {"m": heat}, metrics=["scratch_deletion", "deletion", "scratch_peak"],
                              params={"deletion": {"steps": 8, "baseline": "black"}, "scratch_peak": {"power": 2}},
                              region=region)
    # The new file's curve is the built-in deletion with the same steps and reference, run in the same batch.
    assert report.values["m"]["scratch_deletion"] == pytest.approx(report.values["m"]["deletion"], abs=1e-7)
    assert report.curves[("m", "scratch_deletion")].probs.shape == (9,)
    assert report.values["m"]["scratch_peak"] == pytest.approx((float(heat[region].max()) / float(heat.max())) ** 2)
    assert [r["map"] for r in report.rows()] == ["m"] and "Peak share ↑" in report.rows()[0]


NEW_KINDS_FILE = '''
"""A probe, a rerun and a map metric, written as new metric files would be."""
import numpy as np
import torch
from xai_core.metrics import Probe, metric


@metric("scratch_black", title="Black drop", kind="probe", better="higher", summary="p(x) - p(black).",
        reference="a test", passes="1 forward pass")
def scratch_black(model, x, small_map, *, seed: int = 0) -> Probe:
    """The probability lost when the whole input is black."""
    return Probe(1, lambda a, b: model.normalise(torch.zeros_like(x)).expand(b - a, -1, -1, -1),
                 lambda o: o.base_probability - float(o.probability[0]))


@metric("scratch_again", title="Same map again", kind="rerun", better="lower", summary="Re-run gap.",
        reference="a test", passes="1 explanation")
def scratch_again(model, x, small_map, rerun, *, seed: int = 0) -> float:
    """How far the map re-explained from x is from itself explained once more (0 for a deterministic explainer)."""
    twice = rerun.explain(torch.cat([x, x]))
    return float((twice[0] - twice[1]).abs().max())


@metric("scratch_top", title="Top share", kind="map", better="higher", summary="max |m| / sum |m|.",
        reference="a test", passes="none")
def scratch_top(small_map) -> float:
    """The largest share of the absolute map held by one pixel."""
    a = np.abs(small_map)
    return float(a.max() / a.sum())
'''


def test_the_new_kinds_are_one_file_and_one_decorator_too(scratch, tmp_path, planted):
    load(tmp_path, "scratch_kinds", NEW_KINDS_FILE)
    assert [metrics.get_metric(i).kind for i in ("scratch_black", "scratch_again", "scratch_top")] == [
        "probe", "rerun", "map"]
    image = random_image(*SIZE, seed=5)
    request = ExplainRequest.make("gradient", None, {}, 0)
    m = Workbench(planted).explain(image, request).map
    report = metrics.evaluate(planted, image, {"g": m, "flat": np.ones(SIZE, np.float32)},
                              metrics=["scratch_black", "scratch_again", "scratch_top"], requests={"g": request})
    p = torch.softmax(planted.module(planted.preprocess(image)), 1)[0, report.target]
    black = torch.softmax(planted.module(planted.normalise(torch.zeros(1, 3, *SIZE))), 1)[0, report.target]
    assert report.values["g"]["scratch_black"] == pytest.approx(float(p - black), abs=1e-6)
    assert report.values["g"]["scratch_again"] == 0.0 and np.isnan(report.values["flat"]["scratch_again"])
    assert report.values["flat"]["scratch_top"] == pytest.approx(1 / (SIZE[0] * SIZE[1]))
    assert report.passes == 1 + 2  # the unperturbed input once for all probes, then the black input of each map
    assert any("not possible for flat" in n for n in report.notes)


def test_every_module_of_the_package_is_discovered_and_every_metric_lives_in_one():
    folder = Path(metrics.__file__).parent
    assert {m.__name__ for m in metrics.DISCOVERED} == {f"xai_core.metrics.{m.name}" for m in pkgutil.iter_modules([str(folder)])}
    for spec in metrics.list_metrics():
        assert spec.fn.__module__.startswith("xai_core.metrics."), spec.id


def bad(kind: str, fn, params: tuple[ParamSpec, ...] = ()) -> None:
    metrics.metric("bad", title="Bad", kind=kind, better="higher", summary="", reference="", params=params)(fn)


def curve_fn(model, x, small_map, *, seed: int = 0) -> metrics.Plan:
    """A curve signature."""
    raise AssertionError("never called")


def localisation_fn(heatmap, region) -> float:
    """A localisation signature."""
    raise AssertionError("never called")


def test_a_metric_with_the_other_kinds_signature_is_refused_at_registration(scratch):
    with pytest.raises(TypeError, match=r"metric 'bad' \(curve: .*takes the positional arguments \(heatmap, region\); "
                                        r"it has the signature of a localisation metric"):
        bad("curve", localisation_fn)
    with pytest.raises(TypeError, match=r"metric 'bad' \(localisation: .*\(model, x, small_map\); it has the signature "
                                        r"of a curve or probe metric"):
        bad("localisation", curve_fn)
    with pytest.raises(TypeError, match="signature of a localisation metric"):  # made directly, not by the decorator
        metrics.CurveMetricSpec("bad", "Bad", "lower", "", "", fn=localisation_fn)
    with pytest.raises(ValueError, match="needs a docstring"):
        bad("localisation", lambda heatmap, region: 0.0)
    assert "bad" not in scratch
    bad("curve", curve_fn)  # the right kind registers
    assert isinstance(metrics.get_curve_metric("bad"), metrics.CurveMetricSpec)


STEPS = ParamSpec("steps", "int", 8, "Steps")


def kwargs_catch_all(heatmap, region, **_) -> float:
    """Swallows any keyword."""
    return 0.0


def undeclared(heatmap, region, *, level: float = 0.5) -> float:
    """Takes a keyword no widget can set."""
    return 0.0


def no_seed(model, x, small_map, *, steps: int = 8) -> metrics.Plan:
    """A curve metric without a seed."""
    raise AssertionError("never called")


def drifted(model, x, small_map, *, steps: int = 16, seed: int = 0) -> metrics.Plan:
    """A default that disagrees with the declared one."""
    raise AssertionError("never called")


def returns_a_plan(heatmap, region) -> metrics.Plan:
    """A localisation signature annotated with a curve metric's result."""
    raise AssertionError("never called")


def probe_returning_a_plan(model, x, small_map, *, seed: int = 0) -> metrics.Plan:
    """A probe metric annotated with a curve metric's result."""
    raise AssertionError("never called")


def rerun_without_seed(model, x, small_map, rerun) -> float:
    """A rerun metric without a seed."""
    raise AssertionError("never called")


@pytest.mark.parametrize(("kind", "fn", "params", "message"), [
    ("probe", probe_returning_a_plan, (), "annotated to return .*Plan, not Probe"),
    ("rerun", curve_fn, (), r"takes the positional arguments \(model, x, small_map\); it has the signature of a curve "
                            r"or probe metric.*must be \(model, x, small_map, rerun\)"),
    ("map", localisation_fn, (), r"\(heatmap, region\); it has the signature of a localisation metric"),
    ("rerun", rerun_without_seed, (), "must take the keyword seed"),
    ("localisation", kwargs_catch_all, (), "takes \\*args or \\*\\*kwargs"),
    ("localisation", undeclared, (), "takes level but does not declare it"),
    ("localisation", localisation_fn, (STEPS,), "declares steps but its function does not take it"),
    ("curve", no_seed, (STEPS,), "must take the keyword seed"),
    ("curve", drifted, (STEPS,), "steps defaults to 16 in the function but 8 in params"),
    ("localisation", returns_a_plan, (), "annotated to return .*Plan, not float"),
])
def test_signatures_that_do_not_match_the_declaration_are_refused(scratch, kind, fn, params, message):
    with pytest.raises(TypeError, match=message):
        bad(kind, fn, params)
    assert "bad" not in scratch


def test_no_registered_metric_swallows_a_mistyped_parameter(planted):
    for spec in metrics.list_metrics():
        kinds = {p.kind for p in inspect.signature(spec.fn).parameters.values()}
        assert inspect.Parameter.VAR_KEYWORD not in kinds, spec.id
    heat, region = np.ones(SIZE, np.float32), metrics.box_region(SIZE, (0, 0, 4, 4))
    with pytest.raises(TypeError, match="tolerence"):
        metrics.get_metric("pointing_game").fn(heat, region, tolerence=3)
    with pytest.raises(ExplainerError, match="Pointing game has no parameter tolerence; it takes tolerance"):
        metrics.get_localisation_metric("pointing_game").score(heat, region, {"tolerence": 3})
    with pytest.raises(ExplainerError, match="Deletion AUC has no parameter step; it takes steps, baseline"):
        metrics.evaluate(planted, random_image(*SIZE, seed=1), {"m": heat}, metrics=["deletion"],
                         params={"deletion": {"step": 4}})


def test_one_registry_shape_and_typed_getters():
    spec, params = metrics.METRICS.resolve("deletion", {"steps": "8"})
    assert spec is metrics.get_metric("deletion") and params == {"steps": 8, "baseline": "black"}
    assert metrics.METRICS.validate("iou", {}) == {"threshold": "fraction_of_max", "level": 0.2}
    with pytest.raises(ExplainerError, match="Unknown metric 'nope'; available: .*deletion, .*insertion, iou"):
        metrics.get_metric("nope")
    assert [m.id for m in metrics.list_metrics("localisation")] == ["pointing_game", "iou", "relevance_mass"]
    assert all(isinstance(m, metrics.CurveMetricSpec) for m in metrics.list_metrics("curve"))
    with pytest.raises(ExplainerError, match="IoU with the region is a localisation metric, not a curve one"):
        metrics.get_curve_metric("iou")
    with pytest.raises(ExplainerError, match="Deletion AUC is a curve metric, not a localisation one"):
        metrics.get_localisation_metric("deletion")
    heat = np.zeros(SIZE, np.float32)
    heat[:4, :4], heat[-4:, -4:] = 1.0, 3.0
    region = metrics.box_region(SIZE, (0, 0, 4, 4))
    assert metrics.get_localisation_metric("relevance_mass").score(heat, region) == pytest.approx(0.25)
