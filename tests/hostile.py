"""Hostile uploads, generated (nothing is committed): zip bombs with lying headers, documents posing as images,
torch archives with a deflated record, deep JSON; and a runner that feeds cases to the upload boundary in a child
process under an address-space cap (RLIMIT_AS) and a time cap."""

from __future__ import annotations

import bz2
import collections
import contextlib
import functools
import importlib
import io
import json
import os
import pickle
import resource
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib
from dataclasses import dataclass
from pathlib import Path

MiB = 1024 * 1024
TESTS = Path(__file__).resolve().parent


# --------------------------------------------------------------------------------------------
# zips written byte by byte, so that every header field can lie


@dataclass
class Entry:
    """One zip member as written: ``data`` is stored as given (already compressed for method 8/12)."""

    name: bytes | str
    data: bytes = b""
    method: int = 0
    crc: int | None = None  # default: CRC-32 of data (right for stored members)
    size: int | None = None  # declared uncompressed size; default len(data)
    csize: int | None = None  # declared compressed size; default len(data)
    flags: int = 0
    same_as: int | None = None  # point this directory entry at an earlier entry's local header (overlap)


def raw_zip(entries: list[Entry], declared_entries: int | None = None) -> bytes:
    """A zip whose headers say exactly what ``entries`` say (no ZIP64; sizes must fit in 32 bits)."""
    out, central, offsets = bytearray(), bytearray(), []
    for e in entries:
        name = e.name.encode("utf-8") if isinstance(e.name, str) else e.name
        crc = zlib.crc32(e.data) if e.crc is None else e.crc
        size = len(e.data) if e.size is None else e.size
        csize = len(e.data) if e.csize is None else e.csize
        fixed = struct.pack("<HHHHHIII", 20, e.flags, e.method, 0, 0x21, crc, csize, size)
        if e.same_as is None:
            offsets.append(len(out))
            out += b"PK\x03\x04" + fixed + struct.pack("<HH", len(name), 0) + name + e.data
        else:
            offsets.append(offsets[e.same_as])
        central += (b"PK\x01\x02" + struct.pack("<H", 20) + fixed
                    + struct.pack("<HHHHHII", len(name), 0, 0, 0, 0, 0, offsets[-1]) + name)
    count = len(entries) if declared_entries is None else declared_entries
    return bytes(out + central + b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, count, count, len(central), len(out), 0))


@functools.cache
def zeros_crc(n: int) -> int:
    crc, chunk = 0, bytes(16 * MiB)
    for pos in range(0, n, len(chunk)):
        crc = zlib.crc32(chunk[: min(len(chunk), n - pos)], crc)
    return crc


def deflate_zeros(mib: int) -> bytes:
    """A raw deflate stream of ``mib`` MiB of zeros, built in milliseconds: after a full flush, every further MiB of
    zeros compresses to the same ~1 KB, so the unit is repeated instead of compressed again (~1000:1)."""
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = z.compress(bytes(MiB)) + z.flush(zlib.Z_FULL_FLUSH)
    unit = z.compress(bytes(MiB)) + z.flush(zlib.Z_FULL_FLUSH)
    assert unit == z.compress(bytes(MiB)) + z.flush(zlib.Z_FULL_FLUSH)
    return first + unit * (mib - 1) + b"\x03\x00"  # an empty final fixed-Huffman block


BZ_BLOCK = 40 * MiB  # zeros per bzip2 block (one block holds up to ~45 MB of runs)


