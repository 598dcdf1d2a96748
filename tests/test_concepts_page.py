"""The Concepts page under AppTest: it opens, discovers the lab CNN's concepts in the background (bars, crops, maps),
keeps a concept's name, shows P-ClArC's before/after, says so in one sentence when the set is too small, and discovers
from an uploaded zip of images (a hostile zip is one sentence)."""

from __future__ import annotations

import io
import time
import zipfile

import hostile
import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest
from test_pages import APP, _no_traceback

PAGE = "views/concepts.py"


def _page(model: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    if model:
        at.sidebar.selectbox(key="model_choice").set_value(model).run()
    at.switch_page(PAGE).run()
    _no_traceback(at)
    return at


def _finish(at: AppTest, key: str) -> None:
    job = at.session_state[key]
    assert job.wait(120).done and job.error is None and not job.cancelled, job.error
    at.run()
    _no_traceback(at)


def test_lab_cnn_concepts_bars_crops_names_and_pclarc():
    at = _page("lab_horse_cnn")
    assert not at.error, [e.value for e in at.error]
    assert any("pick a class" in i.value.lower() for i in at.info)
    ctx = at.session_state["xai_context"]
    at.selectbox(key=f"concepts_target:{ctx.model_key}:{ctx.digest}").set_value(1).run()  # horse
    at.slider(key="concepts_rank").set_value(3)
    at.slider(key="concepts_n").set_value(60).run()
    at.button(key="concepts_job_start").click().run()
    _finish(at, "concepts_job")
    assert not at.error, [e.value for e in at.error]
    assert any("Discovering concepts finished" in c.value for c in at.caption)
    bars = at.get("plotly_chart")
    assert len(bars) == 1
    names = at.text_input
    assert len(names) == 3  # one per concept
    imgs = at.main.get("image")
    assert len(imgs) == 6  # per concept: its crops (one list) and its map on the current image
    assert [len(i.proto.imgs) for i in imgs[::2]] == [6, 6, 6]  # 6 reference crops each
    first = names[0]
    first.set_value("the corner tag").run()
    _no_traceback(at)
    assert "the corner tag" in at.get("plotly_chart")[0].proto.spec  # the bars' label
    assert at.text_input[0].value == "the corner tag"
    assert any("is *the corner tag*" in c.value for c in at.caption)  # the first (most important) concept is picked
    at.button(key="concepts_clarc_job_start").click().run()
    _finish(at, "concepts_clarc_job")
    table = at.dataframe[-1].value
    assert list(table.columns) == ["number", "before", "after P-ClArC", "change"]
    assert "non-horses called horse once tagged" in set(table["number"]) and len(table) == 4
    # the name is kept for the session: another page and back
    at.switch_page("views/methods.py").run()
    at.switch_page(PAGE).run()
    _no_traceback(at)
    assert at.text_input[0].value == "the corner tag"


def test_too_small_set_is_one_sentence():
    at = _page()  # the bundled ImageNet model: the set is the 7 sample images
    assert any("7 bundled sample images; discovery needs at least 10 images, so this set is too small" in c.value
               for c in at.caption)
    at.slider(key="concepts_rank").set_value(2).run()
    at.button(key="concepts_job_start").click().run()
    job = at.session_state["concepts_job"]
    assert job.wait(120).done
    at.run()
    _no_traceback(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "has 7 images" in errors[0] and "at least" in errors[0], errors


def test_discovery_shows_progress_and_stops():
    at = _page("lab_horse_cnn")
    at.slider(key="concepts_rank").set_value(10)
    at.slider(key="concepts_n").set_value(400).run()
    at.button(key="concepts_job_start").click().run()
    job = at.session_state["concepts_job"]
    assert not job.done and at.get("progress")
    at.button(key="concepts_job_stop").click().run()
    assert job.wait(120).done and job.cancelled
    at.run()
    _no_traceback(at)
    assert any("Discovering concepts was stopped" in w.value for w in at.warning)
    assert not at.text_input  # no result drawn


def _zip_of_images(n: int = 12, side: int = 48) -> bytes:
    """``n`` small generated images (a coloured square on noise, in different places) in a folder, zipped."""
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(n):
            img = rng.integers(0, 90, (side, side, 3), dtype=np.uint8)
            y, x = rng.integers(0, side // 2, 2)
            img[y:y + side // 2, x:x + side // 2] = (220, 40 + 10 * i, 30)
            png = io.BytesIO()
            Image.fromarray(img).save(png, format="PNG")
            z.writestr(f"mine/{i:03d}.png", png.getvalue())
    return buf.getvalue()


def _upload(at: AppTest, data: bytes) -> None:
    at.radio(key="concepts_set:False").set_value("zip").run()
    at.file_uploader(key="concepts_zip").upload("set.zip", data, "application/zip").run()
    _no_traceback(at)


def test_uploaded_zip_of_twelve_images_gives_concept_bars_on_the_bundled_model():
    at = _page()  # the bundled EfficientNet
    at.radio(key="concepts_set:False").set_value("zip").run()
    assert any("Upload a zip of at least 10 images" in i.value for i in at.info)
    assert not any(b.key == "concepts_job_start" for b in at.button)
    _upload(at, _zip_of_images())
    assert not at.error, [e.value for e in at.error]
    assert any("the 12 images of the uploaded zip; discovery needs at least 10 images." in c.value for c in at.caption)
    at.slider(key="concepts_rank").set_value(2).run()
    start = time.monotonic()
    at.button(key="concepts_job_start").click().run()
    _finish(at, "concepts_job")
    assert time.monotonic() - start < 30
    assert not at.error, [e.value for e in at.error]
    assert len(at.get("plotly_chart")) == 1 and len(at.text_input) == 2
    assert any("uploaded zip" in c.value and "concepts of" in c.value for c in at.caption)
    assert at.session_state["concepts_job"].result.set.key.startswith("zip:")  # keyed on the zip's content digest


def test_hostile_zips_are_one_sentence_each():
    at = _page()
    # one good image is not a set: its skipped neighbour is a note, the size sentence says how many discovery needs
    one = _zip_of_images(1)
    mixed = hostile.raw_zip([hostile.Entry("mine/000.png", zipfile.ZipFile(io.BytesIO(one)).read("mine/000.png")),
                             hostile.Entry("mine/photo.png", b"%PDF-1.4 not an image at all" * 20)])
    _upload(at, mixed)
    assert not at.error, [e.value for e in at.error]
    assert any("photo\\.png skipped" in c.value and "PDF document" in c.value for c in at.caption)
    assert any("the 1 images of the uploaded zip; discovery needs at least 10 images, so this set is too small."
               in c.value for c in at.caption)
    not_image = hostile.raw_zip([hostile.Entry("mine/photo.png", b"%PDF-1.4 not an image at all" * 20)])
    _upload(at, not_image)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "could be read" in errors[0] and "PDF document" in errors[0], errors
    assert not any(b.key == "concepts_job_start" for b in at.button)  # no set, nothing to start
    _upload(at, hostile.bomb_zip("mine/001.png", 8, 2048, lie=True))
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "inflates to more than" in errors[0] and "\n" not in errors[0].strip(), errors
