"""Issue 26's flows in the real app (headless Debian Chromium): an edit never breaks the next click, uploads are
private to their session and their names are shown literally, three explainer chips fit, and a rerun right after a
file is chosen does not drop the upload. Skipped when /usr/bin/chromium is absent."""

from __future__ import annotations

import io
import re
import time

import numpy as np
import pytest
from browser_helpers import (  # noqa: F401 - server_fixture is the fixture `server`
    ARGS,
    ARTIFACTS,
    CHROMIUM,
    NEEDS_CHROMIUM,
    _no_error,
    _pick,
    _selected,
    _sidebar_image,
    _wait_idle_with,
    server_fixture,
)
from PIL import Image

pytestmark = [pytest.mark.browser, NEEDS_CHROMIUM]
EVIL = "**bold** [x](javascript:alert(1)) <img src=x>.png"
LAB = "/?model=lab_horse_cnn&explainers=gradient,gradcam"


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()



def _upload(page, name: str, data: bytes) -> None:
    page.locator("section[data-testid='stSidebar'] label").filter(has_text="Upload").first.click()
    page.locator("section[data-testid='stSidebar'] input[type='file']").first.set_input_files(
        {"name": name, "mimeType": "image/png", "buffer": data})


def test_pin_edit_change_class_edit_again_download_and_present(server):
    """Issue 26.1: after an edit, the next clicks (a class, a second edit, the report, Presentation) all work."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1300}, accept_downloads=True)
        page.goto(server + LAB, wait_until="domcontentloaded")
        _wait_idle_with(page, "Download the grid as PNG")
        top = _selected(page, "Class to explain")
        other = "other" if top.startswith("horse") else "horse"
        page.get_by_role("button", name="📌 Pin these maps").click()
        _wait_idle_with(page, "Download the grid as PNG")
        page.get_by_text("✏️ Edit the image").first.click()
        _pick(page, "Edit", "occlude a box")
        _wait_idle_with(page, "Pinned:")
        _no_error(page)
        _pick(page, "Class to explain", f"{other} · #")
        _wait_idle_with(page, f"Explaining {other}")
        _no_error(page)
        _pick(page, "Edit", "blur a region")
        _wait_idle_with(page, f"Explaining {other}")
        _no_error(page)
        assert re.fullmatch(rf"{other} · #\d+", _selected(page, "Class to explain"))  # no probability in the label
        with page.expect_download(timeout=120_000) as download:
            page.get_by_role("button", name=re.compile("Report \\(HTML")).click()
        assert download.value.suggested_filename.endswith(".html")
        _wait_idle_with(page, f"Explaining {other}")
        page.get_by_text("🎤 Presentation mode").click()
        # the page was idle and already showed "Pinned:" before the click: wait for the click's own rerun (the URL)
        page.wait_for_url(re.compile("present=1"), timeout=120_000)
        _wait_idle_with(page, "Pinned:")
        _no_error(page)
        assert "present=1" in page.url
        assert page.locator("section[data-testid='stSidebar']").is_hidden()
        page.screenshot(path=str(ARTIFACTS / "flow_edit_present.png"))
        browser.close()


def test_an_upload_is_private_its_share_link_works_and_its_name_is_literal(server):
    """Issue 26.3: B opening ?image=<content digest> gets nothing; B opening A's copied link gets the image."""
    from playwright.sync_api import sync_playwright
    from skimage import data

    from xai_core import images

    raw = _png(np.asarray(data.astronaut())[::2, ::2])
    digest = images.image_digest(images.downscale(images.decode_image(raw).array, 1024))
    literal = EVIL + " · "
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        a = browser.new_context(viewport={"width": 1500, "height": 1300}).new_page()
        a.goto(server + LAB, wait_until="domcontentloaded")
        _wait_idle_with(a, "Download the grid as PNG")
        _upload(a, EVIL, raw)
        _wait_idle_with(a, EVIL)
        assert _sidebar_image(a).startswith(literal)
        sidebar = a.locator("section[data-testid='stSidebar']")
        assert sidebar.locator("a[href^='javascript']").count() == 0 and sidebar.locator("strong", has_text="bold").count() == 0
        _wait_idle_with(a, "Download the grid as PNG")
        a.get_by_text("🔗 Copy a link to this view").click()
        link = a.locator("[data-testid='stCode']").last.inner_text().strip()
        token = re.search(r"image=([A-Za-z0-9_-]{24})", link).group(1)
        assert token != digest and digest not in link and link.split("?")[0].rstrip("/") == server
        a.screenshot(path=str(ARTIFACTS / "flow_private_owner.png"))
        b = browser.new_context(viewport={"width": 1500, "height": 1300}).new_page()
        b.goto(server + "/?model=lab_horse_cnn&image=" + digest, wait_until="domcontentloaded")
        _wait_idle_with(b, "upload the same image again")
        assert _sidebar_image(b).startswith("Chelsea the cat · ")
        assert "bold" not in b.locator("body").inner_text()
        c = browser.new_context(viewport={"width": 1500, "height": 1300}).new_page()
        c.goto(link, wait_until="domcontentloaded")
        _wait_idle_with(c, "Download the grid as PNG")
        assert _sidebar_image(c).startswith(literal)
        _no_error(c)
        browser.close()


