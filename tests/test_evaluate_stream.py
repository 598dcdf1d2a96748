"""Issue 23, item 4: the Evaluate and Sanity pages stream. The library yields a report after each map
(:func:`metrics.evaluate_stream`, :func:`sanity.randomisation_stream`) and its last report is exactly the one-shot
one; every partial report is a prefix of the final one; no lock is held between yields; the pages draw partial
results in place, end at the library's numbers, serve reruns from the store, and keep the partial after a Stop."""

from __future__ import annotations

import itertools
import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import SIZE, UNIT, random_image, tiny_spec
from streamlit.testing.v1 import AppTest

from xai_core import Cancelled, metrics, sanity
from xai_core.request import ExplainRequest
from xai_core.workbench import Workbench

APP = str(Path(__file__).resolve().parents[1] / "app.py")
IDS = ["deletion", "insertion", "average_drop", "faithfulness_correlation", "sensitivity_max", "sparseness",
       "pointing_game", "iou"]  # every kind: curve, probe, rerun, map, localisation
PARAMS = {"deletion": {"steps": 6}, "insertion": {"steps": 6}, "faithfulness_correlation": {"subsets": 8},
          "sensitivity_max": {"samples": 2}}


def _same_report(a: metrics.Report, b: metrics.Report) -> None:
    """Exactly equal: maps, metrics, every value (NaN where NaN), every curve, passes and notes."""
    assert (a.maps, a.metrics, a.target, a.passes, a.notes) == (b.maps, b.metrics, b.target, b.passes, b.notes)
    for n in a.maps:
        assert a.values[n].keys() == b.values[n].keys()
        for m, v in a.values[n].items():
            assert v == b.values[n][m] or (math.isnan(v) and math.isnan(b.values[n][m])), (n, m, v, b.values[n][m])
    assert a.curves.keys() == b.curves.keys()
    for k, c in a.curves.items():
        np.testing.assert_array_equal(c.probs, b.curves[k].probs)
        np.testing.assert_array_equal(c.xs, b.curves[k].xs)


@pytest.fixture
def case():
    wb = Workbench(tiny_spec(seed=3, **UNIT))
    image = random_image(*SIZE, seed=4)
    request = ExplainRequest.make("gradient", None, {}, 0)
    maps = {"g": wb.explain(image, request).map, **metrics.reference_maps(image, 0)}
    region = metrics.box_region(SIZE, (8, 8, 24, 24))
    pool = [np.full((*SIZE, 3), c, np.uint8) for c in itertools.product((0, 255), repeat=3)]
    kw = dict(metrics=IDS, params=PARAMS, region=region, seed=1, requests={"g": request}, pool=pool)
    return wb, image, maps, kw


def test_streamed_evaluation_ends_at_the_one_shot_report_and_each_partial_is_a_prefix(case):
    wb, image, maps, kw = case
    one = metrics.evaluate(wb, image, maps, **kw)
    reports = list(metrics.evaluate_stream(wb, image, maps, **kw))
    _same_report(reports[-1], one)
    names = list(maps)
    # one report after each map's model-pass metrics, one more after its re-runs (sensitivity): the table fills in
    assert [r.maps for r in reports] == [names[:k] for k in range(1, len(names) + 1) for _ in range(2)]
    rerun = {"sensitivity_max"}
    for i, r in enumerate(reports):
        for n in r.maps:
            for m in one.metrics:
                v, final = r.values[n].get(m, math.nan), one.values[n][m]
                pending = m in rerun and n == r.maps[-1] and i % 2 == 0
                assert pending or v == final or (math.isnan(v) and math.isnan(final)), (i, n, m)
    assert not math.isnan(one.values["g"]["sensitivity_max"])
    # a map's curves are its own engine call: the same alone as among the other maps (and so are its map metrics)
    own = ["deletion", "insertion", "sparseness", "pointing_game", "iou"]
    for n, m in maps.items():
        alone = metrics.evaluate(wb, image, {n: m}, **{**kw, "metrics": own})
        assert alone.values[n] == {k: one.values[n][k] for k in own}
        for k in ("deletion", "insertion"):
            np.testing.assert_array_equal(alone.curves[(n, k)].probs, one.curves[(n, k)].probs)
    # maps given one by one as they are made (the page explains each method just before it is scored)
    lazy = list(metrics.evaluate_stream(wb, image, iter(maps.items()), count=len(maps), **kw))
    _same_report(lazy[-1], one)


def test_no_lock_is_held_between_two_partial_reports(case):
    wb, image, maps, kw = case
    stream = metrics.evaluate_stream(wb, image, maps, metrics=["deletion"], params=PARAMS)
    first = next(stream)
    got: list[bool] = []

    def other_session() -> None:  # another visitor's run on the same model, while this page draws
        ok = wb.model.lock.acquire(timeout=5)
        got.append(ok)
        if ok:
            wb.model.lock.release()

    t = threading.Thread(target=other_session)
    t.start()
    t.join(10)
    stream.close()
    assert got == [True] and first.maps == ["g"]


