"""What the status bar says about the connection: state, the gap while reconnecting, past gaps.

Pure functions of the source's state, and :class:`LinkStatus`, the status bar's connection
label, which follows the workshop and reads them on every tick; the source's own threads do the
connecting, so nothing here waits for a bus or a network.
"""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QLabel, QStatusBar

from workshop_app.core.session import CaptureStats
from workshop_app.core.sources.base import FrameSource, SourceState
from workshop_app.core.sources.reconnect import GapWatcher
from workshop_app.core.workshop import Subscription, WorkshopSession

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


_GAP_MESSAGE_MS = 15_000  # a link lost/back line stays this long in the status bar


class LinkStatus(QObject):
    """The status bar's connection label, and a line in the status bar for each link gap.

    :meth:`follow` repaints it on the ticks that can change it: another source, another state,
    or a state whose text changes while it lasts. Events the workshop does not publish (a
    disconnect, a failure reported by the bridge) call :meth:`refresh` directly.
    """

    def __init__(self, workshop: WorkshopSession, status_bar: QStatusBar) -> None:
        super().__init__(status_bar)
        self._workshop = workshop
        self._status_bar = status_bar
        self.label = QLabel()
        self.label.setContentsMargins(8, 0, 8, 0)
        status_bar.addPermanentWidget(self.label)
        self._gap_watcher = GapWatcher(workshop.source)
        self._shown_source: FrameSource | None = None
        self._shown_state: SourceState | None = None
        self.refresh()

    def follow(self, workshop: WorkshopSession) -> list[Subscription]:
        """Keep the label and the gap lines up to date on every tick of ``workshop``."""
        return [workshop.subscribe("stats", self._on_stats)]

    def refresh(self) -> None:
        """Show the source's state now."""
        source = self._workshop.source
        self._shown_source, self._shown_state = source, source.state
        text, colour = source_status(source)
        self.label.setText(text)
        self.label.setStyleSheet(f"color: {colour}" if colour else "")

    def _on_stats(self, _stats: CaptureStats) -> None:
        source = self._workshop.source
        if self._gap_watcher.source is not source:
            self._gap_watcher = GapWatcher(source)
        for line in self._gap_watcher.poll():
            self._status_bar.showMessage(line, _GAP_MESSAGE_MS)
        state = source.state
        if source is not self._shown_source or state is not self._shown_state or state in CHANGING_STATES:
            self.refresh()
