"""Helpers shared by the sub-commands: databases from --dbc, running a capture loop."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.errors import WorkshopError
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.base import FrameSource, SourceState
from workshop_app.core.sources.factory import SourceSpec
from workshop_app.core.sources.reconnect import NO_RECONNECT, RECONNECT, GapWatcher, LinkGap
from workshop_app.core.stop_signals import graceful_stop
from workshop_app.core.workshop import WorkshopSession
from workshop_app.paths import demo_dbc_path

T = TypeVar("T")


def source_spec(args: argparse.Namespace) -> SourceSpec:
    """The connection options every capturing command shares (see cli._add_source_options)."""
    return SourceSpec(
        interface=args.interface,
        channel=args.channel,
        bitrate=args.bitrate,
        data_bitrate=args.data_bitrate,
        fd=args.fd,
        host=args.host,
        port=args.port,
        replay=getattr(args, "replay", None),
        speed=args.speed,
        reconnect=NO_RECONNECT if getattr(args, "no_reconnect", False) else RECONNECT,
        cloud_profile=getattr(args, "cloud_profile", None),
        capture_process=getattr(args, "capture_process", False),
    )


def split_dbc_arg(text: str) -> tuple[Path, str | None]:
    """``file.dbc@can1`` → (file.dbc, "can1"); ``file.dbc`` → (file.dbc, None)."""
    path, sep, channel = text.rpartition("@")
    if sep and path and channel and "/" not in channel:
        return Path(path), channel
    return Path(text), None


def load_databases(dbc_args: list[str], *, default_demo: bool = True) -> DatabaseSet:
    """Load every --dbc; loading warnings go to stderr, failures raise DatabaseError."""
    dbs = DatabaseSet()
    specs = [split_dbc_arg(a) for a in dbc_args]
    if not specs and default_demo:
        specs = [(demo_dbc_path(), None)]
    for path, channel in specs:
        loaded = dbs.add(path, channel=channel)
        for warning in loaded.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    return dbs


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_capture(
    session: CaptureSession | WorkshopSession,
    duration: float | None,
    on_tick: Callable[[], None] | None = None,
    interval: float = 0.1,
    on_link: Callable[[str], None] = _to_stderr,
) -> None:
    """Tick the session until ``duration`` passes, a stop signal (Ctrl-C, SIGTERM, SIGHUP), or
    the source ends. A lost link and its return are told to ``on_link``, one line each; the
    loop runs on through the gap (the source reconnects under its policy)."""
    deadline = None if duration is None else time.monotonic() + duration
    watcher = GapWatcher(session.source)
    link = LinkStateWatcher(session.source)
    with graceful_stop() as stop:
        try:
            while not stop.is_set():
                session.tick()
                for line in watcher.poll() + link.poll():
                    on_link(line)
                if on_tick is not None:
                    on_tick()
                if session.source.state in (SourceState.FAILED, SourceState.FINISHED):
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
                stop.wait(interval)
        except KeyboardInterrupt:  # a second signal while the first was being honoured
            pass
    for line in watcher.poll():  # a gap that ended with the last tick
        on_link(line)


class LinkStateWatcher:
    """One line per change of a bus's own ``link_state`` (the cloud link reconnects inside the
    bus, so the source sees no gap): ``cloud vehicle VIN: link reconnecting: …``, then back."""

    def __init__(self, source: FrameSource) -> None:
        self.source = source
        self._last: str | None = None

    def poll(self) -> list[str]:
        state = getattr(self.source.bus, "link_state", None)
        if not isinstance(state, str) or state == self._last:
            return []
        first, self._last = self._last is None, state
        if first and state == "connected":
            return []
        latency = getattr(self.source.bus, "latency_ms", None)
        rtt = f" ({latency:.0f} ms round trip)" if state == "connected" and latency else ""
        return [f"{self.source.describe()}: link {state}{rtt}"]


def gap_lines(gaps: tuple[LinkGap, ...]) -> list[str]:
    """Summary lines for a capture's link gaps (empty when the link held)."""
    if not gaps:
        return []
    total = sum(g.seconds() for g in gaps)
    lines = [f"{len(gaps)} link gap(s), {total:.1f} s without frames:"]
    lines += [f"  gap {g.text()}" for g in gaps]
    return lines


def run_until_stopped(name: str, job: Callable[[threading.Event], T]) -> T:
    """Run ``job(cancel)`` on a worker thread; Ctrl-C, SIGTERM or SIGHUP set ``cancel`` so the job
    stops at its next safe point (a flash between two blocks) and returns what it did."""
    cancel = threading.Event()
    out: list[T] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            out.append(job(cancel))
        except BaseException as exc:  # handed to the main thread, which reports it
            failure.append(exc)

    worker = threading.Thread(target=work, name=name, daemon=True)
    with graceful_stop() as stop:
        worker.start()
        while worker.is_alive():
            worker.join(0.1)
            if stop.is_set():
                cancel.set()
    if failure:
        raise failure[0]
    if not out:
        raise WorkshopError(f"the {name} job ended without a result")
    return out[0]
