"""The human-study tables (``xai_core.study``), on the one database of :mod:`xai_core.store.db`.

Where the data lives: the same database as every other persisted thing (``XAI_DB_URL``, else the SQLite file
``xai.db`` in ``XAI_DATA_DIR``), not the batch runs folder (``XAI_RUNS_ROOT``, default ``./runs``, relative to the
server's working directory): run folders are browsed, copied and deleted as a whole by whoever runs ``xai-batch``,
while study responses must survive that and stay private (the data folder is made with mode 0700). One setting
(``XAI_DB_URL``) then moves both concept names and studies to a shared PostgreSQL.

Tables (every key starts with the study's code):

* ``study_studies``: one row per published study: the design (JSON), a SHA-256 of the designer key (the key itself
  is never stored), the status and when the study closes;
* ``study_pictures``: the pictures participants see, rendered once when the study is published (PNG bytes and
  their SHA-256), keyed (code, picture, condition): participants never trigger a model run;
* ``study_participants``: one row per participant: a SHA-256 of (code, participant token) (the token lives only in
  the participant's link), the join order ``seq`` (unique per study: it drives the counterbalanced assignment), the
  between-subject condition, the answers to the designer's questions (JSON), which trial is on screen since when;
* ``study_responses``: one row per answered trial; the primary key (code, participant, trial) makes a second
  submit of the same trial a no-op (hammering the button records one response).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    insert,
    literal_column,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from .db import Base

CODE_CHARS, KEY_HEX, LABEL_CHARS, ANSWER_CHARS = 16, 64, 64, 400


class Study(Base):
    """A published study."""

    __tablename__ = "study_studies"

    code: Mapped[str] = mapped_column(String(CODE_CHARS), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(KEY_HEX))
    name: Mapped[str] = mapped_column(String(400))
    design: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # "open" or "closed"
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    closes: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class Picture(Base):
    """One rendered picture of a study: an image without a map (condition "none") or with one method's map."""

    __tablename__ = "study_pictures"

    code: Mapped[str] = mapped_column(String(CODE_CHARS), primary_key=True)
    picture: Mapped[int] = mapped_column(Integer, primary_key=True)
    condition: Mapped[str] = mapped_column(String(LABEL_CHARS), primary_key=True)
    png: Mapped[bytes] = mapped_column(LargeBinary)
    digest: Mapped[str] = mapped_column(String(64))


class Participant(Base):
    """One participant of a study, known only by a digest of their link's token."""

    __tablename__ = "study_participants"
    __table_args__ = (UniqueConstraint("code", "seq", name="uq_study_participant_seq"),)

    code: Mapped[str] = mapped_column(String(CODE_CHARS), primary_key=True)
    token: Mapped[str] = mapped_column(String(KEY_HEX), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    condition: Mapped[str] = mapped_column(String(LABEL_CHARS))  # between-subject: the one condition; within: "mixed"
    profile: Mapped[str] = mapped_column(Text)  # JSON: the designer's questions' answers, cleaned and bounded
    started: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    shown_trial: Mapped[int] = mapped_column(Integer)  # the trial on screen (-1: none yet)
    shown_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Response(Base):
    """One answered trial."""

    __tablename__ = "study_responses"

    code: Mapped[str] = mapped_column(String(CODE_CHARS), primary_key=True)
    token: Mapped[str] = mapped_column(String(KEY_HEX), primary_key=True)
    trial: Mapped[int] = mapped_column(Integer, primary_key=True)
    item: Mapped[str] = mapped_column(String(LABEL_CHARS))
    condition: Mapped[str] = mapped_column(String(LABEL_CHARS))
    attention: Mapped[bool] = mapped_column(Boolean)
    answer: Mapped[str] = mapped_column(String(ANSWER_CHARS))
    correct: Mapped[bool] = mapped_column(Boolean)
    rt_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


def insert_new(session: Session, table: type[Base], row: dict[str, Any]) -> bool:
    """Insert ``row`` unless it collides with a row already there (any primary-key or unique constraint); True when
    it was inserted. One statement on SQLite and PostgreSQL (``ON CONFLICT DO NOTHING``), a savepoint elsewhere."""
    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        stmt = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(table).values(**row)
        # RETURNING, not rowcount: psycopg reports -1 as the rowcount of INSERT … ON CONFLICT DO NOTHING here
        return session.execute(stmt.on_conflict_do_nothing().returning(literal_column("1"))).first() is not None
    try:
        with session.begin_nested():
            session.execute(insert(table).values(**row))
    except IntegrityError:
        return False
    return True
