"""Hostile batch inputs and run folders: paths stay inside their roots (symlinks, ``..``, absolute paths, ``~``, NUL
bytes, long names), and every file is read like an upload (sparse 8 GB files, inflating Parquet, npz shards with
lying headers, pickles or NaN, deep JSON, a PNG or a gigapixel JPEG posing as a thumbnail). Each case is one typed
error sentence; nothing outside the test's folders is opened and no process is started (an audit hook watches both).
The memory cases run in a child process under RLIMIT_AS (baseline + 1 GiB) with a time bound. Files are generated."""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import assert_clean_error
from hostile import RAN, Entry, Payload, deep_json, deflate_zeros, raw_zip, run_capped
from PIL import Image
from test_batch import make_tree

from xai_core import XaiError
from xai_core.batch import discover, open_run
from xai_core.batch.__main__ import main
from xai_core.batch.inputs import Item, load
from xai_core.batch.results import resolve_under
from xai_core.batch.writer import typed
from xai_core.errors import ImageError, RunError

GB = 1024**3
WATCHED: dict[str, list[str]] = {"opened": [], "spawned": []}
_WATCH: list[str] = []  # folders whose opening is recorded (set while a test watches)


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _WATCH and isinstance(args[0], str | bytes | os.PathLike):
        p = os.fsdecode(args[0])
        if any(p.startswith(w) for w in _WATCH):
            WATCHED["opened"].append(p)
    elif event in ("subprocess.Popen", "os.system", "os.posix_spawn", "os.exec", "os.fork", "os.spawn"):
        WATCHED["spawned"].append(event)


sys.addaudithook(_audit)


@pytest.fixture
def watch(tmp_path):
    """``outside``: a folder with a secret image beside the inputs; after the test nothing in it was opened and no
    process was started."""
    outside = tmp_path / "outside"
    outside.mkdir()
    Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(outside / "secret.png")
    WATCHED["opened"].clear()
    WATCHED["spawned"].clear()
    _WATCH[:] = [str(outside)]
    yield outside
    _WATCH.clear()
    assert WATCHED == {"opened": [], "spawned": []}, WATCHED


def _refused(error: type[XaiError], fragment: str, call, *args, **kwargs) -> str:
    with pytest.raises(error) as e:
        call(*args, **kwargs)
    msg = assert_clean_error(e.value)
    assert fragment in msg, msg
    assert "/tmp" not in msg and str(Path(tempfile.gettempdir())) not in msg, msg  # no server path in a sentence
    return msg


def test_symlinked_file_and_folder_leading_out_of_the_inputs_are_refused(tmp_path, watch):
    tree = make_tree(tmp_path / "inputs" / "tree", per_class=2)
    (tree / "horse" / "leak.png").symlink_to(watch / "secret.png")
    _refused(ImageError, "a link to a file outside", discover, tree, ["other", "horse"])
    (tree / "horse" / "leak.png").unlink()
    (tree / "other" / "more").symlink_to(watch, target_is_directory=True)
    _refused(ImageError, "a link to a folder outside", discover, tree, ["other", "horse"])
    (tree / "other" / "more").unlink()
    (tree / "horse" / "inner.png").symlink_to(tree / "other" / "0.png")  # a link that stays inside is read
    items, layout = discover(tree, ["other", "horse"])
    assert layout == "classes" and len(items) == 5
    # a file swapped for a link after discovery (or on a Ray worker) is refused when it is read
    (tree / "other" / "1.png").unlink()
    (tree / "other" / "1.png").symlink_to(watch / "secret.png")
    victim = [it for it in items if it.key == "other/1.png"][0]
    _refused(ImageError, "leads outside its folder", load, victim)
    _refused(ImageError, "leads outside its folder", load, Item("x", str(watch / "secret.png"), root=str(tree)))


