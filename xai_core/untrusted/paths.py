"""Paths a visitor (or a file a visitor can write) names: resolved inside a root, and server paths kept out of text.

:func:`inside` resolves a path the way the kernel will (every symlink followed, ``..`` applied) and refuses it
unless the result is the root or lies under it; NUL bytes, names the filesystem cannot hold and ``~`` (never
expanded here) are refused with a sentence first. :func:`open_regular` opens the resolved file without following a
last symlink, refuses anything but a regular file (a FIFO would block, a device never ends) and, on Linux, checks
where the opened descriptor really is, so a link swapped in after the check is caught. :func:`scrub` replaces the
absolute paths in a text shown to visitors (a model's provenance, a run's settings) by their last component.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from ..errors import XaiError

NAME_CHARS = 255  # the longest file name (one path component) Linux, macOS and Windows file systems hold
PATH_CHARS = 4096  # PATH_MAX on Linux
_ABSOLUTE = re.compile(r"(?<![\w.~:/\\-])(?:[A-Za-z]:)?(?:[/\\][^\s/\\()'\"<>,;]+)+[/\\]?")


def cap(what: str) -> str:
    """``what`` at the start of a sentence."""
    return what[:1].upper() + what[1:]


class PathError(XaiError):
    """A path was refused; the text is a sentence (callers may raise their own type with it)."""


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise PathError("The path contains a NUL byte; give a plain file or folder name.")
    if len(text) > PATH_CHARS or any(len(part) > NAME_CHARS for part in re.split(r"[/\\]", text)):
        raise PathError(f"The path is longer than a file system allows ({NAME_CHARS} characters per name); give a "
                        "shorter one.")
    if text.startswith("~"):
        raise PathError("The path starts with ~, which is not expanded here; give a path inside the folder instead.")


def inside(root: str | Path, text: str | Path, refusal: str, *, base: str | Path | None = None) -> Path:
    """``text`` (relative to ``base``, default ``root``, or absolute) resolved, symlinks included; ``refusal`` (a
    sentence) is raised as :class:`PathError` when the result is neither ``root`` nor under it."""
    _check_text(str(text))
    try:
        root = Path(root).resolve()
        p = Path(str(text).strip() or ".")
        p = (p if p.is_absolute() else Path(base or root) / p).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a name the OS refuses
        raise PathError("The path cannot be resolved (a link loop or an invalid name); give a plain file or folder "
                        "name.") from None
    if p != root and root not in p.parents:
        raise PathError(refusal)
    return p


def open_regular(root: Path, path: Path, what: str) -> tuple[int, int]:
    """An open read-only descriptor of the regular file ``path`` (already resolved inside ``root``) and its size,
    checked again on the open file; the caller closes it."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise PathError(f"{cap(what)} does not exist.") from None
    except OSError:
        raise PathError(f"{cap(what)} cannot be opened (a link, or no permission); give a plain readable file.") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PathError(f"{cap(what)} is not a regular file (a folder, pipe or device); give a plain file.")
        real = Path(f"/proc/self/fd/{fd}")
        if real.is_symlink():  # Linux: where the descriptor really points, after any swap of a parent folder
            target = Path(os.readlink(real))
            if root != target and root.resolve() not in target.parents:
                raise PathError(f"{cap(what)} moved outside its folder while it was opened; give a plain file.")
    except BaseException:
        os.close(fd)
        raise
    return fd, st.st_size


def relative(path: str | Path, *roots: str | Path) -> str:
    """``path`` relative to the first root it lies under, else its name only (what a page may show)."""
    p = Path(path)
    for r in roots:
        try:
            return p.resolve().relative_to(Path(r).resolve()).as_posix() or "."
        except (ValueError, OSError, RuntimeError):
            continue
    return p.name


def scrub(text: str) -> str:
    """``text`` with every absolute path (``/a/b/c.pt``, ``C:\\x\\y``) replaced by its last component (``c.pt``)."""
    return _ABSOLUTE.sub(lambda m: re.split(r"[/\\]", m.group(0).rstrip("/\\"))[-1], text)
