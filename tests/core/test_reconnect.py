"""AdapterSource reconnects when its adapter or socketcand server comes back."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import can
import pytest

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.errors import SourceError
from workshop_app.core.sim.socketcand_server import SocketcandServer
from workshop_app.core.sources.adapter import AdapterSource
from workshop_app.core.sources.base import SourceState
from workshop_app.core.types import BusConfig, Frame


def _wait_for(cond: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


class _Car:
    """The vehicle side: a virtual bus the test writes to, served by socketcand servers."""

    def __init__(self) -> None:
        self.channel = f"reconnect-{uuid.uuid4().hex}"
        self.bus = can.Bus(interface="virtual", channel=self.channel)
        self._served: list[tuple[SocketcandServer, can.BusABC]] = []

    def serve(self, port: int = 0) -> SocketcandServer:
        handle = can.Bus(interface="virtual", channel=self.channel)
        server = SocketcandServer(handle, port=port)
        self._served.append((server, handle))
        server.start()
        return server

    def send(self, arbitration_id: int, data: bytes) -> None:
        self.bus.send(can.Message(arbitration_id=arbitration_id, data=data, is_extended_id=False))

    def close(self) -> None:
        for server, handle in self._served:
            server.stop()
            handle.shutdown()
        self.bus.shutdown()


@pytest.fixture
def car() -> Iterator[_Car]:
    c = _Car()
    yield c
    c.close()


def _ids(frames: list[Frame]) -> list[int]:
    return [f.arbitration_id for f in frames]


def test_socketcand_server_loss_and_return(car):
    server = car.serve()
    host, port = server.address
    ring = FrameRing()
    source = AdapterSource(
        ring, BusConfig("socketcand", "can0", host=host, port=port), auto_reconnect=True, retry_interval=0.2
    )
    received: list[Frame] = []
    source.start()
    try:
        car.send(0x100, b"\x01")
        assert _wait_for(lambda: received.extend(ring.drain()) or 0x100 in _ids(received))

        server.stop()
        assert _wait_for(lambda: source.state is SourceState.RECONNECTING, 2.0)
        assert "connection lost" in (source.error or "")
        assert source.bus is None  # the dead bus is closed
        with pytest.raises(SourceError, match="not connected"):
            source.send(Frame(0, 0x7DF, b"\x02\x01\x00", "can0"))

        car.serve(port=port)  # the server comes back on the same port
        assert _wait_for(lambda: source.state is SourceState.RUNNING, 5.0)
        assert source.reconnects == 1 and source.error is None

        car.send(0x200, b"\x02")
        assert _wait_for(lambda: received.extend(ring.drain()) or 0x200 in _ids(received))
        assert _ids(received).count(0x100) == 1  # what came before the loss is still there

        source.send(Frame(0, 0x7E0, b"\x02\x10\x03", "can0"))  # and we can transmit again
        got = car.bus.recv(2.0)
        assert got is not None and got.arbitration_id == 0x7E0
    finally:
        source.stop()
    assert source.state is SourceState.STOPPED


def test_without_auto_reconnect_a_lost_server_fails_the_source(car):
    server = car.serve()
    host, port = server.address
    source = AdapterSource(FrameRing(), BusConfig("socketcand", "can0", host=host, port=port))
    source.start()
    try:
        server.stop()
        assert _wait_for(lambda: source.state is SourceState.FAILED, 2.0)
        assert "server closed the connection" in (source.error or "")
        assert source.bus is None
        car.serve(port=port)
        # The source's watch thread is the only one that could reopen the link: once it has
        # ended, the source stays failed for good (nobody asked it to reconnect).
        watch = f"adapter-watch {source.channel_label}"
        assert _wait_for(lambda: not any(t.name == watch for t in threading.enumerate()), 10)
        assert source.state is SourceState.FAILED and source.bus is None
    finally:
        source.stop()
    assert source.state is SourceState.STOPPED


def test_stop_while_reconnecting_ends_the_retries(car):
    server = car.serve()
    host, port = server.address
    source = AdapterSource(
        FrameRing(),
        BusConfig("socketcand", "can0", host=host, port=port),
        auto_reconnect=True,
        retry_interval=0.1,
    )
    source.start()
    server.stop()
    assert _wait_for(lambda: source.state is SourceState.RECONNECTING, 2.0)
    assert _wait_for(lambda: "attempt" in (source.error or ""), 2.0)  # it keeps trying
    source.start()  # already started: no second bus
    source.stop()
    assert source.state is SourceState.STOPPED
    assert not [t for t in threading.enumerate() if t.name.startswith("adapter-watch")]


# --- an adapter whose driver raises when it is unplugged (the Notifier on_error path) ---------

_PLUGGED = threading.Event()


class UnpluggableBus(can.BusABC):
    """A bus whose receive raises while the adapter is unplugged, like a USB adapter pulled out."""

    def __init__(self, channel: str, **kwargs: object) -> None:
        if not _PLUGGED.is_set():
            raise can.CanInitializationError("no adapter found")
        self.channel_info = f"unpluggable {channel}"
        super().__init__(channel, **kwargs)

    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        if not _PLUGGED.is_set():
            raise can.CanOperationError("device was removed")
        time.sleep(min(timeout or 0.0, 0.01))
        return None, False

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        if not _PLUGGED.is_set():
            raise can.CanOperationError("device was removed")


@pytest.fixture
def unpluggable(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    # Register the bus as a python-can interface, so the source opens it through can.Bus.
    monkeypatch.setitem(can.interfaces.BACKENDS, "unpluggable", (__name__, "UnpluggableBus"))
    monkeypatch.setattr(can.util, "VALID_INTERFACES", can.util.VALID_INTERFACES | {"unpluggable"})
    _PLUGGED.set()
    yield "unpluggable"
    _PLUGGED.set()


def test_driver_error_reconnects_and_keeps_added_listeners(unpluggable):
    source = AdapterSource(
        FrameRing(), BusConfig(unpluggable, "usb0"), auto_reconnect=True, retry_interval=0.1
    )
    source.start()
    try:
        first_bus = source.bus
        extra = can.BufferedReader()  # stands in for an ISO-TP stack attached to the Notifier
        assert source.notifier is not None
        source.notifier.add_listener(extra)

        _PLUGGED.clear()
        assert _wait_for(lambda: source.state is SourceState.RECONNECTING, 2.0)
        assert "device was removed" in (source.error or "")
        assert _wait_for(lambda: "no adapter found" in (source.error or ""), 2.0)  # retries report why

        _PLUGGED.set()
        assert _wait_for(lambda: source.state is SourceState.RUNNING, 2.0)
        assert source.reconnects == 1
        assert source.bus is not None and source.bus is not first_bus
        assert source.notifier is not None and extra in source.notifier.listeners
    finally:
        source.stop()
