"""Run a batch: discover the inputs, skip what a previous attempt finished, explain chunk by chunk, write as it goes.

:func:`run` is the library entry point (the CLI, the Runs page's background job and the tests call it); with
``config.ray`` set the chunks go to Ray actors (:mod:`.ray_runner`) and come back to the same writer, so both paths
write the same table. Memory stays flat: a chunk's maps are written and dropped before the next chunk starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from ..models.spec import ModelSpec
from ..options import RunOptions
from ..types import Progress
from ..workbench import Workbench
from .compute import ChunkResult, explain_chunk
from .config import BatchConfig
from .inputs import Item, discover
from .ray_runner import run_chunks  # imports Ray itself only when a run uses it
from .source import provenance
from .writer import RunWriter


@dataclass
class Summary:
    out: str
    items: int
    skipped: int
    computed: int
    rows: int
    failed: int
    seconds: float
    layout: str

    @property
    def images_per_second(self) -> float:
        return self.computed / self.seconds if self.seconds > 0 else 0.0


def chunked(items: list[Item], size: int) -> Iterator[list[Item]]:
    for a in range(0, len(items), size):
        yield items[a:a + size]


def run(config: BatchConfig, *, model: ModelSpec | None = None, progress: Progress | None = None,
        show_bar: bool = True, on_chunk: Callable[[int], None] | None = None) -> Summary:
    """Run (or resume) ``config``. ``model``: an already loaded model for local runs (else ``config.model`` is
    loaded); ``progress(fraction, text)`` is called after every chunk (a background job stops by raising there);
    ``on_chunk(n_written)`` after each chunk is on disk."""
    t0 = time.perf_counter()
    if model is None:
        model = config.model.load(config.device)
    items, layout = discover(config.inputs, model.labels, root=config.inputs_root)
    writer = RunWriter(config, provenance(model, None if model.provenance == "in-memory module" else config.model))
    done = writer.done()
    todo = [it for it in items if it.key not in done]
    bar = tqdm(total=len(items), initial=len(items) - len(todo), unit="img", desc="xai-batch", disable=not show_bar,
               dynamic_ncols=True, smoothing=0.1)
    n = 0
    try:
        for chunk, result in _results(config, model, todo):
            writer.write(result)
            n += len(chunk)
            bar.update(len(chunk))
            if on_chunk is not None:
                on_chunk(n)
            if progress is not None:
                progress((len(items) - len(todo) + n) / len(items), f"{len(items) - len(todo) + n}/{len(items)} images")
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    table = writer.finish({"seconds": seconds, "computed": n, "skipped": len(items) - len(todo), "layout": layout})
    return Summary(config.out, len(items), len(items) - len(todo), n, len(table),
                   int(table["error"].notna().sum()) if len(table) else 0, seconds, layout)


def _results(config: BatchConfig, model: ModelSpec, todo: list[Item]) -> Iterable[tuple[list[Item], ChunkResult]]:
    chunks = list(chunked(todo, config.batch_size))
    if config.ray:
        yield from run_chunks(config, chunks)
        return
    wb = Workbench(model, RunOptions())
    for chunk in chunks:
        yield chunk, explain_chunk(wb, chunk, config)


def summary_text(s: Summary, out: str | None = None) -> str:
    """One line about a finished run; ``out``: how to name the run folder (a page gives its name, never the server's
    path; the CLI prints the path it was given)."""
    parts: list[Any] = [f"{s.items} images ({s.layout})", f"{s.computed} computed", f"{s.skipped} already done",
                        f"{s.rows} rows", f"{s.seconds:.1f} s"]
    if s.computed:
        parts.append(f"{s.images_per_second:.2f} images/s")
    if s.failed:
        parts.append(f"{s.failed} rows with errors (see the error column)")
    return " · ".join(parts) + f" → {s.out if out is None else out}"
