"""`workshop dtc trace LOG`: the diagnostic requests and responses of a recorded log, decoded."""

from __future__ import annotations

import argparse
import json
import sys

from workshop_app.commands.log_input import LogRefused, add_strict_option, load_log
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.diag.ecu_spec import load_vehicle_spec
from workshop_app.core.diag.trace import diagnostic_trace, format_trace_lines, parse_pair, trace_to_dict
from workshop_app.core.errors import WorkshopError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("log", help="log file (any format the workshop reads)")
    parser.add_argument(
        "--pair",
        action="append",
        default=[],
        metavar="REQ:RESP",
        help="request and response id of an ECU outside the OBD/UDS conventions, e.g. 0x79B:0x7BB",
    )
    parser.add_argument(
        "--dbc", action="append", default=[], metavar="FILE", help="decode reassembled payloads with this DBC"
    )
    parser.add_argument("--json", action="store_true", help="print the trace as JSON")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="show at most N transactions")
    add_strict_option(parser)


def _fail(message: str) -> int:
    # One line, no traceback: the message already says what and where.
    print(f"error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    try:
        pairs = [parse_pair(p) for p in args.pair]
    except ValueError as exc:
        return _fail(str(exc))
    limit = args.limit or None  # 0: all
    if limit is not None and limit < 0:
        return _fail("--limit must not be negative")
    try:
        databases = None
        if args.dbc:
            databases = DatabaseSet()
            for path in args.dbc:
                for warning in databases.add(path).warnings:
                    print(f"warning: {warning}", file=sys.stderr)
        spec_path = getattr(args, "spec", None)
        spec = load_vehicle_spec(spec_path) if spec_path else None
        read = load_log(args.log, "dtc trace", strict=getattr(args, "strict", False))
    except LogRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1  # damage under --strict: 1, as the other log commands
    except WorkshopError as exc:
        return _fail(str(exc))
    except OSError as exc:  # a reader that lets the operating system's error through
        return _fail(f"{args.log}: {exc.strerror or exc}")
    trace = diagnostic_trace(read.frames, pairs=pairs, spec=spec, databases=databases)
    if args.json:
        print(json.dumps(trace_to_dict(trace, limit), indent=2, ensure_ascii=False))
    else:
        for line in format_trace_lines(trace, limit):
            print(line)
    return 0
