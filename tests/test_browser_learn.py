"""Issue 15 in headless Chromium: a copied link reproduces the maps in a fresh browser, the HTML report works with
the network blocked, presentation mode hides the controls. The lab CNN (64×64) keeps every run fast on a CPU.

Screenshots go to tests/artifacts/ (learn_*.png).
"""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest
from browser_helpers import (  # noqa: F401 - server_fixture is the fixture `server`
    ARGS,
    ARTIFACTS,
    CHROMIUM,
    NEEDS_CHROMIUM,
    _pick,
    _selected,
    _wait_idle_with,
    server_fixture,
)
from helpers import f32_tol

pytestmark = [pytest.mark.browser, NEEDS_CHROMIUM]

VIEWPORT = {"width": 1500, "height": 1300}
# A view a link opens directly: the lab CNN, two cheap maps and a stochastic one with changed parameters and seed.
VIEW = ("/?model=lab_horse_cnn&sample=Chelsea+the+cat&explainers=gradcam%2Cguided_backprop%2Csmoothgrad"
        "&p=smoothgrad.samples%3D10&seed=3")


def _settle(page, text: str, url_has: str = "", timeout_s: float = 120) -> None:
    """Wait until the URL matches the pattern ``url_has`` (the widget's change reached the script) and the run is
    over."""
    deadline = time.time() + timeout_s
    while not re.search(url_has, page.url) and time.time() < deadline:
        page.wait_for_timeout(300)  # (sync Playwright reads events only inside its calls: time.sleep would freeze page.url)
    assert re.search(url_has, page.url), f"{url_has!r} never reached the URL: {page.url}"
    _wait_idle_with(page, text, timeout_s)


def _download(page, button: str, path) -> None:  # noqa: ANN001
    with page.expect_download(timeout=60_000) as info:
        page.get_by_role("button", name=button).click()
    info.value.save_as(str(path))


def _maps(path) -> tuple[dict[str, np.ndarray], dict]:  # noqa: ANN001
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        return {k: z[k] for k in z.files if k != "meta"}, meta


