"""The one batched engine every many-pass method goes through.

It picks the device, splits work into batches, halves the batch on CUDA out-of-memory and carries
on, reports progress (which may raise :class:`Cancelled` to stop between batches), and offers the
two primitives explainers are built from: plain logits (inference mode) and input gradients.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch

from .errors import Cancelled, ExplainerError
from .registry import Progress

T = TypeVar("T")

CPU_BATCH = 8  # measured: per-sample cost on a 2-core CPU rises again above ~8 (cache)
GPU_BATCH = 128


def default_device() -> torch.device:
    """CUDA when present, then Apple MPS, else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_label(device: torch.device | str | None = None) -> str:
    """A short human label for the device badge, e.g. ``CUDA · NVIDIA H100`` or ``CPU · 2 threads``."""
    device = torch.device(device) if device is not None else default_device()
    if device.type == "cuda":
        return f"CUDA · {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple MPS"
    return f"CPU · {torch.get_num_threads()} threads"


def batch_size_for(device: torch.device, pixels: int = 224 * 224) -> int:
    """A starting batch size for ``device`` at ``pixels`` per input; OOM back-off refines it."""
    base = GPU_BATCH if device.type in ("cuda", "mps") else CPU_BATCH
    return max(1, int(base * (224 * 224) / max(pixels, 1)))


def _is_oom(err: BaseException) -> bool:
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None and isinstance(err, oom):
        return True
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()


def chunks(total: int, compute: Callable[[int, int], T], *, batch_size: int,
           progress: Progress | None = None, desc: str = "") -> Iterator[tuple[int, int, T]]:
    """Yield ``(start, stop, compute(start, stop))`` over ``range(total)`` in batches.

    On out-of-memory the batch is halved and the same range retried; a batch of one that still
    does not fit raises :class:`ExplainerError`. ``progress(fraction, text)`` is called after every
    batch; it may raise :class:`Cancelled` to stop the run.
    """
    start, size = 0, max(1, int(batch_size))
    while start < total:
        stop = min(total, start + size)
        try:
            out = compute(start, stop)
        except Cancelled:
            raise
        except Exception as err:  # noqa: BLE001 - only OOM is handled, everything else re-raised
            if not _is_oom(err):
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if size == 1:
                raise ExplainerError("Out of memory even with one input per batch: choose a smaller "
                                     "model or input, or run on a device with more memory.") from None
            size = max(1, size // 2)
            continue
        yield start, stop, out
        start = stop
        if progress is not None:
            progress(start / total, f"{desc} {start}/{total}".strip())


def autocast(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on CUDA for forward-only work; a no-op elsewhere (CPUs here lack bf16 units)."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def logits(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits in inference mode (no autograd bookkeeping)."""
    with torch.inference_mode():
        return module(x).float()


def select(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``out[b, target[b]]`` for each sample b."""
    return out.gather(1, target.view(-1, 1).to(out.device)).squeeze(1)


def input_gradients(module: torch.nn.Module, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """d logit[target] / d x for a batch, and the selected logits.

    Only the input needs a gradient (model parameters are frozen at load time), so backward stops
    at the input and no weight gradients are ever computed or stored.
    """
    with torch.enable_grad():
        xi = x.detach().requires_grad_(True)
        score = select(module(xi), target)
        if not torch.isfinite(score).all():
            raise ExplainerError("The model returned NaN or infinite scores for this input; "
                                 "check the checkpoint (it may have diverged) or the image.")
        (grad,) = torch.autograd.grad(score.sum(), xi)
    return grad, score.detach()
