"""`workshop monitor`: live decoded values of every message, refreshed in the terminal."""

from __future__ import annotations

import argparse
import sys
import time

from workshop_app.commands.common import gap_lines, load_databases, run_capture, source_spec
from workshop_app.core.capture.store import MessageStats
from workshop_app.core.decode.live import decode_payload
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.base import SourceState
from workshop_app.core.workshop import WorkshopSession


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
    workshop = WorkshopSession(source_spec(args), load_databases(args.dbc))
    session = workshop.capture
    workshop.start()
    tty = sys.stdout.isatty()
    last = 0.0

    def link_changed(line: str) -> None:
        # In a terminal the screen is redrawn (its header shows the gap); a pipe keeps the line.
        if tty:
            print(line, file=sys.stderr, flush=True)
        else:
            sys.stdout.write(f"--- {time.strftime('%H:%M:%S')} {line}\n")
            sys.stdout.flush()

    def refresh(_stats: object = None) -> None:
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

    workshop.subscribe("stats", refresh)  # every tick; the screen is redrawn each --interval
    try:
        run_capture(workshop, args.duration, interval=min(0.05, args.interval), on_link=link_changed)
    finally:
        workshop.close()
    refresh_final = render(session, args.filter, now=session.store.last_ts)
    if not tty:
        print("--- final\n" + "\n".join(refresh_final))
    for line in gap_lines(session.source.gaps):
        print(line, file=sys.stderr)
    if session.source.error:
        print(f"workshop monitor: error: {session.source.error}", file=sys.stderr)
        return 1
    return 0
