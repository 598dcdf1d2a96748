"""A run folder on disk, written as the run goes so an interruption loses at most the chunk in progress.

::

    run.json                 configuration, versions, model provenance, status and counts
    maps/shard-00000.npz     float16 maps at the model's input size, one array per table row ("0", "1", …)
    thumbs/00000-3.jpg       the image of item 3 of shard 0, longer side --thumb-side
    table/part-00000.parquet the rows of shard 0 (written last: a part means its maps and thumbnails exist)
    results.parquet, results.csv   every part, sorted by item, explainer, seed (rewritten when a run finishes)

Resuming reads the items of the parts written so far and skips them; new shards are numbered after the last.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from ..errors import XaiError
from .compute import BOX, ChunkResult
from .config import BatchConfig

COLUMNS = ["item", "path", "label", "label_name", "explainer", "params", "seed", "target", "target_name",
           "target_probability", "prediction", "prediction_name", "probability", "correct", "entropy", *BOX]
TAIL = ["seconds", "metric_seconds", "shard", "map_index", "thumb", "error"]
ORDER = ["item", "explainer", "params", "seed"]


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in ("torch", "torchvision", "numpy", "opencv-python-headless", "scikit-image", "pyarrow", "ray"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


class RunWriter:
    """Writes chunks of one run into ``config.out``; see the module docstring."""

    def __init__(self, config: BatchConfig, model_info: dict[str, Any]) -> None:
        self.config, self.root = config, Path(config.out)
        self.meta_path = self.root / "run.json"
        for sub in ("maps", "thumbs", "table"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        old = json.loads(self.meta_path.read_text()) if self.meta_path.is_file() else None
        if old is not None and old.get("identity") != config.identity():
            raise XaiError(f"{self.root} holds a run with another configuration (model, explainers, metrics, targets "
                           "or seeds); give a new --out, or the same options to resume it.")
        self.meta = old or {"identity": config.identity(), "created": time.time()}
        self.meta.update(config=config.to_json(), versions=versions(), model=model_info, status="running")
        self.parts = sorted((self.root / "table").glob("part-*.parquet"))
        self.shard = 1 + max((int(p.stem.split("-")[1]) for p in self.parts), default=-1)
        self._save_meta()

    def done(self) -> set[str]:
        """Items with rows in the table already (their chunk finished)."""
        keys: set[str] = set()
        for p in self.parts:
            keys.update(pd.read_parquet(p, columns=["item"])["item"])
        return keys

    def write(self, chunk: ChunkResult) -> None:
        s, root = self.shard, self.root
        maps = {str(i): m for i, m in enumerate(chunk.maps) if m is not None}
        tmp = root / "maps" / f".shard-{s:05d}.npz"
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **maps)
        os.replace(tmp, root / "maps" / f"shard-{s:05d}.npz")
        thumb_of = {}
        for j, (key, t) in enumerate(chunk.thumbs.items()):
            name = f"{s:05d}-{j}.jpg"
            Image.fromarray(t).save(root / "thumbs" / name, quality=90)
            thumb_of[key] = name
        rows = [{**r, "shard": s, "map_index": i if chunk.maps[i] is not None else -1, "thumb": thumb_of.get(r["item"])}
                for i, r in enumerate(chunk.rows)]
        frame = self.frame(rows)
        tmp = root / "table" / f".part-{s:05d}.parquet"
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, root / "table" / f"part-{s:05d}.parquet")
        self.parts.append(root / "table" / f"part-{s:05d}.parquet")
        self.shard += 1

    def frame(self, rows: list[dict[str, Any]]) -> pd.DataFrame:
        """Rows with every column of the schema, in its order and types (a metric not computed is NaN)."""
        cols = [*COLUMNS, *self.config.metrics, *TAIL]
        df = pd.DataFrame(rows).reindex(columns=cols)
        for c in ("label", "target", "prediction"):
            df[c] = df[c].astype("Int64")
        df["correct"] = df["correct"].astype("boolean")
        for c in [*self.config.metrics, *BOX, "seconds", "metric_seconds", "target_probability", "probability", "entropy"]:
            df[c] = df[c].astype("float64")
        for c in ("item", "path", "label_name", "explainer", "params", "target_name", "prediction_name", "thumb", "error"):
            df[c] = df[c].astype("string")
        return df

    def finish(self, stats: dict[str, Any]) -> pd.DataFrame:
        """Merge the parts into results.parquet and results.csv, and mark the run finished in run.json."""
        table = read_parts(self.root)
        for name, save in (("results.parquet", lambda p: table.to_parquet(p, index=False)),
                           ("results.csv", lambda p: table.to_csv(p, index=False))):
            tmp = self.root / f".{name}"
            save(tmp)
            os.replace(tmp, self.root / name)
        self.meta.update(status="finished", finished=time.time(), rows=len(table), items=int(table["item"].nunique()),
                         failed=int(table["error"].notna().sum()), **stats)
        self._save_meta()
        return table

    def _save_meta(self) -> None:
        tmp = self.root / ".run.json"
        tmp.write_text(json.dumps(self.meta, indent=2, default=str))
        os.replace(tmp, self.meta_path)


def read_parts(root: Path) -> pd.DataFrame:
    parts = sorted((Path(root) / "table").glob("part-*.parquet"))
    if not parts:
        return pd.DataFrame()
    table = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    return table.sort_values(ORDER, kind="stable").reset_index(drop=True)
