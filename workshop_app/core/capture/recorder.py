"""Recorder: writes frames to a log file on its own thread, chosen by file suffix.

The consumer hands over whole batches (``write``); a bounded queue decouples it from disk so
recording never slows capture. If the disk cannot keep up, batches are dropped and counted.

Threads: ``write``/``stop`` and the progress properties are called from the consumer (GUI tick
or CLI loop); everything that touches the file runs on the recorder's own thread. Each counter
is written by exactly one of the two threads, so no update is lost without a lock.

Nothing recorded is lost to a crash beyond the last :data:`FLUSH_SECONDS`: the recorder thread
flushes the writer on a timer (BLF containers written and the header updated, text files
flushed, gzipped text as whole gzip members, SQLite committed, MF4 data blocks appended and
linked), so a killed process leaves a readable file. A write error (full disk, removed drive) stops the recording with a plain
message and a file cut back to its last flush; the capture itself goes on.

MF4 is written by :class:`Mf4FrameWriter` (ours, in :mod:`.mf4_writer`) rather than
python-can's ``MF4Writer``, which appends one record per call (~50 µs a frame).
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import can
from can.io.logger import MESSAGE_WRITERS

from workshop_app.core.capture import gzip_members
from workshop_app.core.capture.blf_frames import BlfBatches
from workshop_app.core.capture.columns import FrameColumns
from workshop_app.core.capture.mf4_writer import Mf4FrameWriter, channel_number
from workshop_app.core.capture.sqlite_log import SqliteFrameWriter
from workshop_app.core.errors import LogFileError
from workshop_app.core.logfiles import WRITABLE_SUFFIXES, log_suffix
from workshop_app.core.types import Frame

__all__ = ["FLUSH_SECONDS", "FrameWriter", "Mf4FrameWriter", "Recorder", "RecordingSummary", "open_writer"]

# Flush period. Frames reach the recorder one GUI/CLI tick after they arrive (<= 0.1 s), so a
# half-second flush keeps everything older than a second on disk with room to spare.
FLUSH_SECONDS = 0.5

_STOP = object()
_TEXT_SUFFIXES = (".asc", ".csv", ".log", ".trc", ".txt")


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
    bytes_written: int  # bytes in the file so far
    duration: float  # seconds since the recording started (or until it stopped)
    error: str | None
    warning: str | None  # e.g. frames the format cannot hold (counted as dropped)


class FrameWriter(Protocol):
    """What the recorder thread drives: batches, a ``flush`` on a timer, then ``close`` once.

    ``write_frames`` returns how many frames the file will hold; the rest are frames the
    format cannot store, described by ``limitation``. ``flushed`` counts the frames a reader of
    the file finds after the last ``flush`` (what survives a crash). ``close`` leaves a readable
    file even after a write failed.
    """

    limitation: str | None

    @property
    def flushed(self) -> int: ...

    def write_frames(self, frames: Sequence[Frame], columns: FrameColumns | None = None) -> int:
        """``columns``: the same frames as columns, when the caller has them already."""
        ...

    def flush(self) -> None: ...

    def size(self) -> int: ...

    def close(self) -> None: ...


class MessageFrameWriter:
    """Feeds a python-can writer (or our SQLite writer) one ``can.Message`` per frame.

    ``rejects`` picks the frames the format cannot store; they are skipped and reported rather
    than handed to a writer that would drop them with only a log line (python-can's TRCWriter).
    ``flush`` pushes everything to the operating system (a killed process loses nothing after
    it); if a later write fails, ``close`` cuts the file back to the end of the last flush, so a
    half-written container or line never ends it.
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
        self._written = 0
        self._flushed = 0
        self._failed = False
        self._closed = False
        self._blf = BlfBatches(listener) if isinstance(listener, can.BLFWriter) and numeric_channels else None
        # python-can's writers keep their open file as ``file``; our SQLite writer has none.
        self._file = getattr(listener, "file", None)
        if self._file is not None:
            # The header (BLF, ASC, TRC, CSV) on disk now: a file cut back to its last flush
            # after a write error is still a readable, empty log.
            self._file.flush()
        self._flushed_size = self._disk_size()

    @property
    def flushed(self) -> int:
        if isinstance(self._listener, SqliteFrameWriter):
            return self._listener.committed  # it also commits on its own every 10,000 frames
        return self._flushed

    def write_frames(self, frames: Sequence[Frame], columns: FrameColumns | None = None) -> int:
        if self._rejects is not None:
            rejects = self._rejects
            frames = [f for f in frames if not rejects(f)]
            columns = None  # the rows no longer match
        try:
            if self._blf is not None:
                self._blf.write(frames, self._write_messages, columns)  # packed in bulk
            else:
                self._write_messages(frames)
        except BaseException:
            self._failed = True
            raise
        self._written += len(frames)
        return len(frames)

    def _write_messages(self, frames: Sequence[Frame]) -> None:
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
                    number = channels[label] = channel_number(label)
                msg.channel = number
            on_message(msg)

    def flush(self) -> None:
        if self._failed or self._closed:
            return
        listener = self._listener
        try:
            if isinstance(listener, can.BLFWriter):
                # python-can's BLFWriter fills a container up to 128 KiB before it writes it and
                # fixes the file header only in stop(): both are done here, as stop() does them.
                listener._flush()
                end = listener.file.tell()
                listener.file.seek(0)
                listener._write_header(end)
                listener.file.seek(end)
            elif isinstance(listener, SqliteFrameWriter):
                listener.flush()  # one committed transaction
            if self._file is not None:
                self._file.flush()
        except BaseException:
            self._failed = True
            raise
        self._flushed = self._written
        self._flushed_size = self._disk_size()

    def size(self) -> int:
        file_size = getattr(self._listener, "file_size", None)
        if file_size is not None:
            try:
                return int(file_size())
            except Exception:  # an estimate only: python-can's MF4Writer has none after stop()
                return self._flushed_size
        try:
            return self._path.stat().st_size
        except OSError:
            return 0

    def close(self) -> None:
        """Close the file. If a write failed, or closing does, the file is cut back to its last
        flush; a failure of closing itself is raised so the recorder can say what happened."""
        if self._closed:
            return
        failure: Exception | None = None
        if not self._failed:
            try:
                self.flush()
            except Exception as exc:  # sets _failed: cut back below
                failure = exc
        self._closed = True
        if not self._failed:
            try:
                self._listener.stop()
            except Exception as exc:
                self._failed, failure = True, exc
            else:
                self._flushed = self._written
                return
        # python-can's buffers still hold the failed bytes and would retry them on close: close
        # the file whatever it says, then drop whatever followed the last flush.
        if self._file is not None:
            with contextlib.suppress(Exception):
                self._file.close()
            with contextlib.suppress(OSError):
                os.truncate(self._path, self._flushed_size)
        elif isinstance(self._listener, SqliteFrameWriter):
            self._listener.abandon()
        if failure is not None:
            raise failure

    def _disk_size(self) -> int:
        try:
            return os.fstat(self._file.fileno()).st_size if self._file is not None else 0
        except (OSError, ValueError, AttributeError):
            return 0


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
        if suffix == ".mf4":
            if not plain:
                # python-can's gzipped MF4 never worked (asammdf cannot save into a gzip stream),
                # and an MF4 written as it goes needs a seekable file: MF4 compresses its blocks.
                raise LogFileError(f"{path}: MF4 recordings cannot be gzipped (MF4 compresses its own data)")
            return Mf4FrameWriter(path)
        if suffix == ".db" and plain:
            return MessageFrameWriter(SqliteFrameWriter(path), path, numeric_channels=True)
        if suffix == ".trc":
            return MessageFrameWriter(
                can.Logger(path) if plain else can.TRCWriter(gzip_members.open_text(path)),
                path,
                numeric_channels=True,
                rejects=_trc_cannot_hold,
                limitation="TRC files (as python-can writes them) cannot hold CAN FD, remote or error frames",
            )
        # candump keeps interface names; the other formats number their channels.
        if not plain and suffix in _TEXT_SUFFIXES:
            # Gzipped text: one complete gzip member per flush, so a crash leaves a whole file.
            # python-can's text writers take an open text file too (typed as a path only).
            writer_class: Any = MESSAGE_WRITERS[suffix]
            listener = writer_class(file=gzip_members.open_text(path))
            return MessageFrameWriter(listener, path, numeric_channels=suffix != ".log")
        if suffix == ".blf" and plain:
            # zlib's fastest level: at 30,000 frames/s the default level took half the recorder's
            # time (BlfBatches packs the frames) for files a few per cent smaller.
            return MessageFrameWriter(can.BLFWriter(path, compression_level=1), path, numeric_channels=True)
        return MessageFrameWriter(can.Logger(path), path, numeric_channels=suffix != ".log")
    except LogFileError:
        raise
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

    # False for a recording kept elsewhere (a capture process's): the tick then need not
    # build Frame objects just to hand them to a write that ignores them.
    takes_frames = True

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

    def write(self, frames: list[Frame], columns: FrameColumns | None = None) -> None:
        """Queue a batch (called from the consumer thread); ``columns``: the same frames as
        columns, when the caller built them anyway (a BLF writer then packs them as they are)."""
        if not frames or self._stopped_at is not None:
            return
        if self.error is not None or self.queued + len(frames) > self._max_queued:
            self._dropped_on_write += len(frames)
            return
        self._enqueued += len(frames)
        self._queue.put(frames if columns is None else (frames, columns))

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
        dirty = False  # frames handed to the writer since its last flush
        flush_at = 0.0
        closed = False
        try:
            while True:
                try:
                    wait = max(0.0, flush_at - time.monotonic()) if dirty else None
                    item = self._queue.get(timeout=wait)
                except queue.Empty:
                    item = None
                if item is _STOP:
                    break
                columns = None
                if isinstance(item, tuple):
                    item, columns = item
                if isinstance(item, list):
                    self._dequeued += len(item)
                    if self.error is not None:
                        self._dropped_by_writer += len(item)
                        continue
                    try:
                        stored = writer.write_frames(item, columns)
                    except Exception as exc:
                        self._fail(exc, len(item))
                        closed = True
                        continue
                    self._written += stored
                    if stored < len(item):
                        self._rejected += len(item) - stored
                        self._dropped_by_writer += len(item) - stored
                        self.warning = writer.limitation
                    if not dirty:
                        dirty, flush_at = True, time.monotonic() + FLUSH_SECONDS
                # Checked after every batch too: under load the queue is never empty.
                if dirty and time.monotonic() >= flush_at:
                    dirty = False
                    try:
                        writer.flush()
                    except Exception as exc:
                        self._fail(exc, 0)
                        closed = True
                        continue
                    self._bytes = writer.size()
        finally:
            if not closed:
                try:
                    writer.close()
                    self._bytes = writer.size()
                except Exception as exc:
                    self._fail(exc, 0)

    def _fail(self, exc: Exception, pending: int) -> None:
        """A write failed: stop recording, keep the file as of its last flush, say so plainly."""
        writer = self._writer
        # Cuts the file back to its last flush and closes it; a second failure changes nothing.
        with contextlib.suppress(Exception):
            writer.close()
        lost = self._written - writer.flushed
        self._written = writer.flushed
        self._dropped_by_writer += pending + max(0, lost)
        self._bytes = writer.size()
        self.error = (
            f"{self.path}: {_failure_text(exc)}; recording stopped, "
            f"the file keeps the {self._written} frame(s) written before"
        )


def _failure_text(exc: Exception) -> str:
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC:
            return "the disk is full"
        if exc.errno == errno.EDQUOT:
            return "the disk quota is used up"
        if exc.errno == errno.EFBIG:
            return "the file is larger than the file system allows"
        return f"cannot write ({exc.strerror or exc})"
    if isinstance(exc, sqlite3.Error):
        # SQLite reports its own codes, not errno: SQLITE_FULL is a full disk (or size limit).
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            return "the disk is full"
        return f"cannot write ({exc})"
    return f"write failed ({exc})"


def _trc_cannot_hold(frame: Frame) -> bool:
    return frame.is_fd or frame.is_remote or frame.is_error


_channel_number = channel_number  # the benchmark's name for it
