"""The shared sidebar: model picker, image picker, device badge. Sets the page context."""

from __future__ import annotations

import streamlit as st

import xai_core as xc
from xai_core import engine, images

from . import services
from .state import LAST_IMAGE, Context

OWN = "own"
IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "tif", "tiff", "bmp", "gif"]


def _fallback(reason: str) -> tuple[xc.ModelSpec, str]:
    st.caption(f"Using the bundled {xc.model_title(xc.DEFAULT_MODEL)} meanwhile. {reason}")
    return services.model(xc.DEFAULT_MODEL), xc.DEFAULT_MODEL


def _own_model() -> tuple[xc.ModelSpec, str]:
    ckpt = st.file_uploader("Checkpoint: a state dict", type=["pth", "pt", "safetensors", "bin"],
                            help="Saved with torch.save(model.state_dict(), path) or safetensors. "
                                 "Loaded with weights_only=True: pickled objects are refused, never run.")
    arch = st.selectbox("Architecture", xc.ARCHITECTURES)
    n = int(st.number_input("Number of classes", 1, 100_000, 1000, step=1))
    labels_file = st.file_uploader("Class names (optional)", type=["txt", "json"],
                                   help="One name per line, a JSON list, or a JSON {index: name} object.")
    if ckpt is None:
        return _fallback("Upload a checkpoint to explain your own model.")
    try:
        data = ckpt.getvalue()
        labels = tuple(xc.parse_labels(labels_file.getvalue(), n)) if labels_file else None
        digest = services.bytes_digest(data)
        spec = services.uploaded_model(digest, ckpt.name, arch, n, labels, data)
    except xc.XaiError as e:
        st.error(str(e))
        return _fallback("")
    st.success(f"Loaded {ckpt.name}")
    return spec, f"upload:{digest}:{arch}:{n}:{labels is not None}"


def _model() -> tuple[xc.ModelSpec, str]:
    names = [*xc.list_models(), OWN]
    choice = st.selectbox("Model", names, key="model_choice",
                          format_func=lambda n: "Your own model (upload)…" if n == OWN else xc.model_title(n))
    if choice == OWN:
        return _own_model()
    status = xc.model_status(choice)
    if status is not None:
        st.warning(status, icon="📦")
        if st.button("Try to download the weights now", help="Needs internet access; gives up after 20 s."):
            try:
                return services.downloaded_model(choice), choice
            except xc.XaiError as e:
                st.error(str(e))
        return _fallback("")
    try:
        return services.model(choice), choice
    except xc.XaiError as e:
        st.error(str(e))
        return _fallback("")


def _image() -> tuple:
    source = st.radio("Image", ["Sample", "Upload"], horizontal=True, key="image_source")
    if source == "Upload":
        up = st.file_uploader("Upload an image", type=IMAGE_TYPES, key="image_upload",
                              help="PNG, JPEG, WebP, TIFF, BMP or GIF, up to 50 megapixels.")
        if up is not None:
            data = up.getvalue()
            digest = services.bytes_digest(data)
            try:
                img, notes = services.decoded_upload(digest, data)
                st.session_state[LAST_IMAGE] = (img, up.name, digest, notes)
                return img, up.name, digest, notes
            except xc.ImageError as e:
                st.error(str(e))
        if LAST_IMAGE in st.session_state:
            if up is not None:
                st.caption("Still showing the last image that loaded.")
            return st.session_state[LAST_IMAGE]
    name = st.selectbox("Sample image", images.sample_names(), key="sample_name",
                        disabled=source == "Upload")
    img, digest = services.sample(name)
    return img, name, digest, []


def render() -> Context:
    """Draw the sidebar; every page calls this first and gets the chosen model and image."""
    services.threads()  # before the badge reads the thread count, whichever page opens first
    with st.sidebar:
        st.markdown("### 🔬 XAI Explorer")
        device = engine.device_label()
        on_cpu = device.startswith("CPU")
        st.badge(device, icon="🖥️" if on_cpu else "⚡", color="gray" if on_cpu else "green")
        engine.set_compiled(st.toggle(
            "Compile the model for black-box methods", key="compile",
            help="torch.compile: about a minute once per model, then ~1.6× faster forward passes for Occlusion, "
                 "LIME, KernelSHAP, RISE and Score-CAM (measured on a 2-core CPU). Applies to the whole app."))
        if not on_cpu:
            engine.set_half_precision(st.toggle(
                "Half precision (bf16) forward passes", key="bf16",
                help="About 2× faster black-box methods on the GPU; class probabilities keep ~3 significant digits, "
                     "which adds visible noise to LIME and KernelSHAP. Off: GPU maps equal CPU maps."))
        spec, key = _model()
        img, name, digest, notes = _image()
        st.image(img, caption=f"{name} · {img.shape[1]}×{img.shape[0]}", width="stretch")
        for n in notes:
            st.caption(f"ℹ️ {n}")
        with st.expander("About this model"):
            st.caption(f"{spec.title}: {spec.num_classes} classes, input {spec.input_size[1]}×{spec.input_size[0]}. "
                       f"{spec.provenance}")
    return Context(spec, key, img, name, digest, notes)
