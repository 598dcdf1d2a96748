"""The study designer's form: the task, the images, the conditions, the design, consent — and the publishing job it
starts (predictions, items, every picture rendered once through the Workbench, then one database transaction)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

import xai_core as xc
from xai_core import study
from xai_core.batch import results
from xai_core.jobs import Progress
from xai_core.study import LAYOUTS, NONE, TASKS, pictures, sources, storage

from . import escape, runs_view, services, study_access, widgets
from .state import Context

MAX_PASSES = 40  # methods cheap enough to render every picture of a study in a minute on a CPU
SOURCES = {"lab": "Lab set: horses with a photo tag, the lab CNN (labelled; the CNN learnt the tag as a shortcut)",
           "samples": "The sample images, with the sidebar's model (no labels)",
           "zip": "A zip of class folders, with the sidebar's model (the folders are the labels)",
           "run": "A batch run: its images, labels, predictions and maps (nothing is recomputed)"}
CONSENT = ("This is a short study about how people read the explanations of an image classifier. It takes about five "
           "minutes. Your answers are recorded anonymously, with the time you take for each; nothing else about you is "
           "stored. You can stop at any time by closing the page.")


def _title(condition: str) -> str:
    return "No map" if condition == NONE else xc.get_explainer(condition).title


def _images(ctx: Context, source: str) -> tuple[xc.Workbench | None, Any] | None:
    """The workbench (None for a run) and what the pool is read from; None (with a note) until it is chosen."""
    if source == "lab":
        return xc.Workbench(services.model("lab_horse_cnn"), ctx.options), None
    if source == "samples":
        return ctx.workbench, None
    if source == "zip":
        up = st.file_uploader("Zip of class folders", type=["zip"], key="sd_zip",
                              help="One subfolder per class (cats/001.jpg, dogs/002.png …); the folder names must be "
                                   "the model's class names for the labels to count.")
        return (ctx.workbench, up.getvalue()) if up is not None else None
    names = results.list_runs(runs_view.runs_root())
    pick = st.selectbox("Batch run", names, index=None, key="sd_run", placeholder="choose a run…")
    if not pick:
        st.info("No run chosen: start one on the Runs page, or pick another source." if not names else "Choose a run.")
        return None
    try:
        return None, runs_view.open_run(pick)
    except xc.XaiError as e:
        st.error(str(e))
        return None


def form(ctx: Context) -> Callable[[Progress], tuple[str, str, str]] | None:
    """Draw the form; the publishing job's function once the choices make a study, else None."""
    name = st.text_input("Study name (participants see it)", "Do explanation maps help?", max_chars=80, key="sd_name")
    c1, c2 = st.columns(2)
    task = c1.radio("Task", list(TASKS), key="sd_task", format_func=lambda t: f"{t}: {TASKS[t]}")
    source = c2.radio("Images", list(SOURCES), key="sd_source", format_func=lambda s: SOURCES[s])
    got = _images(ctx, source)
    if got is None:
        return None
    wb, what = got
    if wb is None:  # a run: its own explainers' maps
        methods = sorted(e for e in what.table["explainer"].dropna().unique() if isinstance(e, str))
    else:
        methods = widgets.methods_within(MAX_PASSES, model=wb.model)
    default = [NONE, "gradcam" if "gradcam" in methods else methods[0]] if methods else [NONE]
    conds = st.multiselect("Conditions (2 to 4; the first is the baseline of the comparisons)", [NONE, *methods],
                           default=default, max_selections=study.design.MAX_CONDITIONS, key="sd_conditions",
                           format_func=_title)
    layout = st.radio("Design", list(LAYOUTS), key="sd_layout", format_func=lambda k: LAYOUTS[k], horizontal=True)
    n1, n2, n3, n4, n5 = st.columns(5)
    pool = n1.number_input("Items in the pool", 2, study.design.MAX_ITEMS, 12, key="sd_pool")
    per = n2.number_input("Items per participant", 1, int(pool), min(8, int(pool)), key="sd_per")
    choices = n3.number_input("Choices (forward, distinction)", 2, 4, 2, key="sd_choices")
    checks = n4.number_input("Attention checks", 0, study.design.MAX_CHECKS, 1, key="sd_checks")
    allowed = n5.number_input("Failed checks allowed", 0, study.design.MAX_CHECKS, 0, key="sd_allowed")
    consent = st.text_area("Consent text (participants read it first)", CONSENT, max_chars=study.design.CONSENT_CHARS,
                           key="sd_consent", height=120)
    asked = st.text_area("Questions asked at the start (optional, one per line, up to 3). Ask only what the study needs.",
                         "", max_chars=600, key="sd_questions", height=80)
    o1, o2, o3 = st.columns(3)
    show_score = o1.toggle("Show participants their score at the end", True, key="sd_score")
    days = o2.number_input("Days open", 1, study.design.MAX_DAYS, 14, key="sd_days")
    seed = o3.number_input("Seed (assignment, items)", 0, 2**31 - 1, 0, key="sd_seed")
    if len(conds) < 2:
        st.info("Choose at least two conditions, e.g. no map and one method.")
        return None
    labels = {c: _title(c) for c in conds}
    model = "lab_horse_cnn" if source == "lab" else (ctx.model_key if wb is not None else what.model_title)

    def job(progress: Progress) -> tuple[str, str, str]:
        progress(0.02, "the model's answers")
        if source == "lab":
            found = sources.lab_pool(wb, n=max(3 * int(pool), 24), seed=int(seed))
        elif source == "samples":
            found = sources.sample_pool(wb)
        elif source == "zip":
            found = sources.zip_pool(wb, what)
        else:
            found = sources.run_pool(what)
        items = sources.build_items(task, found, int(pool), int(seed), int(choices))
        items, used = sources.compact(items, found)
        design = study.make(name, task, conds, layout, min(int(per), len(items)), items,
                            checks=sources.build_checks(task, items, int(checks), int(seed)), consent=consent,
                            questions=asked.splitlines(), show_score=show_score, max_failed_checks=min(int(allowed), int(checks)),
                            seed=int(seed), days_open=int(days), source=SOURCES[source].split(":")[0],
                            model=str(model), labels=labels)
        pics = pictures.render_all(used, design.conditions, wb, seed=int(seed),
                                   progress=lambda f, text: progress(0.05 + 0.9 * f, text))
        progress(0.97, "saving")
        code, key = storage.publish(design, pics)
        return code, key, design.name

    return job


def published(result: tuple[str, str, str]) -> None:
    """What a finished publishing job shows: the participants' link and, once, the designer key."""
    code, key, name = result
    study_access.remember(code, key)
    st.success(f"Published “{escape.markdown(name, 80)}”. Send participants this link:")
    st.code(study_access.participant_link(code), language=None)
    st.warning("Save the study code and the designer key now: together they open the results and this study's "
               "settings, and the key is not shown again. Participants never need it.", icon="🔑")
    c1, c2 = st.columns([1, 3])
    c1.caption("Study code")
    c1.code(code, language=None)
    c2.caption("Designer key")
    c2.code(key, language=None)
