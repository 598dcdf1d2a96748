"""Who may see what of a study: the designer (a study's code and its designer key, kept in this session only, never
in the address) and the participant (the study code and their own random token, both in their link).

A session that published or opened a study keeps its key under :data:`KEYS`, so the designer and results pages open
it without asking again; a new session (another browser, a server restart) asks for the code and the key.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode, urlsplit

import streamlit as st

from xai_core.study import StudyError, storage

KEYS = "xai_study_keys"  # code -> designer key, for this session only
OPEN = "xai_study_open"  # the code of the study this session has open
STUDY, TOKEN = "study", "p"  # a participant link's query parameters


def remember(code: str, key: str) -> None:
    keys = st.session_state.get(KEYS)
    if not isinstance(keys, dict):
        keys = st.session_state[KEYS] = {}
    keys[code] = key
    st.session_state[OPEN] = code


def designer(prefix: str) -> storage.Opened | None:
    """The study this session has open as its designer, after a code-and-key form; None (with the form) otherwise."""
    keys = st.session_state.get(KEYS) if isinstance(st.session_state.get(KEYS), dict) else {}
    with st.form(f"{prefix}_login", border=True):
        c1, c2, c3 = st.columns([2, 3, 1], vertical_alignment="bottom")
        code = c1.text_input("Study code", max_chars=16, key=f"{prefix}_code")
        key = c2.text_input("Designer key", type="password", max_chars=64, key=f"{prefix}_key",
                            help="Shown once, when the study was published. Participants never see it.")
        go = c3.form_submit_button("Open the study")
    if go:
        try:
            found = storage.designer_study(str(code or "").strip(), str(key or "").strip())
        except StudyError as e:
            st.error(str(e))
            return None
        remember(found.code, str(key).strip())
        return found
    code = st.session_state.get(OPEN)
    if isinstance(code, str) and code in keys:
        return storage.designer_study(code, keys[code])
    return None


def base_url() -> str:
    """The server's address as the browser sees it (scheme, host and any base path), without the page's own path."""
    parts = urlsplit(st.context.url or "")
    path = parts.path.rstrip("/")
    path = path[: path.rfind("/")] if "/" in path else ""
    return f"{parts.scheme}://{parts.netloc}{path}" if parts.netloc else ""


def participant_link(code: str) -> str:
    return f"{base_url()}/take?{urlencode({STUDY: code})}"


def participant_token(create: bool = False) -> str | None:
    """This participant's token: from the link (when well-formed), else a new one written into the link (so that
    reopening the link resumes); None when there is none and ``create`` is False."""
    tok = st.query_params.get(TOKEN) or ""
    if storage.TOKEN.fullmatch(tok):
        return tok
    if not create:
        return None
    tok = secrets.token_urlsafe(18)
    st.query_params[TOKEN] = tok
    return tok
