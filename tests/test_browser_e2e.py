"""The real app, started with `make run`'s command, driven in headless Debian Chromium via Playwright.

Uploads an image through the sidebar and waits for the heatmaps. Screenshots go to tests/artifacts/.
Skipped (with the reason) when /usr/bin/chromium is absent; .ci/run installs it.
"""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from browser_helpers import (  # noqa: F401 - server_fixture is the fixture `server`
    ARGS,
    ARTIFACTS,
    CHROMIUM,
    NEEDS_CHROMIUM,
    _go,
    _pick,
    _selected,
    _sidebar_image,
    _wait_idle_with,
    server_fixture,
)
from PIL import Image

pytestmark = [pytest.mark.browser, NEEDS_CHROMIUM]


def _wait_for_maps(page, n: int, label: str, timeout_s: float = 300) -> None:
    """Wait until the run explaining ``label`` has finished with ``n`` heatmaps and a download button."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if page.locator("[data-testid='stException']").count():
            pytest.fail("the app shows a traceback")
        idle = page.locator("[data-testid='stStatusWidget']").count() == 0
        facts = page.locator("[data-testid='stCaptionContainer']").filter(has_text=re.compile(r"^\d+\.\d\d s · "))
        # Poll until every part is there: the DOM can be read between two deltas of the same run.
        state = (idle, page.get_by_text(f"Explaining {label}").count(), facts.count(),
                 page.locator(".stPlotlyChart").count(), page.get_by_text("Download the grid as PNG").count())
        if state == (True, 1, n, n + 1, 1):
            return
        time.sleep(1)
    pytest.fail(f"no finished run with {n} heatmaps for {label} after {timeout_s} s; last seen (idle, label, facts, "
                f"charts, download) = {state}")


def test_evaluate_page_opened_directly_and_a_box_drawn(server):
    """Runs first on a fresh server: a page URL opened directly goes through the router (views/, not pages/)."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1300})
        page.goto(server + "/evaluate", wait_until="domcontentloaded")
        _wait_idle_with(page, "Ranking for")
        nav = page.locator("[data-testid='stSidebarNav']").inner_text()
        assert "Evaluate" in nav and "Explain" in nav and "app" not in nav.split()
        boxes = page.locator("input[type='number']")
        before = [boxes.nth(i).input_value() for i in range(4)]
        fig = page.locator(".stPlotlyChart").first.bounding_box()
        page.mouse.move(fig["x"] + fig["width"] * 0.25, fig["y"] + fig["height"] * 0.35)
        page.mouse.down()
        page.mouse.move(fig["x"] + fig["width"] * 0.6, fig["y"] + fig["height"] * 0.75, steps=8)
        page.mouse.up()
        deadline = time.time() + 60
        while [boxes.nth(i).input_value() for i in range(4)] == before and time.time() < deadline:
            time.sleep(0.5)
        after = [int(boxes.nth(i).input_value()) for i in range(4)]
        assert after != [int(v) for v in before] and after[0] < after[2] and after[1] < after[3]
        _wait_idle_with(page, "Ranking for")
        page.screenshot(path=str(ARTIFACTS / "evaluate.png"), full_page=True)
        browser.close()


def test_upload_and_see_heatmaps(server, tmp_path):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    from skimage import data

    img = tmp_path / "coffee.jpg"
    Image.fromarray(np.asarray(data.coffee())).save(img, quality=90)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.goto(server, wait_until="domcontentloaded")
        page.get_by_text("Upload", exact=True).first.wait_for(timeout=90_000)
        _wait_for_maps(page, 3, "Egyptian cat")
        page.screenshot(path=str(ARTIFACTS / "explain_sample.png"), full_page=True)
        page.locator("section[data-testid='stSidebar'] label").filter(has_text="Upload").first.click()
        page.locator("section[data-testid='stSidebar'] input[type='file']").first.set_input_files(str(img))
        page.get_by_text("coffee.jpg").first.wait_for(timeout=60_000)
        _wait_for_maps(page, 3, "espresso")
        page.screenshot(path=str(ARTIFACTS / "explain_upload.png"), full_page=True)
        assert page.locator("[data-testid='stException']").count() == 0
        browser.close()


