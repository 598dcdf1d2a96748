"""The session layer under AppTest: choices survive page changes, URL state restores a new session, and two
sessions keep their own run options and images."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest
from test_pages import APP, _png


def _app(**state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["explainers"] = ["gradcam"]
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _ctx(at: AppTest):
    return at.session_state["xai_context"]


def test_upload_model_and_target_survive_every_page():
    at = _app()
    at.sidebar.selectbox(key="model_choice").set_value("lab_horse_cnn").run()
    at.sidebar.radio(key="image_source").set_value("Upload").run()
    at.sidebar.file_uploader(key="image_upload").upload("astronaut.png", _png(), "image/png").run()
    ctx = _ctx(at)
    other = 1 - int(at.selectbox(key=f"target:{ctx.model_key}:{ctx.digest}").value)  # the class that is not top-1
    at.selectbox(key=f"target:{ctx.model_key}:{ctx.digest}").set_value(other).run()
    for page in ("views/evaluate.py", "views/sanity.py", "views/lab.py", "views/concepts.py", "views/methods.py",
                 "views/explain.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        now = _ctx(at)
        assert (now.image_name, now.digest, now.model_key) == ("astronaut.png", ctx.digest, "lab_horse_cnn"), page
        assert at.session_state["xai_targets"][(ctx.model_key, ctx.digest)] == other, page
    assert at.selectbox(key=f"target:{ctx.model_key}:{ctx.digest}").value == other
    url = dict(at.query_params)
    assert {k: url.get(k) for k in ("model", "image", "target")} == {"model": "lab_horse_cnn", "image": ctx.token,
                                                                     "target": str(other)}
    assert ctx.token and ctx.token != ctx.digest  # a link names an upload by its random share token, not its pixels


def test_a_new_session_restores_from_the_url_and_ignores_hostile_values():
    first = _app()
    first.sidebar.radio(key="image_source").set_value("Upload").run()
    first.sidebar.file_uploader(key="image_upload").upload("astronaut.png", _png(), "image/png").run()
    digest, token = _ctx(first).digest, _ctx(first).token
    fresh = AppTest.from_file(APP, default_timeout=300)
    fresh.session_state["explainers"] = ["gradcam"]
    fresh.query_params.update(model="lab_horse_cnn", image=token, target="1")
    fresh.run()
    ctx = _ctx(fresh)
    assert (ctx.image_name, ctx.digest, ctx.model_key) == ("astronaut.png", digest, "lab_horse_cnn")
    assert fresh.session_state["xai_targets"][(ctx.model_key, digest)] == 1
    hostile = AppTest.from_file(APP, default_timeout=300)
    hostile.session_state["explainers"] = ["gradcam"]
    hostile.query_params.update(model="../../etc/passwd", image="x" * 5000, sample="<script>", target="99999999")
    hostile.run()
    assert not hostile.exception and not hostile.error
    ctx = _ctx(hostile)
    assert (ctx.model_key, ctx.image_name, ctx.source) == ("efficientnet_lite0", "Chelsea the cat", "sample")


def test_two_sessions_keep_their_own_compile_setting_and_image():
    a, b = _app(), _app()
    b.sidebar.toggle(key="compile").set_value(True)
    b.sidebar.selectbox(key="sample_name").set_value("Coffee cup").run()
    a.run()
    assert not a.exception and not b.exception
    assert (_ctx(a).options.compile, _ctx(b).options.compile) == (False, True)
    assert (_ctx(a).image_name, _ctx(b).image_name) == ("Chelsea the cat", "Coffee cup")
    assert _ctx(a).model is _ctx(b).model  # one cached model, two workbenches
    assert _ctx(a).workbench is not _ctx(b).workbench
