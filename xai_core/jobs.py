"""Background jobs: run a long computation (ROAR, a folder of images) on a thread while the UI stays live.

    job = Job(lambda progress: lab.roar.roar(..., progress=progress), title="ROAR").start()
    job.fraction, job.text          # last progress report
    job.cancel()                    # the next progress report raises Cancelled inside the job
    job.done, job.result, job.error

The job's function must accept ``progress(fraction, text)`` and call it between units of work; that is where a
cancel takes effect. UI-free: a page polls the job (a Streamlit fragment with ``run_every``) and draws it.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from .errors import Cancelled, XaiError
from .registry import Progress


class Job:
    """One computation on a daemon thread, with its progress, result or error, and cooperative cancellation."""

    def __init__(self, fn: Callable[[Progress], Any], title: str = "job") -> None:
        self.fn, self.title = fn, title
        self.fraction, self.text = 0.0, "starting"
        self.result: Any = None
        self.error: str | None = None
        self.cancelled = False
        self.started = self.finished_at = 0.0
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"xai-job-{title}", daemon=True)

    def start(self) -> Job:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def progress(self, fraction: float, text: str) -> None:
        """The callback handed to the job's function; raises Cancelled once cancel() was called."""
        if self._cancel.is_set():
            raise Cancelled(f"{self.title} stopped")
        self.fraction, self.text = min(max(float(fraction), 0.0), 1.0), text

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def done(self) -> bool:
        return self.finished_at > 0

    @property
    def elapsed(self) -> float:
        return (self.finished_at or time.monotonic()) - self.started if self.started else 0.0

    def wait(self, timeout: float | None = None) -> Job:
        self._thread.join(timeout)
        return self

    def _run(self) -> None:
        try:
            self.result = self.fn(self.progress)
            self.fraction, self.text = 1.0, "done"
        except Cancelled:
            self.cancelled = True
            self.text = "stopped"
        except XaiError as e:
            self.error = str(e)
        except Exception as e:  # a bug or an unexpected library error: keep the app alive, say what happened
            self.error = f"{type(e).__name__}: {e}"
            traceback.print_exc()
        finally:
            self.finished_at = time.monotonic()
