"""The three study pages under Streamlit's AppTest (real scripts, the lab CNN, a SQLite file per test): the designer
publishes a study through the background job and gets its link and key; the results page opens only with the key;
the participant page has no sidebar and no menu, consents, answers one question at a time, resumes from its own
link, and ends with its score; a wrong or closed code is one sentence; hostile names are shown literally."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import xai_core as xc
from xai_core import lab
from xai_core.study import answers, make, pictures, plan, sources, storage

APP = str(Path(__file__).resolve().parents[1] / "app.py")
EVIL = "**bold** <img src=x onerror=alert(1)> [x](javascript:alert(1)) $x^2$"


@pytest.fixture(autouse=True)
def db(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'xai.db'}"
    monkeypatch.setenv("XAI_DB_URL", url)
    yield url
    xc.store.dispose(url)


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _published(name: str = "Maps study", per: int = 3) -> tuple[str, str]:
    wb = xc.Workbench(lab.load_lab_model("cpu"))
    pool = sources.lab_pool(wb, 24, seed=1)
    items, used = sources.compact(sources.build_items("agreement", pool, 6, seed=1), pool)
    d = make(name, "agreement", ["none", "gradcam"], "between", per, items,
             checks=sources.build_checks("agreement", items, 1), consent="Consent *text*\n\nSecond paragraph",
             questions=["Your course?"])
    return storage.publish(d, pictures.render_all(used, d.conditions, wb))


def _take(query: dict) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(query)
    at.run()
    return at


def test_designer_publishes_and_only_its_key_opens_the_results():
    at = AppTest.from_file(APP, default_timeout=300)
    at.switch_page("views/study_design.py").run()
    _ok(at)
    at.radio(key="sd_source").set_value("lab")
    at.number_input(key="sd_pool").set_value(6)
    at.number_input(key="sd_per").set_value(4).run()
    at.button(key="study_publish_job_start").click().run()
    job = at.session_state["study_publish_job"].wait(120)
    assert job.error is None and job.result is not None
    at.run()
    _ok(at)
    code, key, _ = job.result
    shown = [c.value for c in at.code]
    assert f"/take?study={code}" in shown and code in shown and key in shown
    opened = storage.designer_study(code, key)
    assert opened.design.task == "agreement" and len(opened.design.items) == 6 and opened.design.trials == 5
    at.switch_page("views/study_results.py").run()  # the same session: it holds the key
    _ok(at)
    assert [t.value.index.tolist() for t in at.table][0] == ["none", "gradcam"]

    other = AppTest.from_file(APP, default_timeout=300)  # another visitor (a participant who knows the code)
    other.switch_page("views/study_results.py").run()
    _ok(other)
    assert not other.table and not other.get("download_button")
    other.text_input(key="sr_code").set_value(code)
    other.text_input(key="sr_key").set_value(secrets.token_urlsafe(24))
    other.button[0].click().run()
    assert [e.value for e in other.error] == [storage.WRONG_KEY] and not other.table
    other.text_input(key="sr_key").set_value(key)
    other.button[0].click().run()
    _ok(other)
    assert other.table and len(other.get("download_button")) == 3


def test_participant_page_consents_answers_resumes_and_scores():
    code, _ = _published(EVIL)
    at = _take({"study": code})
    _ok(at)
    assert not at.sidebar.children and not at.selectbox  # no sidebar, no model picker, nothing but the task
    assert at.title[0].value.startswith("\\*\\*bold\\*\\* \\<img")  # the designer's text, escaped
    assert "Consent \\*text\\*" in at.markdown[0].value
    at.button[0].click().run()  # Start without agreeing
    assert [w.value for w in at.warning] == ["Tick the box to agree first, or close the page to leave."]
    at.text_input(key="study_q0").set_value("=1+1 <b>CS101</b>")
    at.checkbox(key="study_agree").check()
    at.button[0].click().run()
    _ok(at)
    token = at.query_params["p"]
    token = token[0] if isinstance(token, list) else token
    assert storage.TOKEN.fullmatch(token)
    opened = storage.study(code)
    trials = plan.plan(opened.design, 0)
    for i in range(2):
        assert at.get("progress")[0].proto.text == f"Question {i + 1} of {len(trials)}"
        at.button[0].click().run()  # Submit with no choice: nothing stored
        assert answers.joined(opened, token).answered.keys() == set(range(i))
        at.radio(key=f"study_answer_{i}").set_value(trials[i].item.truth)
        at.button[0].click().run()
        _ok(at)
    again = _take({"study": code, "p": token})  # the link reopened (a closed tab, a restart): resumes at question 3
    _ok(again)
    assert again.get("progress")[0].proto.text == f"Question 3 of {len(trials)}"
    for i in range(2, len(trials)):
        again.radio(key=f"study_answer_{i}").set_value(trials[i].item.options[0])
        again.button[0].click().run()
        _ok(again)
    assert again.success[0].value.startswith("Thank you!")
    right = sum(t.item.options[0] == t.item.truth for t in trials[2:] if not t.item.attention) + 2 - sum(
        t.item.attention for t in trials[:2])
    assert f"**{right} of {opened.design.items_per_participant}**" in again.markdown[-1].value
    df = storage.responses(code)
    assert len(df) == len(trials) and df["q1"][0] == "=1+1 <b>CS101</b>"  # stored literally, exported escaped


@pytest.mark.parametrize("code", ["nope", "<script>alert(1)</script>", "x" * 5000, "' OR 1=1 --", "closed"])
def test_a_wrong_or_closed_code_is_one_sentence(code):
    if code == "closed":
        code, key = _published()
        storage.set_status(code, key, "closed")
    at = _take({"study": code})
    assert not at.exception
    assert [e.value for e in at.error] == [storage.WRONG_LINK]
    assert not at.title and not at.button and not at.sidebar.children
