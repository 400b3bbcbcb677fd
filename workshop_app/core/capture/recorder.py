"""Recorder: writes frames to a log file on its own thread, chosen by file suffix.

The consumer hands over whole batches (``write``); a bounded queue decouples it from disk so
recording never slows capture. If the disk cannot keep up, batches are dropped and counted.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import can

from workshop_app.core.capture.sqlite_log import SqliteFrameWriter
from workshop_app.core.errors import LogFileError
from workshop_app.core.logfiles import WRITABLE_SUFFIXES, log_suffix
from workshop_app.core.types import Frame

_STOP = object()


@dataclass(frozen=True, slots=True)
class RecordingSummary:
    path: Path
    started: float  # epoch seconds
    duration: float  # seconds
    frames_written: int
    frames_dropped: int


def open_writer(path: Path) -> can.Listener:
    """A python-can writer for ``path``'s format (ours for SQLite), with a clear error."""
    suffix = log_suffix(path)
    if suffix not in WRITABLE_SUFFIXES:
        raise LogFileError(
            f"{path}: unknown log format {suffix or '(no suffix)'!r}; writable: {', '.join(WRITABLE_SUFFIXES)}"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".db" and path.suffix.lower() == ".db":
            return SqliteFrameWriter(path)
        return can.Logger(path)
    except OSError as exc:
        raise LogFileError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    except Exception as exc:
        raise LogFileError(f"{path}: cannot create {suffix} log ({exc})") from exc


class Recorder:
    """Background log writer. ``write`` never blocks; ``stop`` writes everything queued."""

    def __init__(self, path: str | Path, *, max_queued_frames: int = 2_000_000) -> None:
        self.path = Path(path)
        self._writer = open_writer(self.path)
        # candump keeps interface names; the other formats number their channels.
        self._numeric_channels = log_suffix(self.path) != ".log"
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._max_queued = max_queued_frames
        self._queued = 0  # frames in the queue; only approximately synchronised, a soft limit
        self.frames_written = 0
        self.frames_dropped = 0
        self.error: str | None = None
        self.started = time.time()
        self._stopped_at: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"recorder-{self.path.name}", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._stopped_at is None

    def write(self, frames: list[Frame]) -> None:
        """Queue a batch (called from the consumer thread)."""
        if not frames or self._stopped_at is not None:
            return
        if self.error is not None or self._queued + len(frames) > self._max_queued:
            self.frames_dropped += len(frames)
            return
        self._queued += len(frames)
        self._queue.put(frames)

    def stop(self) -> RecordingSummary:
        """Write what is queued, close the file, and summarise. Idempotent."""
        if self._stopped_at is None:
            self._stopped_at = time.time()
            self._queue.put(_STOP)
            self._thread.join()
        return RecordingSummary(
            self.path,
            self.started,
            self._stopped_at - self.started,
            self.frames_written,
            self.frames_dropped,
        )

    def _run(self) -> None:
        writer = self._writer
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    break
                assert isinstance(item, list)
                self._queued -= len(item)
                if self.error is not None:
                    self.frames_dropped += len(item)
                    continue
                try:
                    numeric = self._numeric_channels
                    for frame in item:
                        writer.on_message_received(_to_message(frame, numeric))
                    self.frames_written += len(item)
                except Exception as exc:  # disk full, file removed...: keep what was written
                    self.error = f"{self.path}: write failed ({exc})"
                    self.frames_dropped += len(item)
        finally:
            try:
                writer.stop()
            except Exception as exc:
                self.error = self.error or f"{self.path}: closing failed ({exc})"


def _to_message(frame: Frame, numeric_channel: bool) -> can.Message:
    msg = frame.to_message()
    if numeric_channel:
        # Binary and numbered formats store channels as numbers: "can1" -> 1.
        msg.channel = _channel_number(frame.channel)
    return msg


def _channel_number(label: str) -> int | str:
    digits = "".join(ch for ch in label if ch.isdigit())
    return int(digits) if digits else label
