"""Reading a finished (or interrupted) run folder: the table, a row's maps and thumbnail, summaries, rankings.

Pages open runs by a path typed by a visitor, so :func:`resolve_under` keeps every path inside a configured runs
root, and every file a row names (shard, thumbnail) is checked to lie inside the run.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from ..errors import XaiError
from ..metrics.registry import get_metric, list_metrics
from .writer import read_parts

_SHARD = re.compile(r"\d{1,9}")


def resolve_under(root: str | Path, text: str) -> Path:
    """``text`` (relative to ``root``, or absolute) as a path that must lie inside ``root``."""
    base = Path(root).resolve()
    p = Path(text.strip() or ".")
    p = (p if p.is_absolute() else base / p).resolve()
    if p != base and base not in p.parents:
        raise XaiError(f"Runs are opened from {base} only; give a folder inside it (e.g. its name).")
    return p


def list_runs(root: str | Path) -> list[str]:
    """Run folders (with a run.json) directly or one level under ``root``, newest first, relative to ``root``."""
    base = Path(root).resolve()
    if not base.is_dir():
        return []
    found = [p.parent for p in [*base.glob("*/run.json"), *base.glob("*/*/run.json")]]
    found.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    return [p.relative_to(base).as_posix() for p in found]


@dataclass
class Run:
    root: Path
    meta: dict[str, Any]
    table: pd.DataFrame
    _shard: tuple[int, Any] | None = field(default=None, repr=False)

    @property
    def metrics(self) -> list[str]:
        known = {m.id for m in list_metrics()}
        return [m for m in self.meta.get("config", {}).get("metrics", []) if m in known and m in self.table]

    @property
    def finished(self) -> bool:
        return self.meta.get("status") == "finished"

    def _inside(self, p: Path) -> Path:
        p = p.resolve()
        if self.root not in p.parents:
            raise XaiError("The run's table names a file outside the run folder; the run is damaged.")
        return p

    def map_of(self, row: pd.Series | dict) -> np.ndarray | None:
        """The row's map (float32 at the model's input size), or None for a failed row."""
        idx, shard = int(row["map_index"]), str(int(row["shard"]))
        if idx < 0 or not _SHARD.fullmatch(shard):
            return None
        path = self._inside(self.root / "maps" / f"shard-{int(shard):05d}.npz")
        if self._shard is None or self._shard[0] != int(shard):
            if self._shard is not None:
                self._shard[1].close()
            self._shard = (int(shard), np.load(path))
        return self._shard[1][str(idx)].astype(np.float32)

    def thumbnail(self, row: pd.Series | dict) -> np.ndarray | None:
        name = row.get("thumb")
        if name is None or (isinstance(name, float) and math.isnan(name)) or pd.isna(name):
            return None
        path = self._inside(self.root / "thumbs" / str(name))
        with Image.open(path, formats=["JPEG"]) as im:  # the writer's thumbnails; nothing else is decoded here
            return np.asarray(im.convert("RGB"))


def open_run(path: str | Path) -> Run:
    root = Path(path).resolve()
    meta_path = root / "run.json"
    if not meta_path.is_file():
        raise XaiError(f"{root.name or root} is not a run folder (no run.json); pick a folder written by xai-batch.")
    meta = json.loads(meta_path.read_text())
    results = root / "results.parquet"
    table = pd.read_parquet(results) if meta.get("status") == "finished" and results.is_file() else read_parts(root)
    if table.empty:
        raise XaiError(f"The run in {root.name} has no finished images yet; wait for its first chunk or resume it.")
    return Run(root, meta, table)


def per_class(table: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Per class (the label, else the prediction) and explainer: images, accuracy, mean of every metric."""
    ok = table[table["error"].isna()].copy()
    ok["class"] = ok["label_name"].fillna(ok["prediction_name"])
    agg: dict[str, Any] = {"images": ("item", "nunique"), "accuracy": ("correct", lambda s: s.dropna().astype(float).mean()),
                           "mean p(top-1)": ("probability", "mean")}
    agg.update({get_metric(m).column: (m, "mean") for m in metrics})
    return ok.groupby(["class", "explainer"], dropna=False).agg(**agg).reset_index()


def worst_first(table: pd.DataFrame, metrics: list[str]) -> tuple[pd.DataFrame, str]:
    """Rows with the worst localisation first (lowest localisation score; without boxes, the highest deletion AUC,
    i.e. the least faithful map), and the column ranked on."""
    loc = [m for m in metrics if get_metric(m).kind == "localisation" and table[m].notna().any()]
    curve = [m for m in metrics if get_metric(m).kind == "curve" and table[m].notna().any()]
    key = loc[-1] if loc else (curve[0] if curve else "probability")
    ascending = get_metric(key).better == "higher" if key in metrics else True
    return table.sort_values(key, ascending=ascending, na_position="last", kind="stable"), key


def most_uncertain(table: pd.DataFrame) -> pd.DataFrame:
    """One row per item, the highest predictive entropy first."""
    return table.drop_duplicates("item").sort_values("entropy", ascending=False, na_position="last", kind="stable")
