"""Names people give to discovered concepts, persisted and keyed by content.

A name belongs to (namespace, model, layer, class, direction): the namespace says *who* named it (the app passes a
digest of the visitor's workspace token, ``ui/workspace.py``), the model is its weights' fingerprint
(``ModelSpec.fingerprint()``), and the direction is :func:`direction_digest` of the concept's vector, so the same
concept found again (discovery is seeded and deterministic) gets its name back, on any machine, after a restart.

Isolation rule: every read and write names its namespace, and no function lists or reads across namespaces; a
visitor sees exactly the names written under their own workspace. Names are untrusted text: control, bidi-override,
zero-width and other non-printing characters are removed, white space runs become one space, and at most
:data:`NAME_CHARS` characters are kept; they are stored literally (bound parameters) and escaped where shown.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from typing import Any, cast

import numpy as np
from sqlalchemy import CursorResult, DateTime, Integer, String, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..untrusted.messages import shown
from .db import Base, StoreError, transaction

NAME_CHARS = 40
DECIMALS = 4  # the direction is rounded to this many decimals (unit norm) before hashing: stable across CPUs
_NAMESPACE = re.compile(r"[A-Za-z0-9:_.-]{1,64}")
_DIGEST = re.compile(r"[0-9a-f]{64}")


class ConceptName(Base):
    """One named concept: the key (namespace, model, layer, target, direction digest), the name and when it was set."""

    __tablename__ = "concept_names"

    namespace: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    layer: Mapped[str] = mapped_column(String(256), primary_key=True)
    target: Mapped[int] = mapped_column(Integer, primary_key=True)
    direction: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_CHARS * 4))  # characters; * 4 leaves room for a byte-counting DB
    updated: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


def clean_name(text: object, limit: int = NAME_CHARS) -> str:
    """A name as it may be stored: text only, no control/format/private/unassigned characters (NUL, RTL overrides,
    zero-width joiners), white space runs as one space, at most ``limit`` characters ('' for anything else)."""
    if not isinstance(text, str):
        return ""
    kept = "".join(" " if c.isspace() else c for c in text[: limit * 64]
                   if c.isspace() or unicodedata.category(c)[0] != "C")
    return " ".join(kept.split())[:limit].strip()


def direction_digest(direction: Any) -> str:
    """SHA-256 of a concept direction: scaled to unit norm, rounded to :data:`DECIMALS` decimals, as float32 bytes."""
    if hasattr(direction, "detach"):  # a torch tensor
        direction = direction.detach().cpu().numpy()
    v = np.asarray(direction, np.float64).ravel()
    if not v.size or not np.isfinite(v).all():
        raise StoreError("A concept direction must be a non-empty vector of finite numbers.")
    norm = float(np.linalg.norm(v))
    v = np.round(v / norm if norm > 0 else v, DECIMALS) + 0.0  # + 0.0: -0.0 hashes as 0.0
    return hashlib.sha256(v.astype("<f4").tobytes()).hexdigest()


def _key(namespace: str, model: str, layer: str, target: int) -> dict[str, Any]:
    if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
        raise StoreError("A namespace is 1 to 64 letters, digits or ':_.-'.")
    for what, value, n in (("model identity", model, 128), ("layer name", layer, 256)):
        if not isinstance(value, str) or not 0 < len(value) <= n or not value.isprintable():
            raise StoreError(f"The {what} '{shown(str(value))}' cannot key a concept name (up to {n} printable "
                             "characters).")
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 <= int(target) < 2**31:
        raise StoreError(f"The class '{shown(str(target))}' cannot key a concept name (a class index).")
    return {"namespace": namespace, "model": model, "layer": layer, "target": int(target)}


def _digest(direction: Any) -> str:
    if isinstance(direction, str):
        if not _DIGEST.fullmatch(direction):
            raise StoreError("A direction digest is 64 lowercase hex digits (see direction_digest).")
        return direction
    return direction_digest(direction)


def _upsert(session: Session, row: dict[str, Any]) -> None:
    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        stmt = insert(ConceptName).values(**row)
        keys = ["namespace", "model", "layer", "target", "direction"]
        session.execute(stmt.on_conflict_do_update(index_elements=keys,
                                                   set_={"name": stmt.excluded.name, "updated": stmt.excluded.updated}))
    else:  # another backend: read-then-write inside the same transaction
        session.merge(ConceptName(**row))


def save_name(namespace: str, model: str, layer: str, target: int, direction: Any, name: object, *,
              url: str | None = None) -> str:
    """Name the concept (insert or replace, one transaction) and return the name as stored; a name that is empty
    once cleaned (:func:`clean_name`) deletes the entry instead. ``direction``: the vector or its digest."""
    key = {**_key(namespace, model, layer, target), "direction": _digest(direction)}
    text = clean_name(name)
    with transaction(url) as session:
        if not text:
            session.execute(delete(ConceptName).filter_by(**key))
        else:
            _upsert(session, {**key, "name": text, "updated": dt.datetime.now(dt.UTC)})
    return text


def names_for(namespace: str, model: str, layer: str, target: int, *, url: str | None = None) -> dict[str, str]:
    """The names this namespace gave to concepts of (model, layer, class): direction digest -> name."""
    key = _key(namespace, model, layer, target)
    with transaction(url) as session:
        rows = session.execute(select(ConceptName.direction, ConceptName.name).filter_by(**key)).all()
    return {d: n for d, n in rows}


def delete_name(namespace: str, model: str, layer: str, target: int, direction: Any, *, url: str | None = None) -> bool:
    """Forget one name (one transaction); True when there was one."""
    key = {**_key(namespace, model, layer, target), "direction": _digest(direction)}
    with transaction(url) as session:
        result = cast(CursorResult[Any], session.execute(delete(ConceptName).filter_by(**key)))
    return result.rowcount > 0
