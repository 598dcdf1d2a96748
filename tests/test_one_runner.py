"""One runner over many images: Evaluate's set tab, the lab's own data and the batch CLI run the same loop
(:func:`xai_core.batch.explain_loaded`) and give the same per-image numbers for the same model, maps and images."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from helpers import png_bytes, zip_bytes

import xai_core
from xai_core import batch, metrics
from xai_core.batch import compute
from xai_core.batch.__main__ import main
from xai_core.lab import folders, make_dataset, own_data
from xai_core.workbench import Workbench

METHODS = ("gradcam", "gradient")
CHUNK = 3  # 5 images: chunks of 3 and 2 in every path (the same batches, so the same float32 sums)
TOLERANCE = round(15 * 64 / 224)  # own data scales the pointing game's 15 px to the lab CNN's 64-px input
LOCALISATION = ("pointing_game", "relevance_mass")


@pytest.fixture(scope="module")
def lab_model() -> xai_core.ModelSpec:
    return xai_core.load_model("lab_horse_cnn", device="cpu")


@pytest.fixture(scope="module")
def images() -> dict[str, tuple[np.ndarray, tuple[int, int, int, int]]]:
    """Five lab images in folders 'a' and 'b' (names no class of the lab CNN: every path explains the top-1 class),
    each with the box around its object."""
    d = make_dataset(5, seed=11, tag_fraction=0.6)
    out = {}
    for i in range(5):
        ys, xs = np.nonzero(d.masks[i])
        out[f"{'ab'[i % 2]}/{i}.png"] = (d.images[i], (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
    return out


def _boxes_csv(images: dict) -> str:
    return "filename,x0,y0,x1,y1\n" + "".join(f"{n},{x0},{y0},{x1},{y1}\n" for n, (_, (x0, y0, x1, y1)) in images.items())


def _set_path(model: xai_core.ModelSpec, images: dict) -> dict[tuple[str, str], dict[str, float]]:
    """(a) Evaluate's set tab: the zip through the set reader, its boxes from the uploaded CSV."""
    data = zip_bytes({n: png_bytes(img) for n, (img, _) in images.items()})
    items, notes = metrics.read_zip(data, metrics.parse_boxes(_boxes_csv(images)))
    assert not notes and all(it.box is not None for it in items)
    rows, fails = batch.evaluate_set(model, items, [(m, {}) for m in METHODS],
                                     metrics=["deletion", *LOCALISATION], references=False, batch_size=CHUNK,
                                     params={"deletion": {"steps": 8}, "pointing_game": {"tolerance": TOLERANCE}})
    assert not fails
    method_of = {xai_core.get_explainer(m).title: m for m in METHODS}
    return {(r["image"], method_of[r["map"]]): {m: r[metrics.get_metric(m).column] for m in ("deletion", *LOCALISATION)}
            for r in rows}


def _own_data_path(model: xai_core.ModelSpec, images: dict) -> tuple[dict, dict[tuple[str, str], np.ndarray]]:
    """(b) The lab's own data: the same images as a class-folder zip with a boxes.csv inside."""
    data = zip_bytes({**{n: png_bytes(img) for n, (img, _) in images.items()}, "boxes.csv": _boxes_csv(images).encode()})
    fs = folders.read_class_zip(data)
    assert fs.classes == ["a", "b"] and all(r is not None for r in fs.regions)
    values, maps = {}, {}
    for m in METHODS:
        rep = own_data.analyse(model, fs, m, batch=CHUNK)
        for i, r in enumerate(rep.rows):
            values[(r["image"], m)] = {"pointing_game": r["pointing game"], "relevance_mass": r["relevance mass"]}
            maps[(r["image"], m)] = rep.maps[i]
    return values, maps


