"""ReplaySource: plays a recorded log into the ring with its original timing (or faster)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import can

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.errors import WorkshopError
from workshop_app.core.logs.notes import LogRead
from workshop_app.core.logs.reader import read_log
from workshop_app.core.sources.base import FrameSource, SourceState
from workshop_app.core.types import Frame, SourceCaps

log = logging.getLogger(__name__)


def _messages(read: LogRead) -> Iterator[can.Message]:
    columns = read.frames
    for start in range(0, len(columns), 50_000):
        yield from columns.to_messages(start, min(len(columns), start + 50_000))


class ReplaySource(FrameSource):
    """Frames from a log file, paced by their timestamps divided by ``speed``.

    ``speed=0`` replays as fast as the consumer drains. Unlike a live bus a replay can wait, so
    it never drops: it pauses while the ring is nearly full. ``loop`` restarts at the end.
    """

    caps = SourceCaps(live=False, can_transmit=False)

    def __init__(self, ring: FrameRing, path: str | Path, *, speed: float = 1.0, loop: bool = False) -> None:
        super().__init__(ring)
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.path = Path(path)
        self.speed = speed
        self.loop = loop
        self.frames_replayed = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.finished = threading.Event()
        # What was wrong with the file (damage skipped, impossible frames rejected): the
        # frames that could be recovered are replayed, and this says what was left out.
        self.warning: str | None = None

    def describe(self) -> str:
        return f"replay {self.path.name}"

    def _open(self) -> None:
        if not self.path.is_file():
            raise WorkshopError(f"{self.path}: no such file")
        self._stop.clear()
        self.finished.clear()
        self._thread = threading.Thread(target=self._run, name=f"replay-{self.path.name}", daemon=True)
        self._thread.start()

    def _close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._play_once()
                if not self.loop:
                    break
            if not self._stop.is_set():
                self._state = SourceState.FINISHED
        except WorkshopError as exc:
            self._fail(str(exc))
        finally:
            self.finished.set()

    def _play_once(self) -> None:
        ring = self.ring
        high = int(ring.capacity * 0.9)
        first_ts: float | None = None
        read = read_log(self.path)
        self.warning = read.warning()
        if self.warning:
            log.warning("%s: %s", self.path, self.warning)
        wall0 = time.perf_counter()
        for msg in _messages(read):
            if self._stop.is_set():
                return
            if self.speed > 0:
                if first_ts is None:
                    first_ts = msg.timestamp
                due = wall0 + (msg.timestamp - first_ts) / self.speed
                delay = due - time.perf_counter()
                if delay > 0.001 and self._stop.wait(delay):
                    return
            while ring.backlog >= high:
                if self._stop.wait(0.005):
                    return
            ring.push(Frame.from_message(msg))
            self.frames_replayed += 1
