"""The Runs page under AppTest: open a run inside the runs root (and not outside), filter, pick a row, SpRAy, and
start a run as a background job."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_batch import FAST, make_tree

from ui import runs_view
from xai_core.batch.__main__ import main

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("runs_page")
    data, runs = base / "data", base / "runs"
    make_tree(data / "tree", per_class=4)
    assert main([str(data / "tree"), "--out", str(runs / "first"), "--model", "lab_horse_cnn", "--explainer",
                 "gradient", "--no-progress", *FAST]) == 0
    return data, runs


@pytest.fixture
def at(roots, monkeypatch) -> AppTest:
    data, runs = roots
    monkeypatch.setattr(runs_view, "RUNS_ROOT", str(runs))
    monkeypatch.setattr(runs_view, "INPUTS_ROOT", str(data))
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page("views/runs.py").run()
    assert not at.exception, at.exception
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_open_filter_rank_and_pick_a_row(at):
    at.selectbox(key="runs_pick").set_value("first").run()
    _ok(at)
    assert any("8 images" in c.value for c in at.caption)
    table = at.dataframe(key="runs_table").value
    assert len(table) == 8 and "Deletion AUC ↓" not in table.columns and "deletion" in table.columns
    at.radio(key="runs_correct").set_value("wrong").run()
    wrong = at.dataframe(key="runs_table").value
    assert len(wrong) < 8 and not wrong["correct"].any()
    at.radio(key="runs_correct").set_value("all").run()
    at.multiselect(key="runs_cls").set_value(["horse"]).run()
    assert len(at.dataframe(key="runs_table").value) == 4
    at.radio(key="runs_order").set_value("most uncertain first").run()
    ranked = at.dataframe(key="runs_table").value
    assert ranked["entropy"].is_monotonic_decreasing
    assert len(at.dataframe[1].value) == 2 and at.get("plotly_chart")  # per-class summary and its plot
    # a click on a row (AppTest cannot click a dataframe: the selection state the click would write)
    at.session_state["runs_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    _ok(at)
    first = ranked.iloc[0]["item"]
    assert any(h.value == first for h in at.subheader)
    assert len(at.get("image")) >= 3  # the sidebar image, the thumbnail and the map
    link = [b for b in at.get("link_button") if "Explain this image" in b.proto.label][0]
    assert link.proto.url.startswith("/?model=lab_horse_cnn&image=")


def test_a_path_outside_the_runs_root_is_refused(at):
    at.text_input(key="runs_path").set_value("../data").run()
    assert any("Runs are opened from" in e.value for e in at.error)
    at.text_input(key="runs_path").set_value("/etc").run()
    assert any("Runs are opened from" in e.value for e in at.error)


def test_spray_over_a_class_and_a_run_started_from_the_page(at, roots):
    data, runs = roots
    at.selectbox(key="runs_pick").set_value("first").run()
    at.selectbox(key="runs_spray_cls").set_value("horse").run()
    at.button(key="runs_spray").click().run()
    _ok(at)
    assert any("strategies" in m.value and "4 maps" in m.value for m in at.markdown)
    start = [t for t in at.tabs if t.label.startswith("▶️")][0]
    assert start is not None
    at.sidebar.selectbox(key="model_choice").set_value("lab_horse_cnn").run()
    at.text_input(key="runs_new_inputs").set_value("tree").run()
    at.text_input(key="runs_new_name").set_value("second").run()
    at.multiselect(key="runs_new_metrics").set_value(["pointing_game"]).run()
    at.button(key="runs_job_start").click().run()
    job = at.session_state["runs_job"]
    assert job.wait(240).done and job.error is None, job.error
    at.run()
    _ok(at)
    assert any("8 computed" in s.value for s in at.success)
    assert (runs / "second" / "results.parquet").is_file()


def _texts(at: AppTest) -> list[str]:
    """Every element of the rendered page as text: its proto (labels, bodies, options) and a table's cells."""
    out, stack = [], [at._tree]
    while stack:
        node = stack.pop()
        stack.extend(getattr(node, "children", {}).values())
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(str(proto))
        if type(node).__name__ == "Dataframe":
            out.append(node.value.to_csv())
    return out


def test_unlabelled_run_shows_correctness_as_unknown_and_no_server_path(roots, monkeypatch):
    data, runs = roots
    flat = data / "flat"
    flat.mkdir(exist_ok=True)
    for p in sorted((data / "tree").rglob("*.png"))[:6]:
        (flat / f"{p.parent.name}-{p.name}").write_bytes(p.read_bytes())
    assert main([str(flat), "--out", str(runs / "flat"), "--model", "lab_horse_cnn", "--explainer", "gradient",
                 "--metrics", "pointing_game", "--no-progress"]) == 0
    monkeypatch.setattr(runs_view, "RUNS_ROOT", str(runs))
    monkeypatch.setattr(runs_view, "INPUTS_ROOT", str(data))
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page("views/runs.py").run()
    at.selectbox(key="runs_pick").set_value("flat").run()
    _ok(at)
    assert len(at.dataframe(key="runs_table").value) == 6
    assert not [r for r in at.radio if r.key == "runs_correct"]  # no correct/wrong filter when nothing is labelled
    assert any("correct is unknown" in c.value for c in at.caption)
    table = at.dataframe(key="runs_table").value
    assert table["correct"].isna().all()
    assert at.dataframe[1].value["accuracy"].isna().all()  # unlabelled is never counted as wrong
    at.session_state["runs_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    _ok(at)
    assert len(at.get("image")) >= 3
    base, texts = str(data.parent), _texts(at)
    assert any("flat" in t for t in texts) and any("gradient" in t for t in texts)  # the walk sees the page
    leaks = [t for t in texts if base in t or str(data.parent.resolve()) in t]
    assert not leaks, leaks[0][:500]


def test_mixed_labels_offer_an_unknown_filter(roots):
    from xai_core.batch import open_run

    data, runs = roots
    run = open_run(runs / "first")
    run.table.loc[run.table.index[:2], "correct"] = None
    assert runs_view.correct_options(run) == ["all", "correct", "wrong", "unknown"]
    unknown = runs_view.filtered(run, [], "unknown", [], None, None)
    wrong = runs_view.filtered(run, [], "wrong", [], None, None)
    assert len(unknown) == 2 and unknown["correct"].isna().all()
    assert wrong["correct"].notna().all() and not wrong["correct"].any()