@pytest.mark.parametrize(("row", "fragment"), [
    ("../outside/secret.png", "outside the inputs folder"),
    ("{outside}/secret.png", "outside the inputs folder"),
    ("sub/../../outside/secret.png", "outside the inputs folder"),
    ("~/secret.png", "starts with ~"),
    ("a" * 300 + ".png", "longer than a file system allows"),
])
def test_csv_rows_leading_out_of_the_inputs_are_refused(tmp_path, watch, row, fragment):
    inputs = tmp_path / "inputs"
    make_tree(inputs, per_class=1)
    (inputs / "list.csv").write_text(f"horse/0.png,1\n{row.format(outside=watch)},0\n")
    msg = _refused(ImageError, fragment, discover, inputs / "list.csv", ["other", "horse"])
    assert msg.startswith("CSV line 2")


def test_a_server_inputs_root_bounds_the_cli_and_the_csv(tmp_path, watch, monkeypatch):
    inputs = tmp_path / "inputs"
    make_tree(inputs / "tree", per_class=1)
    (inputs / "tree" / "list.csv").write_text("../../outside/secret.png,0\n")
    _refused(ImageError, "Inputs are read from the inputs folder only", discover, watch, ["a"], root=inputs)
    _refused(ImageError, "outside the inputs folder", discover, inputs / "tree" / "list.csv", ["a"], root=inputs)
    (inputs / "tree" / "list.csv").write_text("../tree/horse/0.png,0\n")  # leaves the CSV's folder, not the root
    assert [i.key for i in discover(inputs / "tree" / "list.csv", ["a"], root=inputs)[0]] == ["tree/horse/0.png"]
    monkeypatch.setenv("XAI_INPUTS_ROOT", str(inputs))
    monkeypatch.setenv("XAI_RUNS_ROOT", str(tmp_path / "runs"))
    assert main([str(watch), "--out", str(tmp_path / "runs" / "r"), "--model", "lab_horse_cnn", "--no-progress"]) == 2
    assert main([str(inputs / "tree"), "--out", str(watch / "r"), "--model", "lab_horse_cnn", "--no-progress"]) == 2
    assert not (watch / "r").exists()


@pytest.mark.parametrize(("text", "fragment"), [
    ("..", "Runs are opened from the runs folder only"), ("/etc", "Runs are opened from the runs folder only"),
    ("a\x00b", "NUL byte"), ("x" * 300, "longer than a file system allows"), ("~", "starts with ~"),
    ("linked", "Runs are opened from the runs folder only"),
])
def test_run_paths_stay_inside_the_runs_root(tmp_path, watch, text, fragment):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "linked").symlink_to(watch, target_is_directory=True)
    msg = _refused(RunError, fragment, resolve_under, runs, text)
    assert str(runs) not in msg


# --------------------------------------------------------------------------------------------
# a real run, damaged one file at a time


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("hostile_run")
    tree = make_tree(base / "inputs" / "tree", per_class=2)
    assert main([str(tree), "--out", str(base / "runs" / "good"), "--model", "lab_horse_cnn", "--explainer", "gradient",
                 "--metrics", "pointing_game", "--no-progress"]) == 0
    return base / "runs" / "good"


def _copy(good: Path, tmp: Path) -> Path:
    run = tmp / "runs" / "r"
    shutil.copytree(good, run)
    return run


def test_the_table_and_thumbnails_name_only_files_inside_the_run_and_the_inputs(good_run, tmp_path, watch):
    run = _copy(good_run, tmp_path)
    r = open_run(run)
    row = r.table.iloc[0].to_dict()
    assert r.source_image(row, good_run.parents[1] / "inputs").shape == (40, 48, 3)
    _refused(ImageError, "leads outside its folder", r.source_image, {**row, "path": str(watch / "secret.png")},
             good_run.parents[1] / "inputs")
    _refused(ImageError, "leads outside its folder", r.source_image, row, watch)  # the inputs root says no
    _refused(ImageError, "leads outside its folder", r.thumbnail, {**row, "thumb": "../../../outside/secret.png"})
    (run / "thumbs" / row["thumb"]).unlink()
    (run / "thumbs" / row["thumb"]).symlink_to(watch / "secret.png")
    _refused(ImageError, "leads outside its folder", r.thumbnail, row)
    (run / "maps" / "shard-00000.npz").unlink()
    (run / "maps" / "shard-00000.npz").symlink_to(watch / "secret.png")
    _refused(RunError, "leads outside its folder", r.map_of, row)
    fifo = run / "maps" / "shard-00007.npz"
    os.mkfifo(fifo)  # a pipe would block a plain open() forever
    _refused(RunError, "not a regular file", r.map_of, {**row, "shard": 7})


