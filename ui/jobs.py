"""A long computation as a background job: a start button, a live progress bar with Stop, then the result.

The job runs on a thread (``xai_core.jobs.Job``) kept in the session, so the rest of the page stays usable and the
job survives switching pages; a fragment polls it once a second while it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from xai_core.jobs import Job, Progress


def panel(key: str, start_label: str, make: Callable[[], Callable[[Progress], Any]], show: Callable[[Any], None],
          *, title: str, help: str | None = None) -> None:
    """``make()`` is called on the click and returns the job's function; ``show(result)`` draws a finished job."""
    job: Job | None = st.session_state.get(key)
    running = job is not None and not job.done
    if st.button(start_label, key=f"{key}_start", disabled=running, help=help):
        st.session_state[key] = Job(make(), title).start()
        running = True

    @st.fragment(run_every=1.0 if running else None)
    def live() -> None:
        j: Job | None = st.session_state.get(key)
        if j is None:
            return
        if not j.done:
            note = "stopping after the current step…" if j.cancel_requested else \
                "runs in the background: the rest of the page stays usable"
            st.progress(j.fraction, text=f"{title}: {j.text} · {j.elapsed:.0f} s — {note}")
            if st.button("⏹️ Stop", key=f"{key}_stop", disabled=j.cancel_requested):
                j.cancel()
            return
        if running:  # finished since the page was drawn: redraw it all, which also stops this poller
            st.rerun()
        if j.cancelled:
            st.warning(f"{title} was stopped after {j.elapsed:.0f} s; start it again to get a result.", icon="⏹️")
        elif j.error:
            st.error(f"{title} failed: {j.error}")
        else:
            st.caption(f"{title} finished in {j.elapsed:.0f} s.")
            show(j.result)

    live()
