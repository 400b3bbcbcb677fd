"""`workshop export LOG -o OUT`: part of a log as decoded signals (CSV) or raw frames.

With ``--dbc``, decoded signal values go to a long-format CSV (timestamp, message, signal,
value, label, unit), optionally only the ``--signal MSG.SIG`` given. Without it, the raw frames
go to any python-can log format chosen by the output suffix (.blf, .asc, .log, .trc, .mf4, ...).
``--start``/``--end`` are seconds from the log's first frame.
"""

from __future__ import annotations

import argparse
import sys

from workshop_app.commands.common import load_databases
from workshop_app.commands.log_input import load_log
from workshop_app.core.errors import WorkshopError
from workshop_app.core.logfiles import log_suffix
from workshop_app.core.logs.export import export_frames, export_signals_csv, export_signals_mf4


def parse_signal(text: str) -> tuple[str, str]:
    """``"EngineData.RPM"`` → ``("EngineData", "RPM")``."""
    message, sep, signal = text.partition(".")
    if not sep or not message or not signal:
        raise WorkshopError(f"--signal {text!r}: expected MESSAGE.SIGNAL")
    return message, signal


def run(args: argparse.Namespace) -> int:
    for name in ("start", "end"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise WorkshopError(f"--{name} is seconds from the log's first frame and cannot be negative")
    if args.start is not None and args.end is not None and args.end < args.start:
        raise WorkshopError("--end is before --start")
    wanted = [parse_signal(s) for s in args.signal] or None
    if wanted and not args.dbc:
        raise WorkshopError("--signal needs --dbc to decode with")
    if args.dbc and log_suffix(args.output) not in (".csv", ".mf4"):
        raise WorkshopError(f"{args.output}: decoded signals are written as CSV or MF4; use .csv or .mf4")
    databases = load_databases(args.dbc, default_demo=False) if args.dbc else None

    columns = load_log(args.log, "export", strict=getattr(args, "strict", False)).frames
    first = float(columns.timestamp.min()) if len(columns) else 0.0
    start = None if args.start is None else first + args.start
    end = None if args.end is None else first + args.end

    if databases is not None:
        write = export_signals_mf4 if log_suffix(args.output) == ".mf4" else export_signals_csv
        rows = write(columns, args.output, databases=databases, start=start, end=end, signals=wanted)
        print(f"{rows} signal values written to {args.output}", file=sys.stderr)
        return 0
    result = export_frames(columns, args.output, start=start, end=end)
    print(f"{result.frames_written} frames written to {result.path}", file=sys.stderr)
    if result.frames_rejected:
        print(
            f"workshop export: warning: {result.frames_rejected} frames not written: {result.limitation}",
            file=sys.stderr,
        )
    return 0
