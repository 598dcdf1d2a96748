"""Tiny models and small utilities shared by the xai_core tests (no downloads, 32×32 inputs)."""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

import xai_core
from xai_core.models.spec import ModelSpec

SIZE = (32, 32)
NUM_CLASSES = 5
LABELS = [f"c{i}" for i in range(NUM_CLASSES)]
# Plain [0, 1] pixels: inputs stay non-negative, which makes signed maps easy to reason about.
UNIT = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}


def seeded(seed: int = 0) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


class TinyCNN(nn.Module):
    """conv -> act -> conv(stride 2) -> act -> GAP -> linear: CAM-compatible (GAP straight into one linear)."""

    def __init__(self, act: type[nn.Module] = nn.ReLU, inplace: bool = False, width: int = 8,
                 num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        kw = {"inplace": True} if inplace else {}
        self.conv1 = nn.Conv2d(3, width, 3, padding=1)
        self.act1 = act(**kw)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
        self.act2 = act(**kw)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flat(self.pool(self.act2(self.conv2(self.act1(self.conv1(x)))))))


def tiny_spec(seed: int = 0, act: type[nn.Module] = nn.ReLU, inplace: bool = False, **kw) -> ModelSpec:
    """A CAM-compatible TinyCNN wrapped as a ModelSpec; CAM layer = the last activation."""
    seeded(seed)
    module = TinyCNN(act, inplace)
    return xai_core.from_module(module, LABELS, input_size=SIZE, cam_layer="act2", fc_layer="fc", **kw)


class SmoothCNN(nn.Module):
    """Everywhere-differentiable: conv -> Softplus -> conv -> tanh -> GAP -> linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.act1 = nn.Softplus()
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.act2 = nn.Tanh()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(16, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flat(self.pool(self.act2(self.conv2(self.act1(self.conv1(x)))))))


class PatchMask(nn.Module):
    """Multiplies feature maps by a fixed spatial 0/1 mask: everything outside the patch is zeroed."""

    def __init__(self, rows: slice, cols: slice, size: tuple[int, int] = SIZE) -> None:
        super().__init__()
        mask = torch.zeros(1, 1, *size)
        mask[..., rows, cols] = 1
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask


# Off-centre on purpose, so a method biased towards the centre (or a corner) cannot pass by luck.
PATCH_ROWS, PATCH_COLS = slice(4, 11), slice(19, 27)


class PlantedPatch(nn.Module):
    """A classifier that can only see one patch: conv3x3 -> ReLU -> mask -> GAP -> linear.

    Weights are positive so the class-0 evidence inside the patch is positive (then even signed
    maps must peak in the patch); the bias of class 0 keeps logits informative.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.relu = nn.ReLU()
        self.mask = PatchMask(PATCH_ROWS, PATCH_COLS)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(6, 3)
        with torch.no_grad():
            self.conv.weight.uniform_(0.05, 0.5)
            self.conv.bias.uniform_(0.0, 0.1)
            self.fc.weight.uniform_(0.1, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flat(self.pool(self.mask(self.relu(self.conv(x))))))


def planted_spec(seed: int = 0, **kw) -> ModelSpec:
    seeded(seed)
    return xai_core.from_module(PlantedPatch(), ["patch", "b", "c"], input_size=SIZE, cam_layer="mask",
                                fc_layer="fc", **UNIT, **kw)


