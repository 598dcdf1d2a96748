"""Reproduce assets/lab_horse_segmenter.pt and assets/lab_horse_detector.pt:

    python -m xai_core.lab.train_dense                  # both (~2-3 min each on 2 free cores; see below)
    python -m xai_core.lab.train_dense --only detector  # one of them
    python -m xai_core.lab.train_dense --n 64 --epochs 1 --out /tmp/x --no-report   # a quick smoke run

Deterministic from the seeds in :data:`.segmenter.SEGMENTER_TRAIN` and :data:`.detector.DETECTOR_TRAIN` on a given
CPU and thread count (float sums in other orders give slightly different weights elsewhere, as for the lab CNN).
Measured here: the segmenter (3000 images × 12 epochs) 13.6 s an epoch on one thread of a lightly loaded 2-core
machine (~2.7 min), the detector (3000 × 8) 17.6 s (~2.4 min); the shipped files took 770 s and 394 s on 2 threads
with other jobs holding the cores (load 4-6).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from .data import LabSet, make_dataset
from .dense_report import dense_predictions
from .detector import DETECTOR_TRAIN, DETECTOR_WEIGHTS, detector_spec, train_detector
from .segmenter import SEGMENTER_TRAIN, SEGMENTER_WEIGHTS, DenseSettings, segmenter_spec, train_segmenter

Trainer = Callable[..., nn.Module]
JOBS: dict[str, tuple[DenseSettings, Path, Trainer]] = {
    "segmenter": (SEGMENTER_TRAIN, SEGMENTER_WEIGHTS, train_segmenter),
    "detector": (DETECTOR_TRAIN, DETECTOR_WEIGHTS, train_detector),
}


def train_one(name: str, out: Path, n: int | None = None, epochs: int | None = None, quiet: bool = False) -> nn.Module:
    """Train the ``name`` model ("segmenter" or "detector") with its settings (``n``, ``epochs`` override them) and
    save its state dict (tensors only) to ``out``/its asset's file name."""
    settings, weights, trainer = JOBS[name]
    t0 = time.perf_counter()
    data: LabSet = make_dataset(n or settings["n"], seed=settings["seed"], tag_fraction=settings["tag_fraction"])
    model = trainer(data, epochs=epochs or settings["epochs"], lr=settings["lr"], batch=settings["batch"],
                    seed=settings["seed"], progress=None if quiet else lambda f, t: print(f"{f:5.0%} {t}", flush=True))
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / weights.name)
    if not quiet:
        print(f"{name} trained in {time.perf_counter() - t0:.0f} s on {torch.get_num_threads()} threads "
              f"→ {out / weights.name}")
    return model


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m xai_core.lab.train_dense", description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=sorted(JOBS), help="train one model only")
    ap.add_argument("--out", type=Path, default=SEGMENTER_WEIGHTS.parent, help="folder for the .pt files (assets/)")
    ap.add_argument("--n", type=int, help="training images (default: the shipped models')")
    ap.add_argument("--epochs", type=int, help="epochs (default: the shipped models')")
    ap.add_argument("--no-report", action="store_true", help="skip the with/without-tag report")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    models = {name: train_one(name, args.out, args.n, args.epochs, args.quiet)
              for name in ([args.only] if args.only else JOBS)}
    if args.no_report or len(models) < 2:
        return
    rows = dense_predictions(segmenter_spec(models["segmenter"], "cpu"), detector_spec(models["detector"], "cpu"))
    for r in rows:
        print(f"{r['model']}, {r['image']}: horse {r['horse']:.0%}, other {r['other']:.0%} ({r['images']} images)")


if __name__ == "__main__":
    main()
