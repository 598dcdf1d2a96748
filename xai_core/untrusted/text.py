"""Uploaded text: class-name files (plain lines or JSON) and box CSVs, bounded before they are parsed.

JSON nesting is measured on the bracket skeleton (strings removed) before :func:`json.loads` recurses, so a file
nested 100,000 deep is refused with a sentence instead of a ``RecursionError``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re

import numpy as np

from ..errors import ImageError, ModelLoadError
from ..types import Box
from .limits import LIMITS, MB, Limits
from .messages import short, shown

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)


def json_depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` outside strings, computed without recursion."""
    skeleton = np.frombuffer(_STRING.sub("", text).encode("utf-8", "replace"), np.uint8)
    steps = np.zeros(len(skeleton), np.int8)
    steps[(skeleton == ord("[")) | (skeleton == ord("{"))] = 1
    steps[(skeleton == ord("]")) | (skeleton == ord("}"))] = -1
    steps = steps[steps != 0]
    return int(np.cumsum(steps, dtype=np.int64).max(initial=0))


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def load_json(text: str, max_depth: int) -> object:
    """JSON with its nesting checked first; a :class:`ValueError`'s text is a phrase such as ``does not parse (…)``."""
    depth = json_depth(text)
    if depth > max_depth:
        raise ValueError(f"is nested {depth:,} levels deep; up to {max_depth} are read")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("is nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, and int() of a number with too many digits
        raise ValueError(f"does not parse ({short(e)})") from None


def _name(v: object, limits: Limits) -> str:
    if isinstance(v, float) and not math.isfinite(v):
        raise ModelLoadError("A class name in the labels file is an infinite number; write the names as text.")
    if not isinstance(v, str | int | float):
        raise ModelLoadError(f"Each class name in a JSON labels file must be text; one is {type(v).__name__}. "
                             "Use a list of strings or an {\"index\": \"name\"} object.")
    s = str(v).strip()
    if len(s) > limits.label_chars:
        raise ModelLoadError(f"A class name in the labels file has {len(s):,} characters; up to {limits.label_chars} "
                             "are accepted.")
    return s


def _count(n: int, limits: Limits) -> None:
    if n > limits.labels_count:
        raise ModelLoadError(f"The labels file has more than {limits.labels_count:,} names; give one name per class.")


def parse_labels(data: bytes, num_classes: int, *, limits: Limits = LIMITS) -> list[str]:
    """A labels file -> list of names: one per line, a JSON list, or a JSON {index: name} object."""
    if len(data) > limits.labels_bytes:
        raise ModelLoadError(f"The labels file is {len(data) / MB:.0f} MB; up to {limits.labels_bytes // MB} MB are read. "
                             "Give one class name per line.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ModelLoadError("The labels file is not UTF-8 text. Save it as plain text, one class name per line.") from None
    stripped = text.strip()
    if stripped.startswith(("[", "{")):
        try:
            obj = load_json(stripped, limits.json_depth)
        except ValueError as e:
            raise ModelLoadError(f"The labels file looks like JSON but {e}.") from None
        if not isinstance(obj, (list, dict)):  # unreachable: JSON text that starts with [ or { is one of these
            raise ModelLoadError("The labels file looks like JSON but is neither a list nor an object.")
        _count(len(obj), limits)
        if isinstance(obj, dict):
            try:
                pairs = {int(k): _name(v, limits) for k, v in obj.items()}
            except ValueError:
                raise ModelLoadError("A JSON labels object must map class indices to names, e.g. {\"0\": \"cat\"}.") from None
            extra = [i for i in pairs if not 0 <= i < num_classes]
            if extra:
                raise ModelLoadError(f"The labels file names class {shown(str(extra[0]), 24)}, but the model has "
                                     f"{num_classes} classes.")
            return [pairs.get(i, f"class {i}") for i in range(num_classes)]
        names = [_name(v, limits) for v in obj]
    else:
        names = []
        for line in io.StringIO(text):
            if line.strip():
                names.append(_name(line, limits))
                _count(len(names), limits)
    if len(names) != num_classes:
        raise ModelLoadError(f"The labels file has {len(names)} names but the model has {num_classes} classes; "
                             "give exactly one name per class.")
    return names


def parse_boxes(text: str | bytes, *, limits: Limits = LIMITS) -> dict[str, Box]:
    """``filename,x0,y0,x1,y1`` rows (a header row is optional) → boxes in pixels; one ImageError for any problem."""
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig", "replace")
    out: dict[str, Box] = {}
    rows = csv.reader(io.StringIO(text))
    try:
        for i, row in enumerate(rows, 1):
            if i > limits.csv_rows:
                raise ImageError(f"The box CSV has more than {limits.csv_rows:,} rows; give one row per image.")
            if not row or not "".join(row).strip():
                continue
            longest = max(len(f) for f in row)
            if longest > limits.csv_field_chars:
                raise ImageError(f"Box CSV line {i} has a field of {longest:,} characters; up to "
                                 f"{limits.csv_field_chars:,} are read.")
            try:
                box = tuple(float(v) for v in row[1:5])
                if len(row) < 5:
                    raise ValueError
            except ValueError:
                if i == 1:
                    continue  # a header
                raise ImageError(f"Box CSV line {i} should be filename,x0,y0,x1,y1 in pixels; got "
                                 f"'{shown(','.join(row))}'.") from None
            if not all(math.isfinite(v) and abs(v) <= limits.image_pixels for v in box):
                raise ImageError(f"Box CSV line {i} has a coordinate that is not a pixel position "
                                 f"('{shown(','.join(row[1:5]))}'); correct the numbers.")
            out[row[0].strip()] = box  # type: ignore[assignment]
    except csv.Error as e:
        raise ImageError(f"Box CSV line {rows.line_num} is not valid CSV ({short(e)}); save it as plain "
                         "comma-separated text.") from None
    return out
