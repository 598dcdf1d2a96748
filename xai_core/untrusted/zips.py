"""The one reader of uploaded zips: names checked, every member inflated in chunks and bounded.

Nothing is extracted to disk and nested zips are never opened. Member data is inflated here, in steps of at most
:data:`OUT` bytes, and reading stops at the per-member and per-zip limits: the sizes a zip declares are never
trusted (:mod:`zipfile`'s own reader inflates a whole bzip2 chunk at once: 4 KB of bzip2 can be gigabytes).
Problems with one member raise :class:`MemberError` (callers skip it with a note); problems with the whole zip raise
:class:`ImageError`.
"""

from __future__ import annotations

import bz2
import re
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator

from ..errors import ImageError
from . import zipscan
from .limits import LIMITS, MB, Limits, human
from .messages import shown
from .raster import DecodedImage, decode_image

METHODS = {0: "stored", 8: "deflate", 12: "bzip2"}
CHUNK = 64 * 1024  # compressed bytes fed per step
OUT = 1024 * 1024  # inflated bytes produced per step, at most
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
_DRIVE = re.compile(r"^[A-Za-z]:")


class MemberError(ImageError):
    """One member of a zip cannot be used (over the size limit, encrypted, corrupt, not an image)."""


def _stored(raw: memoryview) -> Iterator[bytes]:
    for pos in range(0, len(raw), OUT):
        yield bytes(raw[pos:pos + OUT])


def _deflate(raw: memoryview) -> Iterator[bytes]:
    d = zlib.decompressobj(-15)
    for pos in range(0, len(raw), CHUNK):
        data: bytes | memoryview = raw[pos:pos + CHUNK]
        while data and not d.eof:
            yield d.decompress(data, OUT)
            data = d.unconsumed_tail
        if d.eof:
            return
    tail = d.flush()  # input is used up: at most one pending match (258 bytes) is left
    if tail:
        yield tail
    if not d.eof:
        raise EOFError("the compressed data ends early")


def _bzip2(raw: memoryview) -> Iterator[bytes]:
    d, pos = bz2.BZ2Decompressor(), 0
    while not d.eof:
        data: bytes | memoryview = b""
        if d.needs_input:
            if pos >= len(raw):
                raise EOFError("the compressed data ends early")
            data, pos = raw[pos:pos + CHUNK], pos + CHUNK
        yield d.decompress(data, OUT)


_INFLATE = {0: _stored, 8: _deflate, 12: _bzip2}


def _safe_name(name: str, limits: Limits) -> str:
    if len(name) > limits.zip_name_chars:
        raise ImageError(f"The zip holds a file name of {len(name):,} characters; up to {limits.zip_name_chars:,} are "
                         "accepted. Shorten it and zip the folder again.")
    if any(c in _BIDI or unicodedata.category(c) in ("Cc", "Cs") for c in name):
        raise ImageError(f"The zip holds a file name with control characters ('{shown(name)}'); rename the file and "
                         "zip the folder again.")
    norm = name.replace("\\", "/")
    parts = norm.split("/")
    if norm.startswith("/") or _DRIVE.match(norm) or ".." in parts:
        raise ImageError(f"The zip holds a file named '{shown(name)}' that points outside the archive; zip the folder "
                         "again with relative paths.")
    return "/".join(p for p in parts[:-1] if p not in ("", ".")) + ("/" if len(parts) > 1 else "") + parts[-1]


class UploadZip:
    """A validated uploaded zip. ``names``: its files (folders left out) as relative paths with ``/``."""

    def __init__(self, data: bytes, *, limits: Limits = LIMITS, hint: str = "Zip a folder and upload that.") -> None:
        if len(data) > limits.upload_bytes:
            raise ImageError(f"The zip is {len(data) / MB:.0f} MB; up to {limits.upload_bytes // MB} MB are accepted.")
        try:
            zf = zipscan.open_zip(data, limits.zip_members)
        except zipscan.TooManyEntries as e:
            raise ImageError(f"The zip holds {e}; zip a smaller selection.") from None
        except zipscan.BadNameEncoding:
            raise ImageError("A file name in the zip is marked as UTF-8 but is not valid UTF-8; zip the folder again "
                             "with a standard zip tool.") from None
        except zipscan.ZipStructureError as e:
            raise ImageError(f"This is not a readable zip file ({e}). {hint}") from None
        self.limits, self.inflated, self._data = limits, 0, data
        self._infos: dict[str, zipfile.ZipInfo] = {}
        for info in zf.infolist():
            name = _safe_name(info.filename, limits)
            if not name.endswith("/"):
                self._infos.setdefault(name, info)
        self.names = list(self._infos)

    def read(self, name: str, limit: int | None = None) -> bytes:
        """A member's bytes, inflated here and bounded by ``limit`` (default: the per-member limit)."""
        info, what = self._infos[name], shown(name)
        limit = self.limits.zip_member_bytes if limit is None else limit
        if info.flag_bits & 0x1:
            raise MemberError(f"{what} is password-protected; zip the folder again without a password.")
        if info.compress_type not in METHODS:
            raise MemberError(f"{what} uses compression method {info.compress_type}, which is not read here; zip the "
                              "folder again with the standard (deflate) compression.")
        try:
            start, end = zipscan.span(self._data, info)
        except zipscan.ZipStructureError as e:
            raise MemberError(f"{what} is corrupt ({e}).") from None
        parts, size, crc = [], 0, 0
        try:
            for out in _INFLATE[info.compress_type](memoryview(self._data)[start:end]):
                size += len(out)
                self.inflated += len(out)
                if size > limit:
                    raise MemberError(f"{what} inflates to more than {human(limit, 'member_bytes')}, the limit per file.")
                if self.inflated > self.limits.zip_total_bytes:
                    raise ImageError(f"The zip inflates to more than {human(self.limits.zip_total_bytes, 'total_bytes')} "
                                     "in total; upload fewer or smaller files.")
                crc = zlib.crc32(out, crc)
                parts.append(out)
        except (zlib.error, OSError, EOFError, ValueError) as e:
            raise MemberError(f"{what} is corrupt ({type(e).__name__}).") from None
        if size != info.file_size or crc != info.CRC:
            raise MemberError(f"{what} is corrupt (its size or checksum does not match the zip's directory).")
        return b"".join(parts)

    def image(self, name: str) -> DecodedImage:
        """A member decoded as an image; any failure is a :class:`MemberError` with the member's name."""
        data = self.read(name)
        try:
            return decode_image(data, limits=self.limits)
        except ImageError as e:
            raise MemberError(str(e)) from None
