"""The sidebar's own-model picker: a format, its file and options, an optional class-names file; and, once a model
is loaded, what works on it and its top-5 on the current image. File and class names a visitor supplied are shown
literally (``escape``), never as Markdown."""

from __future__ import annotations

import streamlit as st

import xai_core as xc
from xai_core.untrusted import LIMITS

from . import escape, services
from .errors import report

MB = 1024 * 1024


def fallback(reason: str) -> tuple[xc.ModelSpec, str]:
    st.caption(f"Using the bundled {xc.model_title(xc.DEFAULT_MODEL)} meanwhile. {reason}")
    return services.model(xc.DEFAULT_MODEL), xc.DEFAULT_MODEL


FORMAT_TITLES = {f.id: f.title for f in xc.models.FORMATS}


def _format() -> str:
    """The format radio; formats whose optional packages are missing say which (TorchScript only when allowed)."""
    ids = [f for f in FORMAT_TITLES if f != "torchscript" or xc.models.torchscript_allowed()]
    fmt = st.radio("Format", ids, key="own_format", horizontal=True, format_func=lambda f: FORMAT_TITLES[f].split(" (")[0])
    missing = xc.models.missing_packages(fmt)
    if missing:
        st.warning(f"{FORMAT_TITLES[fmt]} needs the optional package(s) {', '.join(missing)}: run "
                   f"`pip install {' '.join(missing)}` on the server.", icon="📦")
    return fmt


