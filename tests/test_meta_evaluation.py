"""Metric meta-evaluation after MetaQuantus (Hedström et al., TMLR 2023) on the lab CNN: a metric made unreliable on
purpose is failed with its sentence while a reliable one passes; our IAC/IEC/MC equal metaquantus's on shared score
matrices (float64); the shared model is never changed; a seed gives the same result twice."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from xai_core import Cancelled, ExplainerError, RunOptions, Workbench, get_explainer, lab, metrics
from xai_core.jobs import Job
from xai_core.metrics import meta_stats
from xai_core.metrics import registry as metric_registry
from xai_core.metrics.deletion import auc, fractions
from xai_core.metrics.meta_evaluation import meta_evaluate
from xai_core.registries import Registry

EXPLAINERS = ["gradient", "gradcam", metrics.RANDOM]
PARAMS = {"insertion": {"steps": 16}}


def map_blind(model, x, small_map, *, seed: int = 0) -> metrics.Plan:
    """Deletion to black in a seeded random order that never looks at the map (unreliable on purpose)."""
    xs, counts = fractions(16, small_map.numel())
    return metrics.Plan(metrics.order_of(torch.zeros_like(small_map), seed), counts, x,
                        model.normalise(x.new_zeros(x.shape)), xs, auc)


def constant(small_map) -> float:
    """Always 0.5, whatever the map (unreliable on purpose)."""
    return 0.5


@pytest.fixture(scope="module")
def scratch():
    """The real metrics plus two unreliable test-only ones, in a registry that replaces the real one for this module."""
    reg = Registry("metric", ExplainerError)
    for spec in metric_registry.METRICS:
        reg.add(spec)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(metric_registry, "METRICS", reg)
        metrics.metric("map_blind", title="Map-blind deletion", kind="curve", better="lower", summary="test only",
                       reference="test only")(map_blind)
        metrics.metric("constant", title="Constant", kind="map", better="higher", summary="test only",
                       reference="test only")(constant)
        yield reg


@pytest.fixture(scope="module")
def run(scratch):
    model = lab.load_lab_model("cpu")
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    data = lab.make_dataset(8, seed=11)
    report = meta_evaluate(Workbench(model), list(data.images), None, EXPLAINERS,
                           ["insertion", "map_blind", "constant"], perturbations=3, seed=0, params=PARAMS)
    return model, before, report


def test_unreliable_metrics_are_failed_and_a_reliable_one_passes(run) -> None:
    _model, _before, report = run
    assert report.scores.shape == (3, 3, 8) and report.explainers[2] == metrics.RANDOM
    blind, const, ins = report.verdict("map_blind"), report.verdict("constant"), report.verdict("insertion")
    # The map-blind metric scores every explainer alike on every image: no ranking to keep under minor noise.
    assert blind.passed is False and "no ranking to keep" in blind.reason and blind.mean("iec_nr") == 0.0
    assert const.passed is False and "hardly reacts" in const.reason
    assert const.mean("iac_ar") == 0.0 and const.mean("iec_ar") == 0.0 and const.mean("iac_nr") == 1.0
    assert ins.passed is True and ins.mc > meta_stats.THRESHOLD and "MC" in ins.reason
    assert ins.mean("iec_nr") > 0.9 and ins.mean("iec_ar") > 0.9  # keeps its ranking; disruption makes it worse
    assert report.tau_metrics == ("insertion",) and report.tau.shape == (1, 1)
    rows = report.rows()
    assert [r["metric"] for r in rows] == ["Insertion AUC", "Map-blind deletion", "Constant"]
    assert {"iac_nr", "iac_ar", "iec_nr", "iec_ar", "MC", "passed", "why"} <= set(rows[0])


def test_the_shared_model_is_unchanged(run) -> None:
    model, before, report = run
    after = model.module.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    # ...while the disruptive model noise did change predictions (it ran on copies).
    assert report.counted["Model Adversary Test"].any() and report.counted["Model Resilience Test"].all()


def test_agreement_with_metaquantus_on_the_runs_matrices(run) -> None:
    """Per draw, metaquantus's static methods on the same insertion scores (continuous, so tie-free) and indices."""
    from metaquantus import MetaEvaluation as ME

    _model, _before, report = run
    q = report.scores[0]
    assert not meta_stats._tied(q).any()
    compared = 0
    for test, q_hats in report.perturbed.items():
        adversary = "Adversary" in test
        for k, counted in enumerate(report.counted[test]):
            if counted.sum() < 2:  # metaquantus cannot test fewer than two images (it reports p = 0 or NaN)
                continue
            q_hat = q_hats[k, 0]
            for e in range(len(q)):
                ours = meta_stats.iac(q[e], q_hat[e], counted, adversary)
                assert ours == pytest.approx(ME.compute_iac_score(q[e], q_hat[e], counted, test), abs=1e-12)
            if adversary:  # insertion: higher is better; None is the package's working spelling of that
                theirs = ME.compute_iec_adversary(q, q_hat, counted, score_direction=None)
                assert meta_stats.iec_adversary(q, q_hat, counted, "higher") == pytest.approx(theirs, abs=1e-12)
            else:
                theirs = ME.compute_iec_resilience(q, q_hat, counted)
                assert meta_stats.iec_resilience(q, q_hat, counted) == pytest.approx(theirs, abs=1e-12)
            compared += 1
    assert compared >= 8


