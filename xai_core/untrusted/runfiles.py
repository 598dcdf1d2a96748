"""Files of batch inputs and run folders, read as untrusted as uploads: each one is a path resolved inside its
folder, sized on the open file before a byte is read, and decoded with a bound on what it inflates to.

- :func:`read_file`: the bytes of a regular file of at most ``limit`` bytes (a sparse 8 GB file is refused by its
  size, not read);
- :func:`read_json`: JSON with its nesting checked before parsing (:func:`.text.load_json`), an object at the top;
- :func:`read_table`: a Parquet table whose row count, columns and types come from its metadata before any column is
  decoded, strings decoded as dictionaries first so their real size is counted before they are expanded;
- :class:`Shard`: a maps ``.npz`` opened through the bounded zip reader; each member's ``.npy`` header (shape and
  dtype) is checked against the limit and the actual bytes before NumPy parses it, never with pickles, and the map
  must be finite;
- :func:`read_jpeg`: a JPEG (by its first bytes) decoded through the raster allow-list.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import ImageError, RunError, XaiError
from .limits import LIMITS, Limits, human
from .messages import short, shown
from .paths import cap, inside, open_regular
from .raster import decode_image
from .text import load_json
from .zips import UploadZip


def _is_text(t: pa.DataType) -> bool:
    string = (pa.types.is_string, pa.types.is_large_string)
    return any(f(t) for f in string) or (pa.types.is_dictionary(t) and any(f(t.value_type) for f in string))


_TYPES = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_null, _is_text)


def read_file(root: Path, path: str | Path, limit: int, what: str, error: type[XaiError] = RunError) -> bytes:
    """The bytes of ``path`` (resolved inside ``root``, symlinks included), refused by its size on disk when over
    ``limit``; ``what`` names the file in messages (never its server path)."""
    try:
        root = Path(root).resolve()
        path = inside(root, path, f"{cap(what)} leads outside its folder (a link or a path out of it); only files inside "
                                  "it are read.")
        fd, size = open_regular(root, path, what)
    except XaiError as e:
        raise error(str(e)) from None
    try:
        if size > limit:
            raise error(f"{cap(what)} is {human(size, 'file_bytes')} on disk; files up to {human(limit, 'file_bytes')} "
                        "are read here.")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(size + 1)  # sized by fstat; the file may have grown since
            if len(data) > size:
                data += f.read(limit + 1 - len(data))
    finally:
        os.close(fd)
    if len(data) > limit:
        raise error(f"{cap(what)} grew past {human(limit, 'file_bytes')} while it was read; files up to that size are read.")
    return data


def read_json(root: Path, path: str | Path, what: str, *, limits: Limits = LIMITS) -> dict:
    data = read_file(root, path, limits.run_file_bytes, what)
    try:
        obj = load_json(data.decode("utf-8"), limits.json_depth)
    except UnicodeDecodeError:
        raise RunError(f"{cap(what)} is not UTF-8 text; the run folder is damaged.") from None
    except ValueError as e:
        raise RunError(f"{cap(what)} {e}; the run folder is damaged.") from None
    if not isinstance(obj, dict):
        raise RunError(f"{cap(what)} holds a JSON {type(obj).__name__}, not an object; the run folder is damaged.")
    return obj


def _dense_bytes(col: pa.ChunkedArray) -> int:
    """Bytes the column takes once dictionaries are expanded, computed without expanding them."""
    total = 0
    for chunk in col.chunks:
        if pa.types.is_dictionary(chunk.type):
            lengths = pc.binary_length(chunk.dictionary) if _is_text(chunk.dictionary.type) else None
            per = pc.take(lengths, chunk.indices) if lengths is not None else None
            total += chunk.indices.nbytes + (int(pc.sum(per).as_py() or 0) if per is not None else 0)
            total += 4 * len(chunk)  # offsets once expanded
        else:
            total += chunk.nbytes
    return total


def read_table(root: Path, path: str | Path, allowed: set[str], what: str, *, limits: Limits = LIMITS) -> pd.DataFrame:
    """The allow-listed columns of a Parquet file, bounded by rows and decoded size (see the module docstring)."""
    data = read_file(root, path, limits.run_file_bytes, what)
    try:
        pf = pq.ParquetFile(pa.BufferReader(data))
        md = pf.metadata
        rows = max(md.num_rows, sum(md.row_group(i).num_rows for i in range(md.num_row_groups)))
        if rows > limits.run_rows:
            raise RunError(f"{cap(what)} declares {rows:,} rows; run tables of up to {limits.run_rows:,} rows are read.")
        declared = sum(md.row_group(i).total_byte_size for i in range(md.num_row_groups))
        if declared > limits.run_inflated_bytes:
            raise RunError(f"{cap(what)} declares {human(declared, 'x_bytes')} of data; up to "
                           f"{human(limits.run_inflated_bytes, 'x_bytes')} are read.")
        schema = pf.schema_arrow
        cols = [f.name for f in schema if f.name in allowed]
        odd = [f.name for f in schema if f.name in allowed and not any(t(f.type) for t in _TYPES)]
        if odd:
            raise RunError(f"{cap(what)}: the column '{shown(odd[0])}' has the type {shown(str(schema.field(odd[0]).type))}, "
                           "which a run table never has; the run folder is damaged.")
        strings = [f.name for f in schema if f.name in cols and _is_text(f.type)]
        pf = pq.ParquetFile(pa.BufferReader(data), read_dictionary=strings)
        table = pf.read(columns=cols, use_pandas_metadata=False)
        if table.num_rows > limits.run_rows:
            raise RunError(f"{cap(what)} holds more than {limits.run_rows:,} rows; the run folder is damaged.")
        size = sum(_dense_bytes(table.column(c)) for c in table.column_names)
        if size > limits.run_inflated_bytes:
            raise RunError(f"{cap(what)} inflates to {human(size, 'x_bytes')} in memory; up to "
                           f"{human(limits.run_inflated_bytes, 'x_bytes')} are read.")
        plain = pa.schema([pa.field(c, pa.string() if c in strings else table.schema.field(c).type) for c in cols])
        return table.cast(plain).to_pandas(types_mapper=_nullable.get)
    except RunError:
        raise
    except (pa.ArrowException, OSError, ValueError, TypeError, MemoryError, IndexError) as e:
        raise RunError(f"{cap(what)} is not a readable Parquet table ({short(e, 80)}); the run folder is damaged.") from None


_nullable = {pa.string(): pd.StringDtype(), pa.bool_(): pd.BooleanDtype(), pa.int64(): pd.Int64Dtype()}


class Shard:
    """One maps ``.npz``: members ``"0"``, ``"1"``, … read one at a time, each a finite float map."""

    def __init__(self, root: Path, path: str | Path, what: str, *, limits: Limits = LIMITS) -> None:
        self.what = what
        data = read_file(root, path, limits.run_file_bytes, what)
        self.limits = replace(limits, upload_bytes=limits.run_file_bytes, zip_total_bytes=limits.run_inflated_bytes)
        try:
            self.zip = UploadZip(data, limits=self.limits, hint="The run folder is damaged.")
        except ImageError as e:
            raise RunError(f"{cap(what)} is not a readable maps file ({short(e, 100)}).") from None

    def get(self, idx: int) -> np.ndarray:
        name = f"{idx}.npy"
        if name not in self.zip.names:
            raise RunError(f"{cap(self.what)} has no map {idx}; the run folder is damaged.")
        member = self.limits.model_input_side ** 2 * 8 + 1024  # the largest map: 1024² float64, plus its header
        try:
            raw = self.zip.read(name, limit=min(member, self.limits.run_inflated_bytes))
        except ImageError as e:
            raise RunError(f"Map {idx} of {self.what} cannot be read ({short(e, 100)}).") from None
        return _npy(raw, f"Map {idx} of {self.what}", self.limits)


def _npy(raw: bytes, what: str, limits: Limits) -> np.ndarray:
    f = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(f)
        header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = header(f, max_header_size=10_000)
    except (ValueError, SyntaxError, TypeError) as e:
        raise RunError(f"{cap(what)} has an unreadable header ({short(e, 80)}); the run folder is damaged.") from None
    if dtype.hasobject or dtype.kind != "f":
        raise RunError(f"{cap(what)} holds {'Python objects (a pickle)' if dtype.hasobject else dtype.name} instead of "
                       "float numbers; pickles are never loaded and the run folder is damaged.")
    side = limits.model_input_side
    if len(shape) != 2 or not all(0 < s <= side for s in shape):
        raise RunError(f"{cap(what)} declares the shape {shown(str(shape))}; maps are 2-D and at most {side} px a side.")
    declared = math.prod(shape) * dtype.itemsize
    if declared != len(raw) - f.tell():
        raise RunError(f"{cap(what)} declares {declared:,} bytes but holds {len(raw) - f.tell():,}; the run folder is "
                       "damaged.")
    arr = np.frombuffer(raw, dtype, offset=f.tell()).reshape(shape, order="F" if fortran else "C")
    if not np.isfinite(arr).all():
        raise RunError(f"{cap(what)} holds NaN or infinite values; the run folder is damaged, run the batch again.")
    return arr.astype(np.float32)


def read_jpeg(root: Path, path: str | Path, what: str, *, limits: Limits = LIMITS) -> np.ndarray:
    """A thumbnail: JPEG only (its first bytes, whatever its name), decoded through the raster allow-list."""
    data = read_file(root, path, limits.run_file_bytes, what, ImageError)
    if not data.startswith(b"\xff\xd8\xff"):
        raise ImageError(f"{cap(what)} is not a JPEG file; thumbnails are JPEG only and the run folder is damaged.")
    return decode_image(data, limits=limits).array