def test_a_copied_link_opens_the_same_maps_in_a_fresh_browser(server, tmp_path):
    """Pick explainers, a parameter, the seed and the class with the widgets; the link the page offers, opened in a
    new browser context (a new session, no cookies), gives the same raw maps."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.goto(server + "/?model=lab_horse_cnn", wait_until="domcontentloaded")
        _settle(page, "Explaining", "explainers=")
        page.get_by_role("button", name="Remove Integrated Gradients").click()
        _settle(page, "Explaining", "explainers=gradcam%2Cguided_backprop($|&)")
        box = page.get_by_role("combobox", name="Explainers")
        box.click()
        box.fill("SmoothGrad")
        page.get_by_role("option").filter(has_text="SmoothGrad").first.click()
        page.keyboard.press("Escape")
        _settle(page, "Explaining", "guided_backprop%2Csmoothgrad")
        page.get_by_text("⚙️ SmoothGrad").click()
        _pick(page, "Aggregation", "squared")
        _settle(page, "Explaining", "smoothgrad.mode%3Dsquared")
        page.get_by_role("slider", name="Samples").focus()
        for _ in range(15):  # 25 -> 10 noisy samples
            page.keyboard.press("ArrowLeft")
        _settle(page, "Explaining", "smoothgrad.samples%3D10")
        page.get_by_text("Display and seed").click()
        seed = page.get_by_label("Seed (stochastic methods)")
        seed.fill("7")
        seed.press("Enter")
        _settle(page, "Explaining", "seed=7")
        top = _selected(page, "Class to explain")
        other = "other" if top.startswith("horse") else "horse"
        index = 1 if other == "horse" else 0  # the lab CNN's classes: other #0, horse #1
        _pick(page, "Class to explain", f"{other} · #")
        _settle(page, f"Explaining {other}", f"target={index}")
        page.get_by_text("Copy a link to this view").click()
        link = page.locator("[data-testid='stCode']").last.inner_text().strip()
        assert link.startswith(server) and "seed=7" in link and "smoothgrad.samples%3D10" in link, link
        _download(page, "⬇️ Raw maps (.npz)", tmp_path / "a.npz")
        page.screenshot(path=str(ARTIFACTS / "learn_link_source.png"))

        fresh = browser.new_context(viewport=VIEWPORT).new_page()
        fresh.goto(link, wait_until="domcontentloaded")
        _settle(fresh, f"Explaining {other}")
        assert _selected(fresh, "Class to explain").startswith(f"{other} · #")
        _download(fresh, "⬇️ Raw maps (.npz)", tmp_path / "b.npz")
        fresh.screenshot(path=str(ARTIFACTS / "learn_link_opened.png"))
        browser.close()

    (a, meta_a), (b, meta_b) = _maps(tmp_path / "a.npz"), _maps(tmp_path / "b.npz")
    assert meta_a == meta_b
    sg = meta_b["maps"]["SmoothGrad"]
    assert (sg["params"]["samples"], sg["params"]["mode"], sg["seed"]) == (10, "squared", 7), sg
    assert {m["target"] for m in meta_b["maps"].values()} == {index}
    # the maps, and SmoothGrad's per-pixel uncertainty (a refining explainer: bootstrap over its samples, issue 23)
    assert sorted(a) == sorted(b) == ["Grad_CAM", "Guided_Backprop", "SmoothGrad", "SmoothGrad__uncertainty"]
    assert np.abs(b["SmoothGrad"]).max() > 0 and np.abs(b["Guided_Backprop"]).max() > 0
    for name in a:
        assert a[name].dtype == np.float32 and a[name].shape == b[name].shape == (300, 451)
        peak = float(max(np.abs(a[name]).max(), np.abs(b[name]).max()))
        assert np.abs(a[name] - b[name]).max() <= f32_tol(peak), name


def _offline_page(browser, path, tag: str):  # noqa: ANN001
    """``path`` opened in a context that can reach nothing but local files; the requests it tried, refused."""
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    refused: list[str] = []

    def route(r) -> None:  # noqa: ANN001
        if r.request.url.startswith("file:"):
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_timeout(1000)
    page.screenshot(path=str(ARTIFACTS / f"learn_report_{tag}.png"), full_page=True)
    assert not errors, errors
    assert not refused, refused
    return page


def _images_drawn(page) -> list[int]:
    return page.eval_on_selector_all("img", "els => els.map(e => e.complete ? e.naturalWidth : 0)")


def _charts_drawn(page) -> list[bool]:
    return page.eval_on_selector_all(
        "div.chart", "els => els.map(e => e.querySelectorAll('svg.main-svg').length > 0 && "
                     "e.querySelectorAll('path.js-line').length > 0)")


def test_the_html_report_opens_offline_with_every_image_and_curve(server, tmp_path):
    from playwright.sync_api import sync_playwright

    from ui.report_button import plotly_js
    from xai_core import report

    ARTIFACTS.mkdir(exist_ok=True)
    # The same builder with curves, as the Evaluate page's report has them: the inlined plotly.js must draw offline.
    xs = [i / 10 for i in range(11)]
    curves = report.ReportData("Curves", {"id": "test"}, [], charts=[
        report.Chart("deletion", "fraction removed", "class probability",
                     [report.Series("Grad-CAM", xs, [1 - x for x in xs]), report.Series("random", xs, [1 - x * x for x in xs])]),
        report.Chart("insertion", "fraction inserted", "class probability", [report.Series("Grad-CAM", xs, xs)])])
    (tmp_path / "curves.html").write_text(report.build_html(curves, plotly_js()), encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.goto(server + VIEW, wait_until="domcontentloaded")
        _wait_idle_with(page, "Explaining")
        _download(page, "⬇️ Report (HTML, works offline)", tmp_path / "report.html")
        html = (tmp_path / "report.html").read_text(encoding="utf-8")
        assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html.split("<body>")[0]

        shown = _offline_page(browser, tmp_path / "report.html", "explain")
        widths = _images_drawn(shown)
        assert len(widths) == 5 and min(widths) > 0, widths  # the input, three maps and SmoothGrad's uncertainty
        assert _charts_drawn(shown) == [True] * html.count('class="chart"')
        text = shown.inner_text("body")
        for expected in ("Grad-CAM", "Guided Backprop", "SmoothGrad", "Horse-watermark lab CNN", "Seeds", "torch"):
            assert expected in text, expected

        drawn = _offline_page(browser, tmp_path / "curves.html", "curves")
        assert _charts_drawn(drawn) == [True, True]
        browser.close()


def _visible(page, locator) -> bool:  # noqa: ANN001
    box = locator.bounding_box() if locator.count() else None
    return bool(box and box["width"] > 0 and box["height"] > 0 and locator.is_visible())


def test_presentation_mode_hides_the_sidebar_and_the_controls(server):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.goto(server + VIEW, wait_until="domcontentloaded")
        _wait_idle_with(page, "Explaining")
        sidebar = page.locator("section[data-testid='stSidebar']")
        controls = {"sidebar": sidebar,
                    "explainers": page.get_by_role("combobox", name="Explainers").first,
                    "class": page.get_by_role("combobox", name="Class to explain (type to search)").first,
                    "parameters": page.get_by_text("⚙️ SmoothGrad").first,
                    "downloads": page.get_by_role("button", name="⬇️ Raw maps (.npz)").first,
                    "header": page.locator("header[data-testid='stHeader']")}
        deadline = time.time() + 60  # the last elements of a run (the downloads) can arrive after the caption waited for
        while not all(_visible(page, c) for c in controls.values()) and time.time() < deadline:
            page.wait_for_timeout(500)
        assert all(_visible(page, c) for c in controls.values()), {k: _visible(page, c) for k, c in controls.items()}
        narrow = page.locator(".stPlotlyChart").last.bounding_box()["width"]

        page.get_by_text("🎤 Presentation mode").click()
        _settle(page, "Grad-CAM", "present=1")
        assert {k: _visible(page, c) for k, c in controls.items()} == dict.fromkeys(controls, False)
        maps = page.locator(".stPlotlyChart >> visible=true")
        assert maps.count() == 3  # the maps; the top-5 chart is one of the controls
        wide = [maps.nth(i).bounding_box() for i in range(3)]
        assert all(b and b["width"] > narrow * 1.1 for b in wide), (narrow, wide)
        assert page.get_by_text("🎤 Presentation mode").is_visible()  # the way back
        page.mouse.move(5, 5)
        page.screenshot(path=str(ARTIFACTS / "learn_present.png"))

        page.get_by_text("🎤 Presentation mode").click()
        _settle(page, "Grad-CAM")
        deadline = time.time() + 30
        while "present=1" in page.url and time.time() < deadline:
            page.wait_for_timeout(300)  # (sync Playwright reads events only inside its calls: time.sleep would freeze page.url)
        assert "present=1" not in page.url
        # the click's rerun has only started when the URL changes: wait for it to draw the controls again
        _wait_idle_with(page, "Grad-CAM")
        deadline = time.time() + 60
        while not all(_visible(page, c) for c in controls.values()) and time.time() < deadline:
            page.wait_for_timeout(500)
        assert all(_visible(page, c) for c in controls.values()), {k: _visible(page, c) for k, c in controls.items()}
        browser.close()