def _metaquantus_mc(q, q_hats, counted, direction):
    """MetaQuantus's own aggregation (IAC/IEC per draw, means, MC) on given matrices, one iteration."""
    from metaquantus import MetaEvaluation

    names = ["Model Resilience Test", "Model Adversary Test"]
    methods = [f"m{e}" for e in range(len(q))]
    me = MetaEvaluation(test_suite=dict.fromkeys(names), xai_methods=dict.fromkeys(methods, {}), iterations=1,
                        nr_perturbations=q_hats[0].shape[0], write_to_file=False)
    me.results_y_preds = np.zeros(q.shape[1], int)
    me.results_eval_scores = {t: {m: q[e] for e, m in enumerate(methods)} for t in names}
    me.results_eval_scores_perturbed = {t: {0: {m: q_hats[i][:, e] for e, m in enumerate(methods)}}
                                        for i, t in enumerate(names)}
    me.results_indices_perturbed = {t: {0: counted[i]} for i, t in enumerate(names)}
    me.run_intra_analysis()
    me.run_inter_analysis(score_direction=direction)
    out = me.run_meta_consistency_analysis()["Model"]
    return {k: float(v[0]) for k, v in out["consistency_scores"].items()}, float(out["MC_mean"])


@pytest.mark.parametrize("better", ["lower", "higher"])
def test_iac_iec_mc_equal_metaquantus_aggregation(better) -> None:
    """One small setting (3 explainers, 12 images, K=3): equal to float64 precision. The direction: metaquantus 0.0.5
    tests ``if score_direction:`` on a string, so "higher" takes the lower-is-better branch; the paper counts a worse
    perturbed score. We match the paper: 'lower' (truthy) and None (falsy) reach the right branches; 'higher' does
    not."""
    rng = np.random.default_rng(7)
    q = rng.normal(size=(3, 12))
    q_res = q + 0.05 * rng.normal(size=(3, 3, 12))  # [draw, explainer, image]
    q_adv = q + rng.normal(0.5 if better == "lower" else -0.5, 1.0, size=(3, 3, 12))
    c_res, c_adv = rng.random((3, 12)) < 0.8, rng.random((3, 12)) < 0.6
    c_res[:, :2] = c_adv[:, :2] = True  # at least two images per draw
    ours = meta_stats.consistency(q, q_res, c_res, q_adv, c_adv, better)
    theirs, mc = _metaquantus_mc(q, [q_res, q_adv], [c_res, c_adv], "lower" if better == "lower" else None)
    assert ours.iac_nr == pytest.approx(theirs["IAC_{NR}"], abs=1e-12)
    assert ours.iac_ar == pytest.approx(theirs["IAC_{AR}"], abs=1e-12)
    assert ours.iec_nr == pytest.approx(theirs["IEC_{NR}"], abs=1e-12)
    assert ours.iec_ar == pytest.approx(theirs["IEC_{AR}"], abs=1e-12)
    assert ours.mc == pytest.approx(mc, abs=1e-12) and 0.5 < ours.mc < 1
    buggy, _ = _metaquantus_mc(q, [q_res, q_adv], [c_res, c_adv], "higher")
    if better == "higher":  # the string takes the other branch: exactly the complement (no equal scores here)
        assert buggy["IEC_{AR}"] == pytest.approx(1 - ours.iec_ar, abs=1e-12) and ours.iec_ar > 0.5
    else:
        assert buggy["IEC_{AR}"] == pytest.approx(ours.iec_ar, abs=1e-12)


