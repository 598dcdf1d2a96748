"""Text a visitor supplied (a file name, a class name from an uploaded labels file), made safe to put inside
Streamlit's Markdown (``st.caption``, ``st.markdown``, ``st.success``, an image caption, a label): shown literally,
never as bold, a link, an image, HTML, LaTeX, a colour or an icon directive; and text the server wrote, without
the absolute paths of its files."""

from __future__ import annotations

import html
import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PATH = re.compile(r"(?<![\w:/.\\])(?:[A-Za-z]:)?[\\/](?:[^\s\\/()'\"]+[\\/])+([^\s\\/()'\"]*)")
_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:&\"'=%^@;,/?])")


def markdown(text: object, limit: int = 200) -> str:
    """``text`` with every Markdown-active character backslash-escaped (CommonMark lets any ASCII punctuation be
    escaped), control characters (line breaks) as spaces, and at most ``limit`` characters (an ellipsis marks a cut)."""
    s = _CONTROL.sub(" ", str(text))
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return _PUNCTUATION.sub(r"\\\1", s)


def no_paths(text: object) -> str:
    """``text`` with every absolute file path (``/srv/app/.venv/.../w.pth``, ``C:\\x\\w.pth``) cut to its last part:
    a visitor never reads where the server keeps its files. URLs are left alone."""
    return _PATH.sub(r"\1", str(text))


def plain(text: object, limit: int = 200) -> str:
    """``text`` for Plotly's titles and hover labels, which render a few HTML tags (``<b>``, ``<a href>``, ``<br>``):
    HTML-escaped, control characters as spaces, at most ``limit`` characters."""
    s = _CONTROL.sub(" ", str(text))
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return html.escape(s, quote=True)
