"""A `workshop simulate --serve socketcand` in a second process, for cross-process tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

WORKSHOP = [sys.executable, "-m", "workshop_app"]


class _CurrentEnvironment(Mapping[str, str]):
    """The environment as it is when a child starts, not when this module was imported: the
    per-test WORKSHOP_HOME (conftest) must reach children, or they write to the real home."""

    def _now(self) -> dict[str, str]:
        return {**os.environ, "PYTHONUNBUFFERED": "1"}

    def __getitem__(self, key: str) -> str:
        return self._now()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._now())

    def __len__(self) -> int:
        return len(self._now())


ENV: Mapping[str, str] = _CurrentEnvironment()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def simulator_process(port: int, *extra: str) -> Iterator[subprocess.Popen[str]]:
    """The simulated car serving socketcand on ``port``; stopped with SIGINT on exit.

    After the block, ``proc.returncode`` and ``proc.stderr_text`` hold how it ended.
    """
    proc = subprocess.Popen(
        [*WORKSHOP, "simulate", "--serve", "socketcand", "--port", str(port), "-c", f"sim-{port}", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        deadline = time.monotonic() + 20  # a bound on start-up, not a measurement
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        proc.stderr_text = err  # type: ignore[attr-defined]
