"""CaptureBridge: the only place the GUI drives the core's capture loop.

A QTimer on the GUI thread ticks the WorkshopSession (~30 Hz): drain at most a tick's share of
the ring, update the store, decode subscribed signals, feed the recorder; the session's
subscribers (the panels) repaint from its events, then one ``ticked`` signal follows.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer, Signal

from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.base import SourceState
from workshop_app.core.types import Frame
from workshop_app.core.workshop import TickResult, WorkshopSession

TICK_MS = 33


class CaptureBridge(QObject):
    ticked = Signal(int)  # frames taken in this tick
    source_failed = Signal(str)

    def __init__(self, session: WorkshopSession | CaptureSession, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.workshop = session if isinstance(session, WorkshopSession) else WorkshopSession(session)
        self.last_tick_seconds = 0.0
        self.last_result = TickResult()
        self._failed_reported = False
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._on_timeout)

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    @property
    def session(self) -> CaptureSession:
        return self.workshop.capture

    @property
    def last_batch(self) -> list[Frame]:
        """The frames of the latest tick."""
        return self.last_result.frames

    def reset_failure(self) -> None:
        """Report the next failure again (after a reconnect or a new source)."""
        self._failed_reported = False

    def _on_timeout(self) -> None:
        t0 = time.perf_counter()
        self.last_result = self.workshop.tick()
        self.ticked.emit(len(self.last_result))
        self.last_tick_seconds = time.perf_counter() - t0
        source = self.workshop.source
        if source.state is SourceState.RUNNING:
            self._failed_reported = False  # back after a reconnect: report the next loss too
        elif source.error and not self._failed_reported:
            self._failed_reported = True
            self.source_failed.emit(source.error)