def test_three_default_explainer_chips_fit(server):
    """Issue 26.6: the Explainers box shows its three default chips whole."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})  # a laptop's browser window
        page.goto(server + "/?model=lab_horse_cnn", wait_until="domcontentloaded")
        _wait_idle_with(page, "Download the grid as PNG")
        chips = page.evaluate("""() => {
            const box = document.querySelector("[data-testid='stMultiSelect'] .react-aria-ComboBox");
            const right = box.getBoundingClientRect().right;
            return [...box.querySelectorAll("[data-tag] > span[title]")].map(s => [s.textContent, s.title,
                s.scrollWidth, s.clientWidth, s.getBoundingClientRect().right <= right, s.checkVisibility()]);
        }""")
        assert [c[0] for c in chips] == ["Grad-CAM", "Integrated Gradients", "Guided Backprop"], chips
        assert all(text == title and sw <= cw and inside and seen for text, title, sw, cw, inside, seen in chips), chips
        page.locator("[data-testid='stMultiSelect']").first.screenshot(path=str(ARTIFACTS / "flow_chips.png"))
        browser.close()


def test_compile_flipped_right_after_choosing_a_file_keeps_the_upload(server):
    """Issue 26.5: a rerun (the Compile toggle) right after a file is chosen, on a slow upload, three times."""
    from playwright.sync_api import sync_playwright
    from skimage import data

    raw = _png(np.asarray(data.rocket()))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for attempt in range(3):
            page = browser.new_context(viewport={"width": 1300, "height": 1000}).new_page()
            page.goto(server + "/methods", wait_until="domcontentloaded")
            page.locator("section[data-testid='stSidebar'] label").filter(has_text="Upload").first.wait_for(timeout=90_000)
            page.locator("section[data-testid='stSidebar'] label").filter(has_text="Upload").first.click()
            page.locator("section[data-testid='stSidebar'] input[type='file']").first.wait_for(state="attached")
            cdp = page.context.new_cdp_session(page)
            cdp.send("Network.enable")  # the upload takes ~3 s, so the rerun surely starts while it is pending
            cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                           "uploadThroughput": len(raw) // 3})
            name = f"rocket{attempt}.png"
            page.locator("section[data-testid='stSidebar'] input[type='file']").first.set_input_files(
                {"name": name, "mimeType": "image/png", "buffer": raw})
            page.evaluate("""() => document.querySelector("section[data-testid='stSidebar'] input[type='checkbox']").click()""")
            deadline = time.time() + 120
            while time.time() < deadline and not _sidebar_image(page).startswith(name):
                time.sleep(1)
            assert _sidebar_image(page).startswith(name), f"attempt {attempt}: the upload was dropped"
            assert page.locator("section[data-testid='stSidebar'] input[type='checkbox']").first.is_checked()
            page.context.close()
        browser.close()


def test_concepts_discovered_named_and_removed_on_the_lab_cnn(server):
    """Issue 21's page: with the lab CNN, discover the horse class's concepts in the background, name one, remove it
    with P-ClArC and see the lab's numbers before and after."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1500})
        page.goto(server + "/concepts?model=lab_horse_cnn", wait_until="domcontentloaded")
        _wait_idle_with(page, "Discover concepts")
        _pick(page, "Class", "horse · #")
        _wait_idle_with(page, "Discover concepts")
        page.get_by_role("button", name="🔍 Discover concepts").click()
        _wait_idle_with(page, "Discovering concepts finished in")
        _wait_idle_with(page, "Concept importance")
        box = page.get_by_role("textbox").first
        box.fill("corner tag")
        box.press("Enter")
        _wait_idle_with(page, "corner tag")
        page.get_by_role("button", name="🧹 Remove it (P-ClArC)").click()
        _wait_idle_with(page, "P-ClArC finished in")
        _wait_idle_with(page, "Before and after removing")
        _no_error(page)
        page.mouse.move(5, 5)
        page.screenshot(path=str(ARTIFACTS / "concepts.png"), full_page=True)
        browser.close()
