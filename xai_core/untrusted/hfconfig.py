"""An uploaded Hugging Face ``config.json`` is a recipe for an allocation and its keys become constructor arguments, so
it is read against allow-lists before transformers sees it: the model types this tool supports, the keys each may
set, bookkeeping keys, and library defaults that change nothing. Cheap bounds come first (classes, input side,
blocks, list lengths, finite numbers), so that even building the model on the ``meta`` device (what
:mod:`xai_core.models.hf` does next, to count parameters, activations and FLOPs) stays fast. Nothing in a config is a
path, URL or hub id that is ever opened: such keys (``checkpoint_path``, ``pretrained_cfg``, ``backbone``, ...) are not
on any list, and ``_name_or_path`` is dropped unread. Dual encoders (CLIP, SigLIP) nest a text and a vision tower
config: each is checked against its own allow-list (plus the generation settings older versions wrote, which no
encoder reads), and their blocks count together."""

from __future__ import annotations

import math
from typing import Any

from ..errors import ModelLoadError
from .limits import LIMITS, Limits
from .messages import shown
from .modelargs import IMAGENET_MEAN, IMAGENET_STD, check_normalisation, check_side

_VIT = ("hidden_size num_hidden_layers num_attention_heads intermediate_size hidden_act hidden_dropout_prob "
        "attention_probs_dropout_prob initializer_range layer_norm_eps image_size patch_size num_channels qkv_bias")
_BACKBONE = " out_features out_indices stage_names"
# The image classifiers a config may describe, and the keys each may set (what its save_pretrained writes).
KEYS: dict[str, frozenset[str]] = {kind: frozenset(keys.split()) for kind, keys in {
    "vit": _VIT + " encoder_stride pooler_output_size pooler_act",
    "deit": _VIT + " encoder_stride pooler_output_size pooler_act",
    "beit": _VIT + " vocab_size use_mask_token use_absolute_position_embeddings use_relative_position_bias "
                   "use_shared_relative_position_bias layer_scale_init_value drop_path_rate use_mean_pooling pool_scales "
                   "use_auxiliary_head auxiliary_loss_weight auxiliary_channels auxiliary_num_convs "
                   "auxiliary_concat_input semantic_loss_ignore_index add_fpn reshape_hidden_states" + _BACKBONE,
    "dinov2": _VIT + " mlp_ratio layerscale_value drop_path_rate use_swiglu_ffn apply_layernorm reshape_hidden_states "
                     "use_mask_token" + _BACKBONE,
    "swin": "image_size patch_size num_channels embed_dim depths num_heads window_size mlp_ratio qkv_bias "
            "hidden_dropout_prob attention_probs_dropout_prob drop_path_rate hidden_act use_absolute_embeddings "
            "initializer_range layer_norm_eps encoder_stride hidden_size num_layers" + _BACKBONE,
    "convnext": "num_channels patch_size num_stages hidden_sizes depths hidden_act initializer_range layer_norm_eps "
                "layer_scale_init_value drop_path_rate image_size" + _BACKBONE,
    "convnextv2": "num_channels patch_size num_stages hidden_sizes depths hidden_act initializer_range layer_norm_eps "
                  "drop_path_rate image_size" + _BACKBONE,
    "resnet": "num_channels embedding_size hidden_sizes depths layer_type hidden_act downsample_in_first_stage "
              "downsample_in_bottleneck" + _BACKBONE,
    "regnet": "num_channels embedding_size hidden_sizes depths groups_width layer_type hidden_act "
              "downsample_in_first_stage",
    "efficientnet": "num_channels image_size width_coefficient depth_coefficient depth_divisor kernel_sizes in_channels "
                    "out_channels depthwise_padding strides num_block_repeats expand_ratios squeeze_expansion_ratio "
                    "hidden_act hidden_dim pooling_type initializer_range batch_norm_eps batch_norm_momentum "
                    "dropout_rate drop_connect_rate num_hidden_layers",
    "mobilenet_v2": "num_channels image_size depth_multiplier depth_divisible_by min_depth expand_ratio output_stride "
                    "first_layer_is_expansion finegrained_output hidden_act tf_padding classifier_dropout_prob "
                    "initializer_range layer_norm_eps semantic_loss_ignore_index",
}.items()}
# Dual encoders (CLIP, SigLIP): their own keys, and a text and a vision tower, each a nested config with its own keys
# (older versions also wrote ``*_config_dict`` copies, which override the towers).
TOWERS = {"clip": ("clip_text_model", "clip_vision_model"), "siglip": ("siglip_text_model", "siglip_vision_model")}
DUAL_KEYS = {"clip": frozenset("projection_dim logit_scale_init_value initializer_factor".split()),
             "siglip": frozenset({"initializer_factor"})}
