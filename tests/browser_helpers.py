"""Shared by the Chromium tests: the `streamlit run app.py` server fixture and helpers that drive its widgets.

A test module imports ``server_fixture`` (the fixture ``server``, module-scoped: one server per test module) and
the helpers below. Streamlit 1.67 draws a selectbox as a react-aria combobox.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NEEDS_CHROMIUM = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(*extra: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """The app served on a free port with `make run`'s command (plus ``extra`` options); yields its URL and process,
    and stops it (killing a run still computing) on exit."""
    port = _free_port()
    cmd = [str(Path(sys.executable).parent / "streamlit"), "run", "app.py", "--server.port", str(port),
           "--server.address", "localhost", "--server.headless", "true", *extra]
    log = tempfile.TemporaryFile()  # not a pipe: a long run's log must never fill a buffer and block the server
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}  # as `make run` sets it (see the Makefile and tests/test_load.py)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://localhost:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        log.seek(0)
        pytest.fail("streamlit did not start: " + log.read().decode(errors="replace")[-2000:])
    try:
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:  # a script run still computing: do not let teardown fail the test
            proc.kill()
            proc.wait(timeout=20)
        log.close()


@pytest.fixture(scope="module", name="server")
def server_fixture():
    """The app served on a free port for one test module; yields its URL."""
    with streamlit_server() as (url, _):
        yield url


def _wait_idle_with(page, text: str, timeout_s: float = 300) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if page.locator("[data-testid='stException']").count():
            pytest.fail("the app shows a traceback: " + page.locator("[data-testid='stException']").first.inner_text())
        idle = page.locator("[data-testid='stStatusWidget']").count() == 0
        # elements left from the previous run stay on screen, marked stale, until the new run replaces them
        if idle and page.get_by_text(text).count() and page.locator("[data-stale='true']").count() == 0:
            return
        time.sleep(1)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "timed_out.png"))  # what the page showed instead, for the next person
    pytest.fail(f"{text!r} did not appear within {timeout_s} s (the page: tests/artifacts/timed_out.png)")


def _sidebar_image(page) -> str:
    cap = page.locator("section[data-testid='stSidebar'] [data-testid='stImageCaption']").first
    cap.wait_for(timeout=120_000)
    return cap.inner_text()


def _selected(page, label: str) -> str:
    """The value a selectbox shows (Streamlit 1.67 draws it as a react-aria combobox)."""
    box = page.get_by_role("combobox", name=label).first
    box.wait_for(timeout=120_000)
    return box.input_value()


def _no_error(page) -> None:  # noqa: ANN001
    """The page shows neither Streamlit's exception box nor the app's 'failed unexpectedly' sentence."""
    assert page.locator("[data-testid='stException']").count() == 0, "the app shows Streamlit's error"
    assert not page.get_by_text(re.compile("failed unexpectedly")).count(), page.locator("body").inner_text()[:2000]


def _pick(page, label: str, option_text: str, tries: int = 4) -> None:
    """Choose ``option_text`` in the selectbox ``label``. A click on a combobox that is already focused, or that an
    expander is still unfolding around, may not open its list: then the keyboard opens it, and it is tried again.
    A click on an option that a rerun redraws under the pointer can be lost: the box must then show the choice
    (the client's value; whether the app follows is what the caller checks), else it is tried again."""
    box = page.get_by_role("combobox", name=label).first
    option = page.get_by_role("option").filter(has_text=option_text).first
    for _ in range(tries):
        try:  # a rerun may redraw the box itself under us (detached from the DOM): then try again
            box.scroll_into_view_if_needed(timeout=10_000)
            box.click(timeout=10_000)
            if box.get_attribute("aria-expanded") != "true":
                box.press("ArrowDown")
            option.wait_for(timeout=5_000)
            option.click(timeout=5_000)  # a list that a rerun or an unfolding expander redraws: never stable
        except Exception:  # noqa: BLE001 - playwright's TimeoutError: try again
            page.keyboard.press("Escape")
            page.wait_for_timeout(500)
            continue
        page.wait_for_timeout(300)
        if option_text in box.input_value():
            return
    raise AssertionError(f"the option {option_text!r} of {label!r} could not be chosen (never listed, or the click was lost)")


def _go(page, title: str) -> None:
    page.locator("[data-testid='stSidebarNav'] a").filter(has_text=title).first.click()
