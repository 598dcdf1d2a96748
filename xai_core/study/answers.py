"""A participant's side of a study in the database: join (idempotent, a unique join order under concurrency), start
a trial's clock, submit an answer (once per trial: a second click changes nothing), read one's own answers.

A participant is known by a random token in their own link; only SHA-256(code, token) is stored, so reopening the
link resumes and no one can act as another participant. Correctness and response time are computed here, on the
server, never taken from the browser: the response time runs from when the trial was first drawn (:func:`show`; a
reload does not restart it) to when the answer arrived (network and drawing time included).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass

from sqlalchemy import func, select, update

from ..store.db import transaction
from ..store.study_tables import Participant, Response, insert_new
from .design import ANSWER_CHARS, StudyError, clean_text
from .plan import participant_condition, plan
from .storage import TOKEN, WRONG_LINK, Opened, sha, utc


@dataclass(frozen=True)
class Joined:
    seq: int
    condition: str
    answered: dict[int, str]  # trial -> the answer given


def _token(code: str, token: object) -> str:
    if not isinstance(token, str) or not TOKEN.fullmatch(token):
        raise StudyError(WRONG_LINK)
    return sha(code, token)


def joined(opened: Opened, token: object, *, url: str | None = None) -> Joined | None:
    """The participant of this link (their join order, condition and answers so far), or None before they join."""
    th = _token(opened.code, token)
    with transaction(url) as s:
        p = s.get(Participant, (opened.code, th))
        if p is None:
            return None
        rows = s.execute(select(Response.trial, Response.answer).where(Response.code == opened.code,
                                                                       Response.token == th)).all()
    return Joined(p.seq, p.condition, {int(t): a for t, a in rows})


def join(opened: Opened, token: object, answers: dict[str, object] | None = None, *, url: str | None = None) -> Joined:
    """Join the study (idempotent: the same token joins once); the next free join order, under concurrency too (the
    unique (code, seq) constraint refuses a taken one, and the next try reads the new maximum)."""
    th = _token(opened.code, token)
    d = opened.design
    profile = json.dumps({q: clean_text((answers or {}).get(q, ""), ANSWER_CHARS) for q in d.questions})
    for attempt in range(200):
        with transaction(url) as s:
            if s.get(Participant, (opened.code, th)) is None:
                top = s.scalar(select(func.max(Participant.seq)).where(Participant.code == opened.code))
                seq = -1 if top is None else int(top)
                row = {"code": opened.code, "token": th, "seq": seq + 1, "condition": participant_condition(d, seq + 1),
                       "profile": profile, "started": dt.datetime.now(dt.UTC), "shown_trial": -1}
                if not insert_new(s, Participant, row):
                    time.sleep(0.005 * (1 + attempt % 8))
                    continue
        found = joined(opened, token, url=url)
        if found is not None:
            return found
    raise StudyError("Too many people are joining at this moment; reload the page in a few seconds.")


def show(opened: Opened, token: object, trial: int, *, url: str | None = None) -> None:
    """Start the clock of ``trial`` (only the first time it is drawn: a reload does not restart it)."""
    th = _token(opened.code, token)
    with transaction(url) as s:
        s.execute(update(Participant).where(Participant.code == opened.code, Participant.token == th,
                                            Participant.shown_trial < int(trial))
                  .values(shown_trial=int(trial), shown_at=dt.datetime.now(dt.UTC)))


def submit(opened: Opened, token: object, trial: int, answer: object, *, url: str | None = None) -> bool:
    """Record the answer to ``trial`` (one transaction); True when stored, False when that trial was already answered
    (a second click: nothing changes). Trials are answered in order; the answer must be one of the item's options."""
    th = _token(opened.code, token)
    now = dt.datetime.now(dt.UTC)
    with transaction(url) as s:
        p = s.get(Participant, (opened.code, th))
        if p is None:
            raise StudyError(WRONG_LINK)
        trials = plan(opened.design, p.seq)
        done = s.scalar(select(func.count()).select_from(Response).where(Response.code == opened.code,
                                                                         Response.token == th)) or 0
        if not 0 <= int(trial) < len(trials) or int(trial) > done:
            raise StudyError("That question is not the next one; reload the page to continue where you are.")
        t = trials[int(trial)]
        if answer not in t.item.options:
            raise StudyError("Choose one of the answers, then submit.")
        rt = (now - utc(p.shown_at)).total_seconds() * 1000 if p.shown_at is not None and p.shown_trial == t.index else None
        stored = insert_new(s, Response, {"code": opened.code, "token": th, "trial": t.index, "item": t.item.id,
                                          "condition": t.condition, "attention": t.item.attention, "answer": answer,
                                          "correct": answer == t.item.truth, "rt_ms": None if rt is None else round(rt),
                                          "created": now})
        if stored and done + 1 == len(trials):
            p.finished = now
    return stored
