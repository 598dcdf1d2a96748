"""The four perturbation tests of MetaQuantus (Hedström, Bommer, Wickstrøm, Samek, Lapuschkin & Höhne, "The
Meta-Evaluation Problem in Explainable AI: Identifying Reliable Estimators with MetaQuantus", TMLR 2023).

* Model Perturbation Test (MPT): multiplicative Gaussian noise ``w ← w · ε, ε ~ N(1, σ²)`` on every parameter of
  a DEEP COPY of the model (the shared model is never touched). *Minor* σ (the paper's resilience level, 0.001) keeps
  the predictions; *disruptive* σ (the paper's adversary level: 2.0 for its MNIST networks, 0.5 for ImageNet ResNets)
  changes them.
* Input Perturbation Test (IPT): additive uniform noise ``x ← clip(x + U(−a, a))`` on the image's pixels in [0, 1]
  (8-bit after rounding). The paper's levels (0.001 and 5.0) are in normalised units; at our 8-bit boundary
  (metrics score RGB uint8 images) 0.001 rounds to no change at all, so the minor level is 0.01 (±2.5 grey levels,
  the smallest that survives rounding by a margin), and the disruptive one 1.0 (noise over the whole range, the
  paper's 5.0 normalised ≈ 1.1-1.25 pixel units for ImageNet/lab statistics).

Each test is drawn ``K`` times, seeded: perturbation ``k`` of test ``t`` with seed ``s`` is the same on every run.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from ..errors import ExplainerError
from ..workbench import Workbench

Space = Literal["model", "input"]


@dataclass(frozen=True)
class Levels:
    """Noise levels of the four tests: model σ (multiplicative N(1, σ²)), input amplitude (uniform, pixels 0-1)."""

    model_minor: float = 0.001
    model_disruptive: float = 2.0
    input_minor: float = 0.01
    input_disruptive: float = 1.0

    def __post_init__(self) -> None:
        values = dataclasses.astuple(self)
        if not all(np.isfinite(v) and v > 0 for v in values):
            raise ExplainerError("Every noise level of the meta-evaluation must be a positive number.")
        if self.model_minor >= self.model_disruptive or self.input_minor >= self.input_disruptive:
            raise ExplainerError("The minor noise level must be smaller than the disruptive one (model and input).")


@dataclass(frozen=True)
class PerturbationTest:
    """One of the four tests: its MetaQuantus name, what it perturbs, whether it is the adversary, and its level."""

    name: str
    space: Space
    adversary: bool
    level: float


def tests(levels: Levels) -> tuple[PerturbationTest, ...]:
    """The four tests, in MetaQuantus's order and with its names."""
    return (PerturbationTest("Model Resilience Test", "model", False, levels.model_minor),
            PerturbationTest("Model Adversary Test", "model", True, levels.model_disruptive),
            PerturbationTest("Input Resilience Test", "input", False, levels.input_minor),
            PerturbationTest("Input Adversary Test", "input", True, levels.input_disruptive))


def draw_seed(seed: int, test: int, k: int) -> int:
    """The seed of perturbation ``k`` of test number ``test`` (independent streams for every pair)."""
    return int(np.random.SeedSequence([int(seed), int(test), int(k)]).generate_state(1, dtype=np.uint32)[0])


def noisy_model(wb: Workbench, std: float, seed: int) -> Workbench:
    """A Workbench on a deep copy of ``wb``'s model (its own lock) whose parameters are multiplied by N(1, std²)
    noise drawn on the CPU from ``seed`` (the same weights on any device); buffers are kept, as in MetaQuantus.
    The session's run options carry over, except compilation."""
    with wb.session() as spec:  # copied under the lock: another session may be folding BatchNorm right now
        module = copy.deepcopy(spec.module)
    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for p in module.parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32).mul_(std).add_(1.0)
            p.mul_(noise.to(device=p.device, dtype=p.dtype))
    copy_wb = wb.with_model(dataclasses.replace(spec, module=module, lock=threading.RLock()))
    # torch.compile would compile every throw-away copy anew (~40 s each); the verified frozen graph (~1 s) stays.
    return copy_wb.with_options(dataclasses.replace(wb.options, compile=False))


def noisy_images(images: list[np.ndarray], amplitude: float, seed: int) -> list[np.ndarray]:
    """RGB uint8 images with uniform noise in [−amplitude, amplitude] (pixels scaled to [0, 1]) added, clipped to
    [0, 1] and rounded back to 8 bits; one seeded stream over the images in order."""
    rng = np.random.default_rng(int(seed))
    out = []
    for im in images:
        x = im.astype(np.float64) / 255.0 + rng.uniform(-amplitude, amplitude, im.shape)
        out.append((np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))
    return out
