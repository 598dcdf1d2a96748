"""The session's workspace: whose persisted things (concept names; later, study responses) a session reads and writes.

A workspace is a random 144-bit token made for a session and kept in its state and in the page's URL (``?ws=…``), so
a reload or a server restart (the browser reconnects with the same address) finds the same workspace. The database
never sees the token, only :func:`namespace`, a digest of it: whoever reads the database cannot act as a visitor.
Rule: a session reads and writes only its own workspace's rows; sessions of a shared server never see each other's.
The share link (``links.share_url``) leaves the token out. ``XAI_WORKSPACE=<name>`` puts every session of the process
in one named workspace instead (a single-user install, or a team that wants to share names).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets

import streamlit as st

PARAM = "ws"
KEY = "xai_workspace"
ENV = "XAI_WORKSPACE"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{24}")


def token() -> str:
    """This session's workspace token: kept in the session, else adopted from the URL, else made; written to the URL."""
    tok = st.session_state.get(KEY)
    if not isinstance(tok, str) or not _TOKEN.fullmatch(tok):
        asked = st.query_params.get(PARAM) or ""
        tok = asked if _TOKEN.fullmatch(asked) else secrets.token_urlsafe(18)
        st.session_state[KEY] = tok
    if not os.environ.get(ENV) and st.query_params.get(PARAM) != tok:
        st.query_params[PARAM] = tok
    return tok


def namespace() -> str:
    """The store's namespace of this session: a digest of the workspace token (or of ``XAI_WORKSPACE``)."""
    shared = os.environ.get(ENV)
    if shared:
        return "team:" + hashlib.sha256(shared.encode()).hexdigest()[:40]
    return "ws:" + hashlib.sha256(token().encode()).hexdigest()[:40]