def _same_sanity(a: sanity.SanityReport, b: sanity.SanityReport) -> None:
    assert (a.stages, a.similarity, a.constant, a.probability, a.seeds, a.spreads, a.layers) == \
           (b.stages, b.similarity, b.constant, b.probability, b.seeds, b.spreads, b.layers)
    assert list(a.maps) == list(b.maps)
    for n in a.maps:
        assert len(a.maps[n]) == len(b.maps[n]) and all(np.array_equal(p, q) for p, q in zip(a.maps[n], b.maps[n], strict=True))


def test_streamed_randomisation_ends_at_the_one_shot_report_and_fills_the_grid_map_by_map():
    spec = tiny_spec(seed=5)
    image = random_image(*SIZE, seed=6)
    methods = [("gradient", {}), ("gradcam", {})]
    seen: list[sanity.SanityReport] = []
    streamed = sanity.model_randomisation(spec, image, methods, n_stages=2, seeds=2, partial=seen.append)
    one = sanity.model_randomisation(spec, image, methods, n_stages=2, seeds=2)
    _same_sanity(streamed, one)
    _same_sanity(list(sanity.randomisation_stream(spec, image, methods, n_stages=2, seeds=2))[-1], one)
    assert len(seen) == 2 * (1 + 2 * 2)  # a report after every map: trained, then 2 stages × 2 seeds
    _same_sanity(seen[-1], one)
    names = [n for n in one.maps if n != metrics.EDGES]
    done = [sum(bool(r.maps[n]) + sum(s.n for s in r.spread(n)) for n in names) for r in seen]
    assert done == list(range(1, len(seen) + 1))  # one more map each time
    for r in seen:  # each report is a prefix of the final one
        assert r.stages == one.stages[:len(r.stages)] and list(r.maps) == list(one.maps)
        for n in r.maps:
            assert all(np.array_equal(m, one.maps[n][k]) for k, m in enumerate(r.maps[n]))
            for sim, spreads in r.spreads[n].items():
                for k, s in enumerate(spreads):
                    assert s.values == one.spreads[n][sim][k].values[:s.n]
    assert [len(r.stages) for r in seen[:2]] == [1, 1] and len(seen[2].stages) == 2  # the trained column first


def test_throttle_keeps_drawing_to_its_share_and_a_short_run_draws_nothing_partial():
    from ui.live import Throttle

    th = Throttle(share=0.05, gap=0.0, guess=0.01)
    costs: list[float] = []
    when: list[float] = []

    def draw(n: int) -> None:
        when.append(time.perf_counter() - th.start)
        t = time.perf_counter()
        time.sleep(0.01)
        costs.append(time.perf_counter() - t)

    while time.perf_counter() - th.start < 0.8:
        th.draw(draw)
        time.sleep(0.002)  # the computation between two partial results
    elapsed = time.perf_counter() - th.start
    assert when[0] >= 0.01 / 0.05  # not before the guessed cost of one draw is within the share
    assert 2 <= len(costs) < 0.8 / 0.002 / 4
    assert th.spent <= 0.05 * elapsed + max(costs) - min(*costs, 0.01)  # its share, but for one misjudged draw
    short = Throttle(share=0.05, gap=0.0, guess=0.01)
    assert not short.due() and short.draw(lambda n: None, force=True)  # a run of 0.2 s or less: nothing until the end


