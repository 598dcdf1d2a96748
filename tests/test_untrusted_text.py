"""Uploaded text: labels files (plain or JSON, depth checked before parsing) and box CSVs (fields, rows, finite
numbers); the worst cases again in a capped child. Every file is generated here."""

from __future__ import annotations

import json

import pytest
from helpers import assert_clean_error
from hostile import deep_json, run_capped

from xai_core import ImageError, ModelLoadError, metrics, parse_labels
from xai_core.untrusted import LIMITS, Limits, parse_boxes
from xai_core.untrusted.text import json_depth


@pytest.mark.parametrize(("text", "depth"), [("[]", 1), ('{"a": [1, {"b": []}]}', 4), ('["[[[[", "}}}"]', 1),
                                             (r'["\"[[[", "\\"]', 1), ("1", 0), ("[" * 50 + "]" * 50, 50)])
def test_json_depth_ignores_brackets_inside_strings(text, depth):
    assert json_depth(text) == depth
    assert json_depth(text) == _recursive_depth(json.loads(text))


def _recursive_depth(obj) -> int:
    if isinstance(obj, dict):
        return 1 + max(map(_recursive_depth, obj.values()), default=0)
    if isinstance(obj, list):
        return 1 + max(map(_recursive_depth, obj), default=0)
    return 0


LABELS = {
    "deep_list": (deep_json(100_000), "nested 100,000 levels deep; up to 32 are read"),
    "deep_object": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested 100,000 levels deep"),
    "nan_constant": (b'["a", NaN]', "NaN is not a number JSON allows"),
    "huge_number": (b"[" + b"9" * 5000 + b"]", "does not parse"),
    "1e400": (b'["a", 1e400]', "infinite number"),
    "nested_name": (b'["a", ["b"]]', "must be text; one is list"),
    "null_name": (b'["a", null]', "must be text; one is NoneType"),
    "long_name": (json.dumps(["a", "x" * 10_000]).encode(), "has 10,000 characters; up to 512"),
    "huge_index": (json.dumps({"9" * 4000: "a"}).encode(), "names class 9999"),
    "too_many_lines": (b"x\n" * 100_001, "more than 100,000 names"),
    "too_large": (b"x" * (8 * 2**20 + 1), "up to 8 MB are read"),
}


@pytest.mark.parametrize("kind", list(LABELS))
def test_hostile_labels_files_get_one_sentence(kind):
    data, fragment = LABELS[kind]
    with pytest.raises(ModelLoadError) as info:
        parse_labels(data, 2)
    msg = assert_clean_error(info.value)
    assert fragment in msg and len(msg) < 300, msg


def test_labels_limits_are_parameters():
    with pytest.raises(ModelLoadError, match="must be text; one is list"):  # depth 2 passes the depth check
        parse_labels(b'[["a"]]', 1, limits=Limits(json_depth=2))
    with pytest.raises(ModelLoadError, match="up to 1 are read"):
        parse_labels(b'[["a"]]', 1, limits=Limits(json_depth=1))
    assert parse_labels(b'["a", 2, 3.5]', 3) == ["a", "2", "3.5"]


CSV = {
    "inf": ("a.png,0,0,inf,5", "line 1 has a coordinate that is not a pixel position ('0,0,inf,5')"),
    "nan": ("h,x0,y0,x1,y1\na.png,nan,0,1,5", "line 2 has a coordinate"),
    "1e400": ("h,x0,y0,x1,y1\na.png,0,0,1e400,5", "line 2 has a coordinate"),
    "too_far": ("h,x0,y0,x1,y1\na.png,0,0,1e12,5", "line 2 has a coordinate"),
    "formula": ("h,x0,y0,x1,y1\n=cmd|' /C calc'!A0,=1+1,0,1,5", "line 2 should be filename,x0,y0,x1,y1"),
    "long_name": ("h,x0,y0,x1,y1\n" + "n" * 5000 + ",0,0,1,5", "line 2 has a field of 5,000 characters"),
    "huge_field": ("h,x0,y0,x1,y1\n\"" + "n" * 200_000 + "\",0,0,1,5", "is not valid CSV (field larger than field limit"),
    "nul": ("h,x0,y0,x1,y1\na.png,0,0\x00,1,5", "line 2 should be filename,x0,y0,x1,y1 in pixels; got 'a.png,0,0\\x00"),
    "too_many_rows": ("a.png,0,0,1,1\n" * 100_001, "more than 100,000 rows"),
}


@pytest.mark.parametrize("kind", list(CSV))
def test_hostile_box_csv_values_get_one_sentence_with_the_line(kind):
    text, fragment = CSV[kind]
    for data in (text, text.encode()):  # the page passes bytes, the zip reader passes what it read
        with pytest.raises(ImageError) as info:
            metrics.parse_boxes(data)
        msg = assert_clean_error(info.value)
        assert fragment in msg and len(msg) < 300, msg


def test_good_box_csvs_still_read():
    assert parse_boxes("filename,x0,y0,x1,y1\na.png, 1, 2 ,3,4\n\n,,\nb.png,-5,0,1e3,2.5\n") == {
        "a.png": (1, 2, 3, 4), "b.png": (-5, 0, 1000, 2.5)}
    assert parse_boxes(b"\xef\xbb\xbfa.png,1,2,3,4\n") == {"a.png": (1, 2, 3, 4)}
    assert LIMITS.csv_rows == 100_000 and metrics.parse_boxes is parse_boxes


# --------------------------------------------------------------------------------------------
# the worst cases under an address-space and time cap


CAPPED = {
    **{f"labels_{k}": (lambda d=d: d, lambda d: parse_labels(d, 2), "ModelLoadError", frag)
       for k, (d, frag) in LABELS.items()},
    **{f"csv_{k}": (lambda t=t: t.encode(), parse_boxes, "ImageError", frag) for k, (t, frag) in CSV.items()},
    "labels_8mb_of_brackets": (lambda: b"[" * (8 * 2**20 - 10), lambda d: parse_labels(d, 2), "ModelLoadError",
                               "nested 8,388,598 levels deep"),
}


def test_hostile_text_under_a_memory_and_time_cap():
    results = run_capped("test_untrusted_text", list(CAPPED), headroom_mib=512)
    for name, (_, _, error, fragment) in CAPPED.items():
        r = results[name]
        assert r["error"] == error and fragment in r["message"], (name, r)
        assert not r["chained"] and r["seconds"] < 10 and r["peak_mib"] < 200, (name, r)