# --------------------------------------------------------------------------------------------
# the memory cases, in a capped child (make() runs before the cap, in the folder the parent gives)


def _tmp() -> Path:
    return Path(tempfile.mkdtemp(dir=os.environ["XAI_HOSTILE_TMP"]))


def _run_copy() -> Path:
    return _copy(Path(os.environ["XAI_HOSTILE_RUN"]), _tmp())


def _sparse(name: str) -> Path:
    folder = _tmp() / "inputs"
    folder.mkdir()
    with open(folder / name, "wb") as f:
        os.truncate(f.fileno(), 8 * GB)
    return folder / name


def _damaged(rel: str, data: bytes | None = None, make=None) -> Path:
    run = _run_copy()
    target = run / rel
    if make is not None:
        make(target)
    else:
        target.write_bytes(data)
    return run


def _npz(members: dict[str, bytes]) -> bytes:
    return raw_zip([Entry(f"{k}.npy", v) for k, v in members.items()])


def _npy(arr: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def _npy_header(shape: tuple, dtype: str = "<f2") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _bomb_member() -> bytes:
    """A maps member: a (64, 64) float16 .npy header, then 4 GiB of deflated zeros; the zip says 8 KB inflated."""
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = z.compress(_npy_header((64, 64))) + z.flush(zlib.Z_FULL_FLUSH)
    data = head + deflate_zeros(4096)
    return raw_zip([Entry("0.npy", data, 8, crc=0, size=8192)])


def _parquet_rows(path: Path) -> None:
    """10^8 equal values in one column: ~3 KB on disk, 800 MB decoded."""
    n = 10**7
    tab = pa.table({"probability": pa.array(np.zeros(n))})
    with pq.ParquetWriter(path, tab.schema, compression="zstd", max_rows_per_page=2**30, write_batch_size=n) as w:
        for _ in range(10):
            w.write_table(tab, row_group_size=n)


def _parquet_strings(path: Path) -> None:
    """500,000 rows (under the row limit) of one dictionary-encoded 1 MB string: ~1 MB on disk, 500 GB expanded."""
    n = 500_000
    col = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int8)), pa.array(["x" * 2**20]))
    pq.write_table(pa.table({"item": col, "explainer": col}), path, compression="zstd")


def _gigapixel_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = (60000).to_bytes(2, "big") * 2  # height, width
    return bytes(data)


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 48)).save(buf, format="PNG")
    return buf.getvalue()


def _open(run: Path) -> int:
    return len(open_run(run).table)


def _map(run: Path) -> list:
    r = open_run(run)
    return list(r.map_of(r.table.iloc[0]).shape)


def _thumb(run: Path) -> list:
    r = open_run(run)
    return list(r.thumbnail(r.table.iloc[0]).shape)


def _thumb_as(data: bytes):
    return lambda: _damaged("thumbs/00000-0.jpg", data)