def test_ties_keep_no_ranking_and_equal_scores_are_not_worse() -> None:
    """Where we differ from metaquantus on purpose: argsort keeps tied explainers in a stable order (IEC_NR = 1)."""
    from metaquantus import MetaEvaluation as ME

    q = np.full((3, 4), 0.5)
    counted = np.ones(4, bool)
    assert ME.compute_iec_resilience(q, q.copy(), counted) == 1.0
    assert meta_stats.iec_resilience(q, q.copy(), counted) == 0.0
    assert meta_stats.iec_adversary(q, q * (1 + 1e-9), counted, "higher") == 0.0  # within float32 resolution
    assert meta_stats.iac(q[0], q[0].copy(), counted, adversary=True) == 0.0  # identical: p = 1


def test_kendall_agreement_respects_each_metrics_direction() -> None:
    q = np.array([[[0.1, 0.9], [0.5, 0.5], [0.9, 0.1]]])  # [metric, explainer, image]
    tau = meta_stats.kendall_agreement(np.concatenate([q, -q, q]), ["higher", "lower", "lower"])
    assert tau[0, 1] == pytest.approx(1.0) and tau[0, 2] == pytest.approx(-1.0) and np.allclose(np.diag(tau), 1)


def test_same_seed_same_report_and_cancel_leaves_the_model_alone(scratch) -> None:
    model = lab.load_lab_model("cpu")
    data = lab.make_dataset(4, seed=2)
    args = (Workbench(model), list(data.images), [1, 0, 1, None], EXPLAINERS, ["insertion", "constant"])
    kw = {"perturbations": 1, "params": {"insertion": {"steps": 4}}}
    a, b = meta_evaluate(*args, seed=5, **kw), meta_evaluate(*args, seed=5, **kw)
    c = meta_evaluate(*args, seed=6, **kw)
    assert a.rows() == b.rows() and np.array_equal(a.scores, b.scores)
    assert all(np.array_equal(a.perturbed[t], b.perturbed[t]) for t in a.perturbed)
    assert not np.array_equal(a.perturbed["Model Resilience Test"], c.perturbed["Model Resilience Test"])
    assert a.targets[:3] == (1, 0, 1)
    before = {k: v.clone() for k, v in model.module.state_dict().items()}

    def stop(_f: float, text: str) -> None:
        if "Model Adversary" in text:
            raise Cancelled("stopped")

    with pytest.raises(Cancelled):
        meta_evaluate(*args, seed=5, progress=stop, **kw)
    assert all(torch.equal(v, model.module.state_dict()[k]) for k, v in before.items())
    with pytest.raises(ExplainerError, match="2 images or more"):
        meta_evaluate(Workbench(model), list(data.images[:1]), None, EXPLAINERS, ["insertion"])


def _show(report) -> None:
    from ui import evaluation_meta

    evaluation_meta.show(report)


