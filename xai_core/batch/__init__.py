"""Batch runs: explanations and metrics over many images, from files on this machine or on a Ray cluster, or from
images already in memory (the pages). One loop (:func:`explain_loaded`) does the work for all of them.

    from xai_core.batch import BatchConfig, run, open_run
    summary = run(BatchConfig(inputs="val/", out="runs/val", explainers=(("gradcam", ()),)))
    r = open_run("runs/val"); r.table; r.maps_of(row); r.thumbnail(row)
    result = run_memory(wb, [Decoded("a.png", image, box=box)], Work.make([request], metrics=["deletion"]))

The command line is ``python -m xai_core.batch`` (``xai-batch`` once the project is installed); the output
schema is in :mod:`.writer` and the README's "Batch runs".
"""

from .compute import ChunkResult, explain_chunk, explain_loaded
from .config import BatchConfig, parse_args, parse_spec
from .inputs import Item, discover, match_classes
from .memory import run_memory
from .results import Run, open_run
from .runner import Summary, run, summary_text
from .sets import evaluate_set
from .source import ModelSource
from .work import Decoded, Work

__all__ = ["BatchConfig", "ChunkResult", "Decoded", "Item", "ModelSource", "Run", "Summary", "Work", "discover",
           "evaluate_set", "explain_chunk", "explain_loaded", "match_classes", "open_run", "parse_args", "parse_spec",
           "run", "run_memory", "summary_text"]
