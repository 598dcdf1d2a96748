"""The files of ``xai-batch concepts`` (:mod:`.concepts`), written into ``--out`` (each through a hidden temporary
file and an atomic rename; ``concepts.json`` last, so its presence means the run finished):

* ``concepts.json``: settings, model provenance, class, layer, factorisation, every concept's importance, share, mean
  coefficient and reference crops, the images used and those skipped, seconds;
* ``concepts.csv``: one row per concept (rank 1 = most important);
* ``crops.csv``: one row per reference crop: concept rank, order, the image's key, the box in the model's input
  pixels (``x0 … y1``) and in the image file's pixels (``file_x0 … file_y1``);
* ``coefficients.csv``: one row per image: each concept's mean coefficient (``coefficient_<rank>``) and gradient ×
  input importance (``importance_<rank>``) on it;
* ``directions.npy``: the concepts' directions at the layer, [k, C] float32 (no pickle).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..concepts.craft import Discovery
from ..models.spec import ModelSpec

FILES = ("concepts.csv", "crops.csv", "coefficients.csv", "directions.npy", "concepts.json")
CONCEPT_COLUMNS = ("rank", "index", "importance", "share", "mean_coefficient")


def file_box(box: tuple[int, int, int, int], image: np.ndarray, scale: float, size: tuple[int, int]) -> list[float]:
    """A box in model-input pixels → the image file's pixels (the whole image was resized to the input)."""
    sx, sy = image.shape[1] / size[1] / scale, image.shape[0] / size[0] / scale
    return [round(box[0] * sx, 1), round(box[1] * sy, 1), round(box[2] * sx, 1), round(box[3] * sy, 1)]


def describe(found: Discovery, model: ModelSpec, keys: list[str], images: list[np.ndarray],
             scales: list[float]) -> dict[str, Any]:
    """The discovery as JSON-ready values: class, layer, factorisation and the concepts with their crops (named by
    the images' keys); ``scales``: each image as decoded ÷ its file's size."""
    coef = found.image_coefficients
    assert coef is not None
    concepts = [{"rank": r + 1, "index": c.index, "importance": c.importance, "share": c.share,
                 "mean_coefficient": float(coef[:, r].mean()),
                 "crops": [{"image": keys[k.image], "box": list(k.box),
                            "file_box": file_box(k.box, images[k.image], scales[k.image], model.input_size)}
                           for k in c.crops]}
                for r, c in enumerate(found.concepts)]
    return {"class": found.target, "class_name": model.label(found.target), "layer": found.layer,
            "relative_error": found.relative_error, "factorisation": "semi-nmf" if found.signed else "nmf",
            "negative_share": found.negative_share, "importance_method": found.importance_method,
            "concepts": concepts, "images": keys}


def tables(summary: dict[str, Any], found: Discovery, keys: list[str]) -> dict[str, pd.DataFrame]:
    """The three CSV tables of a run (see the module docstring)."""
    assert found.image_coefficients is not None and found.image_importance is not None
    coef, imp = found.image_coefficients.numpy(), found.image_importance.numpy()
    crops = [{"concept": c["rank"], "order": j + 1, "image": k["image"],
              **dict(zip(("x0", "y0", "x1", "y1"), k["box"], strict=True)),
              **dict(zip(("file_x0", "file_y0", "file_x1", "file_y1"), k["file_box"], strict=True))}
             for c in summary["concepts"] for j, k in enumerate(c["crops"])]
    per_image = {"image": keys, **{f"coefficient_{r + 1}": coef[:, r] for r in range(coef.shape[1])},
                 **{f"importance_{r + 1}": imp[:, r] for r in range(imp.shape[1])}}
    return {"concepts.csv": pd.DataFrame([{k: c[k] for k in CONCEPT_COLUMNS} for c in summary["concepts"]]),
            "crops.csv": pd.DataFrame(crops), "coefficients.csv": pd.DataFrame(per_image)}


def write(out: Path, summary: dict[str, Any], found: Discovery, keys: list[str]) -> None:
    """Every file of the run into ``out`` (created)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in FILES:  # a link planted at a temporary name would send the write elsewhere: remove it first
        (out / f".{name}").unlink(missing_ok=True)
    for name, frame in tables(summary, found, keys).items():
        frame.to_csv(out / f".{name}", index=False)
    with open(out / ".directions.npy", "wb") as f:
        np.save(f, found.directions.numpy().astype(np.float32), allow_pickle=False)
    (out / ".concepts.json").write_text(json.dumps(summary, indent=2, default=str))
    for name in FILES:  # the JSON last: its presence means the run finished
        os.replace(out / f".{name}", out / name)
