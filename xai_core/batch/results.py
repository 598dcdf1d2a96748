"""Reading a finished (or interrupted) run folder: the table, a row's maps and thumbnail, summaries, rankings.

A run folder is as untrusted as an upload (a visitor types its name; anyone who can write there can plant files):
:func:`resolve_under` keeps every path inside its root (symlinks resolved), every file a row names (shard,
thumbnail, original image) must lie inside the run (or the inputs root), and every file is read through
:mod:`xai_core.untrusted.runfiles` (size on disk first, bounded inflation, JSON depth, JPEG-only thumbnails, maps
without pickles and finite). Every failure is a :class:`RunError` or :class:`ImageError` sentence without a server
path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ImageError, RunError
from ..images import downscale
from ..metrics.registry import get_metric, list_metrics
from ..untrusted.limits import LIMITS, Limits
from ..untrusted.messages import shown
from ..untrusted.paths import PathError, inside, scrub
from ..untrusted.raster import decode_image
from ..untrusted.runfiles import Shard, read_file, read_jpeg, read_json, read_table
from .writer import allowed_columns, read_parts, typed

_SHARD = re.compile(r"\d{1,9}")
RUNS_REFUSAL = "Runs are opened from the runs folder only; give a folder inside it (e.g. its name)."


def resolve_under(root: str | Path, text: str, refusal: str = RUNS_REFUSAL) -> Path:
    """``text`` (relative to ``root``, or absolute) resolved, symlinks included; it must lie inside ``root``.
    Every refusal is a :class:`RunError` sentence that names no server path."""
    try:
        return inside(root, str(text), refusal)
    except PathError as e:
        raise RunError(str(e)) from None


def list_runs(root: str | Path) -> list[str]:
    """Run folders (with a run.json) directly or one level under ``root``, newest first, relative to ``root``; a
    link leading out of ``root`` is left out."""
    base = Path(root).resolve()
    if not base.is_dir():
        return []
    found: list[tuple[float, str]] = []
    for meta in [*base.glob("*/run.json"), *base.glob("*/*/run.json")]:
        try:
            real = meta.resolve()
            if base in real.parents and real.is_file():
                found.append((real.stat().st_mtime, meta.parent.relative_to(base).as_posix()))
        except (OSError, RuntimeError, ValueError):
            continue
    return [name for _, name in sorted(found, reverse=True)]


@dataclass
class Run:
    root: Path
    meta: dict[str, Any]
    table: pd.DataFrame
    limits: Limits = LIMITS
    _shard: tuple[int, Shard] | None = field(default=None, repr=False)

    @property
    def metrics(self) -> list[str]:
        known = {m.id for m in list_metrics()}
        listed = self.meta.get("config", {}).get("metrics", [])
        return [m for m in (listed if isinstance(listed, list) else []) if isinstance(m, str) and m in known
                and m in self.table]

    @property
    def finished(self) -> bool:
        return self.meta.get("status") == "finished"

    @property
    def model_title(self) -> str:
        """The model's title from run.json, as a visitor may see it (server paths reduced to names)."""
        model = self.meta.get("model")
        title = model.get("title") if isinstance(model, dict) else None
        return shown(scrub(str(title)), 120) if title is not None else "unknown"

    def map_of(self, row: pd.Series | dict) -> np.ndarray | None:
        """The row's map (float32 at the model's input size), or None for a failed row."""
        idx, shard = row.get("map_index"), row.get("shard")
        if idx is None or shard is None or pd.isna(idx) or pd.isna(shard):
            return None
        if int(idx) < 0 or not _SHARD.fullmatch(str(int(shard))):
            return None
        n = int(shard)
        if self._shard is None or self._shard[0] != n:
            self._shard = None
            self._shard = (n, Shard(self.root / "maps", f"shard-{n:05d}.npz", f"the maps file shard-{n:05d}.npz",
                                    limits=self.limits))
        return self._shard[1].get(int(idx))

    def thumbnail(self, row: pd.Series | dict) -> np.ndarray | None:
        """The row's thumbnail: a JPEG inside the run's thumbs folder (any other file is refused)."""
        name = row.get("thumb")
        if name is None or pd.isna(name):
            return None
        return read_jpeg(self.root / "thumbs", str(name), f"the thumbnail '{shown(str(name))}'", limits=self.limits)

    def source_image(self, row: pd.Series | dict, inputs_root: str | Path, max_side: int = 1024) -> np.ndarray:
        """The row's original image, read only when its path lies inside ``inputs_root`` (an :class:`ImageError`
        otherwise, or when it is gone or not an image)."""
        path = row.get("path")
        if path is None or pd.isna(path):
            raise ImageError("The run does not record where the image came from; the thumbnail is shown instead.")
        data = read_file(Path(inputs_root), str(path), self.limits.upload_bytes, "the run's original image", ImageError)
        return downscale(decode_image(data, limits=self.limits).array, max_side)


def open_run(path: str | Path, *, limits: Limits = LIMITS) -> Run:
    """The run folder at ``path`` (resolved; the caller keeps it inside its root): run.json, then the finished table
    or the parts written so far, every file read through the run-file limits."""
    root = Path(path).resolve()
    if not (root / "run.json").is_file():
        raise RunError(f"{shown(root.name) or 'That folder'} is not a run folder (no run.json); pick a folder written "
                       "by xai-batch.")
    meta = read_json(root, "run.json", "the run's run.json", limits=limits)
    for key in ("config", "model"):
        if not isinstance(meta.get(key, {}), dict):
            raise RunError(f"The run's run.json has a {key} that is not an object; the run folder is damaged.")
    results = root / "results.parquet"
    if meta.get("status") == "finished" and results.is_file():
        table = read_table(root, "results.parquet", allowed_columns(), "the run's results.parquet", limits=limits)
    else:
        table = read_parts(root, limits=limits)
    if table.empty:
        raise RunError(f"The run in {shown(root.name)} has no finished images yet; wait for its first chunk or resume "
                       "it.")
    if "item" not in table or "explainer" not in table:
        raise RunError("The run's table has no item or explainer column; the run folder is damaged.")
    listed = meta.get("config", {}).get("metrics", [])
    metrics = [m for m in listed if isinstance(m, str)] if isinstance(listed, list) else []
    return Run(root, meta, typed(table, metrics), limits)


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
