"""A rerun must not swallow an upload that has just started (the cause of issue 26's dropped upload).

Choosing a file makes the browser ask the server where to upload it (a ``file_urls_request``); the reply
(``file_urls_response``) waits in the session's outgoing queue until the next flush. Streamlit 1.67 clears that queue
when a script run starts, keeping only lifecycle messages, so a rerun that starts in between (a click on Compile right
after choosing the file, on a busy server where flushes come late) drops the reply: the browser never learns the URL,
never sends the file, and the uploader stays empty with no message. Nothing in the app's widgets can avoid it (any
rerun does it; the sidebar's order does not matter). :func:`install` makes the clear keep those replies; it is
idempotent and leaves Streamlit alone if its queue no longer has the shape this was written against."""

from __future__ import annotations

import functools
from typing import Any

from streamlit.runtime.forward_msg_queue import ForwardMsgQueue

from .errors import log

KEPT_TYPES = ("file_urls_response",)


def _keeping(clear: Any) -> Any:
    @functools.wraps(clear)
    def keeping_clear(self: ForwardMsgQueue, retain_lifecycle_msgs: bool = False, *args: Any, **kwargs: Any) -> None:
        queue = getattr(self, "_queue", None)
        replies = [m for m in queue if m.WhichOneof("type") in KEPT_TYPES] if retain_lifecycle_msgs and queue else []
        clear(self, retain_lifecycle_msgs, *args, **kwargs)
        if replies:
            self._queue.extend(m for m in replies if all(m is not q for q in self._queue))

    keeping_clear.keeps_upload_urls = True  # type: ignore[attr-defined]
    return keeping_clear


def install() -> bool:
    """Make a run's start keep pending upload-URL replies (once per process). True when the fix is in place."""
    clear = getattr(ForwardMsgQueue, "clear", None)
    if clear is None or not hasattr(ForwardMsgQueue(), "_queue"):
        log.warning("Streamlit's ForwardMsgQueue changed: the upload-URL fix is not installed")
        return False
    if not getattr(clear, "keeps_upload_urls", False):
        ForwardMsgQueue.clear = _keeping(clear)  # type: ignore[method-assign]
    return True
