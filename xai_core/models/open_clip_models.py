"""open_clip dual encoders from an uploaded state dict and a model name (``open_clip/<name>``), offline.

The architecture comes from open_clip's bundled config for the name, built with ``pretrained=None`` (nothing is
downloaded); only names whose text tower and tokenizer are open_clip's own are offered (its bundled BPE vocabulary,
no Hugging Face text model or tokenizer, which would be fetched). The model is built on the meta device first and its
cost checked (the image forward at its input size, every parameter of both towers), the file read by the upload
boundary and checked by :func:`.upload.check_state` against the model, then loaded.

``module(x)`` is ``encode_image`` (unnormalised: the prompt target's cosine normalises); ``text_encoder`` tokenises
with the name's tokenizer and runs ``encode_text``. An open_clip ``VisionTransformer`` pooling its class token gets a
token layout (``nn.MultiheadAttention`` blocks) for the attention explainers, LeGrad's per-layer score going through
``ln_post`` and the projection (:class:`Projection`); other towers (ModifiedResNet, timm) get the CAM layer
:func:`.layout.analyse` finds. Radford et al. 2021 (CLIP), Cherti et al. 2023 (OpenCLIP, arXiv:2212.07143).
"""

from __future__ import annotations

import importlib
from typing import Any

import torch
from torch import nn

from ..errors import ModelLoadError
from ..untrusted.checkpoints import read_state_dict
from . import cost
from .layout import TokenGrid, TokenLayout, analyse
from .spec import ModelSpec
from .upload import check_state

PREFIX = "open_clip/"
MISSING = "open_clip models need the optional package open_clip_torch: run `pip install open_clip_torch` on the server."


def _library() -> Any:
    try:
        return importlib.import_module("open_clip")
    except ImportError:
        raise ModelLoadError(MISSING) from None


def names() -> list[str]:
    """The bundled open_clip configs that build and tokenise offline ([] without open_clip)."""
    try:
        open_clip: Any = importlib.import_module("open_clip")
    except ImportError:
        return []
    out = []
    for name in open_clip.list_models():
        text = (open_clip.get_model_config(name) or {}).get("text_cfg") or {}
        if not text.get("hf_model_name") and not text.get("hf_tokenizer_name"):
            out.append(name)
    return out


class Projection(nn.Module):
    """``z @ proj`` with the vision tower's projection (a parameter, not a layer): LeGrad's head."""

    visual: Any

    def __init__(self, visual: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "visual", visual)  # not a child: its parameters stay the tower's

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        proj = self.visual.proj
        return z if proj is None else z @ proj


class OpenClipImage(nn.Module):
    """images -> ``encode_image`` ``[B, D]``; holds the whole model (the text tower moves with it)."""

    model: Any

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model
        self.projection = Projection(model.visual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(x)


class OpenClipText:
    """prompts -> ``encode_text`` ``[T, D]`` on the model's device (inside the Workbench's session)."""

    def __init__(self, owner: OpenClipImage, tokenizer: Any) -> None:
        self.owner, self.tokenizer = owner, tokenizer

    def __call__(self, prompts: list[str]) -> torch.Tensor:
        device = next(self.owner.model.parameters()).device
        return self.owner.model.encode_text(self.tokenizer(prompts).to(device))


def _tokens(module: OpenClipImage, grid: TokenGrid) -> TokenLayout | None:
    visual = module.model.visual
    blocks = getattr(getattr(visual, "transformer", None), "resblocks", None)
    if not isinstance(blocks, nn.ModuleList) or getattr(visual, "attn_pool", None) is not None \
            or getattr(visual, "pool_type", "tok") != "tok" or not grid.prefix \
            or not all(isinstance(getattr(b, "attn", None), nn.MultiheadAttention) for b in blocks):
        return None
    names = tuple(f"model.visual.transformer.resblocks.{i}" for i in range(len(blocks)))
    return TokenLayout(grid.prefix, grid.grid, names, tuple(f"{b}.attn" for b in names), "mha",
                       ("model.visual.ln_post",), "projection")


def load(data: bytes, filename: str, name: str, device: torch.device) -> ModelSpec:
    """A dual encoder ModelSpec: open_clip model ``name`` with the uploaded state dict."""
    oc = _library()
    if name not in names():
        raise ModelLoadError(f"There is no offline open_clip model {name!r}: choose a name from open_clip.list_models() "
                             "whose tokenizer ships with open_clip (e.g. ViT-B-32, ViT-B-16, RN50, convnext_base).")
    with torch.device("meta"):
        meta = OpenClipImage(oc.create_model(name, pretrained=None, device="meta"))
    pre = oc.get_model_preprocess_cfg(meta.model)
    side = pre.get("size", 224)
    size = (side, side) if isinstance(side, int) else (int(side[0]), int(side[1]))
    what = f"The open_clip model {name} is"
    cost.check(cost.measure(meta, size, forward=False), what)
    cost.check(cost.measure(meta, size), what)
    del meta
    state = read_state_dict(data, filename)
    model = oc.create_model(name, pretrained=None)
    check_state(state, model, f"open_clip {name}", 0, None)
    model.load_state_dict(state)
    module = OpenClipImage(model.eval())
    with torch.no_grad():
        dim = int(module(torch.zeros(1, 3, *size)).shape[-1])
    lay = analyse(module, size, dim)
    grid = lay.reshape if isinstance(lay.reshape, TokenGrid) else None
    tokens = _tokens(module, grid) if grid is not None else None
    notes = [n for n in lay.notes if tokens is None or "windowed" not in n]
    return ModelSpec(id=f"upload:open_clip/{name}:{filename}", title=f"{filename} (open_clip {name} dual encoder, "
                     f"{dim}-d)", module=module, labels=["embedding"], input_size=size, mean=tuple(pre["mean"]),
                     std=tuple(pre["std"]), cam_layer=lay.cam_layer, reshape=lay.reshape, tokens=tokens,
                     interpolation="bicubic" if pre.get("interpolation") == "bicubic" else "bilinear", device=device,
                     task="dual_encoder", text_encoder=OpenClipText(module, oc.get_tokenizer(name)),
                     provenance=f"uploaded state dict {filename} on open_clip {name} (pretrained=None, bundled config "
                                f"and tokenizer), loaded with weights_only. {' '.join(notes)}")
