"""Study storage (xai_core.study.storage/answers on xai_core.store): a restart (a new engine) loses nothing answered
and a participant resumes; hammering one trial records one response; 30 participants answering at once are all
stored, with unique join orders and balanced conditions; a wrong, closed or expired code is one sentence; hostile
text is bounded; the export escapes formulas and the analysis recomputed from the CSV equals the page's. Every test
runs on SQLite, and on a throw-away PostgreSQL server when Debian's binaries are installed (tests/study_pg.py)."""

from __future__ import annotations

import io
import secrets
import threading
import time
from collections import Counter

import pandas as pd
import pytest
import study_pg
from sqlalchemy import update

from ui import study_results_view as srv
from xai_core import report, store
from xai_core.store.study_tables import Study
from xai_core.study import Item, StudyError, analysis, answers, export, make, plan, storage
from xai_core.study.design import NO, YES


@pytest.fixture(scope="module")
def pg_url():
    if not study_pg.AVAILABLE:
        pytest.skip("no PostgreSQL binaries (apt-get install postgresql): the SQLite run covers the same tests")
    with study_pg.postgres() as url:
        yield url
        store.dispose(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    u = f"sqlite:///{tmp_path / 'xai.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    yield u
    store.dispose(u)


def _design(layout: str = "between", n_items: int = 6, per: int = 4, checks: int = 1, **kw):  # noqa: ANN003, ANN202
    items = [Item(f"i{j:02d}", (j,), "horse", (YES, NO), YES if j % 2 else NO) for j in range(n_items)]
    check = [Item(f"check{j + 1}", (), "", (YES, NO), YES, attention=True) for j in range(checks)]
    return make(kw.pop("name", "Maps study"), "agreement", ["none", "gradcam"], layout, per, items, checks=check, **kw)


def _publish(url: str, d=None) -> storage.Opened:  # noqa: ANN001
    d = d or _design()
    pics = {(j, c): f"png {j} {c}".encode() for j in range(len(d.items)) for c in d.conditions}
    code, _ = storage.publish(d, pics, url=url)
    return storage.study(code, url=url)


def _answer_all(o: storage.Opened, token: str, url: str, upto: int | None = None) -> None:
    me = answers.joined(o, token, url=url) or answers.join(o, token, url=url)
    for t in plan.plan(o.design, me.seq)[:upto]:
        answers.show(o, token, t.index, url=url)
        answers.submit(o, token, t.index, t.item.truth if t.index % 3 else t.item.options[0], url=url)


def test_a_restart_loses_nothing_answered_and_the_link_resumes(url):
    o = _publish(url)
    tokens = [secrets.token_urlsafe(18) for _ in range(3)]
    for k, tok in enumerate(tokens):
        _answer_all(o, tok, url, upto=k + 2)
    before = storage.responses(o.code, url=url)
    store.dispose(url)  # the server process is gone: a new engine, connections made afresh
    storage._pictures.clear()
    storage._designs.clear()
    o2 = storage.study(o.code, url=url)
    after = storage.responses(o.code, url=url)
    pd.testing.assert_frame_equal(before, after)
    assert len(after) == 2 + 3 + 4 and after.groupby("participant").size().tolist() == [2, 3, 4]
    me = answers.joined(o2, tokens[0], url=url)
    assert me is not None and me.seq == 0 and sorted(me.answered) == [0, 1]  # resumes at the third trial
    assert answers.join(o2, tokens[0], url=url).seq == 0  # joining again with the same link: the same participant
    assert storage.picture(o.code, 1, "gradcam", url=url) == b"png 1 gradcam"
    assert (after["rt_ms"] >= 0).all()


def test_hammering_submit_records_one_response(url):
    o = _publish(url)
    tok = secrets.token_urlsafe(18)
    me = answers.join(o, tok, url=url)
    first = plan.plan(o.design, me.seq)[0]
    answers.show(o, tok, 0, url=url)
    start, stored, errors = threading.Barrier(16), [], []

    def click() -> None:
        try:
            start.wait()
            stored.append(answers.submit(o, tok, 0, first.item.options[0], url=url))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=click) for _ in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors, errors[:3]
    assert stored.count(True) == 1 and stored.count(False) == 15
    assert not answers.submit(o, tok, 0, first.item.options[1], url=url)  # a late second answer changes nothing
    df = storage.responses(o.code, url=url)
    assert len(df) == 1 and df["answer"][0] == first.item.options[0]
    with pytest.raises(StudyError, match="not the next one"):
        answers.submit(o, tok, 2, YES, url=url)  # skipping ahead
    with pytest.raises(StudyError, match="Choose one of the answers"):
        answers.submit(o, tok, 1, "<script>alert(1)</script>", url=url)


