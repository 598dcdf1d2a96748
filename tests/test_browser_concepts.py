"""The Concepts page with two visitors at once (headless Debian Chromium, two browser contexts = two sessions): one
finds the lab CNN's horse concepts with CRP, the other with CRAFT, at the same time; each sees its own method's
result; a name one gives is never shown to the other, and comes back for its owner after a reload (the workspace in
the address). Skipped when /usr/bin/chromium is absent."""

from __future__ import annotations

import pytest
from browser_helpers import (  # noqa: F401 - server_fixture is the fixture `server`
    ARGS,
    ARTIFACTS,
    CHROMIUM,
    NEEDS_CHROMIUM,
    _no_error,
    _pick,
    _wait_idle_with,
    server_fixture,
)

pytestmark = [pytest.mark.browser, NEEDS_CHROMIUM]


def _open(browser, server: str):  # noqa: ANN001, ANN202
    page = browser.new_context(viewport={"width": 1400, "height": 1400}).new_page()
    page.goto(server + "/concepts?model=lab_horse_cnn", wait_until="domcontentloaded")
    _wait_idle_with(page, "Discover concepts")
    _pick(page, "Class", "horse · #")
    _wait_idle_with(page, "Discover concepts")
    return page



def test_two_visitors_crp_and_craft_at_once_names_stay_private_and_survive_a_reload(server):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        a, b = _open(browser, server), _open(browser, server)
        a.get_by_text("Relevant channels (CRP)").click()
        _wait_idle_with(a, "Discover concepts")
        a.get_by_role("button", name="🔍 Discover concepts").click()
        b.get_by_role("button", name="🔍 Discover concepts").click()  # both jobs run at once
        _wait_idle_with(a, "Discovering concepts finished in")
        _wait_idle_with(b, "Discovering concepts finished in")
        _wait_idle_with(a, "relevance maximisation")
        _wait_idle_with(b, "the factorisation leaves")
        assert a.get_by_text("the factorisation leaves").count() == 0  # each sees its own method's result
        assert b.get_by_text("conditional heatmap").count() == 0
        assert a.get_by_text("its conditional heatmap on the current image").count() >= 1
        box = a.get_by_role("textbox").first
        box.fill("corner tag channel")
        box.press("Enter")
        _wait_idle_with(a, "corner tag channel")
        _no_error(a)
        a.mouse.move(5, 5)
        a.screenshot(path=str(ARTIFACTS / "concepts_crp.png"), full_page=True)
        b.reload(wait_until="domcontentloaded")  # the other visitor never sees the name
        _wait_idle_with(b, "Discover concepts")
        assert b.get_by_text("corner tag channel").count() == 0
        assert "ws=" in a.url
        a.reload(wait_until="domcontentloaded")  # a new session: the owner gets the name back from the database
        _wait_idle_with(a, "Discover concepts")
        if "horse" not in a.get_by_role("combobox", name="Class").first.input_value():
            _pick(a, "Class", "horse · #")
            _wait_idle_with(a, "Discover concepts")
        a.get_by_text("Relevant channels (CRP)").click()
        _wait_idle_with(a, "Discover concepts")
        a.get_by_role("button", name="🔍 Discover concepts").click()  # the same discovery: from the cache
        _wait_idle_with(a, "Discovering concepts finished in")
        _wait_idle_with(a, "corner tag channel")
        _no_error(a)
        _no_error(b)
        browser.close()
