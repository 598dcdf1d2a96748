"""A study in the database (``xai_core.store.study_tables``): publish it, open it by code (participants) or by code
and designer key (the designer), close it, read its pictures and its responses. The participant's side (join,
submit) is ``answers.py``.

Every write is one transaction. A study is found by its random code (in the participants' link); its designer
proves the random designer key (only its SHA-256 is stored, compared in constant time); a wrong, closed or expired
code gets one sentence (:data:`WRONG_LINK`) that does not say which of these it was.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import select, update

from ..store.db import transaction
from ..store.study_tables import Participant, Picture, Response, Study
from .design import Design, StudyError
from .plan import label

CODE = re.compile(r"[A-Za-z0-9_-]{8,16}")
TOKEN = re.compile(r"[A-Za-z0-9_-]{24,64}")
WRONG_LINK = "This study link is not valid, or the study has closed; ask the person who sent it for a new link."
WRONG_KEY = "No study has that code and designer key; check both (the key was shown once, when the study was published)."
CACHE_BYTES = 64 * 2**20  # pictures kept in memory, all studies together (published pictures never change)


@dataclass(frozen=True)
class Opened:
    code: str
    design: Design
    status: str
    closes: dt.datetime

    @property
    def open(self) -> bool:
        return self.status == "open" and utc(self.closes) > dt.datetime.now(dt.UTC)


def utc(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)  # SQLite gives naive values back


def sha(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


_designs: OrderedDict[tuple[str | None, str], Design] = OrderedDict()
_pictures: OrderedDict[tuple[str | None, str, int, str], bytes] = OrderedDict()
_lock = threading.Lock()


def publish(design: Design, pictures: dict[tuple[int, str], bytes], *, url: str | None = None) -> tuple[str, str]:
    """Store the study and its pictures in one transaction; returns its (code, designer key)."""
    code, key = secrets.token_urlsafe(8), secrets.token_urlsafe(24)
    now = dt.datetime.now(dt.UTC)
    with transaction(url) as s:
        s.add(Study(code=code, key_hash=sha(key), name=design.name, design=design.to_json(), status="open", created=now,
                    closes=now + dt.timedelta(days=design.days_open)))
        s.add_all(Picture(code=code, picture=i, condition=c, png=png, digest=hashlib.sha256(png).hexdigest())
                  for (i, c), png in pictures.items())
    return code, key


def _opened(code: object, url: str | None) -> Opened | None:
    if not isinstance(code, str) or not CODE.fullmatch(code):
        return None
    with transaction(url) as s:
        row = s.execute(select(Study.status, Study.closes).where(Study.code == code)).first()
        if row is None:
            return None
        with _lock:
            design = _designs.get((url, code))
        if design is None:
            design = Design.from_json(s.scalar(select(Study.design).where(Study.code == code)) or "")
            with _lock:
                _designs[(url, code)] = design
                while len(_designs) > 64:
                    _designs.popitem(last=False)
    return Opened(code, design, row.status, utc(row.closes))


def study(code: object, *, url: str | None = None) -> Opened:
    """The open study with this code, for a participant; a wrong, closed or expired code: :data:`WRONG_LINK`."""
    found = _opened(code, url)
    if found is None or not found.open:
        raise StudyError(WRONG_LINK)
    return found


def designer_study(code: object, key: object, *, url: str | None = None) -> Opened:
    """The study with this code if ``key`` is its designer key (open or closed); :data:`WRONG_KEY` otherwise."""
    found = _opened(code, url) if isinstance(key, str) and TOKEN.fullmatch(key) else None
    with transaction(url) as s:
        stored = s.scalar(select(Study.key_hash).where(Study.code == found.code)) if found else None
    if found is None or stored is None or not hmac.compare_digest(stored, sha(str(key))):
        raise StudyError(WRONG_KEY)
    return found


def set_status(code: str, key: str, status: str, *, url: str | None = None) -> None:
    """Close (``closed``) or reopen (``open``) a study; the designer key is checked first."""
    designer_study(code, key, url=url)
    if status not in ("open", "closed"):
        raise StudyError("A study is either open or closed.")
    with transaction(url) as s:
        s.execute(update(Study).where(Study.code == code).values(status=status))


def picture(code: str, index: int, condition: str, *, url: str | None = None) -> bytes:
    """One published picture's PNG bytes (kept in a process-wide cache of at most :data:`CACHE_BYTES`)."""
    key = (url, code, int(index), condition)
    with _lock:
        if key in _pictures:
            _pictures.move_to_end(key)
            return _pictures[key]
    with transaction(url) as s:
        png = s.scalar(select(Picture.png).where(Picture.code == code, Picture.picture == int(index),
                                                 Picture.condition == condition))
    if png is None:
        raise StudyError("A picture of this study is missing; tell the person who runs the study.")
    with _lock:
        _pictures[key] = png
        while sum(len(v) for v in _pictures.values()) > CACHE_BYTES:
            _pictures.popitem(last=False)
    return png


def responses(code: str, *, url: str | None = None) -> pd.DataFrame:
    """Every response of the study, one row per answered trial, participants named by join order (``P001``); the
    answers to the designer's questions as ``q1``, ``q2``...; no token or digest leaves the database."""
    with transaction(url) as s:
        ps = {p.token: p for p in s.scalars(select(Participant).where(Participant.code == code))}
        rows = s.scalars(select(Response).where(Response.code == code)).all()
    out = []
    for r in rows:
        p = ps[r.token]
        answers = json.loads(p.profile or "{}")
        out.append({"participant": label(p.seq), "seq": p.seq, "participant_condition": p.condition, "trial": r.trial,
                    "item": r.item, "condition": r.condition, "attention": bool(r.attention), "answer": r.answer,
                    "correct": bool(r.correct), "rt_ms": r.rt_ms, "finished": p.finished is not None,
                    "answered_at": utc(r.created).isoformat(timespec="milliseconds"),
                    **{f"q{i + 1}": v for i, v in enumerate(answers.values())}})
    cols = ["participant", "seq", "participant_condition", "trial", "item", "condition", "attention", "answer", "correct",
            "rt_ms", "finished", "answered_at"]
    df = pd.DataFrame(out, columns=cols + sorted({k for r in out for k in r if k not in cols}))
    return df.sort_values(["seq", "trial"]).reset_index(drop=True)


def participants(code: str, *, url: str | None = None) -> list[tuple[int, str, bool]]:
    """(join order, condition, finished) of every participant who joined."""
    with transaction(url) as s:
        return [(p.seq, p.condition, p.finished is not None)
                for p in s.scalars(select(Participant).where(Participant.code == code).order_by(Participant.seq))]
