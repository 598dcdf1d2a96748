"""``xai-batch concepts``: CRAFT-style concept discovery (:func:`xai_core.concepts.discover`; Fel et al., CVPR 2023)
over a set of images of one class, read through the batch runner's input boundary, written as files.

Inputs are what ``xai-batch`` reads (a folder, an ImageFolder class tree, a CSV of paths: :mod:`.inputs`, every file
read through its root and the upload limits) or a ``.zip`` of images (the upload boundary's zip reader). Images whose
known class is another one are left out; at most ``--max-images`` are used (by path). ``--max-seconds`` stops the
run between two batches (nothing is written then), as a page's Stop does through ``progress``.
The files written into ``--out`` are described in :mod:`.concept_files`.

    xai-batch concepts imgs/ --out runs/horse-concepts --model lab_horse_cnn --class horse --rank 8
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..concepts.craft import discover
from ..errors import ImageError, RunError, XaiError
from ..metrics.sets import read_items
from ..models.spec import ModelSpec
from ..types import Progress
from ..untrusted.limits import LIMITS
from ..untrusted.messages import shown
from ..untrusted.runfiles import read_file
from ..untrusted.zips import UploadZip
from .concept_files import describe, write
from .config import _under
from .inputs import discover as list_inputs
from .inputs import match_classes, read
from .source import ModelSource, provenance


@dataclass(frozen=True)
class ConceptRun:
    """One concept discovery over a set: ``target`` a class index or name; see :func:`xai_core.concepts.discover`
    for ``layer`` … ``seed``."""

    inputs: str
    out: str
    target: str
    model: ModelSource = field(default_factory=ModelSource)
    layer: str | None = None
    rank: int = 8
    crop: float = 0.5
    stride: float = 0.25
    resize: bool = True
    top_crops: int = 10
    seed: int = 0
    max_images: int = 300
    max_seconds: float | None = None
    device: str | None = None
    inputs_root: str | None = None

    def __post_init__(self) -> None:
        if self.max_images < 1 or (self.max_seconds is not None and not self.max_seconds > 0):
            raise XaiError("--max-images must be at least 1 and --max-seconds a positive number.")


@dataclass
class Loaded:
    keys: list[str]
    images: list[np.ndarray]
    scales: list[float]  # the image as decoded ÷ the file's own size (images over 1024 px are downscaled)
    skipped: list[str]


def class_index(text: str, labels: list[str]) -> int:
    """``--class``: an index or one of the model's class names (case, spaces, '_' and '-' ignored)."""
    found = match_classes([str(text)], labels)[0]
    if found is None:
        raise XaiError(f"--class {shown(str(text))} is neither a class index below {len(labels)} nor one of the "
                       "model's class names.")
    return found


def load_set(run: ConceptRun, labels: list[str], target: int) -> Loaded:
    """The images of ``run.inputs`` (zip, folder, class tree or CSV), those of another known class left out."""
    out = Loaded([], [], [], [])
    path = Path(run.inputs)
    if path.suffix.lower() == ".zip":
        root = Path(run.inputs_root) if run.inputs_root else path.parent
        data = read_file(root, path, LIMITS.upload_bytes, f"the zip {shown(path.name)}", ImageError)
        zipped, notes = read_items(UploadZip(data, hint="Zip a folder of images and give that."), limit=run.max_images)
        out.keys, out.images, out.scales, out.skipped = [i.name for i in zipped], [i.image for i in zipped], \
            [1.0] * len(zipped), notes
        return out
    items, _layout = list_inputs(run.inputs, labels, root=run.inputs_root)
    other = [it for it in items if it.label is not None and it.label != target]
    if other:
        out.skipped.append(f"{len(other)} image(s) of other classes left out.")
    mine = [it for it in items if it.label is None or it.label == target]
    if len(mine) > run.max_images:
        out.skipped.append(f"{len(mine)} images of the class: the first {run.max_images} (by path) are used.")
    for it in mine[:run.max_images]:
        try:
            d = read(it)
        except ImageError as e:
            out.skipped.append(f"{shown(it.key)} skipped: {e}")
            continue
        out.keys.append(it.key)
        out.images.append(d.image)
        out.scales.append(d.scale)
    return out


def _deadline(run: ConceptRun, progress: Progress | None) -> Progress:
    stop = None if run.max_seconds is None else time.perf_counter() + run.max_seconds

    def report(fraction: float, text: str) -> None:
        if stop is not None and time.perf_counter() > stop:
            raise RunError(f"The concept discovery passed its time limit of {run.max_seconds:g} s and stopped; nothing "
                           "was written. Give a larger --max-seconds, fewer images or a coarser crop grid.")
        if progress is not None:
            progress(fraction, text)
    return report


