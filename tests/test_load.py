"""Many users: several browser sessions (Playwright contexts) explain at once on one live server (loopback).

Each session opens a different sample by URL and must get the maps of its own image's class. The server's resident
memory is sampled the whole time: the peak is reported, and after the sessions close it must come back near the
baseline (taken after one warm-up session, so the model and the shared caches are already loaded); a second round
must not end higher than the first (no cache grows per session). The server runs with
``--server.disconnectedSessionTTL 5``: by default Streamlit keeps a closed tab's session for 120 s.
The numbers go to tests/artifacts/load.md.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from browser_helpers import ARGS, ARTIFACTS, CHROMIUM, streamlit_server
from test_browser_e2e import _wait_for_maps

import xai_core
from xai_core import images

psutil = pytest.importorskip("psutil")
pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed")]
SESSIONS = 3


@pytest.fixture(scope="module")
def live():
    with streamlit_server("--server.disconnectedSessionTTL", "5") as (url, proc):
        yield url, psutil.Process(proc.pid)


class Sampler:
    """The server's RSS (MB) every 0.2 s on a thread; ``peak`` since the last reset."""

    def __init__(self, proc) -> None:  # noqa: ANN001 - psutil.Process
        self.proc, self.peak, self._stop = proc, 0.0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def now(self) -> float:
        return self.proc.memory_info().rss / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()
        self._t.join()


def _settled(s: Sampler, target: float, timeout_s: float = 45) -> float:
    deadline = time.time() + timeout_s
    while time.time() < deadline and s.now() > target:
        time.sleep(1)
    return s.now()


def _round(browser, url: str, samples: list[tuple[str, str]]) -> float:
    t0 = time.time()
    contexts = [browser.new_context(viewport={"width": 1300, "height": 1000}) for _ in samples]
    pages = [c.new_page() for c in contexts]
    for page, (name, _) in zip(pages, samples, strict=True):
        page.goto(f"{url}/?sample={urllib.parse.quote_plus(name)}", wait_until="domcontentloaded")
    for page, (_, label) in zip(pages, samples, strict=True):
        _wait_for_maps(page, 3, label, timeout_s=150)  # its own image's class, three maps
    for c in contexts:
        c.close()
    return time.time() - t0


@pytest.mark.timeout(300)
def test_simultaneous_sessions_get_their_own_maps_and_memory_comes_back(live):
    from playwright.sync_api import sync_playwright

    url, proc = live
    model = xai_core.load_model("efficientnet_lite0", device="cpu")
    names = images.sample_names()[:SESSIONS]
    samples = [(n, xai_core.predict(model, images.downscale(images.load_sample(n), 1024), k=1)[0].label) for n in names]
    assert len({label for _, label in samples}) == SESSIONS  # every session must see a different class
    s = Sampler(proc)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        _round(browser, url, samples[:1])  # warm-up: model, fast paths and shared caches loaded once
        baseline = _settled(s, 0, timeout_s=10)
        s.peak = 0.0
        first = _round(browser, url, samples)
        peak = s.peak
        after_first = _settled(s, baseline + 0.25 * (peak - baseline))
        second = _round(browser, url, samples)
        after_second = _settled(s, after_first + 32)
        browser.close()
    s.stop()
    report = (f"{SESSIONS} simultaneous sessions × 2 rounds (Explain page, 3 maps each, EfficientNet-Lite0, CPU): "
              f"{first:.0f} s and {second:.0f} s per round; server RSS baseline {baseline:.0f} MB, peak {peak:.0f} MB, "
              f"{after_first:.0f} MB after round 1 closed, {after_second:.0f} MB after round 2 closed.")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "load.md").write_text(report + "\n")
    print(report)
    assert after_first <= baseline + max(64.0, 0.25 * (peak - baseline)), report
    assert after_second <= after_first + 32, report  # no growth per round: nothing cached per session without bound
