"""Background jobs: progress, result, cooperative cancel, and errors kept as messages."""

from __future__ import annotations

import threading

from xai_core.errors import ImageError
from xai_core.jobs import Job


def test_a_job_reports_progress_and_returns_its_result():
    gate = threading.Event()

    def work(progress):
        progress(0.5, "half")
        gate.wait(5)
        return 42

    job = Job(work, "answer").start()
    while job.text != "half":
        pass
    assert not job.done and job.fraction == 0.5
    gate.set()
    assert job.wait(5).done and job.result == 42 and job.fraction == 1.0 and job.error is None and not job.cancelled


def test_cancel_takes_effect_at_the_next_progress_report():
    steps = []
    started = threading.Event()

    def work(progress):
        for i in range(1000):
            progress(i / 1000, f"step {i}")
            steps.append(i)
            started.set()
            threading.Event().wait(0.01)
        return "finished"

    job = Job(work, "slow").start()
    started.wait(5)
    job.cancel()
    assert job.wait(5).done and job.cancelled and job.result is None and len(steps) < 1000


def test_errors_become_messages_and_never_escape_the_thread():
    def bad(progress):
        raise ImageError("The zip holds no images.")

    def bug(progress):
        return 1 / 0

    assert Job(bad).start().wait(5).error == "The zip holds no images."
    assert Job(bug).start().wait(5).error.startswith("ZeroDivisionError")
