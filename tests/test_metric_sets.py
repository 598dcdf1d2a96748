"""Evaluate over a set: zips of images with a box CSV, clear messages for bad archives, mean ± std."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import PATCH_COLS, PATCH_ROWS, SIZE, png_bytes, random_image, zip_bytes

from xai_core import ImageError, batch, metrics


def test_zip_with_boxes_nested_folders_and_a_broken_file():
    big = random_image(1500, 2000, seed=1)
    data = zip_bytes({"set/a.png": png_bytes(random_image(40, 50)), "set/sub/b.png": png_bytes(big),
                      "set/bad.png": b"not an image", "readme.txt": b"hello", "__MACOSX/set/._a.png": b"junk"})
    boxes = metrics.parse_boxes("filename,x0,y0,x1,y1\nb.png,100,200,1100,900\nset/a.png,1,2,3,4\n")
    items, notes = metrics.read_zip(data, boxes)
    assert [it.name for it in items] == ["set/a.png", "set/sub/b.png"]
    assert items[0].box == (1, 2, 3, 4)
    assert max(items[1].image.shape[:2]) == 1024  # downscaled, and its box with it
    assert items[1].box == pytest.approx((100 * 1024 / 2000, 200 * 1024 / 2000, 1100 * 1024 / 2000, 900 * 1024 / 2000))
    assert len(notes) == 1 and "set/bad.png skipped" in notes[0]


def test_bad_archives_and_box_files_get_clear_messages():
    with pytest.raises(ImageError, match="not a readable zip"):
        metrics.read_zip(b"PNG pretending")
    with pytest.raises(ImageError, match="holds no images"):
        metrics.read_zip(zip_bytes({"a.txt": b"x"}))
    with pytest.raises(ImageError, match="line 2 should be filename,x0,y0,x1,y1"):
        metrics.parse_boxes("a.png,1,2,3,4\nb.png,1,2\n")
    items, notes = metrics.read_zip(zip_bytes({f"{i:03d}.png": png_bytes(random_image(8, 8, i)) for i in range(5)}), limit=3)
    assert len(items) == 3 and "first 3" in notes[0]


def test_evaluate_set_on_the_planted_model_and_summary(planted):
    img = random_image(*SIZE, seed=3)
    img[PATCH_ROWS, PATCH_COLS] = 255
    box = (PATCH_COLS.start, PATCH_ROWS.start, PATCH_COLS.stop, PATCH_ROWS.stop)
    items = [metrics.Item("boxed", img, box), metrics.Item("plain", random_image(*SIZE, seed=4))]
    seen = []
    rows, fails = batch.evaluate_set(planted, items, [("gradient", {})], metrics=["deletion", "pointing_game"],
                                     params={"deletion": {"steps": 8}}, progress=lambda f, t: seen.append(f))
    assert not fails and seen[-1] == 1.0
    assert {r["map"] for r in rows} == {"Gradient (saliency)", metrics.RANDOM, metrics.CENTRE, metrics.EDGES}
    grad = [r for r in rows if r["map"] == "Gradient (saliency)"]
    assert grad[0]["Pointing hit ↑"] == 1.0 and np.isnan(grad[1]["Pointing hit ↑"])  # no box: no localisation
    summary = {s["map"]: s for s in metrics.summarise(rows)}
    assert summary["Gradient (saliency)"]["Pointing hit ↑"] == "1.000 ± 0.000 (n=1)"
    assert summary[metrics.RANDOM]["Deletion AUC ↓"].endswith("(n=2)")
    assert "image,class,map" in metrics.rows_csv(rows).splitlines()[0]


def test_sample_boxes_are_tight_inside_their_images_and_cover_well_under_half():
    """Every sample with an object has a box; none covers more than half its image (the old hand-drawn ones covered
    82% of Chelsea and 63% of the coffee photo, where a random map already hit the pointing game)."""
    items = metrics.sample_items()
    boxed = {it.name: it for it in items if it.box is not None}
    assert set(boxed) == {"Chelsea the cat", "Coffee cup", "Astronaut", "Rocket", "Horse silhouette"}
    for it in boxed.values():
        h, w = it.image.shape[:2]
        x0, y0, x1, y1 = it.box
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        assert metrics.box_share((h, w), it.box) < 0.4, (it.name, metrics.box_share((h, w), it.box))
    assert metrics.box_share((10, 10), (0, 0, 5, 10)) == 0.5 and metrics.box_share((10, 10), (-5, -5, 20, 20)) == 1.0
