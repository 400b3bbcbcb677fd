"""Offline log analysis: load and decode a whole log, summarise it, measure ranges, keep markers.

Qt-free: the GUI's ``LogAnalysisView`` runs ``load_and_decode`` through a worker, and scripts
call the same functions directly::

    dbs = DatabaseSet()
    dbs.add("tesla_powertrain.dbc")
    log = load_and_decode("drive.log", dbs, progress=lambda phase, done, total: None)
    rows = message_summary(log.columns, dbs)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.decode.vectorized import DecodedSignal, DecodeResult, decode_columns
from workshop_app.core.errors import LogFileError, WorkshopError
from workshop_app.core.logs.columns import ERROR, EXTENDED, FrameColumns, ReadCancelled, channel_value
from workshop_app.core.logs.reader import read_log
from workshop_app.core.types import channel_label

# progress(phase, done, total): bytes of the file while PHASE_READ, data frames while PHASE_DECODE.
PhaseProgress = Callable[[str, int, int], None]
PHASE_READ = "reading"
PHASE_DECODE = "decoding"


@dataclass(frozen=True, eq=False)
class LoadedLog:
    """A log read into columns and decoded with a database set."""

    path: Path
    columns: FrameColumns
    result: DecodeResult
    load_seconds: float
    decode_seconds: float
    # One line naming the damage skipped and impossible frames rejected while reading, or None.
    warning: str | None = None


class LoadCancelled(LogFileError):
    """``cancel`` was set; ``partial`` holds what was loaded before (a LoadedLog, or None)."""

    def __init__(self, message: str, partial: LoadedLog | None) -> None:
        super().__init__(message)
        self.partial = partial


def _empty_result() -> DecodeResult:
    return DecodeResult({}, 0, 0, 0, 0, [], 0.0)


def load_and_decode(
    path: str | Path,
    databases: DatabaseSet,
    *,
    progress: PhaseProgress | None = None,
    cancel: threading.Event | None = None,
) -> LoadedLog:
    """Read ``path`` into columns, then decode every known signal.

    A damaged log (bad lines, a cut BLF) loads with every frame that could be recovered and
    its ``warning`` saying what was skipped. Raises ``LoadCancelled`` when ``cancel`` is set,
    and ``LogFileError`` when the file is no log at all; the exception's ``partial`` is a
    ``LoadedLog`` of the frames read, or None when there were none (after a cancel while
    reading, the frames are not decoded: the user asked to stop working).
    """
    p = Path(path)
    read_progress = None if progress is None else (lambda done, total: progress(PHASE_READ, done, total))
    is_cancelled = None if cancel is None else cancel.is_set
    t0 = time.perf_counter()
    try:
        read = read_log(p, progress=read_progress, cancel=is_cancelled)
    except ReadCancelled as exc:
        raise LoadCancelled(str(exc), _partial(p, exc.partial, time.perf_counter() - t0)) from None
    except LogFileError as exc:
        # A reader that had to stop part-way still leaves frames worth looking at: decode
        # them too, so the caller can show signals up to the problem.
        got = getattr(exc, "partial", None)
        load_seconds = time.perf_counter() - t0
        partial = None
        if got is not None and len(got):
            t1 = time.perf_counter()
            result = decode_columns(got, databases, cancel=cancel)
            partial = LoadedLog(p, got, result, load_seconds, time.perf_counter() - t1)
        exc.partial = partial  # type: ignore[attr-defined]
        raise
    load_seconds = time.perf_counter() - t0
    columns = read.frames

    decode_progress = None if progress is None else (lambda done, total: progress(PHASE_DECODE, done, total))
    t1 = time.perf_counter()
    result = decode_columns(columns, databases, progress=decode_progress, cancel=cancel)
    loaded = LoadedLog(p, columns, result, load_seconds, time.perf_counter() - t1, read.warning())
    # decode_columns returns early (no exception) when cancelled: say so, keeping what it did.
    if cancel is not None and cancel.is_set():
        raise LoadCancelled(f"{p}: decoding cancelled", loaded)
    return loaded


def _partial(path: Path, columns: FrameColumns | None, seconds: float) -> LoadedLog | None:
    if columns is None or not len(columns):
        return None
    return LoadedLog(path, columns, _empty_result(), seconds, 0.0)


# --- summaries ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageRow:
    """One stream (channel, id, id kind) of a log."""

    channel: str
    arbitration_id: int
    extended: bool
    name: str | None  # the database message, None when no database knows the id
    count: int
    rate_hz: float  # mean rate over the stream's own span; 0.0 for a single frame
    first: float
    last: float


def message_summary(columns: FrameColumns, databases: DatabaseSet) -> list[MessageRow]:
    """Per stream: frame count, mean rate and first/last time, sorted by channel and id.

    Error frames are left out (their id means nothing); every other frame is counted once.
    """
    rows = np.flatnonzero((columns.flags & ERROR) == 0)
    if not len(rows):
        return []
    ext = (columns.flags[rows] & EXTENDED) != 0
    keys = (columns.channel[rows].astype(np.uint64) << np.uint64(30)) | (
        ext.astype(np.uint64) << np.uint64(29)
    )
    keys |= columns.arbitration_id[rows].astype(np.uint64)
    unique, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    ts = columns.timestamp[rows]
    first = np.full(len(unique), np.inf)
    last = np.full(len(unique), -np.inf)
    np.minimum.at(first, inverse, ts)
    np.maximum.at(last, inverse, ts)
    labels = [channel_label(channel_value(name)) for name in columns.channels] or ["can0"]
    out = []
    for key, count, lo, hi in zip(
        unique.tolist(), counts.tolist(), first.tolist(), last.tolist(), strict=True
    ):
        index = key >> 30
        channel = labels[index] if index < len(labels) else f"can{index}"
        arbitration_id = key & 0x1FFFFFFF
        extended = bool(key >> 29 & 1)
        message = databases.lookup(channel, arbitration_id, extended)
        span = hi - lo
        rate = (count - 1) / span if count > 1 and span > 0 else 0.0
        out.append(
            MessageRow(
                channel,
                arbitration_id,
                extended,
                None if message is None else message.name,
                count,
                rate,
                lo,
                hi,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class RangeStats:
    """Samples of one signal inside a time range; min/max/mean are None when there are none."""

    count: int
    min: float | None
    max: float | None
    mean: float | None


def range_statistics(signal: DecodedSignal, t0: float, t1: float) -> RangeStats:
    """Statistics of the samples with ``t0 <= t <= t1`` (log timestamps; the order of t0, t1 is free)."""
    lo, hi = min(t0, t1), max(t0, t1)
    # Timestamps are in time order (decode_columns keeps them sorted): bisect, no full-array mask.
    start = int(np.searchsorted(signal.timestamps, lo, side="left"))
    stop = int(np.searchsorted(signal.timestamps, hi, side="right"))
    values = signal.values[start:stop]
    if not len(values):
        return RangeStats(0, None, None, None)
    return RangeStats(len(values), float(values.min()), float(values.max()), float(values.mean()))


# --- markers --------------------------------------------------------------------------------


class MarkerError(WorkshopError):
    """A marker file could not be read or written; the message names the file."""


@dataclass(frozen=True, slots=True)
class Marker:
    """A note at a log timestamp (the log's own time base, as in FrameColumns.timestamp)."""

    t: float
    note: str


def markers_path(log_path: str | Path) -> Path:
    """Where the markers of a log live: ``<log>.markers.json`` beside it."""
    p = Path(log_path)
    return p.with_name(p.name + ".markers.json")


class MarkerSet:
    """The markers of one log, kept in time order, saved as JSON beside the log."""

    VERSION = 1

    def __init__(self, log_path: str | Path) -> None:
        self.log_path = Path(log_path)
        self._markers: list[Marker] = []

    @property
    def path(self) -> Path:
        return markers_path(self.log_path)

    def add(self, t: float, note: str) -> Marker:
        marker = Marker(float(t), note)
        self._markers.append(marker)
        self._markers.sort(key=lambda m: m.t)
        return marker

    def remove(self, marker: Marker) -> None:
        """Remove one marker; ValueError if it is not in the set."""
        self._markers.remove(marker)

    def list(self) -> list[Marker]:
        return list(self._markers)

    def __len__(self) -> int:
        return len(self._markers)

    def save(self) -> Path:
        data = {
            "version": self.VERSION,
            "log": self.log_path.name,
            "markers": [{"t": m.t, "note": m.note} for m in self._markers],
        }
        try:
            self.path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        except OSError as exc:
            raise MarkerError(f"{self.path}: cannot write markers ({exc.strerror or exc})") from exc
        return self.path

    @classmethod
    def load(cls, log_path: str | Path) -> MarkerSet:
        """The saved markers of ``log_path`` (an empty set when there is no marker file)."""
        markers = cls(log_path)
        path = markers.path
        if not path.exists():
            return markers
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise MarkerError(f"{path}: cannot read markers ({exc.strerror or exc})") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            where = f":{exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
            raise MarkerError(f"{path}{where}: not a valid marker file ({exc})") from exc
        try:
            for entry in data["markers"]:
                markers.add(float(entry["t"]), str(entry.get("note", "")))
        except (TypeError, KeyError, ValueError, AttributeError) as exc:
            raise MarkerError(
                f"{path}: not a valid marker file (expected {{'markers': [{{'t', 'note'}}]}})"
            ) from exc
        return markers