_TOWER = ("hidden_size intermediate_size num_hidden_layers num_attention_heads hidden_act layer_norm_eps attention_dropout "
          "dropout initializer_range initializer_factor ")
_TEXT, _IMAGE = _TOWER + "vocab_size max_position_embeddings pad_token_id bos_token_id eos_token_id", \
    _TOWER + "image_size patch_size num_channels"
TOWER_KEYS = {k: frozenset(v.split()) for k, v in {
    "clip_text_model": _TEXT + " projection_dim", "clip_vision_model": _IMAGE + " projection_dim",
    "siglip_text_model": _TEXT + " projection_size", "siglip_vision_model": _IMAGE + " vision_use_head"}.items()}
# Generation settings older save_pretrained versions wrote into every tower: never read by an encoder's forward.
GENERATION = frozenset("max_length min_length do_sample early_stopping num_beams num_beam_groups diversity_penalty "
                       "temperature top_k top_p typical_p repetition_penalty length_penalty no_repeat_ngram_size "
                       "encoder_no_repeat_ngram_size bad_words_ids num_return_sequences output_scores "
                       "return_dict_in_generate forced_bos_token_id forced_eos_token_id remove_invalid_values "
                       "exponential_decay_length_penalty suppress_tokens begin_suppress_tokens decoder_start_token_id "
                       "sep_token_id prefix tokenizer_class cross_attention_hidden_size task_specific_params "
                       "tie_encoder_decoder".split())
BOOKKEEPING = frozenset("architectures id2label label2id num_labels dtype torch_dtype transformers_version problem_type "
                        "model_type _name_or_path".split())
# Base-config keys older save_pretrained versions wrote: accepted only with the value that changes nothing.
NO_OPS: dict[str, Any] = {"return_dict": True, "output_hidden_states": False, "output_attentions": False,
                          "torchscript": False, "chunk_size_feed_forward": 0, "is_encoder_decoder": False,
                          "is_decoder": False, "add_cross_attention": False, "tie_word_embeddings": True,
                          "pruned_heads": {}, "finetuning_task": None, "use_bfloat16": False, "tf_legacy_loss": False}
BLOCK_MODULES = 6  # every block (layer) of these architectures has at least this many modules (ConvNeXt: 7)
_HINT = "save the model again with save_pretrained from a released transformers version and zip that folder"


def _where(key: str) -> str:
    return f"The config.json sets {shown(key, 40)}"


def _value(key: str, v: object, limits: Limits, depth: int = 0) -> None:
    """An architecture value: a finite number, a short string, null, or a short list of those."""
    if isinstance(v, list) and depth == 0:
        if len(v) * BLOCK_MODULES > limits.model_layers:
            raise ModelLoadError(f"{_where(key)} to a list of {len(v):,} entries; each is a stage or block of at least "
                                 f"{BLOCK_MODULES} modules, and this server builds models of up to "
                                 f"{limits.model_layers:,} modules (limit model_layers).")
        for item in v:
            _value(key, item, limits, 1)
    elif isinstance(v, float) and not math.isfinite(v):
        raise ModelLoadError(f"{_where(key)} to {v}; numbers in a model config must be finite. {_HINT.capitalize()}.")
    elif isinstance(v, int) and not isinstance(v, bool) and abs(v) > limits.model_parameters:
        raise ModelLoadError(f"{_where(key)} to {v:.3g}; no size in a model can exceed the {limits.model_parameters:,} "
                             "parameters this server builds (limit model_parameters).")
    elif isinstance(v, str) and len(v) > 64 or not isinstance(v, (str, int, float, type(None))):
        raise ModelLoadError(f"{_where(key)} to an unexpected value ({type(v).__name__}); {_HINT}.")


