"""The shared sidebar: model picker, image picker, run options, device badge.

``app.py`` draws it on every run, after ``st.navigation`` and before the page, so its widgets belong to
the entrypoint and keep their state on every page (a file uploaded on one page is still there on the
next). It stores the session's :class:`~ui.state.Context` for the page to read.
"""

from __future__ import annotations

import streamlit as st

import xai_core as xc
from xai_core import device as devices
from xai_core import images
from xai_core.untrusted import LIMITS

from . import escape, limits_view, links, own_model_picker, services, target_view, upload_urls
from .errors import report
from .state import CONTEXT, LAST_IMAGE, Context, Upload

OWN = "own"
IMAGE_TYPES = limits_view.IMAGE_TYPES
MB = 1024 * 1024


def _model(names: list[str]) -> tuple[xc.ModelSpec, str]:
    choice = st.selectbox("Model", [*names, OWN], key="model_choice",
                          format_func=lambda n: "Your own model (upload)…" if n == OWN else xc.model_title(n))
    if choice == OWN:
        return own_model_picker.render()
    status = xc.model_status(choice)
    if status is not None:
        st.warning(status, icon="📦")
        if st.button("Try to download the weights now", help="Needs internet access; gives up after 20 s."):
            try:
                return services.downloaded_model(choice), choice
            except xc.XaiError as e:
                st.error(str(e))
        return own_model_picker.fallback("")
    try:
        return services.model(choice), choice
    except Exception as e:  # noqa: BLE001
        report(e, f"Loading {choice}")
        return own_model_picker.fallback("")


def _upload() -> Upload | None:
    up = st.file_uploader("Upload an image", type=IMAGE_TYPES, key="image_upload",
                          max_upload_size=LIMITS.upload_bytes // MB,
                          help=f"PNG, JPEG, WebP, TIFF, BMP or GIF, up to {LIMITS.image_pixels / 1e6:.0f} megapixels. "
                               "PDF, PostScript and SVG are refused, whatever the file is named.")
    if up is not None:
        data = up.getvalue()
        digest = services.bytes_digest(data)
        try:
            img, notes = services.decoded_upload(digest, data)
        except Exception as e:  # noqa: BLE001
            report(e, "Reading the image")
        else:
            kept = links.keep(img, up.name, notes)  # private: named by a random share token, not by its pixels
            st.session_state[LAST_IMAGE] = kept
            return kept
    kept = st.session_state.get(LAST_IMAGE)
    if not isinstance(kept, Upload):
        return None
    name = escape.markdown(kept.name)
    st.caption(f"Still showing the last image that loaded ({name})." if up is not None
               else f"Showing {name}, uploaded earlier in this session.")
    return kept


def _image() -> tuple:
    source = st.radio("Image", ["Sample", "Upload"], horizontal=True, key="image_source")
    if source == "Upload":
        kept = _upload()
        if kept is not None:
            return kept.image, kept.name, kept.digest, kept.notes, "upload", kept.token
    name = st.selectbox("Sample image", images.all_sample_names(), key="sample_name", disabled=source == "Upload")
    img, digest = services.sample(name)
    return img, name, digest, [], "sample", ""


def _options(on_cpu: bool) -> xc.RunOptions:
    """This session's run options: they change this visitor's runs only."""
    compile_ = st.toggle(
        "Compile the model for black-box methods", key="compile",
        help="torch.compile: about a minute once per model, then ~1.6× faster forward passes for Occlusion, "
             "LIME, KernelSHAP, RISE and Score-CAM (measured on a 2-core CPU). Applies to your session only.")
    bf16 = not on_cpu and st.toggle(
        "Half precision (bf16) forward passes", key="bf16",
        help="About 2× faster black-box methods on the GPU; class probabilities keep ~3 significant digits, "
             "which adds visible noise to LIME and KernelSHAP. Off: GPU maps equal CPU maps.")
    return xc.RunOptions(compile=compile_, bf16=bf16)


def render() -> Context:
    """Draw the sidebar, store this run's :class:`Context` in the session and return it."""
    services.threads()  # before the badge reads the thread count, whichever page opens first
    upload_urls.install()  # a rerun right after a file is chosen must not drop its upload (see upload_urls)
    names = xc.list_models()
    links.restore(names)
    with st.sidebar:
        st.markdown("### 🔬 XAI Explorer")
        device = devices.device_label()
        on_cpu = device.startswith("CPU")
        st.badge(device, icon="🖥️" if on_cpu else "⚡", color="gray" if on_cpu else "green")
        options = _options(on_cpu)
        spec, key = _model(names)
        img, name, digest, notes, source, token = _image()
        st.image(img, caption=f"{escape.markdown(name)} · {img.shape[1]}×{img.shape[0]}", width="stretch")
        for n in notes:
            st.caption(f"ℹ️ {escape.markdown(n, 400)}")
        if spec.task != "classifier":
            target_view.capabilities(spec, key)
        elif key.startswith("upload:"):
            own_model_picker.capabilities(xc.Workbench(spec, options), key, digest, img)
        with st.expander("About this model"):
            task = spec.task.replace("_", " ")
            about = f"{spec.title}: {task}, {spec.num_classes} classes, input {spec.input_size[1]}×{spec.input_size[0]}. "
            st.caption(escape.markdown(escape.no_paths(about + spec.provenance), 600))
        limits_view.render()
    ctx = Context(xc.Workbench(spec, options), key, img, name, digest, notes, source, token)
    links.adopt_target(ctx)
    links.publish(ctx)
    st.session_state[CONTEXT] = ctx
    return ctx
