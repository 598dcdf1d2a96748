"""The worst uploads through the real upload widgets (AppTest): one error sentence, no exception element, no
process started, and the page keeps working with a valid file afterwards. The files are generated here."""

from __future__ import annotations

import subprocess

import hostile
import pytest
from streamlit.testing.v1 import AppTest
from test_pages import APP, _png


def _app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["explainers"] = ["gradcam"]  # one cheap map keeps these tests short
    at.run()
    assert not at.exception, at.exception
    return at


def _one_error(at: AppTest, *words: str) -> str:
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1, errors
    assert all(w.lower() in errors[0].lower() for w in words), errors[0]
    assert "Traceback" not in errors[0] and "\n" not in errors[0].strip()
    return errors[0]


@pytest.fixture
def no_processes(monkeypatch):
    """Fail loudly if anything tries to start a process while the test runs (Ghostscript for an EPS, say)."""
    started: list[object] = []

    def refuse(*args, **kwargs):
        started.append(args)
        raise AssertionError(f"a process was started: {args[:1]}")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    yield started
    assert not started, started


@pytest.mark.parametrize("kind", ["eps", "dos_eps", "pdf", "svg_bare"])
def test_document_named_png_is_refused_without_a_process_then_a_real_image_gives_maps(kind, no_processes):
    make, what = hostile.DOCUMENTS[kind]
    at = _app()
    at.sidebar.radio(key="image_source").set_value("Upload").run()
    at.sidebar.file_uploader(key="image_upload").upload("photo.png", make(), "image/png").run()
    _one_error(at, what.split("/")[0])
    at.sidebar.file_uploader(key="image_upload").upload("astronaut.png", _png(), "image/png").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.session_state["xai_last_image"][1] == "astronaut.png"
    assert len(at.get("plotly_chart")) == 2  # top-5 + the Grad-CAM map of the valid image


def test_torch_zip_bomb_checkpoint_is_one_error_and_the_app_falls_back():
    at = _app()
    at.sidebar.selectbox(key="model_choice").set_value("own").run()
    at.sidebar.file_uploader(key="own_ckpt").upload("bomb.pth", hostile.torch_bomb(3500), "application/octet-stream")
    at.run()
    _one_error(at, "compress")
    assert len(at.get("plotly_chart")) == 2  # the bundled model still explains


def test_deep_json_labels_are_one_error():
    import io

    import torch

    from xai_core.models.bundled import build_lite0

    buf = io.BytesIO()
    torch.save(build_lite0(3).state_dict(), buf)
    at = _app()
    at.sidebar.selectbox(key="model_choice").set_value("own").run()
    at.sidebar.selectbox(key="own_arch").set_value("efficientnet_lite0")
    at.sidebar.number_input(key="own_classes").set_value(3)
    at.sidebar.file_uploader(key="own_ckpt").upload("mine.pth", buf.getvalue(), "application/octet-stream")
    at.sidebar.file_uploader(key="own_labels").upload("labels.json", hostile.deep_json(100_000), "application/json")
    at.run()
    _one_error(at, "deep")


def test_own_data_zip_bomb_with_lying_header_is_one_error():
    at = _app()
    at.switch_page("views/lab.py").run()
    at.button_group(key="lab_part").set_value("own").run()
    at.file_uploader(key="own_zip").upload("data.zip", hostile.bomb_zip("cats/001.png", 8, 2048, lie=True),
                                           "application/zip").run()
    _one_error(at, "inflates to more than 64 MB")


def test_evaluation_set_bzip2_bomb_then_hostile_box_csv_are_one_error_each():
    at = _app()
    at.switch_page("views/evaluate.py").run()
    at.radio(key="set_source").set_value("Upload a zip").run()
    at.file_uploader(key="set_zip").upload("set.zip", hostile.bomb_zip("a/001.png", 12, 4, lie=True),
                                          "application/zip").run()
    _one_error(at, "inflates to more than 64 MB")
    at.file_uploader(key="set_zip").upload("set.zip", hostile.raw_zip([hostile.Entry("a/001.png", _png())]),
                                          "application/zip")
    at.file_uploader(key="set_boxes").upload("boxes.csv", b"filename,x0,y0,x1,y1\n001.png,1e400,0,nan,=cmd()\n",
                                            "text/csv").run()
    _one_error(at, "Box CSV line 2")
