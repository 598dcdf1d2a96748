"""A run folder on disk, written as the run goes so an interruption loses at most the chunk in progress.

::

    run.json                 configuration, versions, model provenance, status and counts
    maps/shard-00000.npz     float16 maps at the model's input size, one array per table row ("0", "1", …), and
                             for rows whose explainer refines its per-pixel uncertainty ("u0", "u1", …)
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

from ..errors import RunError
from ..metrics.registry import list_metrics
from ..untrusted.limits import LIMITS, Limits
from ..untrusted.paths import PathError, inside
from ..untrusted.runfiles import read_json, read_table
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
        self.config, self.root = config, Path(config.out).resolve()
        self.meta_path = self.root / "run.json"
        for sub in ("maps", "thumbs", "table"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
            try:  # a planted link (maps -> elsewhere) would send the writes out of the run folder
                inside(self.root, sub, f"The run folder's {sub} folder is a link out of it; give a new --out.")
            except PathError as e:
                raise RunError(str(e)) from None
        old = read_json(self.root, "run.json", "the run's run.json") if self.meta_path.is_file() else None
        if old is not None and old.get("identity") != config.identity():
            raise RunError(f"The run folder {Path(config.out).name} holds a run with another configuration (model, "
                           "explainers, metrics, targets or seeds); give a new --out, or the same options to resume it.")
        self.meta = old or {"identity": config.identity(), "created": time.time()}
        self.meta.update(config=config.to_json(), versions=versions(), model=model_info, status="running")
        self.parts = sorted((self.root / "table").glob("part-*.parquet"))
        self.shard = 1 + max((int(p.stem.split("-")[1]) for p in self.parts), default=-1)
        self._save_meta()

    def done(self) -> set[str]:
        """Items with rows in the table already (their chunk finished)."""
        keys: set[str] = set()
        for p in self.parts:
            keys.update(read_table(self.root / "table", p.name, {"item"}, f"the table part {p.name}")["item"].dropna())
        return keys

    def write(self, chunk: ChunkResult) -> None:
        s, root = self.shard, self.root
        maps = {str(i): m.astype(np.float16) for i, m in enumerate(chunk.maps) if m is not None}
        maps.update({f"u{i}": u.astype(np.float16) for i, u in chunk.uncertainty.items()})
        tmp = root / "maps" / f".shard-{s:05d}.npz"
        with open(tmp, "wb") as f:
            # numpy's stub types **kwds as if a key could be its allow_pickle flag; the keys here are digits, never that.
            np.savez_compressed(f, **maps)  # type: ignore[arg-type]
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
        df = typed(pd.DataFrame(rows), list(self.config.metrics))
        for c in ("seed", "shard", "map_index"):
            df[c] = df[c].astype("int64")
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


STRINGS = ("item", "path", "label_name", "explainer", "params", "target_name", "prediction_name", "thumb", "error")
INTS = ("label", "target", "prediction", "seed", "shard", "map_index")


def allowed_columns() -> set[str]:
    """The columns a run table may have (every metric id included); a table's other columns are never read."""
    return {*COLUMNS, *TAIL, *(m.id for m in list_metrics())}


def typed(df: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """``df`` with every column of the schema, in its order and types (a column missing is NA; a value of the wrong
    type in a damaged table becomes NA, never an object column)."""
    df = df.reindex(columns=[*COLUMNS, *[m for m in metrics if m not in COLUMNS + TAIL], *TAIL])
    for c in df.columns:
        if c in STRINGS:
            df[c] = df[c].astype("string")
        elif c == "correct":  # True, False or unknown (no label): never a guess
            df[c] = df[c].map(lambda v: v if isinstance(v, bool | np.bool_) else pd.NA).astype("boolean")
        elif c in INTS:
            x = pd.to_numeric(df[c], errors="coerce").astype("float64")
            df[c] = x.where(x.abs() < 2**53).round().astype("Int64")
        else:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    return df


def read_parts(root: Path, *, limits: Limits = LIMITS) -> pd.DataFrame:
    """Every table part written so far (each read through the run-file limits), sorted like results.parquet."""
    parts = sorted((Path(root) / "table").glob("part-*.parquet"))
    if not parts:
        return pd.DataFrame()
    frames, rows = [], 0
    for p in parts:
        frames.append(read_table(Path(root) / "table", p.name, allowed_columns(), f"the table part {p.name}",
                                 limits=limits))
        rows += len(frames[-1])
        if rows > limits.run_rows:
            raise RunError(f"The run's table parts hold more than {limits.run_rows:,} rows; run tables of up to that "
                           "many rows are read.")
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values([c for c in ORDER if c in table], kind="stable").reset_index(drop=True)
