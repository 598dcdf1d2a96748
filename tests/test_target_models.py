"""Models that need targets (issue 24), built random-init in the test and loaded through ``load_own_model`` from bytes:
Hugging Face CLIP, SigLIP (tokenizers built here: a CLIP BPE, a Unigram tokenizer.json, a SentencePiece model) and
DINOv2 folders, an open_clip state dict, torchvision segmenter and detector state dicts. Each computes what its
original computes (image and text embeddings, class scores, detections), Gradient and Grad-CAM run on its target
through the Workbench with the target's score equal to the score computed from the original, and hostile folders and
files are one clear ModelLoadError."""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile

import numpy as np
import pytest
import torch
import torchvision
from conftest import DEVICE
from helpers import EPS32, assert_clean_error
from safetensors.torch import save as save_safetensors
from streamlit.testing.v1 import AppTest
from test_pages import APP
from torch.nn import functional as F

import xai_core as xc
from xai_core import ModelLoadError
from xai_core import targets as T
from xai_core.models import tv_dense
from xai_core.untrusted import LIMITS

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

SIDE, PATCH, LEN = 32, 8, 16
VISION = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4,
          "image_size": SIDE, "patch_size": PATCH}
TEXT = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4,
        "max_position_embeddings": LEN}
PROMPTS = ["a photo", "a horse on the grass", "cat"]
IMAGE = (np.random.default_rng(0).random((40, 48, 3)) * 255).astype(np.uint8)


def load(data: bytes, filename: str, **options: object) -> xc.ModelSpec:
    return xc.load_own_model(data, filename, device=DEVICE, **options)


def on_cpu(out: object) -> object:
    """A model output (tensor, mapping, list of mappings) on the CPU, where the originals run."""
    if isinstance(out, torch.Tensor):
        return out.cpu()
    if isinstance(out, dict):
        return {k: on_cpu(v) for k, v in out.items()}
    return [on_cpu(o) for o in out]  # type: ignore[union-attr]


def pixels(spec: xc.ModelSpec, image: np.ndarray = IMAGE) -> torch.Tensor:
    """What the model sees, on the CPU (contiguous, for the originals)."""
    return spec.preprocess(image).cpu().contiguous()


def close(a: torch.Tensor, b: torch.Tensor, terms: int = 64) -> None:
    """Equal to float32 resolution: ``16·eps32·peak·√terms`` (two orders of the same sums)."""
    scale = max(float(a.abs().max()), float(b.abs().max()), 1.0)
    assert a.shape == b.shape and float((a - b).abs().max()) <= 16 * EPS32 * scale * terms ** 0.5


def folder_zip(model: torch.nn.Module, extra: dict[str, bytes] | None = None) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for name in sorted(os.listdir(d)):
                z.write(os.path.join(d, name), f"m/{name}")
            for name, data in (extra or {}).items():
                z.writestr(f"m/{name}", data)
    return buf.getvalue()


def clip_bpe() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A tiny CLIP vocabulary (letters, word ends, two merges) with CLIP's special tokens at 0 and 1."""
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab[c], vocab[c + "</w>"] = len(vocab), len(vocab) + 1
    merges = [("p", "h"), ("ph", "o")]
    vocab |= {"ph": len(vocab), "pho": len(vocab) + 1}
    return vocab, merges


@pytest.fixture(scope="module")
def clip() -> tuple[torch.nn.Module, bytes, bytes]:
    return make_clip()


