"""A participant without a browser: Streamlit's own websocket protocol (the BackMsg/ForwardMsg protobufs the web
client exchanges with the server), just enough to take a study on a live ``streamlit run app.py`` server.

A rerun request carries the page, the query string and every widget's value (a form's values with its submit
button's trigger), as the browser sends them; the answer is the stream of elements of that script run, up to
``script_finished``. The latency of a step is from sending the request to ``script_finished``: the server's whole
work for that click (the network is loopback; no drawing). Used by bench/study_load.py.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState


@dataclass
class Run:
    """What one script run drew: widgets by kind (their protobufs, in order) and the texts of progress and alerts."""

    widgets: dict[str, list[Any]] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)
    seconds: float = 0.0


class Participant:
    def __init__(self, port: int, page: str, query: str) -> None:
        self.url, self.origin = f"ws://localhost:{port}/_stcore/stream", f"http://localhost:{port}"
        self.page, self.query = page, query
        self.ws: Any = None

    async def __aenter__(self) -> Participant:
        self.ws = await websockets.connect(self.url, subprotocols=["streamlit"], origin=self.origin,
                                           max_size=2**26, open_timeout=60)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()

    async def rerun(self, states: list[WidgetState] | None = None, timeout: float = 600) -> Run:
        """One rerun with these widget values; what it drew and how long it took."""
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string, cs.page_name = self.query, self.page
        cs.widget_states.widgets.extend(states or [])
        t0 = time.perf_counter()
        await self.ws.send(msg.SerializeToString())
        run = Run()
        while True:
            fwd = ForwardMsg()
            fwd.ParseFromString(await asyncio.wait_for(self.ws.recv(), timeout))
            kind = fwd.WhichOneof("type")
            if kind == "page_info_changed":
                self.query = fwd.page_info_changed.query_string  # st.query_params written by the page (the token)
            elif kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                el = fwd.delta.new_element
                what = el.WhichOneof("type")
                run.widgets.setdefault(what, []).append(getattr(el, what))
                if what == "progress":
                    run.texts.append(el.progress.text)
                elif what == "alert":
                    run.texts.append(el.alert.body)
            elif kind == "script_finished":
                if fwd.script_finished == ForwardMsg.ScriptFinishedStatus.FINISHED_SUCCESSFULLY:
                    run.seconds = time.perf_counter() - t0
                    return run
                if fwd.script_finished == ForwardMsg.ScriptFinishedStatus.FINISHED_WITH_COMPILE_ERROR:
                    raise RuntimeError("the script did not compile")
                # FINISHED_EARLY_FOR_RERUN (st.rerun): the run that follows belongs to this click and replaces
                # what this one drew (its widgets are gone); keep reading
                run.widgets, run.texts = {}, []


def trigger(button: Any) -> WidgetState:
    return WidgetState(id=button.id, trigger_value=True)


def checked(box: Any) -> WidgetState:
    return WidgetState(id=box.id, bool_value=True)


def chosen(radio: Any, index: int) -> WidgetState:
    """A radio's value as the web client sends it: the option's label as drawn."""
    return WidgetState(id=radio.id, string_value=radio.options[index])
