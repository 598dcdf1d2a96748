"""Names a visitor gives to discovered concepts: kept for the session and in the database (``xai_core.store``) under
the session's workspace (``ui/workspace.py``), keyed by content: the weights' fingerprint, the layer, the class and
the digest of the concept's direction. The same concept found again (in this session, after a reload or after a
restart) gets its name back; another workspace never sees it. A database that cannot be reached leaves the names
for the session only, with one sentence on the page."""

from __future__ import annotations

import streamlit as st

from xai_core import store

from . import workspace
from .concepts_data import Found

NAMES = "xai_concept_names"  # {discovery signature: {concept index: name}}: this session's copy of the stored names
FAILED = "xai_concept_names_failed"  # {discovery signature: why the store could not be read}
NAME_LIMIT = store.NAME_CHARS
KEEP = 32  # discoveries whose names the session keeps


def _digests(found: Found) -> dict[int, str]:
    return {c.index: store.direction_digest(c.direction) for c in found.discovery.concepts}


def load(found: Found) -> str | None:
    """Read the names of ``found``'s concepts from the store into the session (once per discovery); the sentence of
    why the store could not be read, if it could not (then the session keeps its own names)."""
    namespace = workspace.namespace()  # every run: keeps the workspace in the address (a page switch drops it)
    cache, failed = st.session_state.setdefault(NAMES, {}), st.session_state.setdefault(FAILED, {})
    if found.sig not in cache:
        d = found.discovery
        try:
            saved = store.names_for(namespace, found.model_digest, d.layer, d.target)
        except store.StoreError as e:
            saved, failed[found.sig] = {}, str(e)
        cache[found.sig] = {i: saved[dg] for i, dg in _digests(found).items() if dg in saved}
        for kept in (cache, failed):
            while len(kept) > KEEP:
                kept.pop(next(iter(kept)))
    problem = failed.get(found.sig)
    return problem if isinstance(problem, str) else None


def names(found: Found) -> dict[int, str]:
    """Concept index -> the visitor's name (only the named ones)."""
    got = st.session_state.get(NAMES, {}).get(found.sig, {})
    return got if isinstance(got, dict) else {}


def name_of(found: Found, index: int) -> str:
    """The visitor's name for a concept, else 'concept k' (as typed, cleaned: escape it where it is shown)."""
    kept = names(found).get(index)
    return kept if isinstance(kept, str) and kept else f"concept {index + 1}"


def keep(found: Found, index: int, widget: str) -> None:
    """The name widget's callback: clean the text, keep it for the session, write it to the store (an empty name
    forgets it). The session keeps it even when the store fails; then the page shows why (:func:`load`)."""
    text = store.clean_name(st.session_state.get(widget))
    mine = st.session_state.setdefault(NAMES, {}).setdefault(found.sig, {})
    if text:
        mine[index] = text
    else:
        mine.pop(index, None)
    d = found.discovery
    failed = st.session_state.setdefault(FAILED, {})
    try:
        store.save_name(workspace.namespace(), found.model_digest, d.layer, d.target, _digests(found)[index], text)
    except store.StoreError as e:
        failed[found.sig] = str(e)
    else:
        failed.pop(found.sig, None)
