"""Every connect has a deadline: a socketcand server that never greets, an adapter that never opens."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import can
import pytest
from helpers.waiting import wait_for

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.errors import SourceError
from workshop_app.core.sources.adapter import AdapterSource
from workshop_app.core.sources.base import SourceState
from workshop_app.core.sources.opening import open_bus
from workshop_app.core.sources.reconnect import ReconnectPolicy
from workshop_app.core.types import BusConfig


class SilentListener:
    """A TCP server that accepts every connection and never sends a byte."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="silent-listener", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        # shutdown() wakes the accept() blocked in the thread; close() alone does not on Linux.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(2.0)
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent() -> Iterator[SilentListener]:
    listener = SilentListener()
    yield listener
    listener.close()


def _config(port: int) -> BusConfig:
    return BusConfig("socketcand", "can0", host="127.0.0.1", port=port)


def test_open_bus_gives_up_on_a_server_that_never_greets(silent):
    with pytest.raises(SourceError) as info:
        open_bus(_config(silent.port), connect_timeout=0.5)
    assert (
        str(info.value)
        == f"socketcand server 127.0.0.1:{silent.port} accepted but did not greet within 0.5 s"
    )
    assert silent.accepted  # it did connect: the wait was for the greeting


def test_adapter_source_start_fails_plainly_within_the_deadline(silent):
    source = AdapterSource(FrameRing(), _config(silent.port), policy=ReconnectPolicy(connect_timeout=0.5))
    with pytest.raises(SourceError, match=r"accepted but did not greet within 0\.5 s"):
        source.start()
    assert source.state is SourceState.STOPPED


def test_background_connect_returns_at_once_then_reports_and_keeps_retrying(silent):
    policy = ReconnectPolicy(retry_interval=0.1, connect_timeout=0.3)
    source = AdapterSource(FrameRing(), _config(silent.port), policy=policy, connect_in_background=True)
    source.start()  # no network on the caller's thread: it returns before any answer could come
    try:
        assert source.state is SourceState.CONNECTING
        wait_for(lambda: "did not greet" in (source.error or ""), 5.0, "the greeting error")
        wait_for(lambda: "attempt 2" in (source.error or ""), 5.0, "a second attempt")
        assert source.state is SourceState.CONNECTING and source.bus is None
    finally:
        source.stop()
    assert source.state is SourceState.STOPPED


def test_background_connect_without_reconnect_fails_once(silent):
    policy = ReconnectPolicy(enabled=False, connect_timeout=0.3)
    source = AdapterSource(FrameRing(), _config(silent.port), policy=policy, connect_in_background=True)
    source.start()
    try:
        wait_for(lambda: source.state is SourceState.FAILED, 5.0, "FAILED")
        assert "did not greet within 0.3 s" in (source.error or "")
    finally:
        source.stop()


_RELEASE = threading.Event()
_BUILT: list[can.BusABC] = []


class HangingBus(can.BusABC):
    """An adapter whose driver blocks in its open until the test lets it go."""

    def __init__(self, channel: str, **kwargs: object) -> None:
        _RELEASE.wait(10.0)
        self.channel_info = f"hanging {channel}"
        super().__init__(channel, **kwargs)
        _BUILT.append(self)

    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        time.sleep(min(timeout or 0.0, 0.01))
        return None, False

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        pass


def test_an_adapter_that_never_opens_is_given_up_and_closed_when_it_returns(monkeypatch):
    monkeypatch.setitem(can.interfaces.BACKENDS, "hanging", (__name__, "HangingBus"))
    monkeypatch.setattr(can.util, "VALID_INTERFACES", can.util.VALID_INTERFACES | {"hanging"})
    _RELEASE.clear()
    _BUILT.clear()
    with pytest.raises(SourceError, match=r"hanging usb0: the adapter did not open within 0\.3 s"):
        open_bus(BusConfig("hanging", "usb0"), open_timeout=0.3)
    _RELEASE.set()  # the driver returns late: its bus must not stay open
    wait_for(lambda: _BUILT and _BUILT[0]._is_shutdown, 5.0, "the late bus to be closed")


def test_stopping_a_source_that_is_still_connecting_ends_its_threads(silent):
    policy = ReconnectPolicy(connect_timeout=0.5)
    source = AdapterSource(FrameRing(), _config(silent.port), policy=policy, connect_in_background=True)
    source.start()
    wait_for(lambda: silent.accepted, 5.0, "the connection")
    source.stop()  # the leak check fails the test if the watch or open thread lives on
    assert source.state is SourceState.STOPPED
    assert source.bus is None


def test_background_connect_reports_an_unknown_interface_at_once():
    source = AdapterSource(FrameRing(), BusConfig("no_such_adapter", "x"), connect_in_background=True)
    with pytest.raises(SourceError, match="driver for interface 'no_such_adapter' is not installed"):
        source.start()
    assert source.state is SourceState.STOPPED
