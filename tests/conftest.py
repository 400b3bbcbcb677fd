"""Shared fixtures: headless Qt, isolated python-can config, and a leak check on every test."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import can
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # `from helpers... import` in any test
TEST_DATA = REPO / "tests" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """tests/data: real third-party DBCs and logs (licences beside them), shipped in the repository."""
    assert TEST_DATA.is_dir(), f"test data missing: {TEST_DATA}"
    return TEST_DATA


@pytest.fixture(autouse=True)
def _isolated_home(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    # History, recordings and settings go to a throwaway folder, never the user's home.
    home = tmp_path_factory.mktemp("workshop-home")
    monkeypatch.setenv("WORKSHOP_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))


@pytest.fixture(autouse=True)
def _isolated_can_config(monkeypatch: pytest.MonkeyPatch) -> None:
    # python-can merges ~/.canrc and CAN_* variables even into explicit can.Bus(...) calls.
    monkeypatch.setattr(can.util, "CONFIG_FILES", [])
    for key in list(os.environ):
        if key.startswith("CAN_"):
            monkeypatch.delenv(key)


# Every python-can bus ever constructed, so the leak check needs no scan of the whole heap.
_BUSES: weakref.WeakSet[can.BusABC] = weakref.WeakSet()
_bus_init = can.BusABC.__init__


def _tracking_init(self: can.BusABC, *args: object, **kwargs: object) -> None:
    _bus_init(self, *args, **kwargs)
    _BUSES.add(self)


can.BusABC.__init__ = _tracking_init


def _open_buses() -> set[int]:
    return {id(b) for b in list(_BUSES) if not b._is_shutdown}


@pytest.fixture(autouse=True)
def _no_leaks(request: pytest.FixtureRequest) -> None:
    """Fail a test that leaves a thread running or a python-can bus open."""
    threads_before = set(threading.enumerate())
    buses_before = _open_buses()
    yield
    deadline = time.monotonic() + 3.0
    leaked: list[threading.Thread] = []
    while time.monotonic() < deadline:
        leaked = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
        # Qt's and pytest-timeout's own helper threads are not ours.
        leaked = [t for t in leaked if not t.name.startswith(("QDBus", "pytest_timeout", "Dummy-"))]
        if not leaked:
            break
        time.sleep(0.02)
    buses = _open_buses() - buses_before
    problems = []
    if leaked:
        problems.append("threads left running: " + ", ".join(t.name for t in leaked))
    if buses:
        problems.append(f"{len(buses)} python-can bus(es) left open")
    if problems:
        pytest.fail(f"{request.node.nodeid} leaked " + "; ".join(problems), pytrace=False)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose listener accepts connections and never says a word (a hung server)."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    thread = threading.Thread(target=accept, name="silent-listener", daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.shutdown(socket.SHUT_RDWR)
    server.close()
    thread.join(2)
    for conn in accepted:
        conn.close()
