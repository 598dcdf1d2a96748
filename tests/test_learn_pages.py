"""The Learn page (every lesson, the cards, a scripted quiz) and the Explain page's present/pin/link features under
AppTest: real scripts, the bundled model."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import xai_core as xc
from ui import links
from ui import quiz as quiz_view
from xai_core import images
from xai_core.lessons import quiz

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _q(at: AppTest, key: str) -> list[str]:
    v = at.query_params.get(key)
    return list(v) if isinstance(v, list) else [v]


def _learn(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params.update(query or {})
    at.session_state["l4_masks"] = 50  # the smallest settings before the first run of each lesson
    at.session_state["l4_samples"] = 50
    at.session_state["l1_samples"] = 2
    at.switch_page("views/learn.py").run()
    _ok(at)
    return at


def test_every_lesson_draws_on_the_real_model_and_links_to_itself():
    at = _learn()
    assert at.radio(key="lesson").value == "shattered"
    assert len(at.metric) == 2 and _q(at, "lesson") == ["shattered"]
    at.radio(key="lesson").set_value("ig_path").run()
    _ok(at)
    labels = [m.label for m in at.metric]
    assert labels == ["Σ attributions", "f(x) − f(x′)", "Completeness gap"] and len(at.get("plotly_chart")) == 1
    assert "integrated gradients" in str(at.table[0].value)  # the 1 − ReLU(1 − x) example
    gap = next(m for m in at.metric if m.label == "Completeness gap").value
    assert float(gap.rstrip("%")) < 5 and any("The gap is under 5%" in c.value for c in at.caption)  # the defaults
    at.radio(key="l2_baseline").set_value("black")
    at.radio(key="l2_rule").set_value("midpoint")
    at.slider(key="l2_steps").set_value(16).run()
    _ok(at)
    assert any("The gap is over 5%" in c.value for c in at.caption)  # few equal steps: the text says why
    for lesson_id, charts in (("cam", 0), ("perturbation", 0), ("pitfalls", 1)):
        at.radio(key="lesson").set_value(lesson_id).run()
        _ok(at)
        assert _q(at, "lesson") == [lesson_id] and len(at.get("plotly_chart")) == charts
    rho = {m.label.split(":")[0]: float(m.value) for m in at.metric}  # the random logit layer, ρ beside the maps
    assert rho["Guided Backprop"] > 0.9 and rho["Gradient (saliency)"] < 0.5, rho
    assert any("Random scattered pixels beat the blocky random map" in c.value for c in at.caption)
    at.toggle(key="l5_shared").set_value(True).run()
    _ok(at)
    at.radio(key="lesson").set_value("cam").run()
    at.toggle(key="l3_relu").set_value(False).run()
    _ok(at)
    assert any("Weighted sum without the ReLU" in str(i.proto) for i in at.get("image"))


def test_local_vs_global_lesson_shows_one_map_and_the_concepts_crops_on_the_lab_cnn():
    at = _learn({"lesson": "local_global"})  # the sidebar keeps the bundled model: the lesson uses the lab CNN
    assert at.radio(key="lesson").value == "local_global" and _q(at, "lesson") == ["local_global"]
    at.slider(key="l6_rank").set_value(3).run()
    _ok(at)
    images = at.main.get("image")
    assert len(images) == 2 and len(images[1].proto.imgs) == 8  # the map; the top concept's 8 crops
    assert any("of the map lies on the tag" in str(i.proto) for i in images)
    assert any("crops lie on a tag" in c.value for c in at.caption)
    assert any("*where*" in m.value and "*what*" in m.value for m in at.markdown)
    at.number_input(key="l6_which").set_value(3).run()
    _ok(at)
    at.radio(key="lesson").set_value("cam").run()  # the other lessons still draw on the sidebar's model
    _ok(at)
    assert any("Explaining" in c.value for c in at.caption)


def test_deep_link_opens_the_lesson_and_bad_ids_are_ignored():
    assert _learn({"lesson": "cam"}).radio(key="lesson").value == "cam"
    assert _learn({"lesson": "../etc"}).radio(key="lesson").value == "shattered"


def test_taxonomy_table_and_cards_from_the_registry():
    at = _learn()
    at.segmented_control(key="learn_section").set_value("Methods and cards").run()
    _ok(at)
    assert len(at.dataframe[0].value) == len(xc.list_explainers())
    at.selectbox(key="card_pick").set_value("integrated_gradients").run()
    assert at.get("latex") and "Sundararajan" in " ".join(m.value for m in at.markdown)


def _expected_maps() -> list[xc.Explanation]:
    wb = xc.Workbench(xc.load_model("efficientnet_lite0"))
    out = []
    for sample, method, _ in quiz_view.QUESTIONS:
        image = images.downscale(images.load_sample(sample), 1024)
        out.append(wb.explain(image, xc.ExplainRequest.make(method, int(wb.probabilities(image).argmax()))))
    return out


def test_scripted_quiz_is_scored_per_explainer():
    expected = _expected_maps()
    at = _learn()
    at.segmented_control(key="learn_section").set_value("Predict, then reveal").run()
    _ok(at)
    boxes = []
    for i, ((_sample, method, kind), e) in enumerate(zip(quiz_view.QUESTIONS, expected, strict=True)):
        h, w = e.map.shape
        if kind == "box":  # the left half of the image
            at.slider(key=f"q{i}_x").set_value((0, w // 2))
            at.slider(key=f"q{i}_y").set_value((0, h))
            boxes.append(quiz.box_iou((0, 0, w // 2, h), e.map, e.signed))
        else:  # right for Grad-CAM's question, wrong for the gradient's
            options = at.radio(key=f"q{i}_guess").options
            wrong = next(o for o in options if o != e.class_name)
            at.radio(key=f"q{i}_guess").set_value(e.class_name if method == "gradcam" else wrong)
        at.button(key="quiz_reveal").click().run()
        _ok(at)
        at.button(key="quiz_next").click().run()
        _ok(at)
    table = at.dataframe[0].value.set_index("explainer")
    assert table.loc["gradcam", "mean IoU"] == pytest.approx(boxes[0], abs=1e-9)
    assert table.loc["gradient", "mean IoU"] == pytest.approx(boxes[1], abs=1e-9)
    assert table.loc["gradcam", "class accuracy"] == 1.0 and table.loc["gradient", "class accuracy"] == 0.0
    assert list(table["questions"]) == [2.0, 2.0]


def test_url_view_is_validated():
    view = links.parse_view("gradcam,nope,rise,rise", ["rise.masks=500", "rise.masks=abc", "rise.cells=99999",
                                                       "gradient.reduction=l2", "nope.x=1", "rise.evil"], "12")
    assert view == {"explainers": ["gradcam", "rise"], "params": {"gradcam": {}, "rise": {"masks": 500}}, "seed": 12}
    assert links.parse_view("", [], "-3") == {"explainers": [], "params": {}}


def test_explain_link_restores_view_then_pin_edit_and_present():
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params.update({"explainers": "gradient,smoothgrad", "p": "smoothgrad.samples=3", "seed": "4",
                            "image": "0" * 24})
    at.run()
    _ok(at)
    assert at.multiselect(key="explainers").value == ["gradient", "smoothgrad"]
    assert at.number_input(key="seed").value == 4
    assert at.slider(key="param:efficientnet_lite0:smoothgrad:samples").value == 3
    assert any("upload the same image again" in w.value for w in at.warning)  # the link named an unknown upload
    assert _q(at, "p") == ["smoothgrad.samples=3"] and _q(at, "seed") == ["4"]
    assert at.get("download_button") and len(at.get("download_button")) == 3  # grid, report, raw maps
    at.button(key="pin").click().run()
    at.selectbox(key="edit_kind").set_value("occlude").run()
    _ok(at)
    assert "Pinned" in at.subheader[0].value and any("difference" in str(i.proto) for i in at.get("image"))
    at.toggle(key="present").set_value(True).run()
    _ok(at)
    assert _q(at, "present") == ["1"]
    assert any("stSidebar" in m.value for m in at.markdown)  # the CSS that hides the sidebar and the controls
    assert at.session_state["xai_choice"]["seed"] == 4
