"""FrameSource: the one base class every way of getting frames implements.

A source owns its thread(s); they only convert frames and push them into the shared
FrameRing. Subclasses implement ``_open``/``_close`` (and ``_send`` when they can transmit);
the public ``start``/``stop``/``send`` wrap them with state tracking and clean errors.
"""

from __future__ import annotations

import enum
import threading
import time
from abc import ABC, abstractmethod
from types import TracebackType

import can

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.errors import SourceError
from workshop_app.core.sources.reconnect import LinkGap
from workshop_app.core.types import Frame, SourceCaps


class SourceState(enum.Enum):
    STOPPED = "stopped"
    RUNNING = "running"
    FINISHED = "finished"  # a replay that reached its end
    FAILED = "failed"  # the adapter, server or file went away; ``error`` says why
    RECONNECTING = "reconnecting"  # connection lost; a source thread is reopening it (``error`` says why)
    CONNECTING = "connecting"  # first connect running on a source thread (the GUI never waits for it)


class FrameSource(ABC):
    """Base of adapter, replay, simulator (and cloud) sources."""

    caps: SourceCaps = SourceCaps(live=True, can_transmit=False)

    def __init__(self, ring: FrameRing) -> None:
        self.ring = ring
        self._state = SourceState.STOPPED
        self._error: str | None = None
        self._lock = threading.Lock()
        self.frames_sent = 0
        self.reconnects = 0  # successful reopenings after a lost connection

    # -- public API ---------------------------------------------------------------------------
    @property
    def state(self) -> SourceState:
        return self._state

    @property
    def error(self) -> str | None:
        """Why the source failed, in plain words (None while healthy)."""
        return self._error

    @property
    def running(self) -> bool:
        return self._state is SourceState.RUNNING

    @property
    def gaps(self) -> tuple[LinkGap, ...]:
        """Times the link was down and reopened (the last one may still be open)."""
        return ()

    @property
    def bus(self) -> can.BusABC | None:
        """The python-can bus, for diagnostics to share (None for sources without one)."""
        return None

    @property
    def channel_count(self) -> int:
        """Buses this source captures (bus load is averaged over them)."""
        return 1

    @property
    def bitrate(self) -> int | None:
        """Nominal bitrate when known (for bus load); None otherwise."""
        return None

    @property
    def data_bitrate(self) -> int | None:
        """CAN FD data-phase bitrate when known."""
        return None

    @abstractmethod
    def describe(self) -> str:
        """One line for the status bar, e.g. ``"pcan PCAN_USBBUS1 @ 500 kbit/s"``."""

    def start(self) -> None:
        with self._lock:
            if self._state in (SourceState.RUNNING, SourceState.RECONNECTING, SourceState.CONNECTING):
                return
            self._error = None
            # RUNNING before the threads start: a fast replay may reach FINISHED (or a dead
            # adapter FAILED) before _open() returns, and that must not be overwritten.
            self._state = SourceState.RUNNING
            try:
                self._open()
            except BaseException:
                self._state = SourceState.STOPPED
                raise

    def stop(self) -> None:
        with self._lock:
            if self._state is SourceState.STOPPED:
                return
            try:
                self._close()
            finally:
                self._state = SourceState.STOPPED

    def send(self, frame: Frame) -> None:
        """Transmit a frame; it also enters the ring as a tx frame so the trace shows it."""
        if not self.caps.can_transmit:
            raise SourceError(f"{self.describe()} cannot transmit")
        if self._state is not SourceState.RUNNING:
            raise SourceError(f"{self.describe()} is not connected")
        self._send(frame)
        self.frames_sent += 1
        self.ring.push(
            Frame(
                time.time(),
                frame.arbitration_id,
                frame.data,
                frame.channel,
                frame.is_extended,
                frame.is_fd,
                frame.bitrate_switch,
                frame.error_state_indicator,
                frame.is_remote,
                False,
                False,
            )
        )

    def __enter__(self) -> FrameSource:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- for subclasses -----------------------------------------------------------------------
    @abstractmethod
    def _open(self) -> None: ...

    @abstractmethod
    def _close(self) -> None: ...

    def _send(self, frame: Frame) -> None:
        raise SourceError(f"{self.describe()} cannot transmit")

    def _fail(self, message: str) -> None:
        """Called from a source thread when the connection is lost."""
        self._error = message
        self._state = SourceState.FAILED
