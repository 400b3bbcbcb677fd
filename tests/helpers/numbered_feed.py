"""Numbered frames served over socketcand at a steady rate, for tests that record them elsewhere.

Each frame carries its sequence number in its first four bytes (big-endian) and four random
bytes after it (so compressing formats cannot shrink them to nothing); the feed remembers when
it sent each one, so a test can say which frames a file must hold after a crash.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import can
import numpy as np
from helpers.processes import free_port

from workshop_app.core.sim.socketcand_server import SocketcandServer


class NumberedFeed:
    """Sends frame 0, 1, 2, ... on a virtual bus at ``rate`` frames/s from its own thread."""

    def __init__(self, channel: str, rate: float, seed: int = 0) -> None:
        self._bus = can.Bus(interface="virtual", channel=channel)
        self._rate = rate
        self._rng = random.Random(seed)
        self.sent_at: list[float] = []  # monotonic time each frame was handed to the bus
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="numbered-feed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._bus.shutdown()

    def sent_before(self, moment: float) -> int:
        """How many frames were sent before ``moment`` (monotonic)."""
        return int(np.searchsorted(np.asarray(self.sent_at), moment))

    def _run(self) -> None:
        start = time.monotonic()
        seq = 0
        while not self._stop.is_set():
            # Paced against the start, in small bursts: sleep() is coarse on a busy machine.
            due = int((time.monotonic() - start) * self._rate)
            while seq < due:
                data = seq.to_bytes(4, "big") + self._rng.randbytes(4)
                self._bus.send(can.Message(arbitration_id=0x100 + seq % 16, data=data, is_extended_id=False))
                self.sent_at.append(time.monotonic())
                seq += 1
            time.sleep(0.002)


@contextmanager
def served_feed(rate: float, seed: int = 0) -> Iterator[tuple[SocketcandServer, NumberedFeed, int]]:
    """A socketcand server on 127.0.0.1 sharing a virtual bus, and the (unstarted) feed on it."""
    channel = f"numbered-{os.getpid()}-{seed}-{time.monotonic_ns()}"
    server_bus = can.Bus(interface="virtual", channel=channel)
    port = free_port()
    server = SocketcandServer(server_bus, port=port, channel="can0", max_queue=1_000_000)
    feed = NumberedFeed(channel, rate, seed)
    server.start()
    try:
        yield server, feed, port
    finally:
        if feed._thread.is_alive():
            feed.stop()
        else:
            feed._bus.shutdown()
        server.stop()
        server_bus.shutdown()


def record_command(path: Path, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "workshop_app",
        "record",
        str(path),
        "--no-history",
        "-i",
        "socketcand",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "-c",
        "can0",
    ]


def start_recording(path: Path, port: int, **popen: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        record_command(path, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **popen,
    )


def sequence_numbers(data: np.ndarray) -> np.ndarray:
    """The sequence numbers of frames read back: their first four payload bytes, big-endian."""
    head = np.ascontiguousarray(data[:, :4], dtype=np.uint8)
    return head.view(">u4")[:, 0].astype(np.int64)


KEPT = re.compile(r"the file keeps the (\d+) frame")
