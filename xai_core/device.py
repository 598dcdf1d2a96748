"""Devices and threads (a leaf module): which device to use, its label, and how many CPU threads."""

from __future__ import annotations

import os

import torch

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


def resolve_device(device: torch.device | str | None) -> torch.device:
    """``device`` as a ``torch.device``; ``None`` means :func:`default_device`."""
    return torch.device(device) if device is not None else default_device()


def device_label(device: torch.device | str | None = None) -> str:
    """A short human label for the device badge, e.g. ``CUDA · NVIDIA H100`` or ``CPU · 2 threads``."""
    device = resolve_device(device)
    if device.type == "cuda":
        return f"CUDA · {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple MPS"
    n = torch.get_num_threads()
    return f"CPU · {n} thread{'s' if n > 1 else ''}"


def configure_threads(reserve: int = 1) -> int:
    """Leave ``reserve`` cores to the rest of the machine (the browser showing the app, the server).

    With as many intra-op threads as cores, torch's CPU kernels stall badly whenever another process
    takes a core (measured on the 2-core machines here: forward passes 10-100× slower while headless
    Chromium redraws the page). Returns the thread count now in use. No-op on GPU machines' workers.
    """
    cores = os.cpu_count() or 1
    threads = max(1, cores - reserve)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def batch_size_for(device: torch.device, pixels: int = 224 * 224) -> int:
    """A starting batch size for ``device`` at ``pixels`` per input; OOM back-off refines it."""
    base = GPU_BATCH if device.type in ("cuda", "mps") else CPU_BATCH
    return max(1, int(base * (224 * 224) / max(pixels, 1)))