def _floats(text: str, default: tuple[float, float, float]) -> tuple[float, float, float]:
    try:
        vals = tuple(float(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        vals = ()
    if len(vals) != 3:
        st.caption(f"Three numbers separated by commas are needed; using {default}.")
        return default
    return vals  # type: ignore[return-value]


def _own_options(fmt: str) -> tuple[object, dict]:
    """The uploader and the options of one format (widget keys own_ckpt, own_arch, own_classes stay as they were)."""
    mb = LIMITS.checkpoint_bytes // MB
    if fmt == "huggingface":
        up = st.file_uploader("Model folder as a zip", type=["zip"], key="own_hf", max_upload_size=LIMITS.model_zip_bytes // MB,
                              help="config.json + model.safetensors (+ preprocessor_config.json), as save_pretrained "
                                   "writes them: an image classifier, a CLIP or SigLIP dual encoder (with its "
                                   "tokenizer files: tokenizer.json, vocab.json + merges.txt or spiece.model) or a "
                                   "DINOv2 backbone (an embedder). Pickled .bin weights and custom code (auto_map) "
                                   "are refused.")
        return up, _layers()
    if fmt == "onnx":
        up = st.file_uploader("ONNX file", type=["onnx"], key="own_onnx", max_upload_size=LIMITS.onnx_bytes // MB,
                              help="Converted to a differentiable torch module (onnx2torch): every explainer works on "
                                   "it, white-box ones too. Weights must be inside the file.")
        side = int(st.number_input("Input size (0: as exported)", 0, 4096, 0, step=16, key="own_onnx_size"))
        mean = _floats(st.text_input("Mean (R, G, B)", "0.485, 0.456, 0.406", key="own_onnx_mean"), (0.485, 0.456, 0.406))
        std = _floats(st.text_input("Std (R, G, B)", "0.229, 0.224, 0.225", key="own_onnx_std"), (0.229, 0.224, 0.225))
        return up, {"input_size": (side, side) if side else None, "mean": mean, "std": std}
    if fmt == "torchscript":
        up = st.file_uploader("TorchScript file", type=["pt", "pth"], key="own_ts", max_upload_size=mb,
                              help="Enabled by the operator of this server: the file's own program is run.")
        return up, {}
    up = st.file_uploader("Checkpoint: a state dict", type=["pth", "pt", "safetensors", "bin"], key="own_ckpt",
                          max_upload_size=mb, help="Saved with torch.save(model.state_dict(), path) or safetensors. "
                                                   "Loaded with weights_only=True: pickled objects are refused, never run.")
    dense = xc.models.DENSE_ARCHITECTURES
    arch = st.selectbox("Architecture", [*xc.models.architectures(), "timm", "open_clip"], key="own_arch",
                        format_func=lambda a: ARCH_TITLES.get(a) or (f"{a} ({dense[a][0]})" if a in dense else a))
    if arch in ("timm", "open_clip"):
        missing = xc.models.missing_packages(arch)
        if missing:
            st.warning(f"{arch} models need the optional package {PACKAGES[arch]}: run `pip install {PACKAGES[arch]}` "
                       "on the server.", icon="📦")
    if arch == "open_clip":
        name = st.selectbox("open_clip model", xc.models.open_clip_names() or ["ViT-B-32"], key="own_open_clip",
                            help="Built from open_clip's bundled config (nothing downloaded); a dual encoder: explain "
                                 "a prompt or the similarity to a reference image.")
        return up, {"architecture": f"open_clip/{name}", **_layers()}
    if arch in dense:
        side = int(st.number_input("Input size (pixels)", 32, LIMITS.model_input_side, 320, step=32, key="own_dense_size",
                                   help="The image is resized to this square; detectors run at it (no internal resize "
                                        "to 800 px), so CPU runs stay fast. The class count is read from the file."))
        return up, {"architecture": arch, "input_size": (side, side), **_layers()}
    if arch == "timm":
        arch = "timm/" + st.text_input("timm model name", "resnet50", key="own_timm").strip()
    n = int(st.number_input("Number of classes", 1, 100_000, 1000, step=1, key="own_classes"))
    return up, {"architecture": arch, "num_classes": n, **_layers()}


ARCH_TITLES = {"timm": "timm model (type its name)…", "open_clip": "open_clip model (pick its name)…"}
PACKAGES = {"timm": "timm", "open_clip": "open_clip_torch"}


def _layers() -> dict:
    """The layer choices over the ones found (empty/0: found by the loader)."""
    with st.expander("Layers (optional)"):
        cam = st.text_input("CAM layer", "", key="own_cam_layer", help="A module name, e.g. layer4 or "
                            "model.vision_model.encoder.layers.10.layer_norm1; empty: the layer found.").strip()
        blocks = int(st.number_input("Attention blocks (last N, 0: all)", 0, 256, 0, key="own_attention_blocks",
                                     help="Attention rollout and Chefer start at the last N transformer blocks "
                                          "(CLIP ViT-B/16 maps are sharper from the last few)."))
    return {"cam_layer": cam or None, "attention_blocks": blocks or None}


def render() -> tuple[xc.ModelSpec, str]:
    """The picker; returns the model and its key (``upload:<file digest>:<options>:<labels digest>``), or the bundled
    model with a note when there is no (good) file."""
    fmt = _format()
    up, options = _own_options(fmt)
    labels_file = st.file_uploader("Class names (optional)", type=["txt", "json"], key="own_labels",
                                   max_upload_size=max(1, LIMITS.labels_bytes // MB),
                                   help="One name per line, a JSON list, or a JSON {index: name} object.")
    if up is None:
        return fallback("Upload a model file to explain your own model.")
    try:
        data = up.getvalue()
        labels = labels_file.getvalue() if labels_file else None
        labels_digest = services.bytes_digest(labels) if labels is not None else None
        digest = services.bytes_digest(data)
        opts = tuple(sorted((k, v) for k, v in options.items() if v is not None))
        spec = services.uploaded_model(digest, up.name, opts, labels_digest, data, labels)
    except Exception as e:  # noqa: BLE001 - any failure of an upload is one message, never a traceback
        report(e, "Loading the model")
        return fallback("")
    st.success(f"Loaded {escape.markdown(up.name)}")
    return spec, f"upload:{digest}:{services.bytes_digest(repr(opts).encode())}:{labels_digest}"


def capabilities(ctx_wb: xc.Workbench, key: str, digest: str, img) -> None:  # noqa: ANN001 - an RGB array
    """For an uploaded model: what works on it and its top-5 on the current image, before any explanation."""
    with st.expander("What works on this model", expanded=True):
        probs = services.predictions(key, digest, ctx_wb, img)
        spec = ctx_wb.model
        top = sorted(range(len(probs)), key=lambda i: -probs[i])[:5]
        st.caption("Top-5 on this image: " + "; ".join(f"{escape.markdown(spec.label(i))} {probs[i]:.1%}" for i in top))
        rows = services.capabilities(key, spec)
        st.caption("✅ " + ", ".join(c.title for c in rows if c.applies))
        for c in rows:
            if not c.applies:
                st.caption(f"— **{c.title}**: {c.why}")


