"""Export part of a log: decoded signals as CSV or MF4, or raw frames to any python-can log format."""

from __future__ import annotations

import csv
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from workshop_app.core.capture.recorder import open_writer
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.decode.vectorized import DecodedSignal, DecodeResult, decode_columns
from workshop_app.core.errors import LogFileError
from workshop_app.core.logs.columns import FrameColumns
from workshop_app.core.logs.notes import impossible, impossible_reason
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
    chosen = _chosen(source, databases, start, end, signals)
    times = [t for _, t, _ in chosen]
    values = [v for _, _, v in chosen]
    which = [np.full(len(t), k, dtype=np.int32) for k, (_, t, _) in enumerate(chosen)]
    t = np.concatenate(times) if times else np.zeros(0)
    v = np.concatenate(values) if values else np.zeros(0)
    w = np.concatenate(which) if which else np.zeros(0, dtype=np.int32)
    order = np.argsort(t, kind="stable")  # stable: ties stay in signal order
    decoded = [sig for sig, _, _ in chosen]
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


def _chosen(
    source: DecodeResult | FrameColumns,
    databases: DatabaseSet | None,
    start: float | None,
    end: float | None,
    signals: Sequence[tuple[str, str]] | None,
) -> list[tuple[DecodedSignal, np.ndarray, np.ndarray]]:
    """(signal, times, values) of the wanted signals inside the range (decoding columns first)."""
    if isinstance(source, FrameColumns):
        if databases is None:
            raise ValueError("decoding columns needs databases")
        source = decode_columns(time_range(source, start, end), databases)
    wanted = sorted(source.signals) if signals is None else list(signals)
    missing = [f"{m}.{s}" for m, s in wanted if (m, s) not in source.signals]
    if missing:
        raise LogFileError(f"no values decoded for {', '.join(missing)}")
    out = []
    for key in wanted:
        sig = source.signals[key]
        keep = np.ones(len(sig.timestamps), dtype=bool)
        if start is not None:
            keep &= sig.timestamps >= start
        if end is not None:
            keep &= sig.timestamps <= end
        out.append((sig, sig.timestamps[keep], sig.values[keep]))
    return out


def export_signals_mf4(
    source: DecodeResult | FrameColumns,
    path: str | Path,
    *,
    databases: DatabaseSet | None = None,
    start: float | None = None,
    end: float | None = None,
    signals: Sequence[tuple[str, str]] | None = None,
) -> int:
    """Write decoded values as an ASAM MDF 4 file of measurement signals (one channel group per
    signal, named ``MESSAGE.SIGNAL`` with its unit; times relative to the file's start time, the
    first value's time). Returns the number of values written."""
    from asammdf import MDF, Signal  # heavy: only for this export

    chosen = [c for c in _chosen(source, databases, start, end, signals) if len(c[1])]
    if not chosen:
        raise LogFileError("no decoded values in the chosen range")
    origin = min(float(t[0]) for _, t, _ in chosen)
    p = Path(path)
    mdf = MDF(version="4.10")
    try:
        mdf.header.start_time = datetime.fromtimestamp(origin, UTC)
        for sig, t, v in chosen:
            mdf.append(
                [Signal(samples=v, timestamps=t - origin, name=f"{sig.message}.{sig.name}", unit=sig.unit)],
                comment=f"{sig.message}.{sig.name}",
            )
        mdf.save(p, overwrite=True)
    except OSError as exc:
        raise LogFileError(f"{p}: cannot write ({exc.strerror or exc})") from exc
    finally:
        mdf.close()
    return sum(len(t) for _, t, _ in chosen)


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
    Frames no bus can carry (20 data bytes on classic CAN, an id beyond 29 bits) are never
    written: python-can's writers would turn them into invalid records or other frames. They
    count as rejected. Setting ``cancel`` stops between batches; the file then holds the frames
    written so far.
    """
    p = Path(path)
    part = time_range(columns, start, end)
    bad = impossible(part.arbitration_id, part.flags, part.length)
    invalid = int(bad.sum())
    invalid_note = None
    if invalid:
        first = int(np.argmax(bad))
        reason = impossible_reason(
            int(part.arbitration_id[first]), int(part.flags[first]), int(part.length[first])
        )
        invalid_note = f"{invalid} impossible frames not written (first: {reason})"
        part = part.select(~bad)
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
    limits = [text for text in (writer.limitation if attempted > written else None, invalid_note) if text]
    return FrameExport(
        path=p,
        frames_written=written,
        frames_rejected=attempted - written + invalid,
        limitation="; ".join(limits) or None,
        cancelled=attempted < n,
    )