def test_the_verdict_table_renders_with_failing_metrics_greyed(run) -> None:
    """The page's render function on the run's report (AppTest): one row per metric, the failing ones greyed with
    their sentence, no exception; with one passing metric there is no τ heatmap, only the sentence that says so."""
    from streamlit.testing.v1 import AppTest

    from ui import evaluation_meta

    _model, _before, report = run
    df = evaluation_meta.table(report)
    assert list(df["verdict"]) == ["✅ passes", "❌ fails", "❌ fails"] and df["why"].str.len().min() > 20
    assert set(evaluation_meta.failing(report)) == {"Map-blind deletion ↓", "Constant ↑"}
    ranking = pd.DataFrame({"map": ["a", "b"], "Insertion AUC ↑": [0.5, 0.6], "Map-blind deletion ↓": [0.2, 0.3]})
    styles = evaluation_meta.grey(ranking.style, report)._compute().ctx  # (row, col) -> [(property, value)]
    assert {c for (_r, c), props in styles.items() if ("color", "#9e9e9e") in props} == {2}
    at = AppTest.from_function(_show, args=(report,), default_timeout=30).run()
    assert not at.exception and len(at.dataframe) == 1
    assert any("Fewer than two metrics pass" in c.value for c in at.caption)
    assert any("no ranking to keep" in c.value for c in at.caption)


def _panel(items, explainers, metric_ids) -> None:
    from ui import evaluation_meta
    from ui.state import Context
    from xai_core import Workbench, lab

    ctx = Context(workbench=Workbench(lab.load_lab_model("cpu")), model_key="lab", image=items[0].image,
                  image_name="x", digest="d")
    evaluation_meta.panel(ctx, items, explainers, metric_ids, {}, {"insertion": {"steps": 4}}, references=True)


def test_the_panel_runs_the_job_and_shows_the_verdicts() -> None:
    """The page's entry point under AppTest: settings, the start button, the background job, then the table."""
    from streamlit.testing.v1 import AppTest

    data = lab.make_dataset(3, seed=4)
    items = [metrics.Item(f"i{i}", im, region=m) for i, (im, m) in enumerate(zip(data.images, data.masks, strict=True))]
    at = AppTest.from_function(_panel, args=(items, ["gradient"], ["insertion", "relevance_mass"]),
                               default_timeout=60).run()
    assert not at.exception
    at.number_input(key="meta_k").set_value(1)
    key = f"meta_eval:lab:{RunOptions().result_key}"
    at.button(key=f"{key}_start").click().run()
    job = at.session_state[key]
    job.wait(120)
    assert job.error is None and job.result is not None
    at.run()
    assert not at.exception and len(at.dataframe) == 1
    assert [v.metric for v in job.result.verdicts] == ["insertion", "relevance_mass"]
    assert job.result.explainers == (get_explainer("gradient").title, metrics.RANDOM, metrics.EDGES)


def test_the_evaluate_page_offers_the_meta_evaluation_and_greys_a_failing_metric_in_its_ranking(run) -> None:
    """Evaluate's set tab carries the meta-evaluation panel; once a meta-evaluation has run in the session, the
    single-image ranking greys the columns of the metrics that failed and says why (AppTest of the whole app)."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from ui import evaluation_meta

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=300)
    at.run()
    at.session_state["eval_explainers"] = ["gradient"]
    at.session_state["eval_metrics"] = ["insertion"]
    at.switch_page("views/evaluate.py").run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert any("Which metrics can be trusted" in s.value for s in at.subheader)
    ctx = at.session_state["xai_context"]
    _model, _before, report = run  # a finished meta-evaluation in which insertion fails (made so below)
    failed = [dataclasses.replace(v, passed=False, reason="it hardly reacts to disruptive noise") if v.metric ==
              "insertion" else v for v in report.verdicts]

    finished = dataclasses.replace(report, verdicts=tuple(failed))
    at.session_state[evaluation_meta._key(ctx)] = Job(lambda _progress: finished, "meta-evaluation").start().wait(30)
    at.run()
    assert not at.exception
    assert any("Insertion AUC ↑ is greyed: it hardly reacts" in c.value for c in at.caption)
