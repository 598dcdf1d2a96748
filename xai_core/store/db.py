"""The one database of what must persist (named concepts; later, human-study responses), through SQLAlchemy.

The URL comes from ``XAI_DB_URL`` (a PostgreSQL URL such as ``postgresql://user:pw@host/xai`` when a server is shared
by several app processes), else a SQLite file ``xai.db`` in the data folder (``XAI_DATA_DIR``, default
``~/.cache/xai_explorer``). One engine per URL per process; the tables of every module that defines them on
:class:`Base` are created on first use. SQLite runs in WAL mode with a busy timeout, so threads that write at once
wait for each other instead of failing. Every write is one transaction (:func:`transaction`); a failure to reach or
use the database is a :class:`StoreError` with one sentence (the URL's password is never shown).

A table group lives in its own module (``concept_names.py``; a study module adds its own) and uses only
:class:`Base`, :func:`transaction` and :class:`StoreError` from here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session

from ..errors import XaiError
from ..untrusted.messages import short

URL_ENV, DIR_ENV = "XAI_DB_URL", "XAI_DATA_DIR"
BUSY_MS = 30_000  # SQLite: how long a writer waits for another one before giving up
CONNECT_S = 5  # a server database: how long to wait for a connection

_engines: dict[str, Engine] = {}
_created: dict[str, frozenset[str]] = {}  # URL -> the tables already created there by this process
_lock = threading.Lock()


class StoreError(XaiError):
    """The database cannot be reached or used, or a value does not fit it."""


class Base(DeclarativeBase):
    """The declarative base of every persisted table."""


def data_dir() -> Path:
    """The folder of the default SQLite file (``XAI_DATA_DIR``, else ``~/.cache/xai_explorer``)."""
    return Path(os.environ.get(DIR_ENV) or Path.home() / ".cache" / "xai_explorer").expanduser()


def default_url() -> str:
    """``XAI_DB_URL``, else the SQLite file ``xai.db`` in :func:`data_dir`."""
    return os.environ.get(URL_ENV) or f"sqlite:///{data_dir() / 'xai.db'}"


def shown_url(url: str) -> str:
    """The URL as a message may show it: the password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "the database URL"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    cur.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA synchronous = NORMAL")
    cur.close()


def _build(url: str) -> Engine:
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            engine = create_engine(parsed, connect_args={"timeout": BUSY_MS / 1000, "check_same_thread": False})
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        args = {"connect_timeout": CONNECT_S} if parsed.get_backend_name() == "postgresql" else {}
        return create_engine(parsed, connect_args=args, pool_pre_ping=True)
    except (ArgumentError, ValueError):
        raise StoreError(f"{URL_ENV} is not a database URL; use e.g. postgresql://user:password@host/xai, or unset it "
                         "to keep everything in the local SQLite file.") from None
    except OSError as e:
        raise StoreError(f"The folder of the database file cannot be made ({short(e)}); set {DIR_ENV} to a writable "
                         "folder.") from None
    except (NoSuchModuleError, ImportError) as e:
        raise StoreError(f"The database driver for {shown_url(url)} is not installed ({short(e)}); install it (for "
                         "PostgreSQL: pip install 'psycopg[binary]') or unset XAI_DB_URL.") from None


def engine(url: str | None = None) -> Engine:
    """The process's engine for ``url`` (default :func:`default_url`), with every table of :class:`Base` created."""
    url = url or default_url()
    with _lock:
        eng = _engines.get(url)
        if eng is None:
            eng = _engines[url] = _build(url)
        tables = frozenset(Base.metadata.tables)
        if _created.get(url) != tables:  # first use, or a module added its tables since
            with failures(url):
                Base.metadata.create_all(eng)
            _created[url] = tables
    return eng


def dispose(url: str | None = None) -> None:
    """Close the engine of ``url`` (default: every engine); the next use connects afresh (a "restart")."""
    with _lock:
        for key in [url] if url else list(_engines):
            eng = _engines.pop(key, None)
            _created.pop(key, None)
            if eng is not None:
                eng.dispose()


@contextmanager
def failures(url: str) -> Iterator[None]:
    """Any database failure inside the block becomes a :class:`StoreError` with one sentence."""
    try:
        yield
    except StoreError:
        raise
    except SQLAlchemyError as e:
        reason = short(getattr(e, "orig", None) or e, 160)
        raise StoreError(f"The database {shown_url(url)} cannot be used ({reason}); check that it is running and "
                         f"reachable, or unset {URL_ENV} to keep everything in the local SQLite file.") from None


@contextmanager
def transaction(url: str | None = None) -> Iterator[Session]:
    """A session inside one transaction: committed when the block ends, rolled back on any error."""
    url = url or default_url()
    eng = engine(url)
    with failures(url), Session(eng, expire_on_commit=False) as session, session.begin():
        yield session
