"""Speed of our LIME vs Captum's Lime and vs the forward-pass floor, measured in one run.

Run: `python -m bench.bench_blackbox_lime`. Bundled EfficientNet-Lite0 at 224×224, "Chelsea the cat", class 285,
SLIC superpixels. Captum gets the same superpixels as its ``feature_mask``, the same sample count and the same
(black) reference, used as its documentation shows (``Lime(model).attribute(...)``, default
``perturbations_per_eval=1``) on a plain ``model.eval()`` copy. The floor is ``samples`` × the best per-image
time of a batched inference-mode forward pass (batch sizes 1..32), measured in this run.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable

import torch

import xai_core as xc
from xai_core import images
from xai_core.explainers import superpixels as sp
from xai_core.explainers.common import reference_input


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def forward_floor(module: torch.nn.Module, x: torch.Tensor, sizes: tuple[int, ...] = (1, 8, 16, 32)) -> float:
    """Best seconds per image of a batched inference-mode forward pass over ``sizes`` (best of 3 each)."""
    best = float("inf")
    for n in sizes:
        xb = x.expand(n, *x.shape[1:]).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            module(xb)
            best = min(best, min(timed(lambda xb=xb: module(xb)) for _ in range(3)) / n)
    return best


def bench_lime(samples: int = 1000, n_segments: int = 50, captum: bool = True) -> str:
    """Time ours and (optionally) Captum's Lime once each; return one Markdown table row with the ratios."""
    spec = xc.load_model("efficientnet_lite0", device="cpu")
    x = spec.preprocess(images.load_sample("Chelsea the cat"))
    t = torch.tensor([285])
    lime = xc.get_explainer("lime")
    params = {"samples": samples, "segmentation": "slic", "n_segments": n_segments, "reference": "black",
              "budget_s": 3600.0}
    lime(spec, x, t, **{**params, "samples": 50})  # warm-up (and the cached seconds-per-pass probe)
    floor = samples * forward_floor(spec.module, x)
    extras: dict = {}
    ours = timed(lambda: lime(spec, x, t, extras=extras, **params))
    n_seg = int(extras["segments"][0].max()) + 1
    ref = "—"
    if captum:
        from captum.attr import Lime

        plain = copy.deepcopy(spec.module).to(memory_format=torch.contiguous_format).requires_grad_(True).eval()
        segs = torch.from_numpy(sp.segment(sp.to_uint8(spec, x)[0], "slic", n_segments)).long()[None, None]
        black = reference_input(spec, x, "black").contiguous()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = timed(lambda: Lime(plain).attribute(x.contiguous(), target=285, baselines=black,
                                                         feature_mask=segs, n_samples=samples))
        ref = f"Captum Lime {theirs:.1f} s → **{theirs / ours:.2f}× faster**"
    header = "| method | ours | vs floor | reference → speed-up |\n|---|---|---|---|\n"
    row = (f"| LIME, {samples} samples, SLIC {n_segments} ({n_seg} superpixels) | {ours:.2f} s | "
           f"{ours / floor:.2f}× {samples}×fwd ({floor:.2f} s) | {ref} |")
    print(f"{xc.engine.device_label(spec.device)} · torch {torch.__version__}\n{header}{row}")
    return row


if __name__ == "__main__":
    bench_lime()
