"""What the status bar says about the connection: state, the gap while reconnecting, past gaps.

Pure functions of the source's state (read on the GUI tick); the source's own threads do the
connecting, so nothing here waits for a bus or a network.
"""

from __future__ import annotations

from workshop_app.core.sources.base import FrameSource, SourceState

# States whose text changes while they last (the gap grows, the retry reason changes).
CHANGING_STATES = frozenset({SourceState.CONNECTING, SourceState.RECONNECTING})

_RED, _GREY, _AMBER = "#d1242f", "#8c959f", "#b26a00"


def source_status(source: FrameSource) -> tuple[str, str]:
    """(label text, colour or "") for the source's state."""
    state = source.state
    text = source.describe()
    gaps = source.gaps
    if state is SourceState.FAILED:
        return f"{text} — disconnected", _RED
    if state is SourceState.STOPPED:
        return f"{text} — stopped", _GREY
    warning = getattr(source, "warning", None)  # a replayed log's damage, skipped
    if state is SourceState.FINISHED:
        return f"{text} — end of log" + (f" (damaged: {warning})" if warning else ""), ""
    if warning and state is SourceState.RUNNING:
        return f"{text} — damaged log: {warning}", _AMBER
    if state is SourceState.CONNECTING:
        why = f" ({source.error})" if source.error else ""
        return f"{text} — connecting…{why}", _AMBER
    if state is SourceState.RECONNECTING:
        gap = f" (gap {gaps[-1].seconds():.1f} s)" if gaps else ""
        return f"{text} — reconnecting…{gap}", _AMBER
    if gaps:
        return f"{text} — {len(gaps)} link gap(s), last {gaps[-1].seconds():.1f} s", ""
    return text, ""


def failure_message(source: FrameSource, message: str) -> str:
    """The status bar's line when the source reports an error."""
    if source.state is SourceState.CONNECTING:
        return f"Could not connect: {message}"
    if message.lower().startswith("connection lost"):  # the source said it already
        return message[:1].upper() + message[1:]
    return f"Connection lost: {message}"


CLOUD_INTERFACE = "workshop-cloud"


def cloud_link_status(source: FrameSource) -> tuple[str, str] | None:
    """(text, colour) of a cloud link's state and ping latency; None for any other source.

    Read from the python-can bus (``CloudBus.link_state`` / ``latency_ms``); "—" until the
    bus is open or the first ping has come back.
    """
    config = getattr(source, "config", None)
    if getattr(config, "interface", None) != CLOUD_INTERFACE:
        return None
    bus = source.bus
    state = getattr(bus, "link_state", None)
    if not isinstance(state, str):
        return "cloud link —", _GREY
    latency = getattr(bus, "latency_ms", None)
    ping = f"{latency:.0f} ms" if isinstance(latency, int | float) else "—"
    if state == "connected":
        return f"cloud link connected · {ping}", ""
    if state == "vehicle offline":
        return f"cloud link: vehicle offline · last ping {ping}", _RED
    # "reconnecting: <why>": the why goes to the tooltip, the status bar has little room.
    return f"cloud link {state.split(':', 1)[0]}…", _AMBER
