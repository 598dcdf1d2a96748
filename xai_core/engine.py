"""The one batched engine every many-pass method goes through.

It picks the device, splits work into batches, halves the batch on CUDA out-of-memory and carries
on, reports progress (which may raise :class:`Cancelled` to stop between batches), and offers the
two primitives explainers are built from: plain logits (inference mode) and input gradients.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Callable, Iterator
from typing import NamedTuple, TypeVar

import torch

from . import fastpath, options
from .device import CPU_BATCH, GPU_BATCH, batch_size_for, configure_threads, default_device, device_label
from .errors import Cancelled, ExplainerError
from .result import Forward, first_forward
from .types import Progress

__all__ = ["CPU_BATCH", "GPU_BATCH", "Gradients", "autocast", "batch_size_for", "chunks", "configure_threads",
           "default_device", "device_label", "input_gradients", "logits", "logits_of", "scores", "seconds_per_pass", "select"]

T = TypeVar("T")


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
    """bfloat16 autocast on CUDA for forward-only work when the session's :class:`RunOptions` ask for it
    (``bf16``); otherwise, and always off CUDA, a no-op (CPUs here lack bf16 units)."""
    if enabled and device.type == "cuda" and options.current().bf16:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def scores(module: torch.nn.Module, total: int, make: Callable[[int, int], torch.Tensor], targets: torch.Tensor, *,
           batch_size: int | None = None, probabilities: bool = False, progress: Progress | None = None,
           desc: str = "forward passes") -> torch.Tensor:
    """Class scores of ``total`` inputs built batch by batch: the workhorse of perturbation methods.

    ``make(start, stop)`` returns the inputs ``[stop - start, 3, H, W]``; item i is scored on class
    ``targets[i]`` (a logit, or a softmax probability). Inference mode, bf16 autocast on CUDA,
    OOM back-off and progress come from :func:`chunks`.
    """
    out = torch.empty(total, dtype=torch.float32, device=targets.device)
    probe = make(0, min(total, 2)).contiguous(memory_format=torch.channels_last)
    if batch_size is None:
        batch_size = batch_size_for(probe.device, probe.shape[-1] * probe.shape[-2])
    comp = fastpath.compiled(module)
    if comp is not None and module not in fastpath.WARM and progress is not None:
        progress(0.0, "compiling the model once (about a minute on CPU)")
    run = comp if comp is not None else fastpath.frozen(module, probe)
    run = module if run is None else run

    def compute(start: int, stop: int) -> torch.Tensor:
        xb = make(start, stop).contiguous(memory_format=torch.channels_last)  # no-op when it already is
        n = len(xb)
        if comp is not None and n < batch_size:  # one static shape: pad instead of recompiling
            xb = torch.cat([xb, xb[-1:].expand(batch_size - n, *xb.shape[1:])]).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), autocast(xb.device):
            z = run(xb).float()[:n]
        if comp is not None:
            fastpath.WARM.add(module)
        return select(class_probabilities(z) if probabilities else z, targets[start:stop])

    for start, stop, s in chunks(total, compute, batch_size=batch_size, progress=progress, desc=desc):
        out[start:stop] = s.to(out.device)
    return out


_PASS_SECONDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def seconds_per_pass(module: torch.nn.Module, example: torch.Tensor) -> float:
    """Measured seconds per input of a batched forward pass (cached per module): for time budgets."""
    if module not in _PASS_SECONDS:
        n = batch_size_for(example.device, example.shape[-1] * example.shape[-2])
        xb = example[:1].expand(n, *example.shape[1:]).contiguous(memory_format=torch.channels_last)
        times = []
        with torch.inference_mode(), autocast(example.device):
            module(xb)  # warm-up: first calls allocate and pick kernels
            for _ in range(3):
                if example.device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                module(xb)
                if example.device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
        _PASS_SECONDS[module] = min(times) / n  # the minimum: robust to a busy machine's spikes
    return _PASS_SECONDS[module]


def logits(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits in inference mode (no autograd bookkeeping)."""
    with torch.inference_mode():
        return module(x).float()


def logits_of(module: torch.nn.Module, x: torch.Tensor, *, progress: Progress | None = None,
              desc: str = "images") -> torch.Tensor:
    """Logits ``[N, classes]`` of every input in ``x``, in batches (inference mode, OOM back-off, progress)."""
    out: torch.Tensor | None = None
    size = batch_size_for(x.device, x.shape[-1] * x.shape[-2])
    for a, b, z in chunks(len(x), lambda a, b: logits(module, x[a:b].contiguous(memory_format=torch.channels_last)),
                          batch_size=size, progress=progress, desc=desc):
        if out is None:
            out = torch.empty(len(x), z.shape[1], device=z.device)
        out[a:b] = z
    if out is None:
        raise ValueError("logits_of needs at least one input")
    return out


def class_probabilities(z: torch.Tensor) -> torch.Tensor:
    """Class probabilities of logits ``z [N, classes]``: their softmax. A one-column output is a score (a model bound
    to a prompt, a region or a box, :mod:`xai_core.targets`; a one-logit head), not a logit among classes: it is
    returned as it is (its softmax would be 1 everywhere)."""
    return z if z.shape[1] == 1 else z.softmax(1)



def select(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``out[b, target[b]]`` for each sample b."""
    idx = target.view(-1, 1).to(out.device)
    if out.requires_grad and idx.is_inference():  # a target made under inference_mode cannot be saved for backward
        with torch.inference_mode(False):
            idx = idx.clone()
    return out.gather(1, idx).squeeze(1)


class Gradients(NamedTuple):
    """What :func:`input_gradients` returns: the input gradient, the selected scores and the forward pass itself."""

    grad: torch.Tensor
    score: torch.Tensor
    forward: Forward  # the pass's logits and the targets, TOP1 entries resolved from them


def input_gradients(module: torch.nn.Module, x: torch.Tensor, target: torch.Tensor) -> Gradients:
    """d logit[target] / d x for a batch, the selected logits and the pass's :class:`Forward`.

    Only the input needs a gradient (model parameters are frozen at load time), so backward stops
    at the input and no weight gradients are ever computed or stored. ``TOP1`` (negative) entries of
    ``target`` become the pass's top-1 class; when ``x`` is the explained input itself, the returned
    ``forward`` is its first forward (its logits and resolved targets go into the explainer's result).
    """
    with torch.enable_grad():
        xi = x.detach().requires_grad_(True)
        out = module(xi)
        fwd = first_forward(out, target)
        score = select(out, fwd.target)
        if not torch.isfinite(score).all():
            raise ExplainerError("The model returned NaN or infinite scores for this input; "
                                 "check the checkpoint (it may have diverged) or the image.")
        (grad,) = torch.autograd.grad(score.sum(), xi)
    return Gradients(grad, score.detach(), fwd)
