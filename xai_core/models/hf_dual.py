"""Hugging Face dual encoders (CLIP, SigLIP) and image embedders (DINOv2) from an uploaded folder.

``module(x)`` is the image embedding ``[B, D]``: CLIP's ``get_image_features`` (the class token after the final norm,
projected; Radford et al. 2021, arXiv:2103.00020), SigLIP's (its attention-pooling head's output; Zhai et al. 2023,
arXiv:2303.15343), DINOv2's pooler output (the class token after the final norm; Oquab et al. 2023, arXiv:2304.07193).
A dual encoder's ``text_encoder`` reads prompts with the folder's own tokenizer (:mod:`xai_core.untrusted.tokenizers`)
and returns ``get_text_features``: CLIP's prompts padded to the longest with an attention mask (its causal text tower
pools at the end-of-text token), SigLIP's padded to the tower's full length (it pools the last position, as trained).
Built by :func:`.hf.checked` (config allow-lists, cost on the meta device, text tower included, then the weights).

The vision tower's layout is written down here (transformers names its modules per model type): the CAM layer is the
last block's first norm, tokens -> grid by ``reshape``, and a :class:`.layout.TokenLayout` for the attention
explainers (CLIP and DINOv2 have a class token, SigLIP none; LeGrad's per-layer score goes through the final norm and
the projection, SigLIP's through its pooling head applied to the one mean token).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..errors import ModelLoadError
from ..untrusted import tokenizers
from ..untrusted.modelargs import check_side
from ..untrusted.modelfiles import ModelFolder
from . import cost, hf
from .layout import TokenGrid, TokenLayout
from .spec import ModelSpec

DUAL = {"clip": "CLIPModel", "siglip": "SiglipModel"}
# The processors' defaults, used when the folder has no preprocessor_config.json.
NORMALISATION = {"clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
                 "siglip": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))}


def is_embedder(folder: ModelFolder) -> bool:
    """A DINOv2 folder saved from the bare model (no classification head): an embedder."""
    return folder.config.get("model_type") == "dinov2" and not any(k.startswith("classifier.") for k in folder.state)


class OneToken(nn.Module):
    """SigLIP's attention-pooling head applied to one token ``[B, C]`` (LeGrad's per-layer score on mean tokens)."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(z[:, None, :])


