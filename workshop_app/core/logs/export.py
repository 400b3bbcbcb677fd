"""Export part of a log: decoded signals as CSV, or raw frames to any python-can log format."""

from __future__ import annotations

import csv
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workshop_app.core.capture.recorder import open_writer
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.decode.vectorized import DecodeResult, decode_columns
from workshop_app.core.errors import LogFileError
from workshop_app.core.logs.columns import FrameColumns
from workshop_app.core.logs.playback import channel_labels, frames_of, time_range

SIGNAL_HEADER = ("timestamp", "message", "signal", "value", "label", "unit")
# Frames handed to a writer at once: whole batches keep python-can's per-call overhead low.
_FRAME_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class FrameExport:
    path: Path
    frames_written: int
    frames_rejected: int  # frames the format cannot hold (e.g. CAN FD in TRC)
    limitation: str | None
    cancelled: bool = False


def export_signals_csv(
    source: DecodeResult | FrameColumns,
    path: str | Path,
    *,
    databases: DatabaseSet | None = None,
    start: float | None = None,
    end: float | None = None,
    signals: Sequence[tuple[str, str]] | None = None,
) -> int:
    """Write decoded values between log times ``start`` and ``end`` as long-format CSV.

    ``source`` is a finished :class:`DecodeResult`, or columns to decode with ``databases``
    (only the range is decoded then). ``signals`` picks ``(message, signal)`` pairs; an unknown
    pair is an error rather than a silently empty file. Rows are sorted by time; rows of one
    instant keep message/signal order. Returns the number of rows written.
    """
    if isinstance(source, FrameColumns):
        if databases is None:
            raise ValueError("decoding columns needs databases")
        source = decode_columns(time_range(source, start, end), databases)
    wanted = sorted(source.signals) if signals is None else list(signals)
    missing = [f"{m}.{s}" for m, s in wanted if (m, s) not in source.signals]
    if missing:
        raise LogFileError(f"no values decoded for {', '.join(missing)}")
    times: list[np.ndarray] = []
    values: list[np.ndarray] = []
    which: list[np.ndarray] = []
    for k, key in enumerate(wanted):
        sig = source.signals[key]
        keep = np.ones(len(sig.timestamps), dtype=bool)
        if start is not None:
            keep &= sig.timestamps >= start
        if end is not None:
            keep &= sig.timestamps <= end
        times.append(sig.timestamps[keep])
        values.append(sig.values[keep])
        which.append(np.full(int(keep.sum()), k, dtype=np.int32))
    t = np.concatenate(times) if times else np.zeros(0)
    v = np.concatenate(values) if values else np.zeros(0)
    w = np.concatenate(which) if which else np.zeros(0, dtype=np.int32)
    order = np.argsort(t, kind="stable")  # stable: ties stay in signal order
    decoded = [source.signals[key] for key in wanted]
    p = Path(path)
    try:
        with p.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(SIGNAL_HEADER)
            for ts, value, k in zip(t[order].tolist(), v[order].tolist(), w[order].tolist(), strict=True):
                sig = decoded[k]
                label = sig.choices.get(int(value), "") if sig.choices and value.is_integer() else ""
                writer.writerow([f"{ts:.6f}", sig.message, sig.name, repr(value), label, sig.unit])
    except OSError as exc:
        raise LogFileError(f"{p}: cannot write ({exc.strerror or exc})") from exc
    return len(order)


def export_frames(
    columns: FrameColumns,
    path: str | Path,
    *,
    start: float | None = None,
    end: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> FrameExport:
    """Write the frames between log times ``start`` and ``end`` to a log file (format by suffix).

    Uses the recorder's writers, so the result reads back exactly as a recording would.
    Setting ``cancel`` stops between batches; the file then holds the frames written so far.
    """
    p = Path(path)
    part = time_range(columns, start, end)
    labels = channel_labels(part)
    writer = open_writer(p)
    written = attempted = 0
    n = len(part)
    try:
        for lo in range(0, n, _FRAME_BATCH):
            if cancel is not None and cancel.is_set():
                break
            hi = min(n, lo + _FRAME_BATCH)
            written += writer.write_frames(frames_of(part, labels, lo, hi))
            attempted += hi - lo
            if progress is not None:
                progress(hi, n)
    except OSError as exc:
        raise LogFileError(f"{p}: cannot write ({exc.strerror or exc})") from exc
    finally:
        writer.close()
    return FrameExport(
        path=p,
        frames_written=written,
        frames_rejected=attempted - written,
        limitation=writer.limitation if attempted > written else None,
        cancelled=attempted < n,
    )