class ReLU6Net(nn.Module):
    """A MobileNet-style net with nn.ReLU6 activations, scaled so some activations saturate above 6."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.act1 = nn.ReLU6()
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.act2 = nn.ReLU6()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(16, NUM_CLASSES)
        with torch.no_grad():
            self.conv1.weight.mul_(12.0)
            self.conv2.weight.mul_(6.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flat(self.pool(self.act2(self.conv2(self.act1(self.conv1(x)))))))


class MLP(nn.Module):
    """No convolution at all: flattened pixels -> hidden ReLU -> logits."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * SIZE[0] * SIZE[1], 16), nn.ReLU(), nn.Linear(16, NUM_CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class HiddenHeadCNN(nn.Module):
    """Conv features -> GAP -> *hidden* MLP head: not a GAP-linear head, so CAM is undefined."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8, 12), nn.ReLU(), nn.Linear(12, NUM_CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.relu(self.conv(x))))


def random_input(spec: ModelSpec, batch: int = 1, seed: int = 0) -> torch.Tensor:
    """A smooth-ish random image batch in [0, 1], normalised for ``spec``."""
    gen = torch.Generator().manual_seed(seed)
    x01 = torch.rand((batch, 3, *spec.input_size), generator=gen)
    x01 = torch.nn.functional.avg_pool2d(x01, 3, stride=1, padding=1, count_include_pad=False)
    return spec.normalise(x01.to(spec.device))


def random_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A random RGB uint8 image with some structure (blocks plus noise)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(4, 4, 3)).repeat(-(-h // 4), 0).repeat(-(-w // 4), 1)[:h, :w]
    noise = rng.integers(-30, 31, size=(h, w, 3))
    return np.clip(blocks + noise, 0, 255).astype(np.uint8)


def spearman(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b = b.detach().cpu().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    return float(spearmanr(a.ravel(), b.ravel()).statistic)


EPS32 = float(torch.finfo(torch.float32).eps)  # 2^-23 ≈ 1.19e-7: the spacing of float32 values in [1, 2)
FAN_IN = 72  # the widest dot product in these test models: a 3×3 convolution over 8 channels


def f32_tol(magnitude: float, terms: int = FAN_IN, k: float = 4.0) -> float:
    """How far two float32 computations of the same quantity may drift apart when only the order of their additions
    differs (batched vs unbatched kernels, AVX2 vs AVX-512 reduction widths, 1 vs 2 threads): ``k · eps32 ·
    magnitude · √terms``. ``magnitude`` is the size of the values added up, which can exceed the result's (a map
    1 − m with m ≈ 1 carries m's round-off, ~6e-8, whatever its own scale); ``terms`` how many are accumulated
    (independent round-off errors of a sum grow like its square root); ``k`` the headroom. Measured on the
    explainer contract (AVX-512, 1 and 2 threads): at most 2.6 · eps32 · magnitude, so the default k = 4 with
    √72 ≈ 8.5 leaves a factor 13."""
    return k * EPS32 * magnitude * terms ** 0.5


def assert_close_f32(a: torch.Tensor, b: torch.Tensor, *, terms: int = FAN_IN, k: float = 4.0,
                     magnitude: float | None = None) -> None:
    """|a − b| within :func:`f32_tol` of the values' magnitude (the larger peak unless the caller knows larger
    operands were involved)."""
    a, b = torch.as_tensor(a).detach().float(), torch.as_tensor(b).detach().float()
    scale = float(torch.maximum(a.abs().max(), b.abs().max()))
    assert scale > 0, "both maps are all zero: the comparison would be vacuous"
    tol = f32_tol(max(scale, magnitude or 0.0), terms, k)
    err = float((a - b).abs().max())
    assert err <= tol, f"max |a-b| = {err:.3g} > {tol:.3g} ({err / (EPS32 * scale):.1f} eps32 × peak {scale:.3g})"


def assert_close_rel(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-5) -> None:
    """allclose with the tolerance relative to the larger map's peak magnitude."""
    a, b = torch.as_tensor(a).detach().float(), torch.as_tensor(b).detach().float()
    scale = float(torch.maximum(a.abs().max(), b.abs().max()))
    assert scale > 0, "both maps are all zero: the comparison would be vacuous"
    err = float((a - b).abs().max())
    assert err <= rel * scale, f"max |a-b| = {err:.3g} > {rel:g} × peak {scale:.3g}"


def assert_clean_error(err: BaseException) -> str:
    """One error (no chained traceback) whose message is a one-line sentence; returns the message."""
    msg = str(err)
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__), "chained exception"
    assert msg.rstrip().endswith("."), msg
    assert not msg[:1].islower(), msg  # a sentence (it may start with a number)
    assert "\n" not in msg and "Traceback" not in msg and 'File "' not in msg, msg
    return msg


def minmax(m: torch.Tensor | np.ndarray) -> np.ndarray:
    m = m.detach().cpu().numpy() if isinstance(m, torch.Tensor) else np.asarray(m, dtype=np.float64)
    m = m - m.min()
    return m / max(float(m.max()), 1e-12)


def png_bytes(a: np.ndarray) -> bytes:
    """An RGB/grey uint8 array as PNG file bytes."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """A zip file (bytes) holding ``files`` (path in the zip → content)."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, d in files.items():
            z.writestr(n, d)
    return buf.getvalue()
