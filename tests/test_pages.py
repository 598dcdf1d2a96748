"""Every page under Streamlit's AppTest: real scripts, real models, no browser."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

import xai_core

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def _png() -> bytes:
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(np.asarray(data.astronaut())[::2, ::2]).save(buf, format="PNG")
    return buf.getvalue()


def _app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    assert not at.exception, at.exception
    return at


def _no_traceback(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not any("Traceback" in (e.value or "") for e in at.error)


def test_explain_upload_three_explainers():
    at = _app()
    at.sidebar.radio[0].set_value("Upload").run()
    at.sidebar.file_uploader[0].upload("astronaut.png", _png(), "image/png")
    at.run()
    _no_traceback(at)
    at.multiselect(key="explainers").set_value(["gradcam", "gradient", "guided_backprop"]).run()
    at.multiselect(key="explainers").set_value(["gradcam", "gradient", "smoothgrad"]).run()
    at.slider(key="param:efficientnet_lite0:smoothgrad:samples").set_value(4).run()
    _no_traceback(at)
    assert not at.error, [e.value for e in at.error]
    assert len(at.get("plotly_chart")) == 4  # top-5 bars + three heatmaps
    captions = [c.value for c in at.caption]
    assert sum(" s · " in c for c in captions) == 3
    assert at.session_state["xai_last_image"][1] == "astronaut.png"  # the maps are of the uploaded image
    assert at.get("download_button")


def test_broken_upload_shows_one_error_and_page_keeps_working():
    at = _app()
    at.sidebar.radio[0].set_value("Upload").run()
    at.sidebar.file_uploader[0].upload("photo.png", b"PK\x03\x04 this is a zip", "image/png")
    at.run()
    _no_traceback(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "ZIP" in errors[0]
    assert len(at.get("plotly_chart")) >= 2  # the page still explains the fallback sample image


def test_uncached_torchvision_model_explains_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    at = _app()
    at.sidebar.selectbox(key="model_choice").set_value("resnet18").run()
    _no_traceback(at)
    warnings = [w.value for w in at.warning]
    assert warnings and "torch hub cache" in warnings[0] and "resnet18" in warnings[0]
    assert len(at.get("plotly_chart")) >= 2  # fell back to the bundled model, still working


def test_own_checkpoint_flow(tmp_path):
    from xai_core.models.bundled import build_lite0

    torch.manual_seed(0)
    buf = io.BytesIO()
    torch.save(build_lite0(3).state_dict(), buf)
    at = _app()
    at.sidebar.selectbox(key="model_choice").set_value("own").run()
    at.sidebar.selectbox[1].set_value("efficientnet_lite0")
    at.sidebar.number_input[0].set_value(3)
    at.sidebar.file_uploader[0].upload("mine.pth", buf.getvalue(), "application/octet-stream")
    at.sidebar.file_uploader[1].upload("labels.txt", b"cat\ndog\nhorse\n", "text/plain")
    at.run()
    _no_traceback(at)
    assert any("mine.pth" in s.value.replace("\\", "") for s in at.success)  # the name, escaped for Markdown
    labels = at.selectbox(key=next(k for k in at.session_state if str(k).startswith("target:upload"))).options
    assert len(labels) == 3 and labels[0].startswith(("cat", "dog", "horse"))


def test_pickled_checkpoint_is_refused_in_the_ui():
    buf = io.BytesIO()
    torch.save(torch.nn.Linear(2, 2), buf)
    at = _app()
    at.sidebar.selectbox(key="model_choice").set_value("own").run()
    at.sidebar.file_uploader[0].upload("evil.pth", buf.getvalue(), "application/octet-stream")
    at.run()
    _no_traceback(at)
    assert any("pickled" in e.value for e in at.error)


def test_rerun_is_served_from_cache():
    at = _app()
    first = [c.value for c in at.caption if " s · " in c.value]
    at.run()
    assert [c.value for c in at.caption if " s · " in c.value] == first  # same timings: nothing recomputed


def test_methods_page_lists_explainers_metrics_and_analyses():
    from xai_core import metrics
    from xai_core.catalogue import ANALYSES

    at = _app()
    at.switch_page("views/methods.py").run()
    _no_traceback(at)
    assert [t.label for t in at.tabs] == ["Explainers", "Metrics", "Sanity checks, dataset debugging and concepts"]
    assert len(at.dataframe) == 2
    assert len(at.expander) == len(xai_core.list_explainers()) + len(metrics.list_metrics()) + 2  # + the sidebar's two
    assert any("SpRAy" in m.value and "1902.10178" in m.value for m in at.markdown) and len(ANALYSES) >= 8
    assert any("vs Quantus 0.6" in m.value and "TopKIntersection" in m.value for m in at.markdown)
    assert any("Spearman" in m.value and "resolution" in m.value.lower() for m in at.markdown)
    concepts = at.dataframe[1].value.set_index("Analysis")  # the concept methods, global explanations
    for title, paper in (("CRAFT concept discovery", "2211.10154"), ("P-ClArC / A-ClArC", "1912.11425"),
                         ("TCAV", "1711.11279")):
        assert concepts.loc[title, "Taxonomy"].startswith("global")
        assert any(title in m.value and paper in m.value for m in at.markdown)


def test_lime_and_rise_render_with_small_sample_counts():
    at = _app()
    # Set the sample counts before the widgets exist, so the first run is not one at the (slow) defaults.
    at.session_state["param:efficientnet_lite0:lime:samples"] = 100
    at.session_state["param:efficientnet_lite0:rise:masks"] = 100
    at.multiselect(key="explainers").set_value(["lime", "rise"]).run()
    assert at.slider(key="param:efficientnet_lite0:lime:samples").value == 100
    _no_traceback(at)
    assert not at.error, [e.value for e in at.error]
    assert len(at.get("plotly_chart")) == 3
    assert sum(" s · " in c.value for c in at.caption) == 2
    assert any("100 masks" in c.value for c in at.caption)
    assert any(e.label.startswith("Superpixels") for e in at.expander)  # LIME's superpixel figure


def test_stop_skips_maps_not_yet_computed_and_resume_computes_them():
    """A Stop click mid-run stores the request's signature (AppTest cannot click during a run, so the test
    stores it as the click would); the rerun then skips maps not computed yet, and Resume computes them."""
    from xai_core import images

    digest = images.image_digest(images.downscale(images.load_sample("Chelsea the cat"), 1024))
    at = _app()
    at.multiselect(key="explainers").set_value(["gradcam", "rise"])
    at.number_input(key="seed").set_value(7)
    at.session_state["param:efficientnet_lite0:rise:masks"] = 100  # keeps the Resume run short
    keys = tuple(xai_core.ExplainRequest.make(m, 285, p, 7).key for m, p in (("gradcam", {}), ("rise", {"masks": 100})))
    at.session_state["stopped"] = ("efficientnet_lite0", digest, xai_core.RunOptions().result_key, keys)
    at.run()
    _no_traceback(at)
    assert any("Stopped" in w.value for w in at.warning)
    assert any(c.value.endswith("stopped") for c in at.caption)
    at.button(key="resume").click().run()
    _no_traceback(at)
    assert not any("Stopped" in w.value for w in at.warning)
    assert sum(" s · " in c.value for c in at.caption) == 2


def _small_metrics(at: AppTest) -> None:
    """Small curve settings, set before the widgets exist so that no run uses the (slower) defaults."""
    for mid in ("deletion", "insertion"):
        at.session_state[f"metric:{mid}:steps"] = 6
    for mid in ("aopc_morf", "aopc_lerf"):
        at.session_state[f"metric:{mid}:steps"] = 4
        at.session_state[f"metric:{mid}:patch"] = 32


def test_evaluate_page_runs_curves_for_two_explainers_and_shows_the_table():
    at = _app()
    _small_metrics(at)
    at.session_state["eval_explainers"] = ["gradcam", "gradient"]
    at.switch_page("views/evaluate.py").run()
    _no_traceback(at)
    assert not at.error, [e.value for e in at.error]
    table = at.dataframe[0].value
    assert set(table["map"]) == {"Grad-CAM", "Gradient (saliency)", "Random map", "Centre Gaussian", "Edge detector (Sobel)"}
    assert list(table["mean rank"]) == sorted(table["mean rank"])  # the ranking: best mean rank first
    assert {"Deletion AUC ↓", "Insertion AUC ↑", "AOPC MoRF ↑", "Pointing hit ↑", "IoU ↑"} <= set(table.columns)
    assert table["Deletion AUC ↓"].between(0, 1).all()
    assert at.selectbox(key="eval_reference").value == "black"  # the reference is a visible setting
    stability = [m.value for m in [*at.success, *at.warning] if "ranking by AOPC MoRF" in m.value]
    assert len(stability) == 1 and "black" in stability[0] and "noise" in stability[0]
    assert len(at.get("plotly_chart")) == 5  # the box figure + one curve per curve metric (deletion, insertion, AOPC ×2)
    assert any(d.label.startswith("⬇️ Download the table") for d in at.get("download_button"))
    assert any(d.label.startswith("⬇️ Report (HTML") for d in at.get("download_button"))
    # The box typed in is what the localisation metrics use: a box on the image's top-left corner only.
    for k, v in zip(("x0", "y0", "x1", "y1"), (0, 0, 40, 40), strict=True):
        at.number_input(key=f"eval_box:{at.session_state['xai_choice']['digest']}:{k}").set_value(v)
    at.run()
    _no_traceback(at)
    table = at.dataframe[0].value
    assert (table[table["kind"] == "explainer"]["Pointing hit ↑"] == 0).all()  # Chelsea's face is not in that corner
    assert not any("covers" in w.value for w in at.warning)
    for k, v in zip(("x0", "y0", "x1", "y1"), (0, 0, 400, 280), strict=True):  # most of the image: a warning
        at.number_input(key=f"eval_box:{at.session_state['xai_choice']['digest']}:{k}").set_value(v)
    at.run()
    assert any("The box covers 83% of the image" in w.value for w in at.warning)


def test_evaluate_over_the_samples_gives_mean_and_std():
    at = _app()
    _small_metrics(at)
    at.session_state["eval_explainers"] = ["gradcam"]
    at.switch_page("views/evaluate.py").run()
    at.multiselect(key="set_explainers").set_value(["gradcam"])
    at.multiselect(key="set_metrics").set_value(["deletion", "pointing_game"])
    at.run()
    at.button(key="set_run").click().run()
    _no_traceback(at)
    summary = at.dataframe[1].value
    assert list(summary["map"])[0] == "Grad-CAM" and "±" in summary["Deletion AUC ↓"].iloc[0]
    assert "(n=5)" in summary["Pointing hit ↑"].iloc[0]  # five samples have (tight) boxes


def test_sanity_page_runs_a_cascade_over_seeds_and_shows_grid_curves_verdicts_and_random_logit():
    at = _app()
    # Small settings before the widgets exist, so the first run is not one at the defaults (4 explainers, 3 seeds).
    at.session_state["sanity_explainers"] = ["gradient", "gradcam"]
    at.session_state["sanity_stages"] = 2
    at.session_state["sanity_seeds"] = 2
    at.switch_page("views/sanity.py").run()
    at.button(key="sanity_run").click().run()
    _no_traceback(at)
    assert not at.error, [e.value for e in at.error]
    frames = [d.value for d in at.dataframe]
    table = next(f for f in frames if "Spearman |·| (last)" in f.columns)
    assert list(table["map"]) == ["Gradient (saliency)", "Grad-CAM", "Edge detector (Sobel)"]
    assert table["verdict"].str.contains("ρ").all() and table["verdict"].str.contains("of 2 seeds").all()
    assert table["Spearman |·| (last)"].str.match(r"-?\d\.\d\d \[").all()  # median [range] over the seeds
    assert any("no resampling" in c.value for c in at.caption)  # the measure and the resolution are stated
    assert len(at.get("plotly_chart")) == 4  # one similarity curve per measure
    assert len(at.get("image")) >= 9  # 3 rows × 3 stages
    assert any(d.label.startswith("⬇️ Download the grid") for d in at.get("download_button"))
    assert any(d.label.startswith("⬇️ Report (HTML") for d in at.get("download_button"))
    at.segmented_control(key="sanity_part").set_value("random_logit").run()
    at.button(key="sanity_logit_run").click().run()
    _no_traceback(at)
    logit = next(d.value for d in at.dataframe if "Spearman |·| median" in d.value.columns)
    assert list(logit["map"]) == ["Gradient (saliency)", "Grad-CAM"] and logit["verdict"].str.contains("class").all()
    assert any("1912.09818" in c.value for c in at.caption)  # the random-logit check's paper
    assert len(at.get("image")) >= 6  # 2 rows × (original + 2 random classes)
    classes = [c.value for c in at.caption if c.value.startswith("Explained:")]
    at.number_input(key="sanity_seed").set_value(5).run()  # the seeds are part of the cache keys: new draws
    assert at.button(key="sanity_logit_run")  # not computed yet: the button again
    at.button(key="sanity_logit_run").click().run()
    _no_traceback(at)
    assert [c.value for c in at.caption if c.value.startswith("Explained:")] != classes
    assert any("seeds 5, 6" in c.value for c in at.caption)


def test_attack_tab_runs_and_reports_success_and_defence():
    at = _app()
    at.session_state["sanity_part"] = "attack"
    at.switch_page("views/sanity.py").run()
    at.slider(key="attack_steps").set_value(10)
    at.button(key="attack_run").click().run()
    _no_traceback(at)
    assert not at.error, [e.value for e in at.error]
    labels = [m.label for m in at.metric]
    assert labels[0] == "Distance to the target" and labels[1].startswith("Attack success")
    assert labels[2].startswith("Success against softplus(β=2)")


class _Spy:
    """Counts calls to a function (and keeps their keyword arguments), then calls it."""

    def __init__(self, fn, **override):  # noqa: ANN001, ANN003
        self.fn, self.override, self.calls = fn, override, []

    def __call__(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN204
        self.calls.append(kwargs)
        return self.fn(*args, **{**kwargs, **self.override})


def _spied_sanity(monkeypatch) -> dict[str, _Spy]:  # noqa: ANN001
    from xai_core import sanity
    from xai_core.workbench import Workbench

    spies = {n: _Spy(getattr(sanity, n)) for n in ("model_randomisation", "random_logit")}
    spies["manipulate"] = _Spy(sanity.manipulate, steps=1)  # one Adam step: the wiring, not the attack
    spies["explain_tensor"] = _Spy(Workbench.explain_tensor)
    for n, spy in spies.items():
        if n != "explain_tensor":
            monkeypatch.setattr(sanity, n, spy)
    monkeypatch.setattr(Workbench, "explain_tensor", lambda self, *a, **k: spies["explain_tensor"](self, *a, **k))
    return spies


def _small_sanity() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["sanity_explainers"] = ["gradient", "guided_backprop"]
    at.session_state["sanity_stages"] = 2
    at.session_state["sanity_seeds"] = 1
    return at


def test_sanity_page_computes_nothing_until_asked_and_each_part_only_when_opened(monkeypatch):
    spies = _spied_sanity(monkeypatch)
    at = _small_sanity()
    at.switch_page("views/sanity.py").run()
    _no_traceback(at)
    assert all(not s.calls for s in spies.values()), {n: len(s.calls) for n, s in spies.items()}  # no explainer ran
    cost = next(i.value for i in at.info if i.value.startswith("Not computed yet"))
    assert "6 maps" in cost and "model passes" in cost  # 2 explainers × (trained + 2 stages × 1 seed), before a run
    at.button(key="sanity_run").click().run()
    _no_traceback(at)
    assert len(spies["model_randomisation"].calls) == 1 and not spies["random_logit"].calls
    ran = len(spies["explain_tensor"].calls)
    assert ran == 6
    at.run()  # a rerun: served from the cache
    assert len(spies["model_randomisation"].calls) == 1 and len(spies["explain_tensor"].calls) == ran
    at.segmented_control(key="sanity_part").set_value("random_logit").run()
    _no_traceback(at)
    assert not spies["random_logit"].calls and at.button(key="sanity_logit_run")  # opened: the cost and a button
    assert any("at this session's last measured speed" in i.value for i in at.info)  # timed from the first run
    assert at.multiselect(key="sanity_explainers").value == ["gradient", "guided_backprop"]  # settings kept
    at.button(key="sanity_logit_run").click().run()
    _no_traceback(at)
    assert len(spies["random_logit"].calls) == 1 and len(spies["model_randomisation"].calls) == 1
    at.segmented_control(key="sanity_part").set_value("randomisation").run()
    _no_traceback(at)
    assert len(spies["model_randomisation"].calls) == 1 and at.session_state["sanity_stages"] == 2
    assert any(c.value.startswith("Median p(class) per stage") for c in at.caption)  # the cached grid, no button
    assert not spies["manipulate"].calls


def test_sanity_page_explains_the_sessions_class_not_the_top_one(monkeypatch):
    from ui import state

    spies = _spied_sanity(monkeypatch)
    at = _small_sanity()
    at.switch_page("views/sanity.py").run()
    ctx = at.session_state[state.CONTEXT]
    assert int(at.selectbox(key=f"sanity_target:{ctx.model_key}:{ctx.digest}").value) == 285  # top-1: Egyptian cat
    at.session_state[state.TARGETS] = {(ctx.model_key, ctx.digest): 281}  # 'tabby', as if picked on Explain
    at.run()
    assert int(at.selectbox(key=f"sanity_target:{ctx.model_key}:{ctx.digest}").value) == 281
    at.button(key="sanity_run").click().run()
    _no_traceback(at)
    assert spies["model_randomisation"].calls[-1]["target"] == 281
    assert any(s.value == "Maps for “tabby” as the weights are destroyed" for s in at.subheader)
    at.segmented_control(key="sanity_part").set_value("random_logit").run()
    at.button(key="sanity_logit_run").click().run()
    _no_traceback(at)
    assert spies["random_logit"].calls[-1]["target"] == 281
    assert any(c.value.startswith("Explained: **tabby**") for c in at.caption)
    at.segmented_control(key="sanity_part").set_value("attack").run()
    at.button(key="attack_run").click().run()
    _no_traceback(at)
    assert spies["manipulate"].calls[-1]["target"] == 281
    assert any("p(tabby)" in str(i.proto) for i in at.get("image"))


def test_lab_page_shows_the_shortcut_and_spray():
    at = _app()
    at.switch_page("views/lab.py").run()
    _no_traceback(at)
    assert not at.error, [e.value for e in at.error]
    values = {m.label: m.value for m in at.metric}
    assert values["Accuracy on horses without the tag"] == "0%"
    assert values["Non-horses called horse once tagged"] == "100%"
    assert any("on the tag" in m.value for m in at.markdown)
    assert at.dataframe and at.get("plotly_chart")
    assert any("Tagged images among the 10 most helpful: **10/10**" in m.value for m in at.markdown)


def test_lab_model_manipulation_section_runs():
    at = _app()
    at.switch_page("views/lab.py").run()
    at.button(key="lab_fool").click().run()
    _no_traceback(at)
    assert not at.error, [e.value for e in at.error]
    labels = [m.label for m in at.metric]
    assert "Accuracy before" in labels and "Accuracy after" in labels
    assert any("mass in the corner" in m.value for m in at.markdown)


def _lab(part: str) -> AppTest:
    at = _app()
    at.switch_page("views/lab.py").run()
    at.button_group(key="lab_part").set_value(part).run()
    _no_traceback(at)
    return at


def test_lab_imagenet_w_part_shows_the_carton_shift_and_the_maps():
    at = _lab("imagenet_w")
    assert not at.error, [e.value for e in at.error]
    assert any("raises p(carton) on **7 of 7** images" in m.value for m in at.markdown)
    assert len(at.dataframe) == 2 and at.get("plotly_chart")  # per image, and mass in the box over all images
    assert any(d.label.startswith("⬇️ Download the table") for d in at.get("download_button"))


def test_lab_own_data_runs_as_a_background_job_and_refuses_a_broken_zip():
    at = _lab("own")
    at.sidebar.selectbox(key="model_choice").set_value("lab_horse_cnn").run()
    at.file_uploader(key="own_zip").upload("data.zip", b"PK\x03\x04 broken", "application/zip").run()
    assert any("not a readable zip" in e.value for e in at.error)
    at.file_uploader(key="own_zip").clear().run()
    at.toggle(key="own_example").set_value(True).run()
    assert not at.error, [e.value for e in at.error]
    at.button(key="own_data_job_start").click().run()
    _no_traceback(at)
    job = at.session_state["own_data_job"]
    assert job.wait(300).done and job.error is None, job.error
    at.run()
    _no_traceback(at)
    assert any("Explaining your data finished" in c.value for c in at.caption)
    assert len(at.dataframe) >= 3 and at.get("plotly_chart")  # summary, per class, per image; SpRAy eigenvalues
    assert any(d.label.startswith("⬇️ Download per-image results") for d in at.get("download_button"))


def test_lab_roar_runs_in_the_background_and_stops():
    at = _lab("horse")
    at.button(key="lab_roar_job_start").click().run()
    job = at.session_state["lab_roar_job"]
    assert not job.done and at.get("progress")
    at.button(key="lab_roar_job_stop").click().run()
    assert job.wait(300).done and job.cancelled
    at.run()
    assert any("ROAR was stopped" in w.value for w in at.warning)
