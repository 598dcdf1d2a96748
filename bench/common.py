"""What every benchmark shares: the reference model setup, timers, and the forward / forward+backward floors.

The reference: the bundled EfficientNet-Lite0 at 224×224 on Chelsea the cat, explained for class 285 (Egyptian
cat). Ratios are what the benches report: every number in a row is measured in the same run on the same machine.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import xai_core as xc
from xai_core import images

REPEATS = 7
TARGET = 285  # 'Egyptian cat'
RESULTS = Path(__file__).resolve().parent / "results"
NO_BUDGET = xc.RunOptions(time_budget=3600.0)  # benches time the full sample counts: never capped


@dataclass
class Reference:
    spec: xc.ModelSpec
    image: np.ndarray
    x: torch.Tensor
    target: torch.Tensor

    def plain(self) -> torch.nn.Module:
        """A copy as reference libraries' documentation uses it: default memory format, parameters requiring grad."""
        return copy.deepcopy(self.spec.module).to(memory_format=torch.contiguous_format).requires_grad_(True).eval()


def reference(device: str = "cpu") -> Reference:
    torch.manual_seed(0)
    spec = xc.load_model("efficientnet_lite0", device=device)
    image = images.load_sample("Chelsea the cat")
    return Reference(spec, image, spec.preprocess(image), torch.tensor([TARGET], device=spec.device))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_time(fn: Callable[[], object], repeats: int = REPEATS, device: torch.device | None = None) -> float:
    """Median seconds of ``repeats`` calls after one warm-up call (CUDA synchronised when ``device`` is CUDA)."""
    dev = device or torch.device("cpu")
    fn()
    times = []
    for _ in range(repeats):
        _sync(dev)
        t0 = time.perf_counter()
        fn()
        _sync(dev)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def once(fn: Callable[[], object]) -> float:
    """Seconds of one call (for runs too long to repeat)."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def floors(ref: Reference, repeats: int = REPEATS) -> tuple[float, float]:
    """Seconds of one forward pass and of one forward + full input backward, batch 1 (medians)."""
    spec, x = ref.spec, ref.x

    def fwd() -> None:
        with torch.inference_mode():
            spec.module(x)

    def fwd_bwd() -> None:
        xi = x.detach().requires_grad_(True)
        torch.autograd.grad(spec.module(xi)[0, TARGET], xi)

    return median_time(fwd, repeats, spec.device), median_time(fwd_bwd, repeats, spec.device)


def best_forward_seconds(module: torch.nn.Module, x: torch.Tensor,
                         sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32)) -> tuple[float, int]:
    """The batched forward floor: best seconds per image of an inference-mode forward, and the batch size."""
    best = (float("inf"), 1)
    for bs in sizes:
        xb = x.expand(bs, *x.shape[1:]).contiguous(memory_format=torch.channels_last)

        def run(xb: torch.Tensor = xb) -> None:
            with torch.inference_mode():
                module(xb)

        best = min(best, (median_time(run, 3, x.device) / bs, bs))
    return best
