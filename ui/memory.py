"""Give freed memory back to the operating system after a script run.

A run that explains with many batched passes allocates and frees hundreds of MB; glibc keeps freed blocks in its
per-thread arenas (Streamlit runs each session's script on its own thread), so a server's resident memory stayed
~700 MB above its baseline after three sessions closed although the caches held ~5 MB per session
(tests/test_load.py). ``malloc_trim(0)`` returns those free pages; elsewhere (not glibc) this is a no-op.

Streamlit's own full ``gc.collect()`` after every script run is off (``runner.postScriptGC = false``: with torch
loaded it scans ~500k objects, ~0.4 s of GIL per click of every session; 30 study participants waited up to 38 s).
Without it, garbage in reference cycles (closed sessions' objects) waited for Python's rare oldest-generation
collection and the load test's settled memory rose ~13 MB per round. So :func:`after_run` marks the process as
dirty and one daemon thread runs a full collection (then a trim) at most every ``INTERVAL_S`` seconds, and only
after script runs: the cost is paid once per interval for the whole server, not once per click.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import threading
import time

INTERVAL_S = 10.0
_dirty = threading.Event()
_start = threading.Lock()
_collector: list[threading.Thread] = []


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def trim() -> None:
    """Return free heap pages to the OS (glibc); milliseconds."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def after_run() -> None:
    """End of every script run: trim now; a full collection follows within ``INTERVAL_S`` seconds."""
    trim()
    _dirty.set()
    with _start:
        if not _collector:
            thread = threading.Thread(target=_collect_forever, name="xai-gc", daemon=True)
            thread.start()
            _collector.append(thread)


def _collect_forever() -> None:
    while True:
        time.sleep(INTERVAL_S)
        if _dirty.is_set():
            _dirty.clear()
            gc.collect()
            trim()
