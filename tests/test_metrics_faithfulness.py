"""The faithfulness probes (ROAD, faithfulness correlation, infidelity, Average Drop / Increase, PIC) on a model that
only sees a planted patch: the oracle map beats a random map beats the anti-oracle; scores do not depend on which maps
are evaluated together (batching); every probe of every map runs in one batched engine loop; and the set runner, its
table and CSV carry every new metric by its registry metadata alone."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from helpers import PATCH_COLS, PATCH_ROWS, SIZE, random_image

from xai_core import batch, metrics
from xai_core.metrics import Item, evaluate

PROBES = ["road_morf", "road_lerf", "faithfulness_correlation", "infidelity", "average_drop", "confidence_increase",
          "sic", "aic"]
SMALL = {"road_morf": {"steps": 4}, "road_lerf": {"steps": 4}, "faithfulness_correlation": {"subsets": 30,
                                                                                           "subset_size": 40},
         "infidelity": {"perturbations": 16}}


@pytest.fixture
def bright_patch_image() -> np.ndarray:
    img = random_image(*SIZE, seed=3)
    img[PATCH_ROWS, PATCH_COLS] = 255  # bright evidence where the model looks
    return img


def oracle_maps() -> dict[str, np.ndarray]:
    oracle = np.zeros(SIZE, np.float32)
    oracle[PATCH_ROWS.start - 1:PATCH_ROWS.stop + 1, PATCH_COLS.start - 1:PATCH_COLS.stop + 1] = 0.5
    oracle[PATCH_ROWS, PATCH_COLS] = 1.0
    oracle += np.linspace(0, 1e-3, oracle.size, dtype=np.float32).reshape(SIZE)  # no ties
    return {"oracle": oracle, "random": metrics.reference_maps(np.zeros((*SIZE, 3), np.uint8), seed=1)[metrics.RANDOM],
            "anti-oracle": 1.0 - oracle}


def test_oracle_beats_random_beats_anti_oracle_on_every_probe(planted, bright_patch_image):
    r = evaluate(planted, bright_patch_image, oracle_maps(), metrics=PROBES, params=SMALL)
    v = {m: [r.values[n][m] for n in ("oracle", "random", "anti-oracle")] for m in PROBES}
    assert v["road_morf"][0] < v["road_morf"][1] < v["road_morf"][2]
    assert v["road_lerf"][0] > v["road_lerf"][1] > v["road_lerf"][2]
    assert v["faithfulness_correlation"][0] > 0.8 > v["faithfulness_correlation"][1] > -0.8 > v[
        "faithfulness_correlation"][2]
    assert v["infidelity"][0] < v["infidelity"][1] and v["infidelity"][0] < v["infidelity"][2]
    assert v["average_drop"][0] < v["average_drop"][1] < v["average_drop"][2]
    assert v["sic"][0] > v["sic"][1] > v["sic"][2]
    assert all(x in (0.0, 1.0) for x in v["confidence_increase"])
    # The planted model stays on its class when the image is blurred: AIC is undefined, and the report says why.
    assert all(math.isnan(x) for x in v["aic"]) and sum("AIC" in n for n in r.notes) == 3
    # One batched loop: the unperturbed input once, then 4 + 4 + 30 + 16 + 1 (drop and increase share it) + 15 (SIC
    # and AIC share theirs) inputs per map.
    assert r.passes == 1 + 3 * (4 + 4 + 30 + 16 + 1 + 15)
    assert {k for k in r.curves} == {(n, m) for n in r.maps for m in ("road_morf", "road_lerf")}
    assert r.curves[("oracle", "road_morf")].xs.tolist() == [0.2, 0.4, 0.6, 0.8]


def test_probe_values_do_not_depend_on_the_other_maps_evaluated(planted, bright_patch_image):
    maps = oracle_maps()
    together = evaluate(planted, bright_patch_image, maps, metrics=PROBES, params=SMALL)
    for name, m in maps.items():
        alone = evaluate(planted, bright_patch_image, {name: m}, metrics=PROBES, params=SMALL)
        for mid in PROBES:
            a, b = together.values[name][mid], alone.values[name][mid]
            # Probabilities and correlations are O(1): float32 batch round-off is far below 1e-6. Infidelity squares
            # logit differences of ~1e-3, whose float32 round-off is ~1e-4 of them.
            tol = {"rel": 1e-4} if mid == "infidelity" else {"abs": 1e-6}
            assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, **tol), (name, mid)


def test_probe_parameters_are_validated_before_any_model_call(planted, bright_patch_image):
    with pytest.raises(metrics.get_metric("road_morf").error, match="Imputation noise must be between 0.0 and 1.0"):
        evaluate(planted, bright_patch_image, oracle_maps(), metrics=["road_morf"], params={"road_morf": {"noise": 2}})
    r = evaluate(planted, bright_patch_image, {"m": oracle_maps()["oracle"]}, metrics=["faithfulness_correlation"],
                 params={"faithfulness_correlation": {"subsets": 5, "subset_size": 5000}})
    assert "cut to 512 pixels" in r.notes[0] and math.isfinite(r.values["m"]["faithfulness_correlation"])
    flat = evaluate(planted, bright_patch_image, {"flat": np.ones(SIZE, np.float32)}, metrics=["faithfulness_correlation"],
                    params={"faithfulness_correlation": {"subsets": 5}})
    assert math.isnan(flat.values["flat"]["faithfulness_correlation"]) and "same on every subset" in flat.notes[0]


def test_the_set_runner_table_and_csv_carry_the_new_metrics(planted, bright_patch_image):
    items = [Item("a", bright_patch_image), Item("b", random_image(*SIZE, seed=9))]
    chosen = ["road_morf", "average_drop", "sparseness", "sensitivity_max"]
    rows, fails = batch.evaluate_set(planted, items, [("gradient", {})], metrics=chosen,
                                     params={"road_morf": {"steps": 3}, "sensitivity_max": {"samples": 2}})
    assert not fails and len(rows) == 2 * (1 + 3)  # per image: the explainer and the three reference maps
    columns = [metrics.get_metric(m).column for m in chosen]
    assert columns == ["ROAD MoRF ↓", "Avg drop ↓", "Sparseness ↑", "Sensitivity ↓"]
    explained = [r for r in rows if r["map"] == "Gradient (saliency)"]
    assert all(math.isfinite(r[c]) for r in explained for c in columns)
    # The reference maps have no explainer to re-run: no sensitivity, every other column scored.
    references = [r for r in rows if r["map"] != "Gradient (saliency)"]
    assert all(math.isnan(r["Sensitivity ↓"]) and math.isfinite(r["ROAD MoRF ↓"]) for r in references)
    assert rows_header(metrics.rows_csv(rows)) == ["image", "class", "map", *columns]
    summary = metrics.summarise(rows)
    assert {r["map"] for r in summary} == {"Gradient (saliency)", metrics.RANDOM, metrics.CENTRE, metrics.EDGES}
    assert next(r for r in summary if r["map"] == metrics.RANDOM)["Sensitivity ↓"] == "—"


def rows_header(csv_text: str) -> list[str]:
    return csv_text.splitlines()[0].split(",")


def test_every_metric_states_direction_paper_needs_and_passes():
    for m in metrics.list_metrics():
        assert m.column[-1] in "↑↓" and "20" in m.reference and m.passes and m.requires, m.id
    assert metrics.get_metric("pointing_game").requires == "a box or mask of the object"
    assert metrics.get_metric("sparseness").requires == "the map alone"
    assert "other images" in metrics.get_metric("focus").requires
    assert "re-run" in metrics.get_metric("sensitivity_max").requires
    new = ["road_morf", "road_lerf", "faithfulness_correlation", "infidelity", "average_drop", "confidence_increase",
           "sic", "aic", "sparseness", "complexity", "sensitivity_max", "focus"]
    assert all(not metrics.get_metric(m).default for m in new)  # opt-in: the defaults stay the fast classics


def test_the_evaluate_page_runs_new_metrics_picked_from_its_menu():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=300)
    at.run()
    at.session_state["eval_explainers"] = ["gradient"]
    at.session_state["eval_metrics"] = ["road_morf", "sparseness", "sensitivity_max", "focus"]
    for key, value in (("road_morf:steps", 2), ("sensitivity_max:samples", 2), ("focus:mosaics", 1)):
        at.session_state[f"metric:{key}"] = value  # small settings before the widgets exist
    at.switch_page("views/evaluate.py").run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    table = at.dataframe[0].value
    assert {"ROAD MoRF ↓", "Sparseness ↑", "Sensitivity ↓", "Focus ↑"} <= set(table.columns)
    explainer = table[table["kind"] == "explainer"].iloc[0]
    assert all(np.isfinite(explainer[c]) for c in ("ROAD MoRF ↓", "Sparseness ↑", "Sensitivity ↓", "Focus ↑"))
    assert any("not possible for Random map" in c.value for c in at.caption)  # why the references have no value
    assert len(at.get("plotly_chart")) == 2  # the box figure and ROAD's curve
