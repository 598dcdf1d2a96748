"""Speed of our Blur IG, Guided IG and XRAI vs PAIR saliency 0.2.1's own loops and vs the gradient-pass floor,
measured in one run.

Run: `python -m bench.explainers_pair` (writes bench/results/explainers_pair.md). Bundled EfficientNet-Lite0 at
224×224, "Chelsea the cat", class 285, the same settings on both sides. PAIR is used as its PyTorch example notebook
shows: a ``call_model_function`` on a plain ``model.eval()`` copy that takes HWC float images in [0, 1], normalises
them and returns input gradients; ``batch_size=20`` where PAIR batches (Blur IG, XRAI's IG), as in that notebook;
Guided IG is sequential in both (one gradient per step). The floor is passes × the best per-image time of a batched
forward + input backward (batch 1, 8, 16), measured in this run: Guided IG can only reach the batch-1 floor.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

import xai_core as xc
from bench.common import RESULTS, median_time, once, reference

BATCH = 20  # PAIR's batch_size where it has one


def best_gradient_seconds(module: torch.nn.Module, x: torch.Tensor, target: int,
                          sizes: tuple[int, ...] = (1, 8, 16)) -> dict[int, float]:
    """Seconds per image of a forward + input backward at each batch size (medians of 3)."""
    out = {}
    for bs in sizes:
        xb = x.expand(bs, *x.shape[1:]).contiguous(memory_format=torch.channels_last)

        def run(xb: torch.Tensor = xb) -> None:
            xi = xb.detach().requires_grad_(True)
            torch.autograd.grad(module(xi)[:, target].sum(), xi)

        out[bs] = median_time(run, 3, x.device) / bs
    return out


def pair_call(plain: torch.nn.Module, spec: xc.ModelSpec, target: int) -> Callable[..., dict]:
    """A PAIR call_model_function, written as PAIR's PyTorch example writes one."""
    from saliency.core.base import INPUT_OUTPUT_GRADIENTS

    def call(images: np.ndarray, call_model_args: object = None, expected_keys: object = None) -> dict:
        p = torch.tensor(np.asarray(images).transpose(0, 3, 1, 2), dtype=torch.float32, requires_grad=True)
        out = plain(spec.normalise(p))[:, target]
        (g,) = torch.autograd.grad(out, p, grad_outputs=torch.ones_like(out))
        return {INPUT_OUTPUT_GRADIENTS: g.permute(0, 2, 3, 1).detach().numpy()}

    return call


def main() -> str:
    from saliency.core import XRAI, BlurIG, GuidedIG, XRAIParameters

    quantile = np.quantile  # PAIR 0.2.1's Guided IG passes numpy.quantile 'interpolation=', gone in numpy 2.4
    np.quantile = lambda a, q, interpolation="linear", **kw: quantile(a, q, method=interpolation, **kw)  # type: ignore
    torch.set_num_threads(1)  # one thread: on the shared 2-core machine two stall whenever another process runs
    ref = reference("cpu")
    spec, x, t = ref.spec, ref.x, ref.target
    plain, image = ref.plain(), spec.denormalise(x)[0].permute(1, 2, 0).double().cpu().numpy()
    call = pair_call(plain, spec, int(t))
    per_image = best_gradient_seconds(spec.module, x, int(t))
    best, batch1 = min(per_image.values()), per_image[1]
    blank = np.zeros_like(image)
    cases: list[tuple[str, float, float, Callable[[], object], Callable[[], object]]] = [
        ("Blur IG, max σ 50, 100 steps", 100, best,
         lambda: xc.get_explainer("blur_ig")(spec, x, t, steps=100),
         lambda: BlurIG().GetMask(image, call, max_sigma=50, steps=100, batch_size=BATCH)),
        ("Guided IG, 200 steps", 200, batch1,
         lambda: xc.get_explainer("guided_ig")(spec, x, t, steps=200),
         lambda: GuidedIG().GetMask(image, call, x_steps=200)),
    ]
    for algorithm in ("full", "fast"):
        params = XRAIParameters(steps=50, algorithm=algorithm)
        cases.append((f"XRAI {algorithm}, 2 × 50 IG steps (linspace)", 100, best,
                      lambda a=algorithm: xc.get_explainer("xrai")(spec, x, t, steps=50, rule="linspace", algorithm=a),
                      lambda p=params: XRAI().GetMask(image, call, baselines=[blank, blank + 1], batch_size=BATCH,
                                                      extra_parameters=p)))
    xc.get_explainer("blur_ig")(spec, x, t, steps=4)  # warm-up
    rows = []
    for name, passes, floor_each, ours_fn, pair_fn in cases:
        ours, theirs = once(ours_fn), once(pair_fn)
        floor = passes * floor_each
        rows.append(f"| {name} | {ours:.2f} s | {ours / floor:.2f}× {passes:g}×(fwd+bwd) ({floor:.2f} s) | "
                    f"PAIR {theirs:.2f} s → **{theirs / ours:.2f}× faster** |")
    head = (f"Forward + input backward per image: {batch1 * 1e3:.1f} ms at batch 1, best {best * 1e3:.1f} ms "
            f"(batch {min(per_image, key=per_image.__getitem__)}) · {xc.engine.device_label(spec.device)} · "
            f"torch {torch.__version__} · {time.strftime('%Y-%m-%d')}\n\n"
            "| method | ours | vs floor | PAIR saliency 0.2.1 → speed-up |\n|---|---|---|---|\n")
    notes = ("\nPAIR: batch_size=20 for Blur IG and XRAI's IG, black and white XRAI baselines, numpy 2.4 'quantile' "
             "shim for its Guided IG. Guided IG's floor is the batch-1 pass: its path is sequential. XRAI's floor "
             "counts the IG passes only; the rest is 6 Felzenszwalb runs at 224×224, dilation and the merge.\n")
    text = head + "\n".join(rows) + "\n" + notes
    print(text)
    (RESULTS / "explainers_pair.md").write_text(text)
    return text


if __name__ == "__main__":
    main()
