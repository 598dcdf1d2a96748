"""Pieces of error sentences that quote hostile input: always one short, printable line."""

from __future__ import annotations


def shown(text: str, n: int = 60) -> str:
    """A name from an upload as it may appear in a message: escaped (no control or bidi characters), at most n chars."""
    cut = text if len(text) <= n else text[: n - 1] + "…"
    return ascii(cut)[1:-1] if not cut.isprintable() or any(0x202A <= ord(c) <= 0x202E for c in cut) else cut


def short(err: BaseException, n: int = 120) -> str:
    """The first line of an exception's text, at most n characters, without a trailing full stop."""
    lines = str(err).strip().splitlines()
    text = (lines[0] if lines else type(err).__name__).rstrip(".")
    return text if len(text) <= n else text[: n - 1] + "…"
