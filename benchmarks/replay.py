"""The one playback engine onto a bus and into the ring, against a bare send loop.

Run: .venv/bin/python benchmarks/replay.py [seconds]

A log of 2,000 frames/s (classic, 8 bytes, one channel) is replayed onto a python-can virtual
bus at speed 1 for ``seconds`` (default 5), twice: by ``replay_to_bus`` (core/logs/player.py,
what `workshop replay` runs) and by a bare loop that sleeps to each frame's absolute deadline
and sends it (the schedule replay_to_bus had before it ran on the shared engine). Printed for
both: frames sent, and lateness (arrival at a second handle of the bus minus the frame's deadline)
p50/p99/max in ms with the frames more than 1 ms late. Then the same log
at speed 0: frames/s onto the bus, and frames/s into the frame ring through PlaybackSource
(what the window and ``--replay`` run). Note the machine's load: lateness is the scheduler's.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections.abc import Callable

import can
import numpy as np

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.logs.columns import FrameColumns
from workshop_app.core.logs.playback import PlaybackSource, replay_to_bus

RATE = 2000


def _log(seconds: float) -> FrameColumns:
    n = int(seconds * RATE)
    return FrameColumns.from_messages(
        can.Message(timestamp=1000.0 + i / RATE, arbitration_id=0x100 + i % 16, data=bytes(8), channel="can0")
        for i in range(n)
    )


def _bare(columns: FrameColumns, bus: can.BusABC) -> int:
    messages = columns.to_messages()
    t0 = messages[0].timestamp
    wall0 = time.perf_counter()
    for msg in messages:
        delay = wall0 + (msg.timestamp - t0) - time.perf_counter()
        if delay > 0.0005:
            time.sleep(delay)
        msg.channel = None
        bus.send(msg)
    return len(messages)


def _engine(columns: FrameColumns, bus: can.BusABC) -> int:
    return replay_to_bus(columns, bus, speed=1.0).frames_sent


def _received_lateness(
    columns: FrameColumns, bus: can.BusABC, channel: str, send: Callable[[FrameColumns, can.BusABC], int]
) -> tuple[int, list[float]]:
    """Frames sent, and each frame's arrival at a second bus handle minus its deadline."""
    rx_times: list[float] = []
    stop = threading.Event()
    with can.Bus(interface="virtual", channel=channel) as rx:
        n = len(columns)

        def receive() -> None:
            while len(rx_times) < n and not stop.is_set():
                if rx.recv(0.1) is not None:
                    rx_times.append(time.perf_counter())

        thread = threading.Thread(target=receive)
        thread.start()
        wall0 = time.perf_counter()
        sent = send(columns, bus)
        stop.set()
        thread.join()
    due = wall0 + (columns.timestamp[: len(rx_times)] - columns.timestamp[0])
    return sent, list(np.maximum(0.0, np.asarray(rx_times) - due))


def _summary(name: str, sent: int, late: list[float]) -> None:
    a = np.asarray(late) * 1000
    p50, p99 = np.percentile(a, [50, 99])
    print(
        f"{name:<28} {sent:>7} frames  lateness p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  "
        f"max {a.max():7.2f} ms  >1 ms late: {int((a > 1).sum())}"
    )


def main(seconds: float) -> None:
    columns = _log(seconds)
    print(f"{len(columns)} frames, {seconds:g} s of log at {RATE} frames/s; load {os.getloadavg()[0]:.1f}")
    channel = f"bench-{uuid.uuid4().hex[:8]}"
    with can.Bus(interface="virtual", channel=channel) as bus:
        for name, send in (("replay_to_bus (engine)", _engine), ("bare deadline loop", _bare)):
            _summary(name, *_received_lateness(columns, bus, channel, send))
        t = time.perf_counter()
        stats = replay_to_bus(columns, bus, speed=0)
        print(
            f"replay_to_bus speed 0: {stats.frames_sent / (time.perf_counter() - t):,.0f} frames/s onto the bus"
        )
    ring = FrameRing(capacity=50_000)
    source = PlaybackSource(ring, columns, speed=0)
    got = 0
    t = time.perf_counter()
    with source:
        while not source.finished.is_set() or len(ring):
            got += len(ring.drain())
            time.sleep(0.001)
    print(f"PlaybackSource speed 0: {got / (time.perf_counter() - t):,.0f} frames/s into the ring (drained)")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 5.0)
