"""A car served over socketcand and a `workshop update install` process killed mid-download.

For the recovery tests of the command line and of the update wizard: the demo car runs in the
test's process, the tool in its own (``python -m workshop_app``), killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import can
from helpers.processes import free_port
from helpers.sim_packages import SimCar, sim_car
from helpers.waiting import wait_for

from workshop_app.cli import main
from workshop_app.core.sim.socketcand_server import SocketcandServer

WORKSHOP = [sys.executable, "-m", "workshop_app"]
BLOCK = 4093


def env() -> dict[str, str]:
    # Read now, not at import: WORKSHOP_HOME is this test's own folder (conftest).
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


@contextmanager
def served(tmp_path: Path) -> Iterator[tuple[SimCar, list[str]]]:
    port = free_port()
    with sim_car(tmp_path / "flash") as car:
        server_bus = can.Bus(interface="virtual", channel=car.channel)
        server = SocketcandServer(server_bus, port=port)
        server.start()
        try:
            yield car, ["-i", "socketcand", "--port", str(port), "--history", str(tmp_path / "h.db")]
        finally:
            server.stop()
            server_bus.shutdown()


def trust(pkg: Path) -> None:
    roots = ["--image-root", str(pkg / "image/metadata/1.root.json")]
    roots += ["--director-root", str(pkg / "director/metadata/1.root.json")]
    assert main(["update", "trust", *roots]) == 0


def bytes_done(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with closing(sqlite3.connect(db)) as conn:
            row = conn.execute("SELECT max(bytes_done) FROM flash_journal WHERE open = 1").fetchone()
    except sqlite3.Error:
        return 0
    return int(row[0] or 0) if row else 0


def kill_install_midway(car: SimCar, link: list[str], package: Path, db: Path) -> None:
    """`update install PKG --yes` in its own process, killed (SIGKILL) once 3 blocks are acknowledged."""
    car.net.ecu("ECM").bootloader.timing.write_bytes_per_s = 20_000  # type: ignore[union-attr]
    tool = subprocess.Popen(
        [*WORKSHOP, "update", "install", str(package), "--yes", *link],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )
    try:
        wait_for(
            lambda: bytes_done(db) >= 3 * BLOCK or tool.poll() is not None, 60, "three acknowledged blocks"
        )
        assert tool.poll() is None, tool.communicate()
    finally:
        tool.kill()
        tool.communicate(timeout=10)
    assert tool.returncode == -signal.SIGKILL
    car.net.ecu("ECM").bootloader.timing.write_bytes_per_s = 0  # type: ignore[union-attr]
