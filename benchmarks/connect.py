"""What the connect deadline costs, and how fast a silent server or a stop signal is answered.

Run: .venv/bin/python benchmarks/connect.py
Baselines (same run): ``can.Bus`` opened directly on the caller's thread (no deadline), and the
simulator's own socketcand handshake through python-can's client without our subclass.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import can

from workshop_app.core.errors import SourceError
from workshop_app.core.sources.opening import open_bus
from workshop_app.core.types import BusConfig

ROOT = Path(__file__).resolve().parents[1]
WORKSHOP = [sys.executable, "-m", "workshop_app"]


def _per_open(fn: Callable[[], can.BusABC], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn().shutdown()
    return (time.perf_counter() - t0) / n


def virtual_opens(n: int = 300) -> None:
    channel = f"bench-{uuid.uuid4().hex}"
    direct = _per_open(lambda: can.Bus(interface="virtual", channel=channel), n)
    guarded = _per_open(lambda: open_bus(BusConfig("virtual", channel)), n)
    print(f"virtual bus open+close, can.Bus directly     {direct * 1e6:8.0f} µs (baseline)")
    print(f"virtual bus open+close, open_bus (deadline)  {guarded * 1e6:8.0f} µs")


def silent_server(timeout: float = 3.0) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    held: list[socket.socket] = []
    accept = threading.Thread(target=lambda: held.append(server.accept()[0]), daemon=True)
    accept.start()
    t0 = time.perf_counter()
    try:
        open_bus(BusConfig("socketcand", "can0", host="127.0.0.1", port=port), connect_timeout=timeout)
    except SourceError as exc:
        took = time.perf_counter() - t0
        print(f"silent socketcand server: error after {took:.2f} s ({exc})")
        print("  (baseline: python-can's client alone waits for the greeting forever)")
    server.close()
    for conn in held:
        conn.close()


def stop_signal(home: Path) -> None:
    env = {"WORKSHOP_HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    out = home / "drive.log"
    proc = subprocess.Popen(
        [*WORKSHOP, "record", str(out), "--no-history"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    while not (out.exists() and out.stat().st_size > 0):
        time.sleep(0.05)
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    print(f"workshop record: SIGTERM to exit {time.perf_counter() - t0:.2f} s (exit {proc.returncode})")


def main() -> None:
    import tempfile

    virtual_opens()
    silent_server()
    with tempfile.TemporaryDirectory() as tmp:
        stop_signal(Path(tmp))


if __name__ == "__main__":
    main()