def test_thirty_participants_answering_at_once_are_all_stored_and_balanced(url):
    o = _publish(url, _design(n_items=8, per=6, checks=2))
    start, errors, slowest = threading.Barrier(30), [], []

    def participant() -> None:
        try:
            tok = secrets.token_urlsafe(18)
            start.wait()
            answers.join(o, tok, url=url)
            me = answers.joined(o, tok, url=url)
            worst = 0.0
            for t in plan.plan(o.design, me.seq):
                answers.show(o, tok, t.index, url=url)
                t0 = time.perf_counter()
                assert answers.submit(o, tok, t.index, t.item.truth, url=url)
                worst = max(worst, time.perf_counter() - t0)
            slowest.append(worst)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=participant) for _ in range(30)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(300)
    assert not errors, errors[:3]
    df = storage.responses(o.code, url=url)
    assert len(df) == 30 * o.design.trials and not df.duplicated(["participant", "trial"]).any()
    people = storage.participants(o.code, url=url)
    assert sorted(s for s, _, _ in people) == list(range(30)) and all(f for _, _, f in people)
    counts = Counter(c for _, c, _ in people)
    assert sorted(counts.values()) == [15, 15]
    assert max(slowest) < 30, f"slowest submit {max(slowest):.2f} s"  # the busy timeout is 30 s: nothing gave up


def test_wrong_closed_or_expired_codes_are_one_sentence(url):
    o = _publish(url)
    for code in ["nope", "", None, "x" * 10_000, "'; DROP TABLE study_studies; --", "abc\x00defghij", o.code + "x"]:
        with pytest.raises(StudyError) as e:
            storage.study(code, url=url)
        assert str(e.value) == storage.WRONG_LINK
    _, key = storage.publish(o.design, {}, url=url)
    with pytest.raises(StudyError, match="designer key"):
        storage.designer_study(o.code, key, url=url)  # another study's key
    with pytest.raises(StudyError):
        answers.join(o, "<script>", url=url)
    with store.transaction(url) as s:
        s.execute(update(Study).where(Study.code == o.code).values(closes=Study.created))  # expired
    with pytest.raises(StudyError, match="not valid, or the study has closed"):
        storage.study(o.code, url=url)


def test_hostile_text_is_bounded_and_the_export_escapes_formulas(url):
    d = _design(name="=HYPERLINK(\"http://x\")" + "n" * 500,
                consent="line\x00 one\u202e\n\n\n\nline two<script>alert(1)</script>" + "c" * 9000,
                questions=["Age?\x00", "=cmd|' /C calc'!A0"] + ["more"] * 5)
    assert len(d.name) <= 80 and "\x00" not in d.consent and "\u202e" not in d.consent and len(d.consent) <= 4000
    assert d.consent.startswith("line one\n\nline two") and len(d.questions) == 3
    o = _publish(url, d)
    tok = secrets.token_urlsafe(18)
    answers.join(o, tok, {"Age?": "@SUM(1+1)" + "x" * 1000, "=cmd|' /C calc'!A0": "-2+3"}, url=url)
    _answer_all(o, tok, url)
    df = storage.responses(o.code, url=url)
    assert len(df["q1"][0]) <= 200 and df["q2"][0] == "-2+3"
    csv = pd.read_csv(io.BytesIO(export.to_csv(df)))
    assert csv["q1"][0].startswith("'@SUM") and csv["q2"][0] == "'-2+3"
    assert all(not str(v).startswith(export.DANGEROUS) for v in csv.select_dtypes("object").stack())
    parquet = pd.read_parquet(io.BytesIO(export.to_parquet(df)))
    assert parquet["q1"][0] == csv["q1"][0] and parquet["rt_ms"].dtype.kind in "if"
    page = analysis.analyse(df, d.layout, d.conditions, d.max_failed_checks, seed=d.seed)
    again = analysis.analyse(csv, d.layout, d.conditions, d.max_failed_checks, seed=d.seed)
    assert page.conditions == again.conditions and page.excluded == again.excluded  # the page equals the CSV's numbers
    html = report.build_html(report.study_report(d.name, {"consent": d.consent, "model": d.model},
                                                 [("Per condition", srv.condition_rows(page, d)),
                                                  ("Per item", page.items)], seed=d.seed))
    assert "Human study: =HYPERLINK(&quot;http://x&quot;)" in html and "<script" not in html.split("</style>")[1]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "none" in html and "Per condition" in html
