"""Speed of our LIME vs Captum's Lime and vs the forward-pass floor, measured in one run.

Run: `python -m bench.bench_blackbox_lime`. Bundled EfficientNet-Lite0 at 224×224, "Chelsea the cat", class 285,
SLIC superpixels. Captum gets the same superpixels as its ``feature_mask``, the same sample count and the same
(black) reference, used as its documentation shows (``Lime(model).attribute(...)``, default
``perturbations_per_eval=1``) on a plain ``model.eval()`` copy. The floor is ``samples`` × the best per-image
time of a batched inference-mode forward pass (batch sizes 1..32), measured in this run.
"""

from __future__ import annotations

import copy
import warnings

import torch

import xai_core as xc
from bench.common import best_forward_seconds, once, reference
from xai_core.explainers import superpixels as sp
from xai_core.explainers.common import reference_input


def bench_lime(samples: int = 1000, n_segments: int = 50, captum: bool = True) -> str:
    """Time ours and (optionally) Captum's Lime once each; return one Markdown table row with the ratios."""
    ref = reference("cpu")
    spec, x, t = ref.spec, ref.x, ref.target
    lime = xc.get_explainer("lime")
    params = {"samples": samples, "segmentation": "slic", "n_segments": n_segments, "reference": "black"}
    lime(spec, x, t, **{**params, "samples": 50})  # warm-up (and the cached seconds-per-pass probe)
    floor = samples * best_forward_seconds(spec.module, x, (1, 8, 16, 32))[0]
    got: list = []
    ours = once(lambda: got.append(lime.run(spec, x, t, **params)))
    n_seg = int(got[-1].diagnostics["segments"][0].max()) + 1
    ref = "—"
    if captum:
        from captum.attr import Lime

        plain = copy.deepcopy(spec.module).to(memory_format=torch.contiguous_format).requires_grad_(True).eval()
        segs = torch.from_numpy(sp.segment(sp.to_uint8(spec, x)[0], "slic", n_segments)).long()[None, None]
        black = reference_input(spec, x, "black").contiguous()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = once(lambda: Lime(plain).attribute(x.contiguous(), target=285, baselines=black,
                                                         feature_mask=segs, n_samples=samples))
        ref = f"Captum Lime {theirs:.1f} s → **{theirs / ours:.2f}× faster**"
    header = "| method | ours | vs floor | reference → speed-up |\n|---|---|---|---|\n"
    row = (f"| LIME, {samples} samples, SLIC {n_segments} ({n_seg} superpixels) | {ours:.2f} s | "
           f"{ours / floor:.2f}× {samples}×fwd ({floor:.2f} s) | {ref} |")
    print(f"{xc.engine.device_label(spec.device)} · torch {torch.__version__}\n{header}{row}")
    return row


if __name__ == "__main__":
    bench_lime()
