"""Zip structure checked from the raw bytes, before and around :mod:`zipfile`.

:mod:`zipfile` parses the whole central directory when a zip is opened, so the entry count and the directory's size
are read from the end record first (a 200 MB upload could otherwise hold millions of entries). Where a member's
data really starts is read from its local header: declared sizes are never trusted for memory, only used to find
bytes that are then checked against the file.
"""

from __future__ import annotations

import io
import struct
import zipfile

_EOCD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_LOCAL = struct.Struct("<4s5H3L2H")
ENTRY_BYTES = 1024  # central-directory bytes allowed per permitted entry (46 fixed + name + extra fields)


class ZipStructureError(ValueError):
    """The bytes are not a zip we will open; the text is a phrase for the caller's sentence."""


class TooManyEntries(ZipStructureError):
    """More entries than the caller reads."""


class BadNameEncoding(ZipStructureError):
    """A member name flagged as UTF-8 is not valid UTF-8."""


def directory(data: bytes) -> tuple[int, int, bool]:
    """(entries, central directory bytes, exact) as the end record states them; ``exact`` when the directory ends
    where the end records begin and nothing follows them (no data prepended or appended)."""
    pos = data.rfind(b"PK\x05\x06", max(0, len(data) - _EOCD.size - 0xFFFF))
    if pos < 0 or pos + _EOCD.size > len(data):
        raise ZipStructureError("no end-of-archive record")
    _, _, _, _, entries, size, offset, comment = _EOCD.unpack_from(data, pos)
    end, loc = pos, pos - _ZIP64_LOCATOR.size
    if loc >= 0 and data[loc:loc + 4] == b"PK\x06\x07":  # zipfile then reads the ZIP64 record's numbers instead
        _, _, end, _ = _ZIP64_LOCATOR.unpack_from(data, loc)
        if end + _ZIP64_EOCD.size > len(data) or data[end:end + 4] != b"PK\x06\x06":
            raise ZipStructureError("a broken ZIP64 end record")
        fields = _ZIP64_EOCD.unpack_from(data, end)
        entries, size, offset = fields[7], fields[8], fields[9]
    elif entries == 0xFFFF or size == 0xFFFFFFFF or offset == 0xFFFFFFFF:
        raise ZipStructureError("a broken ZIP64 end record")
    return entries, size, offset + size == end and pos + _EOCD.size + comment == len(data)


def open_zip(data: bytes, max_entries: int, *, exact: bool = False) -> zipfile.ZipFile:
    """A :class:`zipfile.ZipFile` over ``data``, refused before parsing when it has too many entries; ``exact``
    also refuses bytes before or after the archive (readers could disagree on where its records are)."""
    entries, size, is_exact = directory(data)
    if entries > max_entries:
        raise TooManyEntries(f"{entries:,} entries; up to {max_entries:,} are read")
    if size > max_entries * ENTRY_BYTES:
        raise TooManyEntries(f"a {size / 2**20:.1f} MB directory, more than {max_entries:,} entries would need")
    if exact and not is_exact:
        raise ZipStructureError("it has data before or after its records")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except UnicodeDecodeError:
        raise BadNameEncoding("a file name marked as UTF-8 that is not valid UTF-8") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, struct.error,
            IndexError, OverflowError) as e:
        raise ZipStructureError(f"a broken structure ({type(e).__name__})") from None
    if len(zf.infolist()) > max_entries:  # the end record's count can lie; the directory's size bounded the parse
        raise TooManyEntries(f"{len(zf.infolist()):,} entries; up to {max_entries:,} are read")
    return zf


def span(data: bytes, info: zipfile.ZipInfo) -> tuple[int, int]:
    """[start, end) of a member's stored (possibly compressed) bytes, within ``data``; end is clipped to the file."""
    off = info.header_offset
    if off < 0 or off + _LOCAL.size > len(data):
        raise ZipStructureError("a member header outside the file")
    sig, *_, name_len, extra_len = _LOCAL.unpack_from(data, off)
    if sig != b"PK\x03\x04":
        raise ZipStructureError("a member header that is not where the directory says")
    start = off + _LOCAL.size + name_len + extra_len
    if start > len(data):
        raise ZipStructureError("a member header outside the file")
    return start, min(start + info.compress_size, len(data))