def _app(monkeypatch) -> tuple[AppTest, dict]:
    """The app on the lab CNN, with spies on what the pages stream (partial draws, runs of the library) and on the
    Stop control's signature; ``seen["real"]``: the functions spied on. Every partial result is drawn (the lab CNN
    is so fast that the throttle, tested above, would draw none)."""
    from ui import evaluation_stream, live, sanity_runs
    from ui import maps as ui_maps

    monkeypatch.setattr(live.Throttle, "due", lambda self: True)

    real = {"show_partial": evaluation_stream.show_partial, "evaluate": evaluation_stream.evaluate,
            "stream": metrics.evaluate_stream, "randomisation": sanity.model_randomisation,
            "draw": sanity_runs.Live._draw, "stop_control": ui_maps.stop_control}
    seen: dict = {"partial": [], "evaluate": [], "streams": 0, "sanity": [], "live": 0, "stop": [], "real": real}

    def spy_partial(area, report, references, total, n, stopped=False):  # noqa: ANN001, ANN202
        seen["partial"].append((len(report.maps), total, stopped))
        return real["show_partial"](area, report, references, total, n, stopped)

    def spy_evaluate(ctx, image, run, slot, area):  # noqa: ANN001, ANN202
        out = real["evaluate"](ctx, image, run, slot, area)
        seen["evaluate"].append((ctx, image, run, *out))
        return out

    def spy_stream(*a, **k):  # noqa: ANN002, ANN003, ANN202
        seen["streams"] += 1
        return real["stream"](*a, **k)

    def spy_randomisation(*a, **k):  # noqa: ANN002, ANN003, ANN202
        out = real["randomisation"](*a, **k)
        seen["sanity"].append((a, k, out))
        return out

    def spy_draw(self, report, done, total):  # noqa: ANN001, ANN202
        seen["live"] += 1
        return real["draw"](self, report, done, total)

    def spy_stop(signature, pending, slot):  # noqa: ANN001, ANN202
        seen["stop"].append(signature)
        return real["stop_control"](signature, pending, slot)

    monkeypatch.setattr(evaluation_stream, "show_partial", spy_partial)
    monkeypatch.setattr(evaluation_stream, "evaluate", spy_evaluate)
    monkeypatch.setattr(metrics, "evaluate_stream", spy_stream)
    monkeypatch.setattr(sanity, "model_randomisation", spy_randomisation)
    monkeypatch.setattr(sanity_runs.Live, "_draw", spy_draw)
    monkeypatch.setattr(ui_maps, "stop_control", spy_stop)
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.sidebar.selectbox(key="model_choice").set_value("lab_horse_cnn").run()
    assert not at.exception, at.exception
    return at, seen


def _no_error(at: AppTest) -> None:
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]


def test_evaluate_page_streams_then_shows_the_library_report_and_reruns_from_the_store(monkeypatch):
    at, seen = _app(monkeypatch)
    at.session_state["eval_explainers"] = ["gradcam", "gradient"]
    at.switch_page("views/evaluate.py").run()
    _no_error(at)
    assert seen["partial"][0] == (1, 5, False)  # the first map's ranking and curves, drawn at once
    assert all(done < total for done, total, _ in seen["partial"])  # partial draws only; the end is the full report
    ctx, image, run, found, report = seen["evaluate"][-1]
    one = metrics.evaluate(ctx.workbench, image, {**found, **run.refs}, run.target, metrics=run.model_ids + run.local,
                           params=run.params, seed=run.seed, region=run.region,
                           requests={run.titles[m]: r for m, r in run.requests.items()})
    _same_report(report, one)  # the streamed page's numbers are exactly the one-shot library's
    assert len(at.dataframe[0].value) == 5 and not any("so far" in c.value for c in at.caption)
    drawn, streams = len(seen["partial"]), seen["streams"]
    at.run()  # a rerun: from the store, nothing streamed or computed again
    _no_error(at)
    assert (len(seen["partial"]), seen["streams"]) == (drawn, streams) and len(at.dataframe[0].value) == 5

    def first_map_then_stop(*a, **k):  # noqa: ANN002, ANN003, ANN202 - a Stop while the second map is scored
        gen = seen["real"]["stream"](*a, **k)
        try:
            yield next(gen)
        finally:
            gen.close()
        raise Cancelled("stopped")

    monkeypatch.setattr(metrics, "evaluate_stream", first_map_then_stop)
    at.number_input(key="eval_seed").set_value(7).run()  # new settings: not in the store
    at.session_state["stopped"] = seen["stop"][-1]  # what the Stop button records
    at.run()
    assert seen["partial"][-1] == (1, 5, True)  # the first map's partial ranking, kept and marked as stopped
    assert any(c.value.startswith("stopped after 1 of 5 maps") for c in at.caption)
    assert any(w.value.startswith("Stopped: the evaluation not computed") for w in at.warning)
    assert len(at.dataframe[0].value) == 1 and at.button(key="resume")


def test_sanity_page_draws_the_grid_as_it_fills_and_ends_at_the_library_report(monkeypatch):
    at, seen = _app(monkeypatch)
    at.session_state["sanity_explainers"] = ["gradient", "gradcam"]
    at.session_state["sanity_stages"] = 2
    at.session_state["sanity_seeds"] = 2
    at.switch_page("views/sanity.py").run()
    at.button(key="sanity_run").click().run()
    _no_error(at)
    assert seen["live"] >= 1 and len(seen["sanity"]) == 1  # the first map's column drawn at once
    a, k, report = seen["sanity"][-1]
    one = seen["real"]["randomisation"](*a, **{n: v for n, v in k.items() if n not in ("progress", "partial")})
    _same_sanity(report, one)  # the streamed page's report is exactly the one-shot library's
    table = next(d.value for d in at.dataframe if "Spearman |·| (last)" in d.value.columns)
    assert len(table) == 3 and not any("⏳" in m.value for m in at.markdown)
    live = seen["live"]
    at.run()  # a rerun: from the store
    _no_error(at)
    assert seen["live"] == live and len(seen["sanity"]) == 1
