"""The Explain page with any-time maps (AppTest): a refining map is redrawn as it sharpens within one run (no rerun per
refinement), cached reruns do not recompute, the uncertainty toggle hatches the map, an automatic stop and the user's
Stop are said on the figure."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

import xai_core as xc
from ui import anytime_figures, anytime_view
from xai_core import anytime, images

APP = str(Path(__file__).resolve().parents[1] / "app.py")
RISE = "param:efficientnet_lite0:rise:masks"


def _rise_page(masks: int = 96) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state[RISE] = masks  # before the widgets exist: the first run is not one at the defaults
    at.session_state["explainers"] = ["rise"]
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _figure(at: AppTest, title: str) -> dict:
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return next(f for f in figs if f["layout"].get("title", {}).get("text", "").startswith(title))


def _counting(monkeypatch) -> dict[str, int]:
    calls = {"stream": 0, "preview": 0}
    stream, preview = xc.Workbench.explain_stream, anytime_figures.preview

    def counted_stream(self, *a, **k):
        calls["stream"] += 1
        return stream(self, *a, **k)

    def counted_preview(*a, **k):
        calls["preview"] += 1
        return preview(*a, **k)

    monkeypatch.setattr(xc.Workbench, "explain_stream", counted_stream)
    monkeypatch.setattr(anytime_figures, "preview", counted_preview)
    return calls


def test_a_refining_map_sharpens_within_one_run_is_cached_and_shows_its_uncertainty(monkeypatch):
    calls = _counting(monkeypatch)
    at = _rise_page()
    at.run()
    _ok(at)
    assert calls["stream"] == 1 and calls["preview"] >= 3  # redrawn in place, within one run of the page
    caption = next(c.value for c in at.caption if " s · " in c.value)
    assert "96 masks" in caption and "uncertainty" not in caption
    assert len(_figure(at, "RISE")["data"]) == 2  # the overlay and the hover layer
    at.run()  # a rerun: from the store, no new stream
    assert calls["stream"] == 1
    at.toggle(key="uncertainty").set_value(True).run()
    _ok(at)
    assert calls["stream"] == 1
    caption = next(c.value for c in at.caption if " s · " in c.value)
    assert anytime.bootstrap_text("masks") in caption and "Hatched" in caption
    assert [t["type"] for t in _figure(at, "RISE")["data"]] == ["image", "image", "heatmap"]  # hatching on top


def test_an_automatic_stop_is_said_on_the_figure_and_can_be_turned_off(monkeypatch):
    monkeypatch.setattr(anytime_view, "RULE", anytime.StopRule(threshold=-1.0, patience=1))  # stops at once
    at = _rise_page()
    at.run()
    _ok(at)
    title = _figure(at, "RISE")["layout"]["title"]["text"]
    assert "stopped early at 16 of 96 masks" in title
    assert any("stopped early at 16 of 96 masks" in c.value for c in at.caption)
    at.toggle(key="anytime_stop").set_value(False).run()
    _ok(at)
    assert _figure(at, "RISE")["layout"]["title"]["text"] == "RISE"  # to the end: a plain title
    assert any("96 masks" in c.value and "stopped" not in c.value for c in at.caption if " s · " in c.value)


def test_the_users_stop_keeps_the_last_refinement_and_says_so(monkeypatch):
    stream = xc.Workbench.explain_stream

    def interrupted(self, *a, **k):  # what a Stop click does to a running stream: it ends after a refinement
        for e in stream(self, *a, **k):
            yield e
            raise xc.Cancelled("stopped")

    monkeypatch.setattr(xc.Workbench, "explain_stream", interrupted)
    at = _rise_page(masks=64)
    at.run()
    assert any("RISE" in e.value for e in at.error)
    monkeypatch.setattr(xc.Workbench, "explain_stream", stream)
    digest = images.image_digest(images.downscale(images.load_sample("Chelsea the cat"), 1024))
    key = xc.ExplainRequest.make("rise", 285, {"masks": 64}, 0).key
    at.session_state["stopped"] = ("efficientnet_lite0", digest, xc.RunOptions().result_key, (key,))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "stopped by you at 8 of 64 masks" in _figure(at, "RISE")["layout"]["title"]["text"]
    assert any("stopped by you at 8 of 64 masks" in c.value for c in at.caption)