def _classes(config: dict[str, Any], limits: Limits) -> None:
    for key in ("id2label", "label2id"):
        table = config.get(key)
        if table is None:
            continue
        if not isinstance(table, dict):
            raise ModelLoadError(f"{_where(key)} to a {type(table).__name__}, not a JSON object; {_HINT}.")
        if len(table) > limits.model_classes:
            raise ModelLoadError(f"The config.json's {key} names {len(table):,} classes; this server builds models of up to "
                                 f"{limits.model_classes:,} classes (limit model_classes).")
        ids = table.keys() if key == "id2label" else table.values()
        names = table.values() if key == "id2label" else table.keys()
        if not all(isinstance(i, int) and not isinstance(i, bool) or isinstance(i, str) and i.isdecimal() for i in ids):
            raise ModelLoadError(f"The config.json's {key} has a class index that is not a whole number; {_HINT}.")
        if not all(isinstance(n, str) and len(n) <= limits.label_chars for n in names):
            raise ModelLoadError(f"The config.json's {key} has a class name that is not text of up to {limits.label_chars} "
                                 f"characters; {_HINT}.")
    n = config.get("num_labels")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= limits.model_classes):
        raise ModelLoadError(f"The config.json sets num_labels to {shown(repr(n), 20)}; this server builds models of 1 to "
                             f"{limits.model_classes:,} classes (limit model_classes).")


def _blocks(kind: str, config: dict[str, Any]) -> tuple[str, int]:
    """(the field, how many blocks it asks for) for the config's depth field."""
    if kind == "efficientnet":
        coef, repeats = config.get("depth_coefficient", 3.1), config.get("num_block_repeats", [1, 2, 2, 3, 3, 4, 1])
        if isinstance(coef, (int, float)) and isinstance(repeats, list) and all(isinstance(r, int) for r in repeats):
            return "depth_coefficient", sum(math.ceil(coef * r) for r in repeats)
        return "depth_coefficient", 0
    depth = config.get("depths", config.get("num_hidden_layers", 0))
    field = "depths" if "depths" in config else "num_hidden_layers"
    return field, sum(depth) if isinstance(depth, list) else depth if isinstance(depth, int) else 0


def _keys(config: dict[str, Any], kind: str, keys: frozenset[str], limits: Limits, where: str = "") -> None:
    """Every key allowed for ``kind`` (towers also accept generation settings) with a bounded value; sizes checked."""
    extra = GENERATION if where else frozenset()
    for key, v in config.items():
        if key == "quantization_config":
            raise ModelLoadError("The config.json describes a quantised model (quantization_config), which this server "
                                 "does not load; save the float32 model with save_pretrained and zip that folder.")
        ok = key in BOOKKEEPING or key in keys or key in extra or (key in NO_OPS and v == NO_OPS[key])
        if not ok:
            raise ModelLoadError(f"The config.json key {shown(repr(where + key), 40)} is not accepted for model_type "
                                 f"{kind!r}; {_HINT}.")
        if key in keys or key in extra:
            _value(where + key, v, limits)
    for key in ("architectures", "dtype", "torch_dtype", "transformers_version", "problem_type", "_name_or_path"):
        v = config.get(key)
        if v is not None and not (isinstance(v, str) and len(v) <= 256 or key == "architectures" and isinstance(v, list)
                                  and len(v) <= 8 and all(isinstance(a, str) and len(a) <= 256 for a in v)):
            raise ModelLoadError(f"{_where(where + key)} to an unexpected value ({type(v).__name__}); {_HINT}.")
    _classes(config, limits)
    size = config.get("image_size")
    for i, side in enumerate(size if isinstance(size, list) else [] if size is None else [size]):
        check_side(side, f"The config.json's {where}image_size" + (f"[{i}]" if isinstance(size, list) else ""),
                   limits=limits)
    if config.get("num_channels", 3) != 3:
        raise ModelLoadError(f"The config.json sets {where}num_channels to {shown(repr(config['num_channels']), 20)}; "
                             "this server feeds models RGB images (3 channels).")
    patch = config.get("patch_size")
    if patch is not None and (not isinstance(patch, int) or isinstance(patch, bool) or patch < 1):
        raise ModelLoadError(f"The config.json sets {where}patch_size to {shown(repr(patch), 20)}; a patch is at least "
                             "1 pixel.")


