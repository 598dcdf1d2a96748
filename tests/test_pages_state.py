"""What one visitor picked survives every page and stays private to them; no widget callback can crash a page
(issues 19 and 26), under AppTest with the small lab CNN."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.runtime.forward_msg_queue import ForwardMsgQueue
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Selectbox
from test_pages import APP, _png

ROOT = Path(__file__).resolve().parents[1]
EVIL = "**bold** [x](javascript:alert(1)) <img src=x>.png"


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _lab_app(explainers: list[str] | None = None, **state) -> AppTest:
    """The app on the lab CNN (fast) with one cheap explainer, before its first run (``explainers=[]``: the page's
    defaults, without a value set through the session-state API, which AppTest would keep across pages)."""
    at = AppTest.from_file(APP, default_timeout=300)
    if explainers != []:
        at.session_state["explainers"] = explainers or ["gradient"]
    at.session_state["model_choice"] = "lab_horse_cnn"
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    _ok(at)
    return at


def _ctx(at: AppTest):
    return at.session_state["xai_context"]


class _StaleLabel(Selectbox):
    """What the browser does after a rerun that changed a selectbox's labels but not its value: it keeps the label
    it showed and sends that back with the next click of any widget."""

    stale = ""

    @property
    def _widget_state(self) -> WidgetState:
        ws = WidgetState()
        ws.id = self.id
        ws.string_value = self.stale
        return ws


def test_an_image_edit_never_breaks_the_next_click():
    """Issue 26.1: pin, pick a class, edit, then any click; the picker's value is the class index, the label stable."""
    at = _lab_app()
    ctx = _ctx(at)
    widget = f"target:{ctx.model_key}:{ctx.digest}"
    other = 1 - int(at.selectbox(key=widget).value)
    at.selectbox(key=widget).set_value(other).run()
    at.button(key="pin").click().run()
    box = at.selectbox(key=widget)
    shown = box.options[box.index]  # the label the browser shows for the picked class
    for edit, click in (("occlude", lambda: at.selectbox(key="edit_kind").set_value("blur")),
                        ("blur", lambda: at.toggle(key="present").set_value(True))):
        if edit == "occlude":
            at.selectbox(key="edit_kind").set_value(edit).run()
            _ok(at)
        stale = at.selectbox(key=widget)
        stale.__class__, stale.stale = _StaleLabel, shown  # the browser sends back the label it showed before
        click().run()
        _ok(at)
        assert at.session_state["xai_targets"][(ctx.model_key, ctx.digest)] == other
        assert at.selectbox(key=widget).value == other
    assert at.session_state["present"] and "Pinned" in at.subheader[0].value
    # A value of a type nobody gave the widget (a browser's leftover text) is ignored, never a crash.
    stale = at.selectbox(key=widget)
    stale.__class__, stale.stale = _StaleLabel, "cup · p=3.3%"
    at.toggle(key="present").set_value(False).run()
    _ok(at)
    assert at.session_state["xai_targets"][(ctx.model_key, ctx.digest)] == other
    assert not at.error, [e.value for e in at.error]
    assert "p=" not in shown and shown.endswith(f"· #{other}")  # the label: the name and the index only