class ImageEmbeddings(nn.Module):
    """images -> image embeddings ``[B, D]`` of a transformers model (the whole model is held: a dual encoder's text
    tower moves with it); ``embedding`` (identity) names the output for the layout."""

    model: Any

    def __init__(self, model: Any, dual: bool) -> None:
        super().__init__()
        self.model, self.dual = model, dual
        self.embedding = nn.Identity()
        head = getattr(getattr(model, "vision_model", None), "head", None)
        if dual and isinstance(head, nn.Module) and model.config.model_type == "siglip":
            self.one_token = OneToken(head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model.get_image_features(pixel_values=x) if self.dual else self.model(pixel_values=x)
        return self.embedding(out if isinstance(out, torch.Tensor) else out.pooler_output)


class TextTower:
    """prompts -> text embeddings ``[T, D]`` (``get_text_features``), on the model's device; called inside the
    Workbench's session, so the model's lock is held."""

    def __init__(self, owner: ImageEmbeddings, tok: tokenizers.PromptTokenizer, pad: int, pad_to: int | None) -> None:
        self.owner, self.tok, self.pad, self.pad_to = owner, tok, pad, pad_to

    def __call__(self, prompts: list[str]) -> torch.Tensor:
        rows = self.tok(prompts)
        ids = torch.full((len(rows), self.pad_to or max(map(len, rows))), self.pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, row in enumerate(rows):
            ids[i, :len(row)], mask[i, :len(row)] = torch.tensor(row, dtype=torch.long), 1
        model = self.owner.model
        device = next(model.parameters()).device
        kw = {} if self.pad_to else {"attention_mask": mask.to(device)}
        out = model.get_text_features(input_ids=ids.to(device), **kw)
        return out if isinstance(out, torch.Tensor) else out.pooler_output


def _size(folder: ModelFolder, config: Any, kind: str) -> tuple[int, int]:
    """CLIP/SigLIP run at the vision tower's image_size (absolute position embeddings); DINOv2 (interpolated ones) at
    the preprocessor's crop, else as a classifier would."""
    if kind == "dinov2":
        crop = (folder.preprocessor or {}).get("crop_size")
        if isinstance(crop, dict) and crop.get("height") and crop.get("width"):
            return check_side(crop["height"], "The crop height"), check_side(crop["width"], "The crop width")
        return hf.input_size(folder, config)
    side = config.vision_config.image_size
    h, w = (side, side) if isinstance(side, int) else tuple(side)
    return check_side(h, "The vision_config's image_size"), check_side(w, "The vision_config's image_size")


def _text_cost(length: Callable[[Any], int]) -> Callable[[nn.Module, str], None]:
    """The cost check of the text tower's forward on the longest prompt it reads (``length(config)`` tokens)."""
    def more(meta: Any, what: str) -> None:
        n = length(meta.model.config)
        ids = torch.zeros(1, n, dtype=torch.long, device="meta")
        measured = cost.measure(meta, (1, 1), call=lambda m: meta.model.get_text_features(input_ids=ids))
        if measured.activation_bytes is None:
            raise ModelLoadError(f"The text tower this config.json describes does not run on {n} tokens; {hf.HINT}.")
        cost.check(measured, what.replace("describes", "describes, with its text tower,"))
    return more


def layout(module: ImageEmbeddings, kind: str, grid: TokenGrid) -> tuple[TokenLayout, str]:
    """(the attention layout, the CAM layer) of the vision tower, by transformers' module names for ``kind``."""
    if kind == "dinov2":
        root, layers, att, norms, head = "model", "model.encoder.layer", "attention", ("model.layernorm",), "embedding"
    else:
        root = "model.vision_model"
        layers, att, norms = f"{root}.encoder.layers", "self_attn", (f"{root}.post_layernorm",)
        head = "model.visual_projection" if kind == "clip" else "one_token"
    n = len(module.get_submodule(layers))  # type: ignore[arg-type]  # a ModuleList
    blocks = tuple(f"{layers}.{i}" for i in range(n))
    first_norm = "norm1" if kind == "dinov2" else "layer_norm1"
    tokens = TokenLayout(grid.prefix, grid.grid, blocks, tuple(f"{b}.{att}" for b in blocks), "hf", norms, head)
    for name in (*tokens.attentions, *norms, head, f"{blocks[-1]}.{first_norm}"):
        module.get_submodule(name)  # every name resolves (an AttributeError here is a transformers rename)
    return tokens, f"{blocks[-1]}.{first_norm}"


def load(folder: ModelFolder, *, id: str, title: str, provenance: str, device: torch.device) -> ModelSpec:
    """A dual encoder or embedder ModelSpec from a checked folder (``provenance`` prefixes the notes)."""
    kind = folder.config["model_type"]
    dual = kind in DUAL
    if dual and (folder.config.get("vision_config") or {}).get("vision_use_head") is False:
        raise ModelLoadError("This SigLIP has no pooling head (vision_config.vision_use_head is false), so it gives no "
                             "image embedding; save the full SiglipModel.")
    more = _text_cost(lambda c: int(c.text_config.max_position_embeddings)) if dual else None
    model, size = hf.checked(folder, DUAL.get(kind, "Dinov2Model"), lambda c: _size(folder, c, kind),
                             lambda m: ImageEmbeddings(m, dual), more)
    module = ImageEmbeddings(model, dual)
    text = _text_tower(folder, module, kind) if dual else None
    kw, note = hf.preprocessing(folder, size)
    if folder.preprocessor is None and kind in NORMALISATION:
        kw["mean"], kw["std"] = NORMALISATION[kind]
        note = note.replace("ImageNet mean/std", f"{kind}'s processor's mean/std")
    vc: Any = model.config.vision_config if dual else model.config
    patch = vc.patch_size if isinstance(vc.patch_size, int) else vc.patch_size[0]
    grid = TokenGrid(1 if kind != "siglip" else 0, (size[0] // patch, size[1] // patch))
    tokens, cam = layout(module, kind, grid)
    with torch.no_grad():
        dim = int(module(torch.zeros(1, 3, *size)).shape[-1])
    what = "dual encoder (image and text embeddings)" if dual else "embedder (image embeddings)"
    return ModelSpec(id=id, title=f"{title} ({kind} {what.split(' (')[0]}, {dim}-d)", module=module,
                     labels=["embedding"], cam_layer=cam, reshape=grid, tokens=tokens, device=device,
                     task="dual_encoder" if dual else "embedder", text_encoder=text,
                     provenance=f"{provenance}; {note}. {kind} {what}: {grid.grid[0]}×{grid.grid[1]} patch grid, CAM "
                                f"layer {cam}, {len(tokens.blocks)} attention blocks.", **kw)


def _text_tower(folder: ModelFolder, module: ImageEmbeddings, kind: str) -> TextTower:
    tc: Any = module.model.config.text_config
    length = int(tc.max_position_embeddings)
    tok = tokenizers.build(folder.tokenizer, max_length=length, vocab_size=int(tc.vocab_size), bpe=kind == "clip")
    pad = tok.pad if tok.pad is not None else tc.pad_token_id if tc.pad_token_id is not None else 0
    if not 0 <= pad < tc.vocab_size:
        raise ModelLoadError(f"The padding token id {pad} is outside the text tower's vocabulary of {tc.vocab_size:,}; "
                             f"{tokenizers.HINT}.")
    eos = tc.eos_token_id
    if kind == "clip" and isinstance(eos, int) and eos != 2 and eos not in tok([tokenizers.PROBE])[0]:
        # CLIP pools at the first end-of-text token: without it the embedding would be read at the first token.
        raise ModelLoadError(f"The tokenizer ({tok.source}) does not end prompts with the text_config's eos_token_id "
                             f"({eos}), where CLIP reads a prompt's embedding; {tokenizers.HINT}.")
    return TextTower(module, tok, int(pad), length if kind == "siglip" else None)