def towers(config: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """A dual encoder's nested tower configs as (key, expected model type, config), present ones only."""
    text, vision = TOWERS[config["model_type"]]
    pairs = [("text_config", text), ("text_config_dict", text), ("vision_config", vision), ("vision_config_dict", vision)]
    return [(key, tower, config[key]) for key, tower in pairs if config.get(key) is not None]


def _towers(config: dict[str, Any], kind: str, limits: Limits) -> int:
    """Check a dual encoder's towers; returns their blocks."""
    blocks = 0
    for key, tower, sub in towers(config):
        if not isinstance(sub, dict):
            raise ModelLoadError(f"{_where(key)} to a {type(sub).__name__}, not a JSON object; {_HINT}.")
        if sub.get("model_type", tower) != tower:
            raise ModelLoadError(f"The config.json's {key} names model_type {shown(repr(sub['model_type']), 40)}; a "
                                 f"{kind} {key.split('_')[0]} tower is {tower!r}. {_HINT.capitalize()}.")
        _keys(sub, tower, TOWER_KEYS[tower], limits, f"{key}.")
        depth = sub.get("num_hidden_layers", 12)
        blocks += depth if isinstance(depth, int) else 0
    return blocks


def check_config(config: dict[str, Any], *, limits: Limits = LIMITS) -> str:
    """Refuse a config.json that names an unsupported model type or key, or whose fields are out of bounds; returns its
    model type."""
    kind = config.get("model_type")
    if kind not in KEYS and kind not in TOWERS:
        hint = (" Upload its timm weights as a state dict with the architecture timm/<name> instead."
                if kind == "timm_wrapper" else " Custom architectures are never run here.")
        raise ModelLoadError(f"The config.json names model_type {shown(repr(kind), 40)}; this server builds the image "
                             f"classifiers {', '.join(sorted(KEYS))} and the dual encoders "
                             f"{', '.join(sorted(TOWERS))}.{hint}")
    dual = kind in TOWERS
    subs = {"text_config", "text_config_dict", "vision_config", "vision_config_dict"} if dual else set()
    _keys({k: v for k, v in config.items() if k not in subs}, kind, DUAL_KEYS[kind] if dual else KEYS[kind], limits)
    field, blocks = ("num_hidden_layers", _towers(config, kind, limits)) if dual else _blocks(kind, config)
    if blocks * BLOCK_MODULES > limits.model_layers:
        raise ModelLoadError(f"The config.json sets {field} to ask for {blocks:,} blocks of at least {BLOCK_MODULES} modules "
                             f"each; this server builds models of up to {limits.model_layers:,} modules "
                             "(limit model_layers).")
    return kind


def check_preprocessor(pre: dict[str, Any], *, limits: Limits = LIMITS) -> None:
    """Every size in a ``preprocessor_config.json`` (``size``, ``crop_size``: a number or height/width/shortest_edge/
    longest_edge) is a side this server runs models at, and its image_mean/image_std are a usable normalisation."""
    for key in ("size", "crop_size"):
        v = pre.get(key)
        parts = v.items() if isinstance(v, dict) else [] if v is None else [("", v)]
        for part, side in parts:
            if part and part not in ("height", "width", "shortest_edge", "longest_edge"):
                raise ModelLoadError(f"The preprocessor_config.json's {key} has the key {shown(repr(part), 40)}; sizes are "
                                     "height and width or shortest_edge.")
            check_side(side, f"The preprocessor_config.json's {key}" + (f".{part}" if part else ""), limits=limits)
    if "image_mean" in pre or "image_std" in pre:
        check_normalisation(pre.get("image_mean", IMAGENET_MEAN), pre.get("image_std", IMAGENET_STD),
                            "The preprocessor_config.json's image", limits=limits)
