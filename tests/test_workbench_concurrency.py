"""Many sessions, one cached model: predicting, explaining (LRP, Grad-CAM, Guided Backprop), evaluating and randomising
at the same time give what each call gives alone, and leave no hook and no changed parameter behind.

Before the Workbench, LRP failed 8 times out of 8 beside a predicting thread ("cannot canonize ... BatchNorm"): its
forward-order hooks recorded the other thread's pass, and its BatchNorm folding changed the weights the other
thread was using.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import torch
from helpers import random_image, seeded
from torch import nn

import xai_core
from xai_core import ExplainRequest, RunOptions, Workbench, metrics, sanity
from xai_core.hooks import has_hooks

ROUNDS = 3
DEADLINE_S = 60.0


class BNNet(nn.Module):
    """conv-BN-ReLU ×3 → GAP → linear: BatchNorm for LRP to fold, activations for Guided Backprop, a CAM layer."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for cin, cout in ((3, 16), (16, 32), (32, 32)):
            layers += [nn.Conv2d(cin, cout, 3, padding=1, stride=2 if cout == 32 else 1), nn.BatchNorm2d(cout), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(32, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flat(self.pool(self.features(x))))


def _model() -> xai_core.ModelSpec:
    seeded(3)
    net = BNNet()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding them changes the convolutions' weights
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
    return xai_core.from_module(net, [f"c{i}" for i in range(6)], input_size=(64, 64), cam_layer="features.8",
                                fc_layer="fc", device="cpu")


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return float(np.abs(a - b).max()) <= 1e-5 * max(float(np.abs(b).max()), 1e-12)


def test_threads_on_one_model_equal_the_calls_alone():
    spec = _model()
    before = {k: v.detach().clone() for k, v in spec.module.state_dict().items()}
    image = random_image(80, 96, seed=7)
    box = metrics.box_region(image.shape[:2], (20, 10, 70, 60))

    def session(options: RunOptions) -> Workbench:
        return Workbench(spec, options)  # one Workbench per session, all on the one cached model

    calls: dict[str, Callable[[Workbench], object]] = {
        "predict": lambda wb: wb.probabilities(image),
        "lrp": lambda wb: wb.explain(image, ExplainRequest.make("lrp", 2)).map,
        "gradcam": lambda wb: wb.explain(image, ExplainRequest.make("gradcam", 2)).map,
        "guided_backprop": lambda wb: wb.explain(image, ExplainRequest.make("guided_backprop", 2)).map,
        "evaluate": lambda wb: np.concatenate([c.probs for c in metrics.evaluate(
            wb, image, {"m": np.linspace(0, 1, image.size // 3, dtype=np.float32).reshape(image.shape[:2])}, 2,
            metrics=["deletion"], region=box).curves.values()]),
        "randomise": lambda wb: np.stack(sanity.model_randomisation(wb, image, [("gradient", {})], n_stages=2, seeds=1,
                                                                    target=2, edges=False).maps["Gradient (saliency)"]),
    }
    alone = {name: np.asarray(fn(session(RunOptions()))) for name, fn in calls.items()}

    failures: list[str] = []
    done = {name: 0 for name in calls}
    start = time.perf_counter()

    def worker(name: str, options: RunOptions) -> None:
        wb = session(options)
        for _ in range(ROUNDS):
            if time.perf_counter() - start > DEADLINE_S:
                return
            try:
                got = np.asarray(calls[name](wb))
            except Exception as e:  # noqa: BLE001 - every failure is reported, none may happen
                failures.append(f"{name}: {type(e).__name__}: {e}")
                return
            if not _close(got, alone[name]):
                failures.append(f"{name}: differs from the call alone by {float(np.abs(got - alone[name]).max()):.3g}")
            done[name] += 1

    # Sessions with different options: only the numbers-neutral ones, so results must equal the call alone.
    opts = [RunOptions(), RunOptions(freeze=False), RunOptions(time_budget=30.0)]
    threads = [threading.Thread(target=worker, args=(name, opts[i % len(opts)]), name=name)
               for i, name in enumerate([*calls, "predict", "lrp"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=DEADLINE_S * 2)
    assert not any(t.is_alive() for t in threads), "a session hung"
    assert not failures, failures
    assert all(n >= 1 for n in done.values()), done
    assert not has_hooks(spec.module)
    after = spec.module.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items()), "a parameter or buffer changed"
    assert all(not p.requires_grad and p.grad is None for p in spec.module.parameters())