def run_concepts(run: ConceptRun, *, model: ModelSpec | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Discover, then write the files; returns what ``concepts.json`` holds. ``progress`` may raise
    :class:`~xai_core.errors.Cancelled` to stop (nothing is written)."""
    t0 = time.perf_counter()
    model = model or run.model.load(run.device)
    target = class_index(run.target, model.labels)
    data = load_set(run, model.labels, target)
    report = _deadline(run, progress)
    report(0.0, f"{len(data.keys)} images read")
    x = torch.cat([model.preprocess(im).cpu() for im in data.images]) if data.images else torch.empty(0, 3, 1, 1)
    found = discover(model, x, target, layer=run.layer, rank=run.rank, crop=run.crop, stride=run.stride,
                     resize=run.resize, top_crops=run.top_crops, seed=run.seed, progress=report)
    summary = {"settings": {**asdict(run), "model": asdict(run.model)},
               "model": provenance(model, None if model.provenance == "in-memory module" else run.model),
               **describe(found, model, data.keys, data.images, data.scales), "skipped": data.skipped,
               "seconds": time.perf_counter() - t0}
    write(Path(run.out), summary, found, data.keys)
    return summary


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xai-batch concepts", description="Concepts of one class over a set of its "
                                "images (CRAFT-style NMF of a layer's activations on image crops), written as JSON, "
                                "CSV and the concept directions in --out.")
    p.add_argument("inputs", help="a folder of images, an ImageFolder class tree, a CSV of paths, or a .zip of images")
    p.add_argument("--out", required=True, help="the folder for the concept files (created; the files are replaced)")
    ModelSource.add_arguments(p)
    p.add_argument("--class", dest="target", required=True, help="the class: an index or one of the model's names")
    p.add_argument("--layer", default=None, help="the layer (default: the model's CAM layer)")
    p.add_argument("--rank", type=int, default=8, help="the number of concepts (default: %(default)s)")
    p.add_argument("--crop", type=float, default=0.5, help="crop side ÷ input side (default: %(default)s)")
    p.add_argument("--stride", type=float, default=0.25, help="crop step ÷ input side (default: %(default)s)")
    p.add_argument("--no-resize", action="store_true", help="keep crops at their size (fully convolutional models)")
    p.add_argument("--top-crops", type=int, default=10, help="reference crops per concept (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="the factorisation's seed")
    p.add_argument("--max-images", type=int, default=300, help="images used at most, by path (default: %(default)s)")
    p.add_argument("--max-seconds", type=float, default=None, help="stop (writing nothing) after this many seconds")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def parse_args(argv: list[str] | None = None) -> tuple[ConceptRun, argparse.Namespace]:
    ns = build_parser().parse_args(argv)
    inputs, inputs_root = _under("XAI_INPUTS_ROOT", ns.inputs, "The inputs")
    out, _ = _under("XAI_RUNS_ROOT", ns.out, "--out")
    return ConceptRun(inputs=inputs, out=out, target=ns.target, model=ModelSource.from_args(ns), layer=ns.layer,
                      rank=ns.rank, crop=ns.crop, stride=ns.stride, resize=not ns.no_resize, top_crops=ns.top_crops,
                      seed=ns.seed, max_images=ns.max_images, max_seconds=ns.max_seconds, device=ns.device,
                      inputs_root=inputs_root), ns


def summary_text(summary: dict[str, Any], out: str) -> str:
    c = summary["concepts"][0]
    return (f"{len(summary['images'])} images of {summary['class_name']} · {len(summary['concepts'])} concepts at "
            f"{summary['layer']} · top share {c['share']:.2f} · {summary['seconds']:.1f} s → {out}")


def main(argv: list[str] | None = None) -> int:
    """``xai-batch concepts …``: 0 when the files are written, 2 with one sentence on stderr otherwise."""
    try:
        run, ns = parse_args(argv)
        with tqdm(total=100, unit="%", desc="xai-batch concepts", disable=ns.no_progress, dynamic_ncols=True) as bar:
            def progress(fraction: float, _text: str) -> None:
                bar.update(round(100 * fraction) - bar.n)
            summary = run_concepts(run, progress=progress)
    except XaiError as e:
        print(f"xai-batch concepts: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("xai-batch concepts: interrupted; nothing was written.", file=sys.stderr)
        return 130
    print(summary_text(summary, run.out))
    return 0
