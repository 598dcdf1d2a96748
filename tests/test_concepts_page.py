"""The Concepts page under AppTest: it opens, discovers the lab CNN's concepts in the background (bars, crops, maps),
keeps a concept's name (in the workspace's database: back after a restart, never in another workspace), shows P-ClArC's
and A-ClArC's before/after, runs TCAV on a zip of concept images, puts it all in the report, says so in one sentence
when a set is too small or the database cannot be reached, and discovers from an uploaded zip of images (a hostile zip
is one sentence). The database is a SQLite file in the test's folder."""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile

import hostile
import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest
from test_pages import APP, _no_traceback

from ui import concepts_correct, concepts_report
from xai_core import lab, report, store

PAGE = "views/concepts.py"


@pytest.fixture(autouse=True)
def database(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'xai.db'}"
    monkeypatch.setenv("XAI_DB_URL", url)
    monkeypatch.delenv("XAI_WORKSPACE", raising=False)
    yield url
    store.dispose(url)


def _page(model: str | None = None, workspace: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    if workspace:
        at.query_params["ws"] = workspace
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


def _discover_lab(at: AppTest) -> None:
    """Horse concepts (3) of the lab CNN from the horse images among 60 of the horse-watermark set."""
    ctx = at.session_state["xai_context"]
    at.selectbox(key=f"concepts_target:{ctx.model_key}:{ctx.digest}").set_value(1).run()  # horse
    at.slider(key="concepts_rank").set_value(3)
    at.slider(key="concepts_n").set_value(60).run()
    at.button(key="concepts_job_start").click().run()
    _finish(at, "concepts_job")


def _spy_reports(monkeypatch) -> list[str]:
    """The HTML of every concepts report the page offers (built from the same data the download button gets)."""
    built: list[str] = []
    original = concepts_report.report_download

    def spy(data, key, file_name, memo_key=None):  # noqa: ANN001, ANN202
        built.append(report.build_html(data() if callable(data) else data))
        original(data, key, file_name, memo_key)

    monkeypatch.setattr(concepts_report, "report_download", spy)
    return built


def test_lab_cnn_concepts_bars_crops_names_pclarc_aclarc_and_report(monkeypatch):
    monkeypatch.setattr(concepts_correct, "ACLARC_N", 100)  # the flow, not the numbers: 100 images per lab number
    monkeypatch.setattr(concepts_correct, "ACLARC_TRAIN_N", 600)  # and a short fine-tune (the numbers: test_concepts_aclarc)
    monkeypatch.setattr(concepts_correct, "ACLARC_EPOCHS", 1)
    monkeypatch.setattr(concepts_correct, "CLARC_N", 100)
    reports = _spy_reports(monkeypatch)
    at = _page("lab_horse_cnn")
    assert not at.error, [e.value for e in at.error]
    assert any("pick a class" in i.value.lower() for i in at.info)
    _discover_lab(at)
    assert not at.error, [e.value for e in at.error]
    assert any("Discovering concepts finished" in c.value for c in at.caption)
    bars = at.get("plotly_chart")
    assert len(bars) == 1
    names = at.text_input
    assert len(names) == 3  # one per concept
    imgs = at.main.get("image")
    assert len(imgs) == 6  # per concept: its crops (one list) and its map on the current image
    assert [len(i.proto.imgs) for i in imgs[::2]] == [6, 6, 6]  # 6 reference crops each
    names[0].set_value("the corner tag").run()
    _no_traceback(at)
    at.text_input[1].set_value("<img src=x onerror=alert(1)>\u202e\x00").run()  # a hostile name: cleaned, escaped
    assert "the corner tag" in at.get("plotly_chart")[0].proto.spec  # the bars' label
    assert at.text_input[0].value == "the corner tag"
    assert any("is *the corner tag*" in c.value for c in at.caption)  # the first (most important) concept is picked
    at.button(key="concepts_clarc_job_start").click().run()
    _finish(at, "concepts_clarc_job")
    table = at.dataframe[-1].value
    assert list(table.columns) == ["number", "before", "after P-ClArC", "change"]
    assert "non-horses called horse once tagged" in set(table["number"]) and len(table) == 4
    at.button(key="concepts_aclarc_job_start").click().run()  # next to P-ClArC: the lab CNN's A-ClArC
    _finish(at, "concepts_aclarc_job")
    assert not at.error, [e.value for e in at.error]
    table = at.dataframe[-1].value
    assert list(table.columns)[:3] == ["number", "before", "after A-ClArC"] and list(table.columns)[-1] == "change"
    assert {"test accuracy", "accuracy on horses without the tag", "non-horses called horse once tagged",
            "accuracy on tagged horses"} <= set(table["number"])
    assert all(v == "n/a" or v.endswith("%") for col in table.columns[1:-1] for v in table[col])
    # the report: names (escaped), shares, crops, both before/after tables; nothing loaded from the network
    html = reports[-1]
    assert "Concepts of “horse” at features" in html and "gradient × input on the concept coefficients" in html
    assert "the corner tag" in html and "&lt;img src=x onerror=alert(1)&gt;" in html and "<img src=x" not in html
    assert "\u202e" not in html and "\x00" not in html
    assert html.count('src="data:image/png;base64,') == 3  # one strip of crops per concept
    assert "P-ClArC: before and after removing the corner tag" in html
    assert "A-ClArC: before and after removing the corner tag" in html and "after A-ClArC" in html
    # the name is kept for the session: another page and back
    at.switch_page("views/methods.py").run()
    at.switch_page(PAGE).run()
    _no_traceback(at)
    assert at.text_input[0].value == "the corner tag"
    # ... and in the workspace's database: a restart (a new session, a new engine) with the same address gets it back
    workspace = at.query_params["ws"]
    assert len(workspace) == 24 and workspace not in html
    store.dispose()
    again = _page("lab_horse_cnn", workspace=workspace)
    _discover_lab(again)  # the same discovery (deterministic): its concepts have the same directions
    assert [t.value for t in again.text_input][:2] == ["the corner tag", "<img src=x onerror=alert(1)>"]
    # another workspace (another visitor of the same server) does not see them
    other = _page("lab_horse_cnn")
    _discover_lab(other)
    assert other.query_params["ws"] != workspace and [t.value for t in other.text_input] == ["", "", ""]
    namespace = "ws:" + hashlib.sha256(workspace.encode()).hexdigest()[:40]  # the database holds a digest, no token
    found = at.session_state["concepts_job"].result
    saved = store.names_for(namespace, found.model_digest, found.discovery.layer, 1)
    assert sorted(saved.values()) == ["<img src=x onerror=alert(1)>", "the corner tag"]


def test_unreachable_database_is_one_sentence_and_names_stay_for_the_session(monkeypatch):
    monkeypatch.setenv("XAI_DB_URL", "postgresql://xai:s3cret@127.0.0.1:1/xai")  # nothing listens on port 1
    at = _page("lab_horse_cnn")
    _discover_lab(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "cannot be used" in errors[0] and "this session only" in errors[0], errors
    assert "s3cret" not in errors[0]
    at.text_input[0].set_value("stripes").run()
    _no_traceback(at)
    assert at.text_input[0].value == "stripes" and "stripes" in at.get("plotly_chart")[0].proto.spec
    errors = [e.value for e in at.error]  # the failed write: still one sentence
    assert len(errors) == 1 and "cannot be used" in errors[0], errors


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
    keys = {b.key for b in at.button}
    assert "concepts_clarc_job_start" in keys and "concepts_aclarc_job_start" not in keys  # A-ClArC: the lab CNN's only
    at.button(key="concepts_clarc_job_start").click().run()  # P-ClArC on an ImageNet model: the carton rise too
    _finish(at, "concepts_clarc_job")
    assert not at.error, [e.value for e in at.error]
    numbers = list(at.dataframe[-1].value["number"])
    assert numbers[0].startswith("p(") and "ImageNet-W: p(carton) × with the watermark (median of 7 samples)" in numbers
    rise = at.dataframe[-1].value.set_index("number").loc["ImageNet-W: samples whose p(carton) the watermark raises"]
    assert rise["before"] == "7/7"  # measured in the lab: the watermark raises p(carton) on 7 of 7 samples


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


def _zip_of(pictures: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i, im in enumerate(pictures):
            png = io.BytesIO()
            Image.fromarray(im).save(png, format="PNG")
            z.writestr(f"concept/{i:03d}.png", png.getvalue())
    return buf.getvalue()


def _tagged(n: int) -> np.ndarray:
    """``n`` non-horse images of the horse-watermark set with the tag drawn on: a concept of the user's own."""
    return np.stack([lab.add_tag(im)[0] for im in lab.make_dataset(n, seed=5, horse_fraction=0.0).images])


def test_tcav_of_a_zip_of_concept_images_chart_sentence_and_report(monkeypatch):
    reports = _spy_reports(monkeypatch)
    at = _page("lab_horse_cnn")
    _discover_lab(at)
    at.file_uploader(key="concepts_tcav_zip").upload("tag.zip", _zip_of(_tagged(4)), "application/zip").run()
    _no_traceback(at)
    assert any("the 4 images of the uploaded zip (TCAV needs at least 10)" in c.value for c in at.caption)
    at.button(key="concepts_tcav_job_start").click().run()
    job = at.session_state["concepts_tcav_job"]
    assert job.wait(120).done
    at.run()
    _no_traceback(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "has 4 images" in errors[0] and "at least 10" in errors[0], errors
    at.file_uploader(key="concepts_tcav_zip").upload("tag.zip", _zip_of(_tagged(12)), "application/zip").run()
    at.slider(key="concepts_tcav_runs").set_value(3).run()
    assert any("3 random sets of 12 images from the horse-watermark set" in c.value for c in at.caption)
    at.button(key="concepts_tcav_job_start").click().run()
    _finish(at, "concepts_tcav_job")
    assert not at.error, [e.value for e in at.error]
    run = at.session_state["concepts_tcav_job"].result
    r = run.result
    assert r.target == 1 and r.layer == at.session_state["concepts_job"].result.discovery.layer and len(r.scores) == 3
    chart = next(c for c in at.get("plotly_chart") if "TCAV score of horse" in c.proto.spec)
    bars = [t for t in json.loads(chart.proto.spec)["data"] if t["type"] == "bar"]
    assert np.allclose([b["y"][0] for b in bars], [np.mean(r.scores), np.mean(r.random_scores)], atol=1e-9)
    sentence = next(m.value for m in at.markdown if "significant**" in m.value.lower())
    assert sentence.startswith("**Significant**" if r.significant else "**Not significant**")
    assert f"p = {r.p_value:.2g}" in sentence and "3 runs" in sentence
    html = reports[-1]
    assert "TCAV (your concept images against random sets)" in html and "the 12 images of the uploaded zip" in html
    # FastCAV (the mean difference) on the same sets: a second run, the session's table lists both
    at.radio(key="concepts_tcav_cav").set_value("fastcav").run()
    at.button(key="concepts_tcav_job_start").click().run()
    _finish(at, "concepts_tcav_job")
    fast = at.session_state["concepts_tcav_job"].result.result
    assert fast.cav_method == "fastcav" and len(fast.scores) == 3
    assert set(at.dataframe[-1].value["CAV"]) == {"logistic", "fastcav"}


def test_crp_channels_on_the_lab_cnn_bars_relmax_crops_conditional_maps_and_pclarc(monkeypatch):
    """The same page with CRP instead of CRAFT: the top channels by relevance share, each with its relevance
    maximisation crops and its conditional heatmap on the current image; a channel can be projected out (P-ClArC)."""
    monkeypatch.setattr(concepts_correct, "CLARC_N", 100)
    reports = _spy_reports(monkeypatch)
    at = _page("lab_horse_cnn")
    at.radio(key="concepts_how").set_value("crp").run()
    _discover_lab(at)
    assert not at.error, [e.value for e in at.error]
    found = at.session_state["concepts_job"].result
    assert found.sig[-1] == "crp" and len(found.discovery.concepts) == 3
    shares = [c.share for c in found.discovery.concepts]
    assert shares == sorted(shares, reverse=True) and all(s > 0 for s in shares)
    assert any("relevance maximisation" in c.value for c in at.caption)
    assert sum("conditional heatmap" in (i.proto.imgs[0].caption if i.proto.imgs else "") for i in at.main.get("image")) == 3
    assert len(at.get("plotly_chart")) == 1 and len(at.text_input) == 3
    at.button(key="concepts_clarc_job_start").click().run()
    _finish(at, "concepts_clarc_job")
    table = at.dataframe[-1].value
    assert list(table.columns) == ["number", "before", "after P-ClArC", "change"]
    html = reports[-1]
    assert "CRP: each channel" in html and "unexplained by the factorisation" not in html
