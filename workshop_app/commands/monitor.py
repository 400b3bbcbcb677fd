"""`workshop monitor`: live decoded values of every message, refreshed in the terminal."""

from __future__ import annotations

import argparse
import sys
import time

from workshop_app.commands.common import gap_lines, load_databases, run_capture, source_spec
from workshop_app.core.capture.process import make_capture_session
from workshop_app.core.capture.store import MessageStats
from workshop_app.core.decode.live import decode_payload
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.base import SourceState


def render(session: CaptureSession, name_filter: str | None = None, now: float | None = None) -> list[str]:
    """The monitor screen as lines: one header line per message, then its signals."""
    stats = session.stats
    source = session.source
    link = ""
    if source.state is SourceState.RECONNECTING and source.gaps:
        link = f" | reconnecting… (gap {source.gaps[-1].seconds():.1f} s)"
    elif source.gaps:
        link = f" | {len(source.gaps)} link gap(s), last {source.gaps[-1].seconds():.1f} s"
    lines = [
        f"{source.describe()} | {stats.frames} frames, {stats.frames_per_second:,.0f} frames/s, "
        f"{len(session.store.messages)} ids, dropped {stats.dropped}{link}"
    ]
    lookup = session.databases.lookup
    for entry in session.store.sorted_messages():
        message = lookup(entry.channel, entry.arbitration_id, entry.is_extended)
        name = message.name if message is not None else "(unknown)"
        ident = _format_id(entry)
        if name_filter and name_filter.lower() not in f"{name} {ident}".lower():
            continue
        rate = entry.rate(now)
        lines.append(f"{entry.channel} {ident:>10} {name:<28} {rate:7.1f} Hz  {entry.data.hex(' ')}")
        if message is None:
            continue
        try:
            values = decode_payload(message, entry.data)
        except Exception as exc:
            lines.append(f"    (cannot decode: {exc})")
            continue
        for v in values:
            lines.append(f"    {v.name:<30} {v.text()}")
    return lines


def _format_id(entry: MessageStats) -> str:
    return f"0x{entry.arbitration_id:08X}" if entry.is_extended else f"0x{entry.arbitration_id:03X}"


def run(args: argparse.Namespace) -> int:
    session = make_capture_session(source_spec(args), load_databases(args.dbc))
    session.start()
    tty = sys.stdout.isatty()
    last = 0.0

    def link_changed(line: str) -> None:
        # In a terminal the screen is redrawn (its header shows the gap); a pipe keeps the line.
        if tty:
            print(line, file=sys.stderr, flush=True)
        else:
            sys.stdout.write(f"--- {time.strftime('%H:%M:%S')} {line}\n")
            sys.stdout.flush()

    def refresh() -> None:
        nonlocal last
        t = time.monotonic()
        if t - last < args.interval:
            return
        last = t
        lines = render(session, args.filter, now=session.store.last_ts)
        if tty:
            sys.stdout.write("\x1b[H\x1b[2J" + "\n".join(lines) + "\n")
        else:
            sys.stdout.write(f"--- {time.strftime('%H:%M:%S')}\n" + "\n".join(lines) + "\n")
        sys.stdout.flush()

    try:
        run_capture(session, args.duration, refresh, interval=min(0.05, args.interval), on_link=link_changed)
    finally:
        session.stop()
    refresh_final = render(session, args.filter, now=session.store.last_ts)
    if not tty:
        print("--- final\n" + "\n".join(refresh_final))
    for line in gap_lines(session.source.gaps):
        print(line, file=sys.stderr)
    if session.source.error:
        print(f"workshop monitor: error: {session.source.error}", file=sys.stderr)
        return 1
    return 0
