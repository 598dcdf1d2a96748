"""Issue 23, item 4, in the real app (headless Debian Chromium): on Evaluate the ranking table and a curve chart appear
while the maps are still being scored ("k of n maps", k < n) and fill in until the full report; on Sanity the grid
appears while the randomisation runs ("k of n maps computed", k < n) with fewer cells than at the end. Screenshots of
the streaming states in tests/artifacts. Skipped when /usr/bin/chromium is absent."""

from __future__ import annotations

import re
import time

import pytest
from browser_helpers import (  # noqa: F401 - server_fixture is the fixture `server`
    ARGS,
    ARTIFACTS,
    CHROMIUM,
    NEEDS_CHROMIUM,
    _go,
    _no_error,
    _wait_idle_with,
    server_fixture,
)

pytestmark = [pytest.mark.browser, NEEDS_CHROMIUM]
EVALUATE = re.compile(r"scored so far: (\d+) of (\d+) maps")
SANITY = re.compile(r"(\d+) of (\d+) maps computed")
POLL_MS = 100


def _watch(page, pattern: re.Pattern, count: str, done: str, shot: str, share: float,  # noqa: ANN001
           timeout_s: float = 150) -> list[tuple]:
    """Poll the page until ``done`` shows, nothing streams and the app is idle: ``(seconds, k, n, elements)`` for every
    partial state seen (``elements``: how many ``count`` elements were on the page then). The first partial state with
    k ≥ ``share`` × n (else the first one) is saved as ``shot``."""
    seen: list[tuple] = []
    shot_k = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        text = page.locator("body").inner_text()
        m = pattern.search(text)
        if m:
            k, n = int(m.group(1)), int(m.group(2))
            seen.append((round(time.monotonic() - t0, 1), k, n, page.locator(count).count()))
            if shot_k < share * n <= k or not shot_k:
                page.mouse.move(5, 5)
                try:  # the grid's pictures are fetched after the elements arrive
                    page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=2_000)
                except Exception:  # noqa: BLE001 - playwright's TimeoutError: take the picture as it is
                    pass
                page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
                shot_k = k
        elif done in text and page.locator("[data-testid='stStatusWidget']").count() == 0:
            return seen
        page.wait_for_timeout(POLL_MS)
    pytest.fail(f"{done!r} did not appear within {timeout_s} s; partial states seen: {seen[-5:]}")


def test_evaluate_and_sanity_draw_their_first_results_before_the_last(server):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1500})
        page.goto(server + "/?explainers=gradcam,gradient", wait_until="domcontentloaded")
        _wait_idle_with(page, "Gradient (saliency)")  # the two maps, now in the store

        _go(page, "Evaluate")
        charts = "[data-testid='stPlotlyChart']"  # the box figure, then the curves
        seen = _watch(page, EVALUATE, charts, "Ranking for", "evaluate_stream.png", 0.4)
        _no_error(page)
        assert seen, "no partial ranking was drawn"
        first = seen[0]
        assert first[1] < first[2] == 5, seen  # drawn while maps were still being scored
        assert any(k < n and c >= 2 for _, k, n, c in seen), seen  # a curve chart, besides the box, before the last map
        assert [k for _, k, _, _ in seen] == sorted(k for _, k, _, _ in seen)  # it only fills in
        print(f"Evaluate: first partial ranking {first[0]} s after opening the page; states {sorted({s[1] for s in seen})}")

        _go(page, "Sanity checks")
        _wait_idle_with(page, "Not computed yet")
        page.get_by_role("button", name="Remove Integrated Gradients").click()  # three fast methods
        _wait_idle_with(page, "Not computed yet")
        seeds = page.get_by_role("spinbutton", name="Seeds")
        seeds.fill("2")
        seeds.press("Enter")
        _wait_idle_with(page, "Not computed yet")
        page.get_by_role("button", name="▶️ Run the randomisation").click()
        grid = "[data-testid='stMain'] [data-testid='stImage']"
        seen = _watch(page, SANITY, grid, "Similarity to the trained model", "sanity_stream.png", 0.4)
        _no_error(page)
        assert seen, "no partial grid was drawn"
        final = page.locator(grid).count()
        assert seen[0][1] < seen[0][2] == 3 * (1 + 5 * 2), seen  # 3 methods × (trained + 5 stages × 2 seeds)
        assert any(k < n and 0 < c < final for _, k, n, c in seen), (seen, final)  # a first column before the last
        print(f"Sanity: first partial grid {seen[0][0]} s after Run; {len(seen)} partial states, final {final} images")
        browser.close()
