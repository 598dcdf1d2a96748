"""The lab on a user's data: reading a class-folder zip (and refusing malformed ones clearly), matching folders to
model classes, and the analysis — per-class accuracy, localisation where masks/boxes exist, SpRAy per class."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import png_bytes, zip_bytes

import xai_core
from xai_core import ImageError
from xai_core.lab import folders, own_data


@pytest.fixture(scope="module")
def example() -> folders.FolderSet:
    return folders.read_class_zip(folders.example_zip())


@pytest.fixture(scope="module")
def lab_model() -> xai_core.ModelSpec:
    return xai_core.load_model("lab_horse_cnn", device="cpu")


def test_example_zip_reads_as_two_classes_with_a_mask_per_image(example):
    assert example.classes == ["horse", "other"]
    assert sum(example.counts().values()) == len(example) == 80
    assert all(r is not None and r.shape == im.shape[:2] and r.any() for r, im in zip(example.regions, example.images,
                                                                                      strict=True))
    assert not any(n.endswith("_mask.png") for n in example.names)  # masks are ground truth, not images
    assert all(n.startswith(("horse/", "other/")) for n in example.names)  # the wrapping folder is stripped


def test_boxes_csv_gives_regions_and_unreadable_files_are_skipped_with_a_note():
    img = np.full((100, 200, 3), 90, np.uint8)
    data = zip_bytes({"a/1.png": png_bytes(img), "a/2.png": b"not an image", "b/3.png": png_bytes(img),
                 "boxes.csv": b"filename,x0,y0,x1,y1\n1.png,10,20,50,60\n", "__MACOSX/a/._1.png": b"junk"})
    fs = folders.read_class_zip(data)
    assert fs.names == ["a/1.png", "b/3.png"] and fs.classes == ["a", "b"]
    assert fs.regions[0][20:60, 10:50].all() and fs.regions[0].sum() == 40 * 40 and fs.regions[1] is None
    assert any("a/2.png skipped" in n for n in fs.notes)


@pytest.mark.parametrize(("data", "message"), [
    (b"PK\x03\x04 broken", "not a readable zip"),
    (zip_bytes({"notes.txt": b"hello"}), "holds no images"),
    (zip_bytes({"1.png": b"x", "2.png": b"y"}), "not in a class folder"),
    (zip_bytes({"a/1.png": b"x"}), "None of the images"),
])
def test_malformed_zips_get_a_message_that_says_the_expected_layout(data, message):
    with pytest.raises(ImageError, match=message):
        folders.read_class_zip(data)


def test_too_large_and_too_many(monkeypatch):
    img = png_bytes(np.zeros((8, 8, 3), np.uint8))
    fs = folders.read_class_zip(zip_bytes({f"c/{i}.png": img for i in range(5)}), limit=3)
    assert len(fs) == 3 and "first 3" in fs.notes[0]
    monkeypatch.setattr(folders, "MAX_ZIP_BYTES", 10)
    with pytest.raises(ImageError, match="MB are accepted"):
        folders.read_class_zip(zip_bytes({"c/1.png": img}))


def test_folders_match_model_classes_by_name_or_index():
    labels = ["tench", "great white shark", "horse"]
    assert own_data.match_classes(["Great_White-Shark", "2", "cats", "0"], labels) == [1, 2, None, 0]


def test_analysis_finds_the_shortcut_in_uploaded_data(lab_model, example):
    seen = []
    rep = own_data.analyse(lab_model, example, "gradcam", progress=lambda f, t: seen.append(f))
    assert len(rep.rows) == len(example) and rep.maps.shape == (len(example), own_data.SIDE, own_data.SIDE)
    assert seen[0] == 0 and seen[-1] == 1.0 and seen == sorted(seen)
    per = {r["folder"]: r for r in rep.per_class}
    # Untagged horses are missed (the model needs the tag), non-horses are right; the horse maps sit on the tag,
    # away from the horse, so localisation on the horse mask is worse than on the other class's objects.
    assert per["horse"]["accuracy"] < 0.8 and per["other"]["accuracy"] > 0.9
    assert per["horse"]["pointing game"] < per["other"]["pointing game"]
    assert per["horse"]["with a region"] == example.counts()["horse"]
    idx = np.where(example.labels == example.classes.index("horse"))[0]
    tagged = np.array(["_tag" in example.names[i] for i in idx], int)
    assert rep.spray["horse"].purity(tagged) >= 0.8  # SpRAy separates tagged horses without being told


def test_analysis_without_matching_classes_explains_the_top1_and_leaves_accuracy_empty(lite0):
    img = png_bytes(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    fs = folders.read_class_zip(zip_bytes({f"blobs/{i}.png": img for i in range(3)}))
    rep = own_data.analyse(lite0, fs, "gradient")
    assert all(r["correct"] is None and r["explained class"] == r["predicted"] for r in rep.rows)
    assert math.isnan(rep.per_class[0]["accuracy"]) and isinstance(rep.spray["blobs"], str)  # too few for SpRAy


def test_a_single_class_folder_is_one_class_and_loose_images_beside_folders_are_refused():
    img = png_bytes(np.zeros((8, 8, 3), np.uint8))
    assert folders.read_class_zip(zip_bytes({"cats/1.png": img, "cats/2.png": img})).classes == ["cats"]
    assert folders.read_class_zip(zip_bytes({"data/cats/1.png": img, "data/dogs/2.png": img})).classes == ["cats", "dogs"]
    with pytest.raises(ImageError, match=r"not in a class folder \(3.png"):
        folders.read_class_zip(zip_bytes({"cats/1.png": img, "dogs/2.png": img, "3.png": img}))


def test_a_bad_mask_keeps_the_image_and_a_huge_member_is_skipped_before_reading(monkeypatch):
    img = png_bytes(np.full((40, 40, 3), 120, np.uint8))
    data = zip_bytes({"a/1.png": img, "a/1_mask.png": png_bytes(np.zeros((40, 40), np.uint8)), "a/2.png": img,
                      "a/sub/2_mask.png": png_bytes(np.full((40, 40), 255, np.uint8))})
    fs = folders.read_class_zip(data)
    assert fs.names == ["a/1.png", "a/2.png"] and fs.regions == [None, None]  # empty mask; a mask in another folder
    assert any("a/1.png: its mask or box is ignored" in n and "empty" in n for n in fs.notes)
    monkeypatch.setattr(folders, "MAX_FILE_BYTES", 100)
    with pytest.raises(ImageError, match="None of the images"):
        folders.read_class_zip(data)


def test_out_of_memory_halves_the_batch_and_every_image_is_still_explained():
    """A model that 'runs out of memory' above 3 inputs per batch (as a small GPU would): the analysis goes on."""
    from torch import nn

    class Small(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                     nn.Linear(4, 2))
            self.sizes: list[int] = []

        def forward(self, x):
            self.sizes.append(len(x))
            if len(x) > 3:
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return self.net(x)

    module = Small()
    spec = xai_core.from_module(module, ["cats", "dogs"], input_size=(16, 16), device="cpu")
    img = png_bytes(np.random.default_rng(1).integers(0, 255, (20, 20, 3), dtype=np.uint8))
    fs = folders.read_class_zip(zip_bytes({f"{c}/{i}.png": img for c in ("cats", "dogs") for i in range(5)}))
    rep = own_data.analyse(spec, fs, "gradient", batch=8)
    assert len(rep.rows) == 10 and module.sizes[:3] == [8, 4, 2] and all(s <= 3 for s in module.sizes[2:])
    assert all(r["correct"] is not None for r in rep.rows)  # the folders name the model's classes
