"""The sidebar's "Your own model": pick the format, upload, see the capability matrix and a top-5 before any
explanation; a hostile folder is one sentence and the app keeps the bundled model."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest
from test_own_models import _hf_vit, hf_zip
from test_own_models_hostile import VIT, _zip
from test_pages import APP

from ui import escape

pytest.importorskip("transformers")


def _own(fmt: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["explainers"] = ["gradcam"]
    at.run()
    at.sidebar.selectbox(key="model_choice").set_value("own").run()
    at.sidebar.radio(key="own_format").set_value(fmt).run()
    assert not at.exception, at.exception
    return at


def test_hugging_face_folder_shows_capabilities_and_top5_then_explains():
    at = _own("huggingface")
    at.sidebar.file_uploader(key="own_hf").upload("my_vit.zip", hf_zip(_hf_vit()), "application/zip").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(escape.markdown("my_vit.zip") in s.value for s in at.sidebar.success)  # shown literally
    captions = [c.value for c in at.sidebar.caption]
    top5 = next(c for c in captions if c.startswith("Top-5 on this image"))
    assert all(name in top5 for name in ("cat", "dog", "eel"))
    works = next(c for c in captions if c.startswith("✅"))
    assert "Attention rollout" in works and "LeGrad" in works and "Grad-CAM" in works
    assert any(c.startswith("— **LRP**") and "LayerNorm" in c for c in captions)
    assert len(at.get("plotly_chart")) >= 2  # the page's top-5 and the Grad-CAM map of the uploaded ViT


def test_hostile_folder_is_one_error_and_the_bundled_model_stays():
    at = _own("huggingface")
    evil = {**VIT, "auto_map": {"AutoModelForImageClassification": "evil.Model"}}
    at.sidebar.file_uploader(key="own_hf").upload("evil.zip", _zip({"config.json": json.dumps(evil).encode()}),
                                                  "application/zip").run()
    errors = [e.value for e in at.error]
    assert not at.exception and len(errors) == 1 and "auto_map" in errors[0], errors
    assert any("bundled" in c.value for c in at.sidebar.caption)
