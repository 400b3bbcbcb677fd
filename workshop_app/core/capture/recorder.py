"""Recorder: writes frames to a log file on its own thread, chosen by file suffix.

The consumer hands over whole batches (``write``); a bounded queue decouples it from disk so
recording never slows capture. If the disk cannot keep up, batches are dropped and counted.

Threads: ``write``/``stop`` and the progress properties are called from the consumer (GUI tick
or CLI loop); everything that touches the file runs on the recorder's own thread. Each counter
is written by exactly one of the two threads, so no update is lost without a lock.

MF4 is written by :class:`Mf4FrameWriter` (ours) rather than python-can's ``MF4Writer``, which
appends one record per call (~50 µs a frame, slower than a loaded CAN FD bus). Ours builds
whole numpy record arrays and appends them as one data block, in the same bus-logging layout,
so ``can.LogReader`` and asammdf read the file exactly as they read python-can's.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from typing import Literal, Protocol

import can
import numpy as np

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
    size_bytes: int = 0  # the closed file's size on disk
    error: str | None = None  # why writing stopped early, if it did
    warning: str | None = None  # frames the format cannot hold (counted in frames_dropped)


@dataclass(frozen=True, slots=True)
class RecordingProgress:
    """A snapshot of a running recording, cheap enough to take on every GUI tick."""

    frames_written: int
    frames_dropped: int
    queued: int  # frames handed over but not yet written
    bytes_written: int  # bytes in the file so far (MF4: staged, compressed on close)
    duration: float  # seconds since the recording started (or until it stopped)
    error: str | None
    warning: str | None  # e.g. frames the format cannot hold (counted as dropped)


class FrameWriter(Protocol):
    """What the recorder thread drives: one batch at a time, then ``close`` once.

    ``write_frames`` returns how many frames the file will hold; the rest are frames the
    format cannot store, described by ``limitation``.
    """

    limitation: str | None

    def write_frames(self, frames: Sequence[Frame]) -> int: ...

    def size(self) -> int: ...

    def close(self) -> None: ...


class MessageFrameWriter:
    """Feeds a python-can writer (or our SQLite writer) one ``can.Message`` per frame.

    ``rejects`` picks the frames the format cannot store; they are skipped and reported rather
    than handed to a writer that would drop them with only a log line (python-can's TRCWriter).
    """

    def __init__(
        self,
        listener: can.Listener,
        path: Path,
        *,
        numeric_channels: bool,
        rejects: Callable[[Frame], bool] | None = None,
        limitation: str | None = None,
    ) -> None:
        self._listener = listener
        self._path = path
        self._numeric = numeric_channels
        self._rejects = rejects
        self.limitation = limitation
        self._channels: dict[str, int | str] = {}

    def write_frames(self, frames: Sequence[Frame]) -> int:
        if self._rejects is not None:
            rejects = self._rejects
            frames = [f for f in frames if not rejects(f)]
        on_message = self._listener.on_message_received
        channels = self._channels
        numeric = self._numeric
        for frame in frames:
            msg = frame.to_message()
            if numeric:
                # Binary and numbered formats store channels as numbers: "can1" -> 1.
                label = frame.channel
                number = channels.get(label)
                if number is None:
                    number = channels[label] = _channel_number(label)
                msg.channel = number
            on_message(msg)
        return len(frames)

    def size(self) -> int:
        file_size = getattr(self._listener, "file_size", None)
        if file_size is not None:
            return int(file_size())
        try:
            return self._path.stat().st_size
        except OSError:
            return 0

    def close(self) -> None:
        self._listener.stop()


# --- MF4 -----------------------------------------------------------------------------------
# The layout python-can's MF4Writer creates (can/io/mf4.py) and its MF4Reader and asammdf's
# bus-logging code expect: three channel groups (data, error, remote frames), each one
# structure channel of fixed-size records, time relative to the header's start time.

_STD_FIELDS = [
    ("BusChannel", "<u1"),
    ("ID", "<u4"),
    ("IDE", "<u1"),
    ("DLC", "<u1"),
    ("DataLength", "<u1"),
    ("DataBytes", "(64,)u1"),
    ("Dir", "<u1"),
    ("EDL", "<u1"),
    ("BRS", "<u1"),
    ("ESI", "<u1"),
]
_RTR_FIELDS = [
    ("BusChannel", "<u1"),
    ("ID", "<u4"),
    ("IDE", "<u1"),
    ("DLC", "<u1"),
    ("DataLength", "<u1"),
    ("Dir", "<u1"),
]
# (group name, record fields) in group order: data frames 0, error frames 1, remote frames 2.
_MF4_GROUPS = (
    ("CAN_DataFrame", _STD_FIELDS),
    ("CAN_ErrorFrame", _STD_FIELDS),
    ("CAN_RemoteFrame", _RTR_FIELDS),
)
_MF4_DTYPES = tuple(np.dtype([(f"{name}.{f}", t) for f, t in fields]) for name, fields in _MF4_GROUPS)
# Payload length -> CAN FD DLC code (lengths between the valid sizes round up, as python-can's len2dlc).
_LEN2DLC = np.array([can.util.len2dlc(n) for n in range(65)], dtype=np.uint8)
_FRAME_FIELDS = attrgetter(
    "timestamp",
    "arbitration_id",
    "data",
    "channel",
    "is_extended",
    "is_fd",
    "bitrate_switch",
    "error_state_indicator",
    "is_remote",
    "is_error",
    "is_rx",
)


class Mf4FrameWriter:
    """MF4 bus-logging writer that appends frames in blocks instead of one record per call.

    Frames are buffered and converted column-wise to numpy records, then appended with one
    ``MDF.extend`` per group every ``flush_frames`` frames or ``flush_seconds``. asammdf stages
    the blocks in a temporary file (next to the output, not in a possibly RAM-backed /tmp)
    and writes the final, compressed file on :meth:`close`; nothing is readable before that.

    The header's start time is the first frame's whole second (UTC), so timestamps survive
    the round trip to the microsecond whatever the clock (wall clock or a replayed log's).
    """

    limitation: str | None = None  # MF4 holds every kind of frame

    def __init__(
        self,
        path: Path,
        *,
        compression: Literal[0, 1, 2] = 2,  # 2: transposition + deflate, as python-can
        flush_frames: int = 65_536,
        flush_seconds: float = 1.0,
    ) -> None:
        # Local import: only MF4 needs asammdf, and python-can treats it as optional.
        from asammdf import MDF, Signal
        from asammdf.blocks.v4_blocks import SourceInformation
        from asammdf.blocks.v4_constants import BUS_TYPE_CAN, SOURCE_BUS

        self._path = path
        self._compression = compression
        self._flush_frames = flush_frames
        self._flush_seconds = flush_seconds
        # Opened now so an unwritable path fails at start, not after an hour of capture.
        self._file = open(path, "w+b")  # noqa: SIM115 - closed in close()
        try:
            self._mdf = MDF(version="4.10", temporary_folder=str(path.parent))
            self._mdf.header.start_time = datetime.now(UTC)
            source = SourceInformation(source_type=SOURCE_BUS, bus_type=BUS_TYPE_CAN)
            for (name, _fields), dtype in zip(_MF4_GROUPS, _MF4_DTYPES, strict=True):
                self._mdf.append(
                    Signal(
                        name=name,
                        samples=np.array([], dtype=dtype),
                        timestamps=np.array([], dtype="<f8"),
                        source=source,
                    )
                )
        except BaseException:
            self._file.close()
            raise
        self._pending: list[Frame] = []
        self._last_flush = time.monotonic()
        self._base: int | None = None  # epoch second the file's time axis starts at
        self._channels: dict[str, int] = {}
        self._closed = False

    def write_frames(self, frames: Sequence[Frame]) -> int:
        self._pending.extend(frames)
        if (
            len(self._pending) >= self._flush_frames
            or time.monotonic() - self._last_flush >= self._flush_seconds
        ):
            self.flush()
        return len(frames)

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        frames, self._pending = self._pending, []
        if not frames:
            return
        if self._base is None:
            self._base = max(0, math.floor(frames[0].timestamp))
            self._mdf.header.start_time = datetime.fromtimestamp(self._base, UTC)
        n = len(frames)
        (ts, ids, data, labels, ext, fd, brs, esi, remote, error, rx) = zip(
            *map(_FRAME_FIELDS, frames), strict=True
        )
        cols: dict[str, np.ndarray] = {}
        cols["t"] = np.fromiter(ts, np.float64, n) - self._base
        cols["ID"] = np.fromiter(ids, np.uint32, n)
        lengths = np.fromiter(map(len, data), np.uint16, n)
        if n and int(lengths.max()) > 64:
            raise ValueError("a frame carries more than 64 data bytes")
        cols["DataLength"] = lengths.astype(np.uint8)
        cols["DataBytes"] = np.frombuffer(b"".join(d.ljust(64, b"\0") for d in data), np.uint8).reshape(n, 64)
        channel_of = self._channel
        cols["BusChannel"] = np.fromiter(map(channel_of, labels), np.uint8, n)
        cols["IDE"] = np.fromiter(ext, np.uint8, n)
        is_fd = np.fromiter(fd, bool, n)
        cols["EDL"] = is_fd.astype(np.uint8)
        # As python-can writes them: BRS/ESI only mean something on FD frames.
        cols["BRS"] = np.fromiter(brs, np.uint8, n) & cols["EDL"]
        cols["ESI"] = np.fromiter(esi, np.uint8, n) & cols["EDL"]
        cols["DLC"] = np.where(is_fd, _LEN2DLC[cols["DataLength"]], cols["DataLength"]).astype(np.uint8)
        cols["Dir"] = np.fromiter(rx, np.uint8, n) ^ 1  # 0 = Rx, 1 = Tx
        is_remote = np.fromiter(remote, bool, n)
        is_error = np.fromiter(error, bool, n) & ~is_remote
        masks = (~(is_remote | is_error), is_error, is_remote)
        for group, ((name, fields), dtype, mask) in enumerate(
            zip(_MF4_GROUPS, _MF4_DTYPES, masks, strict=True)
        ):
            count = int(mask.sum())
            if not count:
                continue
            everything = count == n
            records = np.empty(count, dtype=dtype)
            for field, _type in fields:
                column = cols[field]
                records[f"{name}.{field}"] = column if everything else column[mask]
            times = cols["t"] if everything else cols["t"][mask]
            self._mdf.extend(group, [(times, None), (records, None)])

    def _channel(self, label: str) -> int:
        number = self._channels.get(label)
        if number is None:
            parsed = _channel_number(label)
            # BusChannel is one byte; channels without a number are bus 0, as in python-can.
            number = parsed if isinstance(parsed, int) and 0 <= parsed <= 255 else 0
            self._channels[label] = number
        return number

    def size(self) -> int:
        # The staged (LZ4-compressed) blocks: close to, usually above, the final size.
        # asammdf keeps no public size; the MDF4 object behind the MDF facade owns the file.
        inner = getattr(self._mdf, "_mdf", self._mdf)
        staged = getattr(inner, "_tempfile", None)
        try:
            # tell(), not a stat: asammdf's staging file is buffered. Recorder thread only.
            return int(staged.tell()) if staged is not None else 0
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.flush()
            self._mdf.save(self._file, compression=self._compression)
        finally:
            self._mdf.close()
            self._file.close()


def open_writer(path: Path) -> FrameWriter:
    """A frame writer for ``path``'s format, with a clear error."""
    suffix = log_suffix(path)
    if suffix not in WRITABLE_SUFFIXES:
        raise LogFileError(
            f"{path}: unknown log format {suffix or '(no suffix)'!r}; writable: {', '.join(WRITABLE_SUFFIXES)}"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        plain = path.suffix.lower() == suffix  # not gzip-wrapped
        if suffix == ".mf4" and plain:
            return Mf4FrameWriter(path)
        if suffix == ".db" and plain:
            return MessageFrameWriter(SqliteFrameWriter(path), path, numeric_channels=True)
        if suffix == ".trc":
            return MessageFrameWriter(
                can.Logger(path),
                path,
                numeric_channels=True,
                rejects=_trc_cannot_hold,
                limitation="TRC files (as python-can writes them) cannot hold CAN FD, remote or error frames",
            )
        # candump keeps interface names; the other formats number their channels.
        return MessageFrameWriter(can.Logger(path), path, numeric_channels=suffix != ".log")
    except OSError as exc:
        raise LogFileError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    except Exception as exc:
        raise LogFileError(f"{path}: cannot create {suffix} log ({exc})") from exc


class Recorder:
    """Background log writer. ``write`` never blocks; ``stop`` writes everything queued.

    >>> rec = Recorder("drive.blf")            # doctest: +SKIP
    >>> rec.write(session_tick_frames)         # doctest: +SKIP
    >>> rec.stop().frames_written              # doctest: +SKIP
    """

    def __init__(self, path: str | Path, *, max_queued_frames: int = 2_000_000) -> None:
        self.path = Path(path)
        self._writer = open_writer(self.path)
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._max_queued = max_queued_frames
        # Consumer-thread counters.
        self._enqueued = 0
        self._dropped_on_write = 0
        # Recorder-thread counters.
        self._dequeued = 0
        self._written = 0
        self._dropped_by_writer = 0
        self._rejected = 0  # part of _dropped_by_writer: frames the format cannot hold
        self._bytes = 0
        self.error: str | None = None
        self.warning: str | None = None
        self.started = time.time()
        self._stopped_at: float | None = None
        self._final_size: int | None = None  # set by stop() once the file is closed
        self._thread = threading.Thread(target=self._run, name=f"recorder-{self.path.name}", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._stopped_at is None

    @property
    def frames_written(self) -> int:
        return self._written

    @property
    def frames_dropped(self) -> int:
        return self._dropped_on_write + self._dropped_by_writer

    @property
    def queued(self) -> int:
        """Frames handed to ``write`` that the recorder thread has not taken yet."""
        return self._enqueued - self._dequeued

    @property
    def bytes_written(self) -> int:
        """Size of the file so far, as of the last written batch (the final size once stopped)."""
        return self._final_size if self._final_size is not None else self._bytes

    @property
    def progress(self) -> RecordingProgress:
        end = self._stopped_at if self._stopped_at is not None else time.time()
        return RecordingProgress(
            self.frames_written,
            self.frames_dropped,
            self.queued,
            self.bytes_written,
            end - self.started,
            self.error,
            self._warning_text(),
        )

    def write(self, frames: list[Frame]) -> None:
        """Queue a batch (called from the consumer thread)."""
        if not frames or self._stopped_at is not None:
            return
        if self.error is not None or self.queued + len(frames) > self._max_queued:
            self._dropped_on_write += len(frames)
            return
        self._enqueued += len(frames)
        self._queue.put(frames)

    def stop(self) -> RecordingSummary:
        """Write what is queued, close the file, and summarise. Idempotent."""
        if self._stopped_at is None:
            self._stopped_at = time.time()
            self._queue.put(_STOP)
            self._thread.join()
            try:
                self._final_size = self.path.stat().st_size
            except OSError:
                self._final_size = 0
        return RecordingSummary(
            self.path,
            self.started,
            self._stopped_at - self.started,
            self.frames_written,
            self.frames_dropped,
            self._final_size or 0,
            self.error,
            self._warning_text(),
        )

    def _warning_text(self) -> str | None:
        if self._rejected == 0 or self.warning is None:
            return None
        return f"{self._rejected} frame(s) not written: {self.warning}"

    def _run(self) -> None:
        writer = self._writer
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    break
                assert isinstance(item, list)
                self._dequeued += len(item)
                if self.error is not None:
                    self._dropped_by_writer += len(item)
                    continue
                try:
                    stored = writer.write_frames(item)
                    self._written += stored
                    if stored < len(item):
                        self._rejected += len(item) - stored
                        self._dropped_by_writer += len(item) - stored
                        self.warning = writer.limitation
                    self._bytes = writer.size()
                except Exception as exc:  # disk full, file removed...: keep what was written
                    self.error = f"{self.path}: write failed ({exc})"
                    self._dropped_by_writer += len(item)
        finally:
            try:
                writer.close()
            except Exception as exc:
                self.error = self.error or f"{self.path}: closing failed ({exc})"


def _trc_cannot_hold(frame: Frame) -> bool:
    return frame.is_fd or frame.is_remote or frame.is_error


def _channel_number(label: str) -> int | str:
    digits = "".join(ch for ch in label if ch.isdigit())
    return int(digits) if digits else label
