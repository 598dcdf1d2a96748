"""Issue 22 in the real app (headless Debian Chromium): Evaluate with a new metric picked from the menu (ROAD), then
the set tab's meta-evaluation of the metrics as a background job, its verdict table and, back on the first tab, the
ranking with the failing metrics greyed. Screenshots in tests/artifacts. Skipped when /usr/bin/chromium is absent."""

from __future__ import annotations

import re

import pytest
from browser_helpers import (  # noqa: F401 - server_fixture is the fixture `server`
    ARGS,
    ARTIFACTS,
    CHROMIUM,
    NEEDS_CHROMIUM,
    _no_error,
    _wait_idle_with,
    server_fixture,
)

pytestmark = [pytest.mark.browser, NEEDS_CHROMIUM]



def test_evaluate_with_road_then_the_meta_evaluation_verdicts(server):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1600})
        page.goto(server + "/evaluate?model=lab_horse_cnn&explainers=gradient,gradcam", wait_until="domcontentloaded")
        _wait_idle_with(page, "Ranking for")
        page.get_by_text("⚙️ Metric settings").click()
        metrics_box = page.get_by_role("combobox", name=re.compile("^Metrics")).first
        metrics_box.click()
        page.get_by_role("option").filter(has_text="ROAD MoRF").first.click()
        page.keyboard.press("Escape")
        _wait_idle_with(page, "ROAD, most relevant first")  # its curve's tab under the ranking: the page re-ran
        page.get_by_text("⚙️ Metric settings").click()  # fold the settings: the ranking and curves in view
        page.get_by_role("tab", name="ROAD, most relevant first").click()
        _wait_idle_with(page, "Ranking for")
        _no_error(page)
        page.mouse.move(5, 5)
        page.screenshot(path=str(ARTIFACTS / "evaluate_road.png"), full_page=True)
        page.get_by_role("tab", name=re.compile("Over a set of images")).click()
        _wait_idle_with(page, "Which metrics can be trusted")
        k = page.get_by_role("spinbutton", name="Perturbations per test (K)")
        k.fill("1")
        k.press("Enter")
        n = page.get_by_role("spinbutton", name="Images", exact=True)
        n.fill("4")
        n.press("Enter")
        _wait_idle_with(page, "Runs the set's evaluation 5 times over 4 images")
        page.get_by_role("button", name="🔬 Meta-evaluate the metrics").click()
        _wait_idle_with(page, "Meta-evaluation finished in")
        _wait_idle_with(page, "verdict")
        _no_error(page)
        page.mouse.move(5, 5)
        page.screenshot(path=str(ARTIFACTS / "evaluate_meta.png"), full_page=True)
        browser.close()