def _cli_path(tmp: Path, images: dict) -> xai_core.batch.Run:
    """(c) The batch CLI on a folder of the same PNG files and a CSV of their boxes."""
    for n, (img, _) in images.items():
        (tmp / n).parent.mkdir(parents=True, exist_ok=True)
        (tmp / n).write_bytes(png_bytes(img))
    listing = tmp / "list.csv"
    listing.write_text("path,target,x0,y0,x1,y1\n" + "".join(f"{n},,{x0},{y0},{x1},{y1}\n"
                                                             for n, (_, (x0, y0, x1, y1)) in images.items()))
    args = [str(listing), "--out", str(tmp / "run"), "--model", "lab_horse_cnn", "--device", "cpu", "--target", "top1",
            "--metrics", ",".join(("deletion", *LOCALISATION)), "--metric", "deletion:steps=8",
            "--metric", f"pointing_game:tolerance={TOLERANCE}", "--batch-size", str(CHUNK), "--no-progress"]
    for m in METHODS:
        args += ["--explainer", m]
    assert main(args) == 0
    return batch.open_run(tmp / "run")


def test_the_set_tab_own_data_and_the_cli_give_identical_per_image_numbers(lab_model, images, tmp_path):
    got_set = _set_path(lab_model, images)
    got_own, own_maps = _own_data_path(lab_model, images)
    run = _cli_path(tmp_path, images)
    t = run.table
    assert len(t) == len(images) * len(METHODS) and t["error"].isna().all()
    keys = {(n, m) for n in images for m in METHODS}
    assert set(got_set) == set(got_own) == keys == set(zip(t["item"], t["explainer"], strict=True))
    for _, row in t.iterrows():
        key = (row["item"], row["explainer"])
        # the same code on the same pixels in the same batches: exactly equal, no tolerance
        for m in ("deletion", *LOCALISATION):
            assert got_set[key][m] == row[m], (key, m, got_set[key][m], row[m])
        for m in LOCALISATION:
            assert got_own[key][m] == row[m], (key, m, got_own[key][m], row[m])
        assert 0 <= row["relevance_mass"] <= 1 and row["pointing_game"] in (0.0, 1.0) and 0 <= row["deletion"] <= 1
        # own data keeps the float32 maps (64×64 = the lab CNN's input: no resize); the run stores them as float16,
        # so the run's map is exactly the own-data map rounded to float16
        stored = run.map_of(row)
        assert stored.shape == own_maps[key].shape == (64, 64)
        np.testing.assert_array_equal(stored, own_maps[key].astype(np.float16).astype(np.float32))
    assert t["relevance_mass"].std() > 0  # the numbers differ between images: the comparison is not vacuous


def test_every_path_runs_the_one_loop_and_nothing_else(lab_model, images, tmp_path, monkeypatch):
    """The pages and the CLI all call the batch runner's loop, once per chunk; no page explains an image by itself."""
    calls: list[tuple[int, tuple[str, ...]]] = []
    real = compute.explain_loaded

    def counting(wb, items, work, **kw):
        calls.append((len(items), tuple(r.method for r in work.requests)))
        return real(wb, items, work, **kw)

    def no_single_image_pipeline(*a, **k):
        raise AssertionError("a set was explained one image at a time, outside the batch runner")

    monkeypatch.setattr(compute, "explain_loaded", counting)
    monkeypatch.setattr(Workbench, "explain", no_single_image_pipeline)
    _set_path(lab_model, images)
    assert calls == [(3, METHODS), (2, METHODS)]
    calls.clear()
    _own_data_path(lab_model, images)
    assert calls == [(3, ("gradcam",)), (2, ("gradcam",)), (3, ("gradient",)), (2, ("gradient",))]
    calls.clear()
    _cli_path(tmp_path, images)
    assert calls == [(3, METHODS), (2, METHODS)]


def test_a_stop_during_the_run_stops_the_pages_paths(lab_model, images):
    """Cancelled raised from the progress callback (a page's Stop) ends the run; it is never turned into a row error."""
    items = [metrics.Item(n, img, box) for n, (img, box) in images.items()]
    seen: list[float] = []

    def stop_after_the_first_chunk(fraction: float, text: str) -> None:
        seen.append(fraction)
        if fraction >= CHUNK / len(items):
            raise xai_core.Cancelled("stopped")

    with pytest.raises(xai_core.Cancelled):
        batch.evaluate_set(lab_model, items, [("gradient", {})], metrics=list(LOCALISATION), batch_size=CHUNK,
                           progress=stop_after_the_first_chunk)
    assert seen == sorted(seen) and seen[0] == 0 and not math.isclose(seen[-1], 1.0)