def test_lab_imagenet_w_and_own_data_in_the_background(server, tmp_path):
    """The lab's ImageNet-W part, then a class-folder zip uploaded and explained as a background job."""
    from playwright.sync_api import sync_playwright

    from xai_core.lab import folders

    ARTIFACTS.mkdir(exist_ok=True)
    example = tmp_path / "example.zip"
    example.write_bytes(folders.example_zip())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 2600})
        page.goto(server + "/lab", wait_until="domcontentloaded")
        _wait_idle_with(page, "tagged horses — pointing game")
        page.get_by_role("radio", name="ImageNet-W: a real model's watermark").click()
        _wait_idle_with(page, "Over all 7 images")
        assert page.get_by_text(re.compile(r"raises p\(carton\) on 7 of 7 images")).count() == 1
        page.screenshot(path=str(ARTIFACTS / "lab_imagenet_w.png"))
        page.get_by_role("radio", name="Your own data").click()
        _wait_idle_with(page, "Zip of class folders")
        page.locator("input[type='file']").last.set_input_files(str(example))
        _wait_idle_with(page, "Explain all 80 images")
        page.get_by_role("button", name="▶️ Explain all 80 images").click()
        page.get_by_text(re.compile("runs in the background")).first.wait_for(timeout=60_000)
        _wait_idle_with(page, "Explaining your data finished in")
        _wait_idle_with(page, "SpRAy within a class")
        page.mouse.move(5, 5)
        page.screenshot(path=str(ARTIFACTS / "lab_own_data.png"))
        browser.close()


def test_upload_model_and_target_survive_every_page_and_a_reload(server, tmp_path):
    """Issue 12's flow: upload and pick on Explain; every other page uses the same image, model and class;
    a reload (a new Streamlit session) restores them from the URL."""
    from playwright.sync_api import sync_playwright
    from skimage import data

    ARTIFACTS.mkdir(exist_ok=True)
    img = tmp_path / "coffee.jpg"
    Image.fromarray(np.asarray(data.coffee())).save(img, quality=90)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1300})
        page.goto(server, wait_until="domcontentloaded")
        _pick(page, "Model", "Horse-watermark lab CNN")
        _wait_idle_with(page, "with Horse-watermark lab CNN")
        page.locator("section[data-testid='stSidebar'] label").filter(has_text="Upload").first.click()
        page.locator("section[data-testid='stSidebar'] input[type='file']").first.set_input_files(str(img))
        page.get_by_text("coffee.jpg").first.wait_for(timeout=60_000)
        _wait_idle_with(page, "with Horse-watermark lab CNN")
        top = _selected(page, "Class to explain")
        other = "other" if top.startswith("horse") else "horse"
        _pick(page, "Class to explain", f"{other} · #")
        _wait_idle_with(page, f"Explaining {other}")
        assert _sidebar_image(page).startswith("coffee.jpg · ")
        for title, label in (("Evaluate", "Class to evaluate"), ("Sanity checks", None), ("Debugging lab", None),
                             ("Methods", None), ("Explain", "Class to explain")):
            _go(page, title)
            page.wait_for_timeout(1500)
            assert _sidebar_image(page).startswith("coffee.jpg · "), title
            assert "Horse-watermark lab CNN" in _selected(page, "Model"), title
            if label:
                assert _selected(page, label).startswith(f"{other} · #"), title
            assert page.locator("[data-testid='stException']").count() == 0, title
            page.screenshot(path=str(ARTIFACTS / f"session_{title.split()[0].lower()}.png"))
        assert "image=" in page.url and "model=lab_horse_cnn" in page.url
        page.reload(wait_until="domcontentloaded")  # a new session: state comes back from the URL
        _wait_idle_with(page, f"Explaining {other}")
        assert _sidebar_image(page).startswith("coffee.jpg · ")
        assert "Horse-watermark lab CNN" in _selected(page, "Model")
        assert _selected(page, "Class to explain").startswith(f"{other} · #")
        page.screenshot(path=str(ARTIFACTS / "session_reloaded.png"))
        browser.close()


def test_two_sessions_keep_their_own_image_and_options(server, tmp_path):
    """Two visitors at once: each sees the image it uploaded and its own Compile setting."""
    from playwright.sync_api import sync_playwright
    from skimage import data

    files = {}
    for name, arr in (("astronaut.png", data.astronaut()), ("rocket.png", data.rocket())):
        files[name] = tmp_path / name
        Image.fromarray(np.asarray(arr)).save(files[name])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pages = {n: browser.new_context(viewport={"width": 1300, "height": 1000}).new_page() for n in files}
        for name, page in pages.items():
            page.goto(server + "/methods", wait_until="domcontentloaded")
            page.locator("section[data-testid='stSidebar'] label").filter(has_text="Upload").first.wait_for(timeout=90_000)
            page.locator("section[data-testid='stSidebar'] label").filter(has_text="Upload").first.click()
            page.locator("section[data-testid='stSidebar'] input[type='file']").first.set_input_files(str(files[name]))
        pages["rocket.png"].locator("section[data-testid='stSidebar'] label").filter(has_text="Compile").first.click()
        for name, page in pages.items():
            _wait_idle_with(page, name)
            assert _sidebar_image(page).startswith(f"{name} · ")
            checked = page.locator("section[data-testid='stSidebar'] input[type='checkbox']").first.is_checked()
            assert checked == (name == "rocket.png")
        browser.close()
