"""`workshop replay LOG -i IFACE ...`: send a log's frames onto a real bus with their original timing.

``--start``/``--end`` are seconds from the log's first frame. ``--channel-map 0=can1`` sends the
frames of log channel ``0`` (its name in the log, or its label ``can0``) to bus channel ``can1``;
with a map, frames of unmapped log channels are not sent.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import threading
import time
from contextlib import ExitStack

import can

from workshop_app.commands.common import source_spec
from workshop_app.commands.log_input import load_log
from workshop_app.core.errors import WorkshopError
from workshop_app.core.jobs import CancelToken, JobProgress
from workshop_app.core.logs.columns import FrameColumns
from workshop_app.core.logs.playback import ReplayStats, replay_to_bus
from workshop_app.core.sources.adapter import open_bus
from workshop_app.core.types import BusConfig

_NEEDS_BUS = (
    "replay needs a bus to send to: give -i INTERFACE (e.g. -i pcan, -i socketcand --host H, "
    "or -i virtual -c NAME)"
)


def parse_channel_map(items: list[str]) -> dict[str, str]:
    """``["0=can1", "vcan0=can2"]`` → ``{"0": "can1", "vcan0": "can2"}``."""
    out: dict[str, str] = {}
    for item in items:
        source, sep, target = item.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise WorkshopError(f"--channel-map {item!r}: expected LOGCHANNEL=BUSCHANNEL, e.g. 0=can1")
        out[source.strip()] = target.strip()
    return out


def _bus_config(args: argparse.Namespace) -> BusConfig:
    return source_spec(args).bus_config()


def _check_args(args: argparse.Namespace) -> None:
    if not args.interface:
        raise WorkshopError(_NEEDS_BUS)
    if args.speed < 0:
        raise WorkshopError("--speed must be 0 (as fast as possible) or positive")
    for name in ("start", "end"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise WorkshopError(f"--{name} is seconds from the log's first frame and cannot be negative")
    if args.start is not None and args.end is not None and args.end < args.start:
        raise WorkshopError("--end is before --start")


class _Progress:
    """Progress on stderr, at most twice a second (called from the replay thread)."""

    def __init__(self) -> None:
        self._last = 0.0
        self._tty = sys.stderr.isatty()

    def __call__(self, progress: JobProgress) -> None:
        done, total = progress.done, progress.total
        now = time.monotonic()
        if now - self._last < 0.5 and done < total:
            return
        self._last = now
        end = "\r" if self._tty else "\n"
        print(f"  {done}/{total} frames", end=end, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    channel_map = parse_channel_map(args.channel_map)
    config = _bus_config(args)
    columns = load_log(args.log, "replay", strict=getattr(args, "strict", False)).frames
    if not len(columns):
        raise WorkshopError(f"{args.log}: the log holds no frames")
    first = float(columns.timestamp.min())
    start = None if args.start is None else first + args.start
    end = None if args.end is None else first + args.end

    with ExitStack() as stack:
        bus: can.BusABC | dict[str, can.BusABC]
        if channel_map:
            opened: dict[str, can.BusABC] = {}
            bus = {}
            for log_channel, bus_channel in channel_map.items():
                if bus_channel not in opened:
                    target = open_bus(dataclasses.replace(config, channel=bus_channel))
                    stack.callback(target.shutdown)
                    opened[bus_channel] = target
                bus[log_channel] = opened[bus_channel]
            where = ", ".join(f"{k}→{v}" for k, v in channel_map.items())
        else:
            bus = open_bus(config)
            stack.callback(bus.shutdown)
            where = config.describe()
        print(
            f"replaying {args.log} ({len(columns)} frames) onto {where} at speed {args.speed:g} "
            "(Ctrl-C to stop)",
            file=sys.stderr,
        )
        stats, interrupted = _replay_in_thread(columns, bus, args, start, end)
    _report(stats)
    if stats.frames_sent == 0 and stats.send_errors:
        print("workshop replay: error: the bus refused every frame", file=sys.stderr)
        return 1
    return 130 if interrupted and not args.loop else 0


def _replay_in_thread(
    columns: FrameColumns,
    bus: can.BusABC | dict[str, can.BusABC],
    args: argparse.Namespace,
    start: float | None,
    end: float | None,
) -> tuple[ReplayStats, bool]:
    # The replay runs on a worker so Ctrl-C (delivered to the main thread) can cancel it cleanly.
    cancel = CancelToken()
    result: list[ReplayStats] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def work() -> None:
        try:
            result.append(
                replay_to_bus(
                    columns,
                    bus,
                    speed=args.speed,
                    start=start,
                    end=end,
                    loop=args.loop,
                    cancel=cancel,
                    progress=_Progress(),
                )
            )
        except BaseException as exc:  # handed to the main thread to report
            failure.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=work, name="replay-bus", daemon=True)
    worker.start()
    interrupted = False
    # Wait on an Event, not Thread.join: a Ctrl-C inside join() can leave the thread looking
    # finished while it still runs (CPython before 3.13).
    try:
        while not done.wait(0.1):
            pass
    except KeyboardInterrupt:
        interrupted = True
        cancel.cancel("interrupted")
        done.wait()
    worker.join()
    if failure:
        raise failure[0]
    return result[0], interrupted


def _report(stats: ReplayStats) -> None:
    passes = f" in {stats.passes} passes" if stats.passes > 1 else ""
    print(
        f"{stats.frames_sent} frames sent{passes}, {stats.duration:.2f} s, "
        f"max lateness {stats.max_lateness * 1000:.1f} ms "
        f"({stats.late_frames} frames more than 1 ms late)"
    )
    notes = []
    if stats.send_errors:
        notes.append(f"{stats.send_errors} send errors")
    if stats.error_frames_skipped:
        notes.append(f"{stats.error_frames_skipped} error frames skipped")
    if stats.unmapped_frames:
        notes.append(f"{stats.unmapped_frames} frames of unmapped channels skipped")
    if stats.cancelled:
        notes.append("stopped early")
    if notes:
        print("; ".join(notes))
