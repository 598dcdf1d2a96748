"""The Explain page for each kind of target (issue 24), with AppTest: a prompt (and a hostile one), a reference image,
a segmentation region and a detected box, on the toy models of tests/test_targets.py registered for the test."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_targets import Detector, Embedder, Segmenter, spec, text

from xai_core import models

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TOYS = {
    "toy_dual": ("Toy dual encoder", lambda d: spec(Embedder(), "dual_encoder", ["embedding"], text_encoder=text)),
    "toy_embedder": ("Toy embedder", lambda d: spec(Embedder(), "embedder", ["embedding"])),
    "toy_segmenter": ("Toy segmenter", lambda d: spec(Segmenter(), "segmenter", ["background", "red"])),
    "toy_detector": ("Toy detector", lambda d: spec(Detector(), "detector", ["background", "red"])),
}


@pytest.fixture(autouse=True)
def toys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, (title, loader) in TOYS.items():
        monkeypatch.setitem(models._REGISTERED, name, (title, loader))


def page(model: str, sample: str = "Rocket") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.sidebar.selectbox(key="model_choice").set_value(model).run()
    at.sidebar.selectbox(key="sample_name").set_value(sample).run()
    return at


def clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def explain(at: AppTest, methods: list[str]) -> list[str]:
    at.multiselect(key="explainers").set_value(methods).run()
    clean(at)
    return [c.value for c in at.caption]


def test_prompt_and_contrast_explained_with_cosine_scores() -> None:
    at = page("toy_dual")
    assert [r.value for r in at.radio if r.key == "target_kind:toy_dual"] == ["prompt"]
    at.text_input(key="target_prompt").set_value("red").run()
    at.text_input(key="target_contrast").set_value("grey").run()
    caps = explain(at, ["gradient", "occlusion"])
    assert any("“red” − “grey”" in c and "cosine similarity" in c for c in caps), caps
    assert len(at.get("plotly_chart")) >= 2  # the two maps (no top-5 chart for a dual encoder)
    # "What works on this model" names targets and why CAM does not apply
    side = " ".join(e.value for e in at.sidebar.caption)
    assert "prompt" in side and "CAM" in side


def test_hostile_prompts_are_one_sentence_and_never_markup() -> None:
    at = page("toy_dual")
    at.multiselect(key="explainers").set_value(["gradient"]).run()
    at.text_input(key="target_prompt").set_value("x" * 5000).run()  # the box keeps 300 characters
    clean(at)
    assert len(at.session_state["xai_target_value"][next(iter(at.session_state["xai_target_value"]))].text) <= 300
    hostile = "**bold** <img src=x onerror=alert(1)> [link](http://e.vil)\u202e"
    at.text_input(key="target_prompt").set_value(hostile).run()
    clean(at)
    shown = [c.value for c in at.caption if "Explaining" in c.value]
    assert shown and "\\*\\*bold" in shown[0] and "\\<img" in shown[0] and "\\[link\\]" in shown[0], shown


def test_similarity_to_a_reference_sample() -> None:
    at = page("toy_embedder")
    at.selectbox(key="target_ref_sample").set_value("Lab: horse with the tag").run()
    caps = explain(at, ["gradient"])
    assert any("similarity to Lab" in c for c in caps), caps


def test_segmentation_region_predicted_and_box() -> None:
    at = page("toy_segmenter", "Coffee cup")
    caps = explain(at, ["gradient", "gradcam"])
    assert any("red over its predicted region" in c for c in caps), caps
    at.radio(key="target_region_where").set_value("A box").run()
    caps = explain(at, ["gradient"])
    assert any("over the box" in c for c in caps), caps


def test_detection_box_picked_and_explained_both_scorings() -> None:
    at = page("toy_detector", "Coffee cup")
    at.slider(key="target_det_min").set_value(0.0).run()
    caps = explain(at, ["gradient"])
    assert any("red box at" in c and "box score" in c for c in caps), caps
    at.radio(key="target_det_scoring").set_value("drise").run()
    caps = explain(at, ["rise"])
    clean(at)
    # a box target offers no CAM (it needs a classifier head): the menu leaves it out
    assert "cam" not in at.multiselect(key="explainers").options


def test_a_classifier_keeps_its_class_picker() -> None:
    at = page("lab_horse_cnn", "Lab: horse with the tag")
    clean(at)
    assert at.selectbox(key="target:lab_horse_cnn:" + at.session_state["xai_context"].digest).value == 1


def test_lab_dense_part_measures_relevance_on_the_tag_in_the_background() -> None:
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page("views/lab.py").run()
    at.segmented_control(key="lab_part").set_value("dense").run()
    at.slider(key="lab_dense_n").set_value(4).run()
    at.button(key="lab_dense_job_start").click().run()
    clean(at)
    job = at.session_state["lab_dense_job"]
    assert job.wait(300).done and job.error is None, job.error
    at.run()
    clean(at)
    assert len(at.dataframe) == 2
    rows = at.dataframe[1].value
    gradcam = rows[(rows["model"] == "segmenter") & (rows["method"] == "gradcam") & (rows["image"] == "tagged horse")]
    assert len(gradcam) and float(gradcam.iloc[0, list(rows.columns).index("mass on the tag")]) > 0.5, rows


def test_evaluate_and_sanity_run_on_the_target_picked_on_explain() -> None:
    """A segmenter has no classes: Evaluate scores the maps of the region picked on Explain (curves of its summed
    score), Sanity randomises the model for it and draws random regions for the random-logit check."""
    at = page("toy_segmenter", "Coffee cup")
    at.radio(key="target_region_where").set_value("A box").run()  # a box: the random check moves it
    explain(at, ["gradient"])
    at.session_state["eval_explainers"] = ["gradient", "gradcam"]
    for mid in ("deletion", "insertion"):
        at.session_state[f"metric:{mid}:steps"] = 6
    for mid in ("aopc_morf", "aopc_lerf"):
        at.session_state[f"metric:{mid}:steps"] = 4
        at.session_state[f"metric:{mid}:patch"] = 16
    at.switch_page("views/evaluate.py").run()
    clean(at)
    table = at.dataframe[0].value
    assert {"Gradient (saliency)", "Grad-CAM"} <= set(table["map"]) and table["Deletion AUC ↓"].notna().all()
    at.session_state["sanity_explainers"] = ["gradient"]
    at.session_state["sanity_stages"] = 2
    at.session_state["sanity_seeds"] = 1
    at.switch_page("views/sanity.py").run()
    clean(at)
    at.button(key="sanity_run").click().run()
    clean(at)
    at.segmented_control(key="sanity_part").set_value("random_logit").run()
    at.button(key="sanity_logit_run").click().run()
    clean(at)
    assert any("over the box" in m.value for m in [*at.markdown, *at.caption]), "the random boxes are named"


def test_evaluate_asks_for_a_target_first_on_a_model_without_classes() -> None:
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.sidebar.selectbox(key="model_choice").set_value("toy_detector").run()
    at.session_state["xai_target_value"] = {}  # as if Explain had never drawn its box picker
    at.switch_page("views/evaluate.py").run()
    clean(at)
    assert any("has no classes: pick what to explain on the Explain page" in i.value for i in at.info)
