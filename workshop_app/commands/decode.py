"""`workshop decode LOG --dbc DB -o OUT.csv`: every decoded signal value of a log, as CSV.

One row per signal value: timestamp, channel, id, message, signal, value, label, unit.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import can
import numpy as np

from workshop_app.commands.common import load_databases
from workshop_app.commands.log_input import load_log
from workshop_app.core.decode.live import decode_payload
from workshop_app.core.decode.vectorized import decode_columns
from workshop_app.core.errors import LogFileError
from workshop_app.core.logs.columns import FrameColumns
from workshop_app.core.logs.notes import LogRead
from workshop_app.core.types import channel_label

HEADER = ["timestamp", "channel", "arbitration_id", "message", "signal", "value", "label", "unit"]


def summary(args: argparse.Namespace) -> int:
    """Load and decode the whole log with the vectorised engine; statistics per signal."""
    dbs = load_databases(args.dbc, default_demo=False)
    t0 = time.perf_counter()
    read = load_log(args.log, "decode", strict=getattr(args, "strict", False))
    columns = read.frames
    load_s = time.perf_counter() - t0
    result = decode_columns(columns, dbs)
    rows = []
    for (message, name), sig in sorted(result.signals.items()):
        finite = sig.values[np.isfinite(sig.values)]
        rows.append(
            {
                "message": message,
                "signal": name,
                "unit": sig.unit,
                "values": len(sig.values),
                "min": float(finite.min()) if len(finite) else None,
                "max": float(finite.max()) if len(finite) else None,
                "mean": float(finite.mean()) if len(finite) else None,
            }
        )
    info = {
        "file": str(args.log),
        "frames": len(columns),
        "data_frames": result.frames,
        "decoded_frames": result.decoded_frames,
        "unknown_frames": result.unknown_frames,
        "undecodable_frames": result.undecodable_frames,
        "damaged_places": read.damaged,
        "rejected_frames": read.rejected,
        "problems": [str(note) for note in read.notes],
        "load_seconds": round(load_s, 4),
        "decode_seconds": round(result.seconds, 4),
        "fallback_messages": result.fallback_messages,
        "signals": rows,
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(
        f"{args.log}: {len(columns):,} frames, {result.decoded_frames:,} decoded, "
        f"{result.unknown_frames:,} with unknown ids, {result.undecodable_frames:,} undecodable"
        f"{_problems(read)}; loaded in {load_s:.3f} s, decoded in {result.seconds:.3f} s"
    )
    print(f"{'message.signal':<48} {'values':>10} {'min':>14} {'max':>14} {'mean':>14}  unit")
    for r in rows:
        stats = "".join(
            f" {'—' if r[k] is None else format(r[k], '.6g'):>14}" for k in ("min", "max", "mean")
        )
        print(f"{r['message'] + '.' + r['signal']:<48} {r['values']:>10,}{stats}  {r['unit']}")
    if result.fallback_messages:
        print("decoded frame by frame with cantools: " + ", ".join(result.fallback_messages))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.summary:
        return summary(args)
    dbs = load_databases(args.dbc, default_demo=False)
    # Read (and judge) the log before the output file is created: a refused log leaves none.
    read = load_log(args.log, "decode", strict=getattr(args, "strict", False))
    frames = decoded = unknown = undecodable = 0
    with ExitStack() as stack:
        out = sys.stdout if args.output is None else stack.enter_context(_open_output(args.output))
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(HEADER)
        lookup = dbs.lookup
        for msg in _frames(read.frames):
            if msg.is_error_frame or msg.is_remote_frame:
                continue
            frames += 1
            channel = channel_label(msg.channel)
            message = lookup(channel, msg.arbitration_id, msg.is_extended_id)
            if message is None:
                unknown += 1
                continue
            try:
                values = decode_payload(message, bytes(msg.data))
            except Exception:
                undecodable += 1
                continue
            decoded += 1
            ident = f"0x{msg.arbitration_id:X}"
            ts = f"{msg.timestamp:.6f}"
            for v in values:
                writer.writerow(
                    [ts, channel, ident, message.name, v.name, repr(v.value), v.label or "", v.unit]
                )
    print(
        f"{frames} frames, {decoded} decoded, {unknown} with ids not in the databases, "
        f"{undecodable} undecodable (shorter than their definition){_problems(read)}",
        file=sys.stderr,
    )
    return 0


def _problems(read: LogRead) -> str:
    """The damage counts for a summary line (empty for a sound log)."""
    out = ""
    if read.damaged:
        out += f", {read.damaged:,} damaged place{'s' if read.damaged != 1 else ''} skipped"
    if read.rejected:
        out += f", {read.rejected:,} impossible frame{'s' if read.rejected != 1 else ''} rejected"
    return out


def _frames(columns: FrameColumns) -> Iterator[can.Message]:
    """The frames in file order as python-can messages, one chunk of objects at a time."""
    for start in range(0, len(columns), 100_000):
        yield from columns.to_messages(start, min(len(columns), start + 100_000))


def _open_output(path: Path):  # noqa: ANN202 - a text file object
    try:
        return path.open("w", newline="", encoding="utf-8")
    except OSError as exc:
        raise LogFileError(f"{path}: cannot write ({exc.strerror or exc})") from exc
