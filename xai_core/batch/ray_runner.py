"""The same run on Ray Data: chunks of items go through ``map_batches`` to a pool of actors, each actor one model
replica (loaded once, in its constructor), and the results stream back to the driver's writer.

The chunks are the local runner's chunks (one chunk per Ray batch), so every actor computes exactly what the local
path computes and the table is the same. Actors take a GPU each when the cluster has GPUs, else one CPU. Results
travel as bytes and JSON (:meth:`ChunkResult.to_record`), so the workers need no shared filesystem for the output;
they do need to read the input paths (a shared or identical path on every node).

Ray is optional (``pip install -e .[ray]`` or ``pip install "ray[data]"``); without it ``--ray`` says so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import XaiError
from ..workbench import Workbench
from .compute import ChunkResult, explain_chunk
from .config import BatchConfig
from .inputs import Item

ROOT = Path(__file__).resolve().parents[2]
EXCLUDES = [".venv", ".git", "runs", "tests/artifacts", "docs", "bench/results", "**/__pycache__"]


def require_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data is the part used
    except ImportError:
        raise XaiError("--ray needs Ray Data, which is not installed: run `pip install -e .[ray]` (or "
                       "`pip install \"ray[data]\"`), or drop --ray to run on this machine.") from None
    return ray


def start(config: BatchConfig) -> bool:
    """Connect to Ray (a local instance for ``local``, else the address); True when this call started it."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    if config.ray == "local":
        env = {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        ray.init(num_cpus=max(config.workers, os.cpu_count() or 1), include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": env})
    else:
        ray.init(address=config.ray, log_to_driver=False, runtime_env={"working_dir": str(ROOT), "excludes": EXCLUDES})
    return True


class ChunkWorker:
    """One model replica: loaded once when Ray starts the actor, then one chunk per call."""

    def __init__(self, config: BatchConfig) -> None:
        self.config = config
        self.wb = Workbench(config.model.load(config.device))

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        out: dict[str, list] = {"chunk": [], "rows": [], "maps": [], "thumbs": [], "thumb_keys": []}
        for i, items in zip(batch["chunk"], batch["items"], strict=True):
            chunk = [Item(**{**d, "box": tuple(d["box"]) if d["box"] else None}) for d in json.loads(items)]
            rec = explain_chunk(self.wb, chunk, self.config).to_record()
            out["chunk"].append(int(i))
            for k, v in rec.items():
                out[k].append(v)
        return out


def run_chunks(config: BatchConfig, chunks: list[list[Item]]) -> Iterator[tuple[list[Item], ChunkResult]]:
    """Each chunk's result, in the order they finish."""
    if not chunks:
        return
    ray = require_ray()
    started = start(config)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        records = [{"chunk": i, "items": json.dumps([asdict(it) for it in c])} for i, c in enumerate(chunks)]
        ds = ray.data.from_items(records, override_num_blocks=len(records)).map_batches(
            ChunkWorker, fn_constructor_kwargs={"config": config}, batch_size=1, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=min(config.workers, len(chunks))), num_cpus=1, num_gpus=gpus)
        for rec in ds.iter_rows():
            yield chunks[int(rec["chunk"])], ChunkResult.from_record(rec)
    finally:
        if started:
            ray.shutdown()
