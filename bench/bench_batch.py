"""xai-batch throughput and memory.

``python -m bench.bench_batch``: images per second for Grad-CAM + deletion + insertion (32 steps each) on the
bundled EfficientNet-Lite0, on this machine (one process, 2 threads) and with ``--ray local`` (2 actors, 1 thread
each), and the ratio of the seconds per image to the batched forward floor (one forward of one image).

``python -m bench.bench_batch --memory 10000``: resident memory of one process over a 10,000-image run (a tiny
random CNN at 32×32, Grad-CAM), sampled after every chunk: growth per image should be nil.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

import xai_core as xc
from bench.common import RESULTS, best_forward_seconds, reference
from xai_core import batch, images


def _folder(root: Path, n: int) -> Path:
    """``n`` different crops of the bundled samples (the same ones on every run)."""
    rng = np.random.default_rng(0)
    samples = [images.load_sample(s) for s in images.sample_names()]
    for i in range(n):
        im = samples[i % len(samples)]
        h, w = im.shape[:2]
        y, x = rng.integers(0, h // 4), rng.integers(0, w // 4)
        Image.fromarray(im[y:y + 3 * h // 4, x:x + 3 * w // 4]).save(root / f"{i:04d}.png")
    return root


def throughput(n: int = 32) -> str:
    ref = reference("cpu")
    floor, bs = best_forward_seconds(ref.spec.module, ref.x)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "imgs"
        src.mkdir()
        _folder(src, n)
        for label, ray, threads in (("local (1 process, 2 threads)", None, 2), ("--ray local (2 actors × 1 thread)", "local", 1)):
            torch.set_num_threads(threads)
            config = batch.BatchConfig(inputs=str(src), out=f"{tmp}/{ray or 'here'}-run", metrics=("deletion", "insertion"),
                                       target="top1", batch_size=8, ray=ray, workers=2)
            t0 = time.perf_counter()
            s = batch.run(config, model=None if ray else ref.spec, show_bar=False)
            sec = time.perf_counter() - t0
            out.append((label, n / sec, sec / n / floor, s))
    lines = [f"xai-batch, Grad-CAM + deletion + insertion (32 steps each), EfficientNet-Lite0 224×224, {n} images, CPU "
             f"({torch.get_num_threads()} threads now), forward floor {floor * 1000:.1f} ms/image (batch {bs}).", "",
             "| path | images/s | seconds per image ÷ forward floor |", "|---|---:|---:|"]
    lines += [f"| {label} | {ips:.2f} | {ratio:.0f}× |" for label, ips, ratio, _ in out]
    lines.append("")
    lines.append("Ray's time includes starting the local instance and loading the model once per actor.")
    return "\n".join(lines)


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.act = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.act(self.conv(x))).flatten(1))


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory(n: int = 10_000) -> str:
    torch.manual_seed(0)
    model = xc.from_module(_Tiny(), [f"c{i}" for i in range(5)], input_size=(32, 32), cam_layer="act", fc_layer="fc")
    rss: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "imgs"
        root.mkdir()
        rng = np.random.default_rng(0)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / f"{i:05d}.png")
        config = batch.BatchConfig(inputs=str(root), out=f"{tmp}/run", metrics=(), batch_size=64)
        t0 = time.perf_counter()
        s = batch.run(config, model=model, show_bar=False, on_chunk=lambda k: rss.append((k, _rss_mb())))
        sec = time.perf_counter() - t0
    k10, m10 = rss[len(rss) // 10]
    kend, mend = rss[-1]
    peak = max(m for _, m in rss)
    slope = (mend - m10) / max(kend - k10, 1) * 1000
    return (f"Memory over {s.computed:,} images (tiny CNN 32×32, Grad-CAM, chunks of 64, {sec:.0f} s): RSS {rss[0][1]:.0f} MB "
            f"after the first chunk, {m10:.0f} MB at {k10:,} images, {mend:.0f} MB at the end, peak {peak:.0f} MB; "
            f"growth after warm-up {slope:+.2f} MB per 1,000 images.")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=32)
    p.add_argument("--memory", type=int, default=0, help="measure RSS over this many images instead")
    a = p.parse_args()
    text = memory(a.memory) if a.memory else throughput(a.images)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / ("batch_memory.md" if a.memory else "batch.md")).write_text(text + "\n")
