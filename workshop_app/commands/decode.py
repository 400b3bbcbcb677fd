"""`workshop decode LOG --dbc DB -o OUT.csv`: every decoded signal value of a log, as CSV.

One row per signal value: timestamp, channel, id, message, signal, value, label, unit.
"""

from __future__ import annotations

import argparse
import csv
import sys
from contextlib import ExitStack
from pathlib import Path

from workshop_app.commands.common import load_databases
from workshop_app.core.decode.live import decode_payload
from workshop_app.core.errors import LogFileError
from workshop_app.core.logfiles import iter_log
from workshop_app.core.types import channel_label

HEADER = ["timestamp", "channel", "arbitration_id", "message", "signal", "value", "label", "unit"]


def run(args: argparse.Namespace) -> int:
    dbs = load_databases(args.dbc, default_demo=False)
    frames = decoded = unknown = undecodable = 0
    with ExitStack() as stack:
        out = sys.stdout if args.output is None else stack.enter_context(_open_output(args.output))
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(HEADER)
        lookup = dbs.lookup
        try:
            for msg in iter_log(args.log):
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
        except LogFileError as exc:
            print(f"workshop decode: error: {exc}", file=sys.stderr)
            print(f"kept the {frames} frames read before the error", file=sys.stderr)
            return 1
    print(
        f"{frames} frames, {decoded} decoded, {unknown} with ids not in the databases, "
        f"{undecodable} undecodable (shorter than their definition)",
        file=sys.stderr,
    )
    return 0


def _open_output(path: Path):  # noqa: ANN202 - a text file object
    try:
        return path.open("w", newline="", encoding="utf-8")
    except OSError as exc:
        raise LogFileError(f"{path}: cannot write ({exc.strerror or exc})") from exc