def make_clip() -> tuple[torch.nn.Module, bytes, bytes]:
    """(CLIPModel, folder zip with a tokenizer.json, the same folder with vocab.json + merges.txt)."""
    torch.manual_seed(0)
    vocab, merges = clip_bpe()
    text = {**TEXT, "vocab_size": len(vocab), "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1}
    model = transformers.CLIPModel(transformers.CLIPConfig(text_config=text, vision_config=VISION, projection_dim=24))
    tok = transformers.CLIPTokenizer(vocab=vocab, merges=merges).backend_tokenizer
    bpe = {"vocab.json": json.dumps(vocab).encode(), "merges.txt": ("#version: 0.2\n" + "\n".join(
        " ".join(m) for m in merges)).encode()}
    return model.eval(), folder_zip(model, {"tokenizer.json": tok.to_str().encode()}), folder_zip(model, bpe)


def embed(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model.get_image_features(pixel_values=x)
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def text_features(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    out = model.get_text_features(input_ids=ids)
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def explain_target(spec: xc.ModelSpec, target: object, want: float, methods: tuple[str, ...] = ("gradient", "gradcam")):
    """Each method gives a finite, non-constant map on ``target``, whose score equals ``want`` (from the original)."""
    wb = xc.Workbench(spec)
    for method in methods:
        e = wb.explain(IMAGE, xc.ExplainRequest.make(method, target))
        assert e.map.shape == IMAGE.shape[:2] and np.isfinite(e.map).all() and np.ptp(e.map) > 0, method
        assert e.target_kind == target.kind and e.probability == pytest.approx(want, rel=1e-4, abs=1e-6), method


def test_clip_folder_is_a_dual_encoder_whose_embeddings_are_clips(clip) -> None:
    model, data, bpe_data = clip
    spec = load(data, "clip.zip")
    assert spec.task == "dual_encoder" and spec.labels == ["embedding"] and spec.input_size == (SIDE, SIDE)
    assert spec.cam_layer == "model.vision_model.encoder.layers.1.layer_norm1"
    assert spec.tokens is not None and spec.tokens.prefix == 1 and spec.tokens.grid == (4, 4)
    assert spec.tokens.head == "model.visual_projection" and len(spec.tokens.blocks) == 2
    x = torch.randn(2, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        close(on_cpu(spec.module(x.to(spec.device))), embed(model, x))
        got = spec.text_encoder(PROMPTS).cpu()  # padded to the longest, with the attention mask
        tok = tokenizers.Tokenizer.from_str(zipfile.ZipFile(io.BytesIO(data)).read("m/tokenizer.json").decode())
        tok.enable_truncation(LEN)  # the 2nd prompt is 18 tokens: cut to the tower's 16, end-of-text kept
        rows = [tok.encode(p).ids for p in PROMPTS]
        assert len(rows[1]) == LEN and rows[1][-1] == 1
        want = torch.cat([text_features(model, torch.tensor([r])) for r in rows])  # one by one, no padding
        close(got, want)
        bpe = load(bpe_data, "clip.zip")  # the same tokenizer from vocab.json + merges.txt
        close(bpe.text_encoder(PROMPTS).cpu(), got)
        img = embed(model, pixels(spec))
        cos = F.cosine_similarity(img, want[:2], dim=1)
    explain_target(spec, T.PromptTarget(PROMPTS[0], PROMPTS[1]), float(cos[0] - cos[1]),
                   ("gradient", "gradcam", "attention_rollout", "chefer", "legrad"))


def test_layer_choices_are_settable(clip) -> None:
    model, data, _ = clip
    spec = load(data, "clip.zip", cam_layer="model.vision_model.encoder.layers.0.layer_norm1",
                             attention_blocks=1)
    assert spec.cam_layer.endswith("layers.0.layer_norm1") and spec.tokens.blocks == (spec.tokens.blocks[-1],)
    assert spec.tokens.attentions == ("model.vision_model.encoder.layers.1.self_attn",)
    with torch.no_grad():
        cos = F.cosine_similarity(embed(model, pixels(spec)), spec.text_encoder(["a photo"]).cpu())
    explain_target(spec, T.PromptTarget("a photo"), float(cos[0]), ("gradcam", "attention_rollout", "chefer"))
    with pytest.raises(ModelLoadError, match="no layer named") as e:
        load(data, "clip.zip", cam_layer="layer4")
    assert_clean_error(e.value)


def siglip_model() -> torch.nn.Module:
    torch.manual_seed(2)
    text = {**TEXT, "vocab_size": 40, "pad_token_id": 1, "eos_token_id": 1, "bos_token_id": None}
    return transformers.SiglipModel(transformers.SiglipConfig(text_config=text, vision_config=VISION)).eval()


def test_siglip_folder_with_a_tokenizer_json() -> None:
    model = siglip_model()
    pieces = [("<unk>", 0.0), ("</s>", 0.0)] + [(c, -1.0) for c in "abcdefghijklmnopqrstuvwxyz▁"]
    tok = tokenizers.Tokenizer(tokenizers.models.Unigram(pieces, unk_id=0))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Metaspace()
    tok.post_processor = tokenizers.processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    spec = load(folder_zip(model, {"tokenizer.json": tok.to_str().encode()}), "siglip.zip")
    assert spec.task == "dual_encoder" and spec.tokens is not None and spec.tokens.prefix == 0  # no class token
    tok.enable_truncation(LEN)
    ids = torch.ones(len(PROMPTS), LEN, dtype=torch.long)  # SigLIP pads to the tower's length (pad = </s> = 1)
    for i, p in enumerate(PROMPTS):
        row = tok.encode(p).ids
        ids[i, :len(row)] = torch.tensor(row)
    with torch.no_grad():
        want = text_features(model, ids)
        close(spec.text_encoder(PROMPTS).cpu(), want)
        cos = F.cosine_similarity(embed(model, pixels(spec)), want[:1], dim=1)
    explain_target(spec, T.PromptTarget(PROMPTS[0]), float(cos[0]), ("gradient", "gradcam", "legrad"))


def test_siglip_folder_with_a_sentencepiece_model() -> None:
    spm = pytest.importorskip("sentencepiece")
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(["a photo of a horse", "a cat on the grass"] * 40),
                                   model_writer=buf, vocab_size=24, hard_vocab_limit=False, minloglevel=2)
    model = siglip_model()
    spec = load(folder_zip(model, {"spiece.model": buf.getvalue()}), "siglip.zip")
    with tempfile.TemporaryDirectory() as d:  # transformers' own SigLIP tokenizer, as its processor pads
        open(os.path.join(d, "spiece.model"), "wb").write(buf.getvalue())
        ids = transformers.SiglipTokenizer(os.path.join(d, "spiece.model"))(
            PROMPTS, padding="max_length", max_length=LEN, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        close(spec.text_encoder(PROMPTS).cpu(), text_features(model, ids))


def test_dinov2_backbone_is_an_embedder() -> None:
    torch.manual_seed(3)
    model = transformers.Dinov2Model(transformers.Dinov2Config(**VISION)).eval()
    spec = load(folder_zip(model), "dino.zip")
    assert spec.task == "embedder" and spec.text_encoder is None and spec.cam_layer == "model.encoder.layer.1.norm1"
    with torch.no_grad():
        x = torch.randn(2, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(4))
        close(on_cpu(spec.module(x.to(spec.device))), model(pixel_values=x).pooler_output)
        ref, img = (model(pixel_values=pixels(spec, i)).pooler_output for i in (IMAGE[::-1], IMAGE))
    want = float(F.cosine_similarity(img, ref, dim=1)[0])
    explain_target(spec, T.SimilarityTarget(np.ascontiguousarray(IMAGE[::-1]), "flipped"), want,
                   ("gradient", "gradcam", "attention_rollout"))


def test_open_clip_state_dict_with_a_bundled_config() -> None:
    open_clip = pytest.importorskip("open_clip")
    configs = open_clip.factory._MODEL_CONFIGS  # a tiny config registered for this test only
    configs["xai-tiny"] = {"embed_dim": 16, "vision_cfg": {"image_size": SIDE, "layers": 2, "width": 32,
                           "patch_size": PATCH, "head_width": 8}, "text_cfg": {"context_length": LEN,
                           "vocab_size": 49408, "width": 32, "heads": 4, "layers": 2}}
    try:
        torch.manual_seed(5)
        model = open_clip.create_model("xai-tiny", pretrained=None).eval()
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        spec = load(buf.getvalue(), "oc.pth", architecture="open_clip/xai-tiny")
        assert spec.task == "dual_encoder" and spec.tokens is not None and spec.tokens.kind == "mha"
        with torch.no_grad():
            want = model.encode_text(open_clip.get_tokenizer("xai-tiny")(PROMPTS))
            close(spec.text_encoder(PROMPTS).cpu(), want)
            cos = F.cosine_similarity(model.encode_image(pixels(spec)), want[:1], dim=1)
        explain_target(spec, T.PromptTarget(PROMPTS[0]), float(cos[0]), ("gradient", "gradcam", "chefer"))
        with pytest.raises(ModelLoadError, match="another architecture") as e:  # a classifier's weights
            load(_state(torchvision.models.resnet18(num_classes=3)), "r.pth",
                              architecture="open_clip/xai-tiny")
        assert_clean_error(e.value)
    finally:
        configs.pop("xai-tiny", None)


def _state(module: torch.nn.Module) -> bytes:
    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    return buf.getvalue()


def test_torchvision_segmenter() -> None:
    torch.manual_seed(6)
    seg = torchvision.models.segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=3)
    spec = load(_state(seg), "seg.pth", architecture="lraspp_mobilenet_v3_large", input_size=(64, 64),
                             labels=b"background\nhorse\ntag\n")
    assert spec.task == "segmenter" and spec.labels == ["background", "horse", "tag"] and spec.cam_layer == "backbone.16"
    with torch.no_grad():
        x = pixels(spec)
        out = seg.eval()(x)["out"]
        close(on_cpu(spec.module(x.to(spec.device)))["out"], out)
    explain_target(spec, T.RegionTarget(1, box=(0.25, 0.25, 0.75, 0.75)), float(out[0, 1, 16:48, 16:48].sum()))


@pytest.mark.parametrize(("arch", "scoring"), [("fasterrcnn_mobilenet_v3_large_320_fpn", "match"),
                                               ("ssdlite320_mobilenet_v3_large", "drise")])
def test_torchvision_detector(arch: str, scoring: str) -> None:
    torch.manual_seed(7)
    det = getattr(torchvision.models.detection, arch)(weights=None, weights_backbone=None, num_classes=3).eval()
    spec = load(_state(det), "det.pth", architecture=arch)
    assert spec.task == "detector" and spec.mean == (0, 0, 0) and spec.std == (1, 1, 1) and spec.input_size == (320, 320)
    assert spec.labels == ["class 0", "class 1", "class 2"]
    with torch.no_grad():
        x = pixels(spec)
        # at 320 px torchvision's own resize is the identity too
        got, want = on_cpu(spec.module(x.to(spec.device)))[0], det(x)[0]
    assert len(got["boxes"]) == len(want["boxes"]) > 0
    for b, lab, s in zip(got["boxes"], got["labels"], got["scores"], strict=True):  # as sets: near-equal scores may
        same = want["labels"] == lab                                                # swap places in the order
        err = ((want["boxes"][same] - b).abs().amax(1) + (want["scores"][same] - s).abs()).min()
        assert float(err) <= 64 * EPS32 * 320, float(err)
    box, label, s0 = (got["boxes"][0] / 320).tolist(), int(got["labels"][0]), float(got["scores"][0])
    # the first detection has the highest score: matched, its IoU with itself (1) + its score; D-RISE, 1 × its score
    explain_target(spec, T.DetectionTarget(tuple(box), label, scoring), 1 + s0 if scoring == "match" else s0)


def test_default_class_names_are_cocos_and_vocs() -> None:
    assert tv_dense.default_labels("detector", 91)[1] == "person"
    assert tv_dense.default_labels("segmenter", 21)[15] == "person"
    assert tv_dense.default_labels("detector", 3) is None


def _refused(data: bytes, filename: str, match: str, **options: object) -> None:
    with pytest.raises(ModelLoadError, match=match) as e:
        load(data, filename, **options)
    assert_clean_error(e.value)


def _config_zip(config: dict, extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("m/config.json", json.dumps(config))
        z.writestr("m/model.safetensors", save_safetensors({"unused": torch.zeros(1)}))  # checked after the cost
        for name, data in (extra or {}).items():
            z.writestr(f"m/{name}", data)
    return buf.getvalue()


@pytest.mark.parametrize(("change", "match"), [
    ({"text_config": {**TEXT, "vocab_size": 10 ** 8}}, r"text_config\.vocab_size to 100000000, which describes a model"),
    ({"vision_config": {**VISION, "hidden_size": 65536, "num_attention_heads": 1}}, r"vision_config\.hidden_size"),
    ({"text_config": {**TEXT, "evil": 1}}, r"key 'text_config\.evil' is not accepted"),
    ({"text_config": {**TEXT, "model_type": "bert"}}, "names model_type 'bert'"),
    ({"vision_config": [1, 2]}, "vision_config to a list"),
])
def test_hostile_dual_encoder_configs_are_refused_before_building(change: dict, match: str) -> None:
    config = {"model_type": "clip", "projection_dim": 24, "text_config": TEXT, "vision_config": VISION, **change}
    _refused(_config_zip(config), "clip.zip", match)


def test_hostile_tokenizers_and_wrong_architectures_are_refused(clip) -> None:
    model = clip[0]
    big = b" " * (LIMITS.tokenizer_bytes + 1)  # deflates to a few KB
    _refused(folder_zip(model, {"tokenizer.json": big}), "clip.zip", "tokenizer.json inflates to more than 32 MB")
    _refused(folder_zip(model), "clip.zip", "holds no tokenizer")
    vocab = {f"t{i}": i for i in range(500)}  # more tokens than the text tower's 56
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="t0"))
    _refused(folder_zip(model, {"tokenizer.json": tok.to_str().encode()}), "clip.zip", "has 500 tokens but")
    _refused(folder_zip(model, {"tokenizer.json": b"{not json"}), "clip.zip", "not a tokenizer")
    plain = tokenizers.Tokenizer(tokenizers.models.WordLevel({f"t{i}": i for i in range(9)}, unk_token="t0"))
    _refused(folder_zip(model, {"tokenizer.json": plain.to_str().encode()}), "clip.zip",
             r"does not end prompts with the text_config's eos_token_id \(1\)")  # CLIP would pool at token 0
    resnet = _state(torchvision.models.resnet18(num_classes=3))
    _refused(resnet, "r.pth", "no roi_heads.*another architecture", architecture="fasterrcnn_mobilenet_v3_large_fpn")
    seg = torchvision.models.segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=3)
    _refused(_state(seg), "s.pth", "not the 5 chosen", architecture="lraspp_mobilenet_v3_large", num_classes=5)
    _refused(_state(seg), "s.pth", "no classifier.4.weight", architecture="deeplabv3_mobilenet_v3_large")
    _refused(resnet, "r.pth", "no offline open_clip model", architecture="open_clip/not-a-model")


def test_the_picker_offers_the_new_models_and_loads_a_clip_folder(clip) -> None:
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["explainers"] = ["gradcam"]
    at.run()
    at.sidebar.selectbox(key="model_choice").set_value("own").run()
    at.sidebar.radio(key="own_format").set_value("huggingface").run()
    at.sidebar.file_uploader(key="own_hf").upload("my_clip.zip", clip[1], "application/zip").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("dual encoder" in c.value for c in at.sidebar.caption)
    assert "Prompt" in [t.label for t in at.main.text_input]  # the target view asks for a prompt
    at.sidebar.radio(key="own_format").set_value("state_dict").run()
    options = at.sidebar.selectbox(key="own_arch").options
    assert {"fasterrcnn_resnet50_fpn (detector)", "lraspp_mobilenet_v3_large (segmenter)"} <= set(options)
    at.sidebar.selectbox(key="own_arch").set_value("open_clip").run()
    assert not at.exception and "ViT-B-32" in at.sidebar.selectbox(key="own_open_clip").options


def test_legrad_reads_the_prompt_at_every_layer(clip) -> None:
    """LeGrad scores each layer's pooled tokens: on a bound prompt that is their embedding's cosine with the prompt,
    so two prompts give two maps (not embedding dimension 0 for both)."""
    _, data, _ = clip
    wb = xc.Workbench(load(data, "clip.zip"))
    a, b = (wb.explain(IMAGE, xc.ExplainRequest.make("legrad", T.PromptTarget(p))).map for p in PROMPTS[:2])
    assert np.isfinite(a).all() and np.ptp(a) > 0 and np.ptp(b) > 0
    assert float(np.abs(a - b).max()) > 1e-3 * float(np.abs(a).max())
