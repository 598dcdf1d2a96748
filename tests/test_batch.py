"""xai-batch on this machine: inputs, the table and run.json, per-item targets, resumption, flat memory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import tiny_spec
from PIL import Image

from xai_core import XaiError
from xai_core.batch import BatchConfig, discover, open_run, run
from xai_core.batch import runner as batch_runner
from xai_core.batch.__main__ import main
from xai_core.batch.results import most_uncertain, per_class, resolve_under, worst_first
from xai_core.errors import ImageError
from xai_core.untrusted.limits import Limits

TIMING = ["seconds", "metric_seconds", "shard", "map_index", "thumb"]
FAST = ["--metric", "deletion:steps=8", "--metric", "insertion:steps=8"]


def make_tree(root: Path, per_class: int = 3, size: tuple[int, int] = (40, 48)) -> Path:
    """An ImageFolder tree ``root/horse|other/<i>.png`` of random images (the lab model's classes)."""
    rng = np.random.default_rng(0)
    for c in ("horse", "other"):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


def lab_args(inputs: Path, out: Path, *extra: str) -> list[str]:
    return [str(inputs), "--out", str(out), "--model", "lab_horse_cnn", "--explainer", "gradcam",
            "--explainer", "gradient:reduction=sum_abs", "--batch-size", "4", "--no-progress", *FAST, *extra]


def comparable(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=TIMING).reset_index(drop=True)


@pytest.fixture(scope="module")
def six(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("batch")
    tree = make_tree(base / "imgs")
    assert main(lab_args(tree, base / "run")) == 0
    return tree, base / "run"


def test_six_images_give_one_row_per_image_and_explainer_with_maps_thumbs_and_run_json(six):
    tree, out = six
    r = open_run(out)
    t = r.table
    assert len(t) == 12 and t["error"].isna().all()
    assert sorted(t["explainer"].unique()) == ["gradcam", "gradient"]
    # label mode: every item is explained for its own folder's class (not the first item's)
    assert (t["target"] == t["label"]).all() and set(t["label_name"]) == {"horse", "other"}
    assert t["correct"].equals((t["prediction"] == t["label"]).astype("boolean"))
    for m in ("deletion", "insertion"):
        assert t[m].between(0, 1).all()
    assert t["pointing_game"].isna().all()  # no boxes in a class tree
    row = t[t["explainer"] == "gradient"].iloc[0]  # Grad-CAM of a noise image may be all zero (ReLU)
    m = r.map_of(row)
    assert m.shape == (64, 64) and m.dtype == np.float32 and np.isfinite(m).all() and m.std() > 0
    assert r.thumbnail(row).shape == (40, 48, 3)
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "finished" and meta["items"] == 6 and meta["rows"] == 12
    assert meta["model"]["id"] == "lab_horse_cnn" and len(meta["model"]["weights_digest"]) == 32
    assert meta["config"]["explainers"] == [["gradcam", {"layer": ""}], ["gradient", {"reduction": "sum_abs"}]]
    assert {"torch", "numpy", "python"} <= set(meta["versions"])
    csv = pd.read_csv(out / "results.csv")
    assert list(csv.columns) == list(t.columns) and len(csv) == 12


def test_fixed_target_and_csv_with_targets_and_boxes(tmp_path, six):
    tree, _ = six
    listing = tree / "list.csv"  # the CSV's folder is its root: absolute and relative paths inside it are read
    listing.write_text("path,target,x0,y0,x1,y1\n"
                       f"{tree}/horse/0.png,horse,4,4,30,30\n"
                       "other/1.png,0,,,,\n"
                       f"./other/../other/2.png,,0,0,20,20\n")
    items, layout = discover(listing, ["other", "horse"])
    assert layout == "csv" and [i.label for i in items] == [1, 0, None]
    assert items[0].box == (4, 4, 30, 30) and items[1].box is None
    assert items[2].path == str(tree / "other" / "2.png")
    assert main([str(listing), "--out", str(tmp_path / "r"), "--model", "lab_horse_cnn",
                 "--target", "1", "--no-progress", *FAST]) == 0
    t = open_run(tmp_path / "r").table
    assert (t["target"] == 1).all() and len(t) == 3
    boxed = t[t["box_x0"].notna()]
    assert len(boxed) == 2 and boxed["pointing_game"].notna().all() and boxed["relevance_mass"].between(0, 1).all()


def test_inputs_are_bounded_and_errors_say_what_to_do(tmp_path):
    (tmp_path / "many.csv").write_text("a.png,0\nb.png,1\nc.png,0\n")
    from xai_core.batch.inputs import read_csv

    with pytest.raises(ImageError, match="more than 2 rows"):
        read_csv(tmp_path / "many.csv", ["x", "y"], limits=Limits(csv_rows=2))
    (tmp_path / "bad.csv").write_text("a.png,zebra\n")
    with pytest.raises(ImageError, match="neither a class index"):
        discover(tmp_path / "bad.csv", ["x", "y"])
    with pytest.raises(ImageError, match="No images"):
        discover(tmp_path, ["x"])
    assert main([str(tmp_path / "nothing"), "--out", str(tmp_path / "o"), "--explainer", "nope"]) == 2


def test_interrupted_run_resumes_without_recomputing_finished_items(tmp_path, six, monkeypatch):
    tree, full = six
    out = tmp_path / "run"
    args = lab_args(tree, out)

    def stop_after_first_chunk(n: int) -> None:
        raise KeyboardInterrupt

    from xai_core.batch.config import parse_args

    config, _ = parse_args(args)
    with pytest.raises(KeyboardInterrupt):
        run(config, show_bar=False, on_chunk=stop_after_first_chunk)
    first = out / "table" / "part-00000.parquet"
    assert first.is_file() and not (out / "results.parquet").exists()
    before = (first.read_bytes(), first.stat().st_mtime_ns)
    assert len(open_run(out).table) == 8  # the interrupted run is readable: 4 images × 2 explainers

    computed: list[str] = []
    real = batch_runner.explain_chunk

    def counting(wb, items, cfg):
        computed.extend(i.key for i in items)
        return real(wb, items, cfg)

    monkeypatch.setattr(batch_runner, "explain_chunk", counting)
    summary = run(config, show_bar=False)
    assert summary.skipped == 4 and summary.computed == 2 and sorted(computed) == ["other/1.png", "other/2.png"]
    assert (first.read_bytes(), first.stat().st_mtime_ns) == before
    pd.testing.assert_frame_equal(comparable(open_run(out).table), comparable(open_run(full).table))
    assert main(args) == 0 and computed == ["other/1.png", "other/2.png"]  # a finished run: nothing to do
    with pytest.raises(XaiError, match="another configuration"):
        run(BatchConfig(inputs=str(tree), out=str(out), target="top1"), show_bar=False)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def test_memory_is_flat_over_many_images(tmp_path):
    """300 images through a tiny model with Grad-CAM and deletion: no growth per chunk after warm-up."""
    root = tmp_path / "many"
    root.mkdir()
    rng = np.random.default_rng(1)
    for i in range(300):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / f"{i:04d}.png")
    rss: list[float] = []
    config = BatchConfig(inputs=str(root), out=str(tmp_path / "run"), metrics=("deletion",),
                         metric_params=(("deletion", (("steps", 4),)),), batch_size=10)
    summary = run(config, model=tiny_spec(), show_bar=False, on_chunk=lambda n: rss.append(_rss_mb()))
    assert summary.computed == 300 and summary.rows == 300 and summary.failed == 0
    assert len(rss) == 30
    growth = max(rss[10:]) - rss[10]
    assert growth < 15, f"RSS grew {growth:.1f} MB over 200 images: {rss[10]:.0f} -> {max(rss[10:]):.0f} MB"


def test_run_reading_helpers_rank_and_summarise(six, tmp_path):
    _, out = six
    r = open_run(out)
    summary = per_class(r.table, r.metrics)
    assert set(summary["class"]) == {"horse", "other"} and (summary["images"] == 3).all()
    ranked, key = worst_first(r.table, r.metrics)
    assert key == "deletion" and ranked["deletion"].is_monotonic_decreasing
    unsure = most_uncertain(r.table)
    assert len(unsure) == 6 and unsure["entropy"].is_monotonic_decreasing
    assert resolve_under(out.parent, out.name) == out
    for bad in ("..", "/etc", f"{out.name}/../../x"):
        with pytest.raises(XaiError, match="opened from"):
            resolve_under(out.parent, bad)
    with pytest.raises(XaiError, match="not a run folder"):
        open_run(tmp_path)