@functools.cache
def bzip2_zeros(blocks: int) -> bytes:
    """A bzip2 stream of ``blocks`` × 40 MiB of zeros in ~40 bytes per block (~10^6:1), built by repeating the one
    block bzip2 writes for 40 MiB of zeros; the stream's combined CRC is recomputed so the stream is valid."""
    one = bz2.compress(bytes(BZ_BLOCK), 9)
    bits = bin(int.from_bytes(one, "big"))[2:].zfill(len(one) * 8)
    eos = format(0x177245385090, "048b")
    end = bits.index(eos, 32 + 48)
    block, block_crc = bits[32:end], int(bits[32 + 48:32 + 80], 2)
    combined = 0
    for _ in range(blocks):
        combined = (((combined << 1) | (combined >> 31)) & 0xFFFFFFFF) ^ block_crc
    stream = bits[:32] + block * blocks + eos + format(combined, "032b")
    stream += "0" * (-len(stream) % 8)
    return int(stream, 2).to_bytes(len(stream) // 8, "big")


def bomb_zip(name: str, method: int, mib_or_blocks: int, lie: bool) -> bytes:
    """One member of zeros: deflate (``mib_or_blocks`` MiB) or bzip2 (× 40 MiB); ``lie`` declares 1 KB inflated.
    Above 256 MiB the CRC is left 0, as an attacker may: a bounded reader stops long before it could check it."""
    data = deflate_zeros(mib_or_blocks) if method == 8 else bzip2_zeros(mib_or_blocks)
    size = mib_or_blocks * (MiB if method == 8 else BZ_BLOCK)
    return raw_zip([Entry(name, data, method, crc=zeros_crc(size) if size <= 256 * MiB else 0,
                          size=1024 if lie else size)])


# --------------------------------------------------------------------------------------------
# documents that pose as images


def eps_via_pillow() -> bytes:
    """A genuine EPS file, as Pillow writes it (writing needs no Ghostscript)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(buf, format="EPS")
    return buf.getvalue()


def dos_eps() -> bytes:
    """The DOS EPS binary header (C5D0D3C6) in front of PostScript, as some tools export EPS."""
    ps = eps_via_pillow()
    return b"\xc5\xd0\xd3\xc6" + struct.pack("<IIIIIIH", 30, len(ps), 0, 0, 0, 0, 0xFFFF) + ps


DOCUMENTS = {
    "eps": (eps_via_pillow, "PostScript/EPS"),
    "dos_eps": (dos_eps, "EPS document"),
    "postscript": (lambda: b"%!PS-Adobe-3.0\n/Times findfont 12 scalefont setfont 72 72 moveto (hi) show showpage\n",
                   "PostScript/EPS"),
    "pdf": (lambda: b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n", "PDF"),
    "pdf_after_junk": (lambda: b"\x00" * 100 + b"%PDF-1.4\n%%EOF\n", "PDF"),
    "svg": (lambda: b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>', "SVG"),
    "svg_bare": (lambda: b'\xef\xbb\xbf  <svg width="9" height="9"><image href="file:///etc/passwd"/></svg>', "SVG"),
    "html": (lambda: b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>", "HTML"),
}


# --------------------------------------------------------------------------------------------
# checkpoints


def torch_bytes(obj: object) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


class _Storage:
    def __init__(self, numel: int) -> None:
        self.numel = numel


class _Tensor:
    def __init__(self, numel: int) -> None:
        self.storage, self.numel = _Storage(numel), numel

    def __reduce__(self):
        import torch

        return torch._utils._rebuild_tensor_v2, (self.storage, 0, (self.numel,), (1,), False, collections.OrderedDict())


class _TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        import torch

        if isinstance(obj, _Storage):
            return "storage", torch.FloatStorage, "0", "cpu", obj.numel
        return None


def torch_bomb(mib: int) -> bytes:
    """A torch.save-style archive of one float32 tensor of ``mib`` MiB of zeros whose record is *deflated*: a ~1000:1
    file that torch.load (weights_only=True) inflates to its full declared size."""
    pkl = io.BytesIO()
    _TorchPickler(pkl, protocol=2).dump({"fc.weight": _Tensor(mib * MiB // 4)})
    n = mib * MiB
    return raw_zip([Entry("archive/data.pkl", pkl.getvalue()), Entry("archive/byteorder", b"little"),
                    Entry("archive/data/0", deflate_zeros(mib), 8, crc=0, size=n),  # torch fails to allocate first
                    Entry("archive/version", b"3\n")])


RAN: list[str] = []


def _ran(tag: str) -> str:
    RAN.append(tag)
    return tag


class Payload:
    """Unpickling this object appends to RAN: proof of whether a pickle was executed."""

    def __reduce__(self):
        return _ran, ("payload ran",)


def deep_json(depth: int) -> bytes:
    return b"[" * depth + b'"a"' + b"]" * depth


# --------------------------------------------------------------------------------------------
# the capped child process


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _child(module: str, names: list[str], headroom: int) -> None:
    import torch

    from xai_core.errors import XaiError

    torch.set_num_threads(1)
    cases = importlib.import_module(module).CAPPED
    inputs = {n: cases[n][0]() for n in names}  # generated before the cap: only reading is measured
    base = _status("VmSize")
    resource.setrlimit(resource.RLIMIT_AS, (base + headroom, resource.getrlimit(resource.RLIMIT_AS)[1]))
    results = {}
    tracemalloc.start()  # Python objects and numpy arrays: the inflated bytes and decoded pixels
    for n in names:
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS to now (Linux)
        tracemalloc.reset_peak()
        rss0, t0 = _status("VmRSS"), time.perf_counter()
        out: dict[str, object] = {}
        try:
            out["value"] = cases[n][1](inputs[n])
            out["error"] = None
        except XaiError as e:
            out.update(error=type(e).__name__, message=str(e), chained=e.__cause__ is not None or (
                e.__context__ is not None and not e.__suppress_context__))
        except BaseException as e:  # noqa: BLE001 - reported to the parent, which fails the test
            out.update(error=f"untyped {type(e).__name__}", message=str(e)[:500])
        out.update(seconds=time.perf_counter() - t0, peak_mib=tracemalloc.get_traced_memory()[1] / MiB,
                   rss_mib=(_status("VmHWM") - rss0) / MiB, ran=list(RAN))
        results[n] = out
    print("RESULTS " + json.dumps(results, default=str))


def run_capped(module: str, names: list[str], *, headroom_mib: int = 1024, timeout: float = 180,
               env: dict[str, str] | None = None) -> dict[str, dict]:
    """Run ``CAPPED[name]`` cases of a test module in one child whose address space is capped at its baseline after
    imports plus ``headroom_mib``; each case is ``(make, call)``: make() builds the input, call(input) reads it."""
    root = str(TESTS.parent)
    code = (f"import sys; sys.path[:0] = [{str(TESTS)!r}, {root!r}]; import hostile; "
            f"hostile._child({module!r}, {names!r}, {headroom_mib * MiB})")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, cwd=root,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULTS ")]
    assert proc.returncode == 0 and lines, f"child failed (rc {proc.returncode}):\n{proc.stderr[-4000:]}"
    return json.loads(lines[-1][len("RESULTS "):])