# name: (make input, read it, expected error or None, fragment of the message or of the value)
CAPPED = {
    "control_good_run": (_run_copy, _map, None, "[64, 64]"),
    "sparse_8g_jpg": (lambda: _sparse("photo.jpg"), lambda p: load(Item("photo.jpg", str(p), root=str(p.parent))),
                      "ImageError", "on disk; files up to 200 MB"),
    "sparse_8g_csv": (lambda: _sparse("list.csv"), lambda p: discover(p, ["a"]), "ImageError", "on disk; files up to 64 MB"),
    "sparse_8g_results": (lambda: _damaged("results.parquet", make=lambda t: os.truncate(t, 8 * GB)), _open, "RunError",
                          "on disk; files up to 64 MB"),
    "sparse_8g_shard": (lambda: _damaged("maps/shard-00000.npz", make=lambda t: os.truncate(t, 8 * GB)), _map,
                        "RunError", "on disk"),
    "parquet_1e8_equal_values": (lambda: _damaged("results.parquet", make=_parquet_rows), _open, "RunError",
                                 "declares 100,000,000 rows"),
    "parquet_dictionary_strings": (lambda: _damaged("results.parquet", make=_parquet_strings), _open, "RunError",
                                   "inflates to"),
    "npz_lying_zip_header": (lambda: _damaged("maps/shard-00000.npz", _bomb_member()), _map, "RunError",
                             "inflates to more than"),
    "npz_lying_npy_shape": (lambda: _damaged("maps/shard-00000.npz", _npz({"0": _npy_header((100_000, 100_000)) + b"\0" * 64})),
                            _map, "RunError", "declares the shape"),
    "npz_short_data": (lambda: _damaged("maps/shard-00000.npz", _npz({"0": _npy_header((64, 64)) + b"\0" * 64})),
                       _map, "RunError", "declares 8,192 bytes but holds 64"),
    "npz_pickled_member": (lambda: _damaged("maps/shard-00000.npz",
                                            _npz({"0": _npy(np.array([Payload()], dtype=object), allow_pickle=True)})),
                           _map, "RunError", "Python objects (a pickle)"),
    "npz_nan_map": (lambda: _damaged("maps/shard-00000.npz", _npz({"0": _npy(np.full((64, 64), np.nan, np.float16))})),
                    _map, "RunError", "NaN or infinite"),
    "deep_json_run_json": (lambda: _damaged("run.json", deep_json(100_000)), _open, "RunError", "nested 100,000 levels"),
    "png_thumbnail_named_jpg": (_thumb_as(_png()), _thumb, "ImageError", "not a JPEG file"),
    "gigapixel_thumbnail": (_thumb_as(_gigapixel_jpeg()), _thumb, "ImageError", "too large to decode safely"),
}


def test_hostile_run_files_under_a_memory_and_time_cap(good_run, tmp_path):
    results = run_capped("test_batch_hostile", list(CAPPED), headroom_mib=1024, timeout=300,
                         env={"XAI_HOSTILE_TMP": str(tmp_path), "XAI_HOSTILE_RUN": str(good_run)})
    for name, r in results.items():
        print(f"{name}: {r['error']}, {r['peak_mib']:.0f} MiB traced, {r['rss_mib']:.0f} MiB RSS, {r['seconds']:.2f} s")
    for name, (_, _, error, fragment) in CAPPED.items():
        r = results[name]
        assert r["error"] == error, (name, r)
        assert fragment in (r["message"] if error else str(r["value"])), (name, r)
        assert not r.get("chained") and r["seconds"] < 20 and r["peak_mib"] < 100, (name, r)
        assert r["ran"] == [], (name, "a pickle in the shard was executed")
        if error:
            assert r["message"].endswith(".") and "\n" not in r["message"] and "/tmp" not in r["message"], (name, r)
    assert RAN == []


def test_typed_table_keeps_correct_unknown_without_labels(good_run):
    t = open_run(good_run).table
    assert t["correct"].dtype == "boolean" and t["correct"].notna().all()  # a class tree: every image labelled
    odd = typed(pd.DataFrame({"item": ["a", "b", "c"], "correct": [True, None, "yes"], "label": [1, 1e300, "x"]}), [])
    assert odd["correct"].tolist()[0] is True and odd["correct"].isna().tolist() == [False, True, True]
    assert odd["label"].tolist()[0] == 1 and odd["label"].isna().tolist() == [False, True, True]
