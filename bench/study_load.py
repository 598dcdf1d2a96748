"""30 simulated participants answering a study at once (issue 25's load figure): the slowest response's latency.

Two measurements, each with 30 participants started together (a barrier), answering every question as fast as they
can, on this machine (the reference: the shared 2-core CPU; ``OMP_NUM_THREADS=1``):

1. **through the app**: one live ``streamlit run app.py`` server and 30 participants speaking Streamlit's websocket
   protocol (``bench/study_client.py``: what the browser sends, without a browser, so 30 of them do not take the 2
   cores from the server); a response's latency is from the click (the rerun request with the answer and the
   Submit trigger) to the end of the script run that stored it and drew the next question — the server's whole work
   for the click, loopback network, no drawing;
2. **the database alone**: 30 threads calling ``answers.join/show/submit`` on SQLite, and on a throw-away PostgreSQL
   when Debian's binaries are installed (``tests/study_pg.py``).

Run: ``.venv/bin/python -m bench.study_load`` (writes bench/results/study_load.md). About a minute.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import study_pg  # noqa: E402 - a test helper: the throw-away PostgreSQL server
from browser_helpers import streamlit_server  # noqa: E402 - a test helper: `streamlit run app.py` on a free port

import xai_core as xc  # noqa: E402
from bench.common import RESULTS  # noqa: E402
from bench.study_client import Participant, checked, chosen, trigger  # noqa: E402
from xai_core import lab  # noqa: E402
from xai_core.study import answers, make, pictures, plan, sources, storage  # noqa: E402

PARTICIPANTS, ITEMS, CHECKS = 30, 8, 1
READING = [
    "", "What it shows: a participant's script run itself is cheap (a few small queries and one insert); the cost "
    "was Streamlit's `runner.postScriptGC` (on by default): a full `gc.collect(2)` after every script run, which "
    "with torch (and any model a session loaded) in the server scans ~500k objects, ~0.4 s holding the GIL on this "
    "CPU, after every click of every session. `.streamlit/config.toml` turns it off (Python's generational GC still runs). The "
    "database is not the bottleneck: its slowest submit under 30 threads is well under the app's median.", ""]


def publish(url: str) -> storage.Opened:
    wb = xc.Workbench(lab.load_lab_model("cpu"))
    pool = sources.lab_pool(wb, 32, seed=0)
    items, used = sources.compact(sources.build_items("agreement", pool, 12, seed=0), pool)
    d = make("Load", "agreement", ["none", "gradcam"], "between", ITEMS, items,
             checks=sources.build_checks("agreement", items, CHECKS))
    code, _ = storage.publish(d, pictures.render_all(used, d.conditions, wb), url=url)
    return storage.study(code, url=url)


def _together(work) -> tuple[list[float], float, list[str]]:  # noqa: ANN001
    """Run ``work(i, latencies)`` on PARTICIPANTS threads started at once; (latencies, wall seconds, errors)."""
    start, lat, errors = threading.Barrier(PARTICIPANTS), [], []

    def one(i: int) -> None:
        try:
            start.wait()
            work(i, lat)
        except Exception as e:  # noqa: BLE001 - counted and reported
            errors.append(repr(e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(PARTICIPANTS)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join(900)
    return lat, time.perf_counter() - t0, errors


def through_app(o: storage.Opened, *options: str) -> tuple[list[float], float, list[str]]:
    """PARTICIPANTS websocket clients (bench/study_client.py) on one live server (started with ``options``), all in
    one asyncio loop."""
    lat: list[float] = []
    errors: list[str] = []

    async def one(i: int, ready: asyncio.Barrier) -> None:
        try:
            async with Participant(port, "take", f"study={o.code}") as p:
                r = await p.rerun()
                await ready.wait()  # everyone has the consent page: go
                r = await p.rerun([checked(r.widgets["checkbox"][0]), trigger(r.widgets["button"][0])])
                for _ in range(o.design.trials):
                    r = await p.rerun([chosen(r.widgets["radio"][0], i % 2), trigger(r.widgets["button"][0])])
                    lat.append(r.seconds)
                if not any(t.startswith("Thank you") for t in r.texts):
                    raise AssertionError(f"no thank-you after the last answer: {r.texts}")
        except Exception as e:  # noqa: BLE001 - counted and reported
            errors.append(repr(e))

    async def everyone() -> None:
        ready = asyncio.Barrier(PARTICIPANTS)
        await asyncio.gather(*(one(i, ready) for i in range(PARTICIPANTS)))

    with streamlit_server(*options) as (url, _):
        port = int(url.rsplit(":", 1)[1])
        t0 = time.perf_counter()
        asyncio.run(everyone())
        return lat, time.perf_counter() - t0, errors


def database_only(o: storage.Opened, url: str) -> tuple[list[float], float, list[str]]:
    def work(i: int, lat: list[float]) -> None:
        tok = secrets.token_urlsafe(18)
        me = answers.join(o, tok, url=url)
        for t in plan.plan(o.design, me.seq):
            answers.show(o, tok, t.index, url=url)
            t0 = time.perf_counter()
            answers.submit(o, tok, t.index, t.item.options[i % 2], url=url)
            lat.append(time.perf_counter() - t0)

    return _together(work)


def _row(name: str, lat: list[float], wall: float, errors: list[str], stored: int) -> str:
    ms = np.asarray(lat) * 1000
    return (f"| {name} | {len(lat)} | {stored} | {len(errors)} | {statistics.median(ms):.0f} | "
            f"{np.percentile(ms, 95):.0f} | **{ms.max():.0f}** | {len(lat) / wall:.1f} |")


def main() -> str:
    rows, notes = [], []

    def app(label: str, url: str, *options: str) -> None:
        os.environ["XAI_DB_URL"] = url  # the server's sessions use it
        o = publish(url)
        lat, wall, errors = through_app(o, *options)
        rows.append(_row(label, lat, wall, errors, len(storage.responses(o.code, url=url))))
        notes.extend(f"{label}: {e}" for e in errors[:3])

    def db(label: str, url: str) -> None:
        o = publish(url)
        lat, wall, errors = database_only(o, url)
        rows.append(_row(label, lat, wall, errors, len(storage.responses(o.code, url=url))))

    with tempfile.TemporaryDirectory() as tmp:
        sqlite = f"sqlite:///{tmp}/xai.db"
        app("app, SQLite, runner.postScriptGC = true (Streamlit's default)", sqlite, "--runner.postScriptGC", "true")
        app("app, SQLite, runner.postScriptGC = false", sqlite, "--runner.postScriptGC", "false")
        db("database only, SQLite", sqlite)
        xc.store.dispose(sqlite)
        if study_pg.AVAILABLE:
            with study_pg.postgres() as pg:
                app("app, PostgreSQL 15, runner.postScriptGC = false", pg, "--runner.postScriptGC", "false")
                db("database only, PostgreSQL 15", pg)
                xc.store.dispose(pg)
    trials = ITEMS + CHECKS
    text = "\n".join([
        f"# Study load: {PARTICIPANTS} participants answering at once ({os.cpu_count()} CPU cores, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})", "",
        f"Each participant joins, then answers {trials} questions ({ITEMS} items + {CHECKS} attention check) as fast "
        "as possible; all start together. Latency = one submit: through the app, the whole script run that stores "
        "the answer and draws the next question (network and browser drawing not included); database only, the "
        "`answers.submit` call.", "",
        "| path | responses timed | stored | errors | median ms | p95 ms | slowest ms | responses/s |",
        "|---|---|---|---|---|---|---|---|", *rows, "", *(f"- error: {n}" for n in notes), *READING])
    return text


if __name__ == "__main__":
    out = main()
    (RESULTS / "study_load.md").write_text(out)
    print(out)
