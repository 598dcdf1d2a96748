"""Reproduce assets/lab_horse_cnn.pt: `python -m xai_core.lab.train` (about a minute on a 2-core CPU)."""

from __future__ import annotations

import time

import torch

from .data import make_dataset
from .model import TRAIN, WEIGHTS, as_spec, shortcut_report, train


def main() -> None:
    t0 = time.perf_counter()
    data = make_dataset(TRAIN["n"], seed=TRAIN["seed"], tag_fraction=TRAIN["tag_fraction"])
    model = train(data, epochs=TRAIN["epochs"], lr=TRAIN["lr"], batch=TRAIN["batch"], seed=TRAIN["seed"],
                  progress=lambda f, t: print(f"{f:5.0%} {t}", flush=True))
    WEIGHTS.parent.mkdir(exist_ok=True)
    torch.save(model.state_dict(), WEIGHTS)
    print(f"trained in {time.perf_counter() - t0:.0f} s → {WEIGHTS}")
    for k, v in shortcut_report(as_spec(model, "cpu")).items():
        print(f"{k}: {v:.1%}")


if __name__ == "__main__":
    main()