def test_every_widget_callback_is_guarded():
    """Every on_change / on_click in ui/ and views/ is wrapped by ui.callbacks.guarded (it runs outside app.py)."""
    found = []
    for path in sorted([*ROOT.glob("ui/*.py"), *ROOT.glob("views/*.py"), ROOT / "app.py"]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg in ("on_change", "on_click"):
                call = node.value
                name = getattr(getattr(call, "func", None), "attr", None) or getattr(getattr(call, "func", None), "id", None)
                found.append((path.name, node.value.lineno, isinstance(call, ast.Call) and name == "guarded"))
    assert found, "the class picker's on_change at least"
    assert all(ok for *_, ok in found), [f for f in found if not f[2]]


def _failing_page() -> None:
    import streamlit as st

    from ui import callbacks

    st.button("Go", key="go", on_click=callbacks.guarded(lambda: 1 / 0, "Going"))
    callbacks.show()
    st.text("page drawn")


def test_a_failing_callback_leaves_one_sentence_and_the_page_runs():
    at = AppTest.from_function(_failing_page, default_timeout=60)
    at.run()
    at.button(key="go").click().run()
    _ok(at)
    assert [e.value for e in at.error] == ["Going failed unexpectedly (ZeroDivisionError); the page kept your other "
                                           "choices. The details are in the server log."]
    assert at.text[0].value == "page drawn"
    at.run()
    assert not at.error  # shown once


def test_explainers_parameters_and_seed_survive_other_pages():
    """Issue 26.4: the picks on Explain come back after a visit to another page."""
    at = _lab_app(explainers=[])
    model = _ctx(at).model.id
    at.multiselect(key="explainers").set_value(["gradient", "smoothgrad"]).run()
    at.slider(key=f"param:{model}:smoothgrad:samples").set_value(3)
    at.number_input(key="seed").set_value(5)
    at.slider(key="alpha").set_value(0.3).run()
    _ok(at)
    for page in ("views/methods.py", "views/evaluate.py", "views/explain.py"):
        at.switch_page(page).run()
        _ok(at)
    assert at.multiselect(key="explainers").value == ["gradient", "smoothgrad"]
    assert at.slider(key=f"param:{model}:smoothgrad:samples").value == 3
    assert at.number_input(key="seed").value == 5 and at.slider(key="alpha").value == 0.3
    assert at.session_state["xai_choice"]["params"] == {"gradient": {}, "smoothgrad": {"samples": 3}}


def _sidebar_text(at: AppTest) -> str:
    captions = [c.value for c in at.sidebar.caption]
    images = [c for i in at.sidebar.get("image") for c in (img.caption for img in i.proto.imgs)]
    return "\n".join(captions + images)


def test_an_upload_is_private_and_its_name_is_shown_literally():
    """Issue 26.3: a content digest opens nothing; the owner's share link (random token) opens the image."""
    a = _lab_app(image_source="Upload")
    a.sidebar.file_uploader(key="image_upload").upload(EVIL, _png(), "image/png").run()
    _ok(a)
    owner = _ctx(a)
    assert owner.image_name == EVIL and owner.source == "upload"
    text = _sidebar_text(a)
    assert "\\*\\*bold\\*\\* \\[x\\]\\(javascript\\:alert\\(1\\)\\) \\<img src\\=x\\>\\.png" in text
    assert "**bold**" not in text and "](javascript" not in text
    assert a.query_params["image"] in (owner.token, [owner.token]) and owner.token != owner.digest
    guess = AppTest.from_file(APP, default_timeout=300)
    guess.session_state["explainers"] = ["gradient"]
    guess.query_params.update(model="lab_horse_cnn", image=owner.digest)  # anyone can compute a public photo's digest
    guess.run()
    _ok(guess)
    ctx = _ctx(guess)
    assert (ctx.source, ctx.image_name) == ("sample", "Chelsea the cat") and ctx.digest != owner.digest
    assert "bold" not in _sidebar_text(guess) and "xai_last_image" not in guess.session_state
    assert any("upload the same image again" in w.value for w in guess.warning)
    shared = AppTest.from_file(APP, default_timeout=300)
    shared.session_state["explainers"] = ["gradient"]
    shared.query_params.update(model="lab_horse_cnn", image=owner.token)  # the link the owner copied
    shared.run()
    _ok(shared)
    ctx = _ctx(shared)
    assert (ctx.source, ctx.image_name, ctx.digest) == ("upload", EVIL, owner.digest)
    assert np.array_equal(ctx.image, owner.image)


def _hand_over_page() -> None:
    import streamlit as st
    from skimage import data

    from ui import links

    st.text(links.hand_over(data.rocket()[::4, ::4].copy(), "/srv/runs/inputs/class_a/rocket.png", "lab_horse_cnn"))


def test_runs_hands_an_image_to_the_explain_page():
    """Issue 26.2: the Runs page's hand-off opens on Explain with the run's model, the image and its base name."""
    runs = AppTest.from_function(_hand_over_page, default_timeout=60)
    runs.run()
    _ok(runs)
    url = runs.text[0].value
    assert url.startswith("/?model=lab_horse_cnn&image=")
    runs.run()
    assert runs.text[0].value == url  # a rerun hands over the same image under the same token
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["explainers"] = ["gradient"]
    at.query_params.update(model="lab_horse_cnn", image=url.rsplit("=", 1)[1])
    at.run()
    _ok(at)
    ctx = _ctx(at)
    assert (ctx.source, ctx.image_name, ctx.image.shape, ctx.model_key) == ("upload", "rocket.png", (107, 160, 3),
                                                                           "lab_horse_cnn")
    assert not at.error and "/srv" not in _sidebar_text(at)


def test_a_rerun_keeps_a_pending_upload_url_reply():
    """Issue 26.5's cause: a run's start cleared the outgoing queue, dropping the reply that tells the browser where
    to upload a file it has just chosen (no upload follows, no message). The fix keeps such replies."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    from ui import upload_urls

    def queue() -> ForwardMsgQueue:
        q = ForwardMsgQueue()
        reply = ForwardMsg()
        reply.file_urls_response.response_id = "r1"
        q.enqueue(reply)
        delta = ForwardMsg()
        delta.metadata.delta_path[:] = [0, 0]
        delta.delta.new_element.text.body = "old"
        q.enqueue(delta)
        return q

    assert upload_urls.install() and upload_urls.install()  # idempotent
    q = queue()
    ForwardMsgQueue.clear.__wrapped__(q, retain_lifecycle_msgs=True)  # Streamlit's own clear: the reply is lost
    assert [m.WhichOneof("type") for m in q._queue] == []
    q = queue()
    q.clear(retain_lifecycle_msgs=True)  # what a run's start does, with the fix
    assert [m.file_urls_response.response_id for m in q._queue] == ["r1"]
    assert q.flush() and q.is_empty()  # a flush still empties it
