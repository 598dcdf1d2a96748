"""Issue 23 in the real app (headless Debian Chromium): on Explain, LIME's map is redrawn in place as it sharpens —
at least two different previews ("N of 1,000 samples so far") are seen before the final map — and the final map's
facts say what it is made of. Screenshot in tests/artifacts. Skipped when /usr/bin/chromium is absent."""

from __future__ import annotations

import re
import time

import pytest
from browser_helpers import (  # noqa: F401 - server_fixture is the fixture `server`
    ARGS,
    ARTIFACTS,
    CHROMIUM,
    NEEDS_CHROMIUM,
    _wait_idle_with,
    server_fixture,
)

pytestmark = [pytest.mark.browser, NEEDS_CHROMIUM]
PREVIEW = re.compile(r"LIME: (\d[\d,]*) of [\d,]+ samples so far")


def test_lime_map_is_redrawn_while_it_sharpens(server):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        page.goto(server + "/?explainers=lime", wait_until="domcontentloaded")
        seen: set[str] = set()
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            text = page.locator("body").inner_text()
            seen.update(m.group(1) for m in PREVIEW.finditer(text))
            if "so far" not in text and seen and page.locator("[data-testid='stStatusWidget']").count() == 0:
                break
            page.wait_for_timeout(150)
        assert len(seen) >= 2, f"previews seen: {sorted(seen)}"
        _wait_idle_with(page, "LIME")
        assert page.locator("[data-testid='stException']").count() == 0
        page.mouse.move(5, 5)
        page.screenshot(path=str(ARTIFACTS / "explain_anytime.png"), full_page=True)
        browser.close()
