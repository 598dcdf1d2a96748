"""Batch runs: explanations and metrics over a whole dataset, on this machine or on a Ray cluster.

    from xai_core.batch import BatchConfig, run, open_run
    summary = run(BatchConfig(inputs="val/", out="runs/val", explainers=(("gradcam", ()),)))
    r = open_run("runs/val"); r.table; r.maps_of(row); r.thumbnail(row)

The command line is ``python -m xai_core.batch`` (``xai-batch`` once the project is installed); the output
schema is in :mod:`.writer` and the README's "Batch runs".
"""

from .compute import ChunkResult, explain_chunk
from .config import BatchConfig, parse_args, parse_spec
from .inputs import Item, discover
from .results import Run, open_run
from .runner import Summary, run, summary_text
from .source import ModelSource

__all__ = ["BatchConfig", "ChunkResult", "Item", "ModelSource", "Run", "Summary", "discover", "explain_chunk",
           "open_run", "parse_args", "parse_spec", "run", "summary_text"]
