"""Our socketcand client when the link misbehaves: deadlines, refusals, silence, a server that dies.

Servers here are real TCP listeners on 127.0.0.1: the simulator's ``SocketcandServer``, and for
behaviour it does not have, small scripted servers that answer as linux-can/socketcand does
(its ``src/state_bcm.c`` answers any unknown command, ``< fdframes on >`` included, with
``< error unknown command >``).
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Callable, Iterator

import can
import pytest
from helpers.waiting import wait_for

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.errors import SourceError
from workshop_app.core.sim.socketcand_server import SocketcandServer
from workshop_app.core.sources.base import SourceState
from workshop_app.core.sources.factory import SourceSpec, make_source
from workshop_app.core.sources.opening import LinkBroken, open_bus
from workshop_app.core.sources.reconnect import ReconnectPolicy
from workshop_app.core.sources.socketcand_client import SocketcandBus, SocketcandConnectError
from workshop_app.core.types import Frame


class ScriptedServer:
    """Accepts one connection and runs ``script(conn)`` on it; the socket closes after it."""

    def __init__(self, script: Callable[[socket.socket], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.done = threading.Event()
        self.release = threading.Event()  # scripts that hold the line wait on this
        self.received = b""
        self._script = script
        self._thread = threading.Thread(target=self._run, name="scripted-socketcand", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            self._script(conn)
            self.done.set()
            self.release.wait(10)

    def read_element(self, conn: socket.socket) -> str:
        while b">" not in self.received:
            data = conn.recv(4096)
            if not data:
                return ""
            self.received += data
        element, _, self.received = self.received.partition(b">")
        return element.decode() + ">"

    def close(self) -> None:
        self.release.set()
        self._thread.join(10)
        self.listener.close()


@pytest.fixture
def scripted() -> Iterator[Callable[[Callable[[socket.socket], None]], ScriptedServer]]:
    made: list[ScriptedServer] = []

    def make(script: Callable[[socket.socket], None]) -> ScriptedServer:
        server = ScriptedServer(script)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


def open_client(port: int, **kwargs: object) -> can.BusABC:
    return can.Bus(interface="workshop-socketcand", host="127.0.0.1", port=port, channel="can0", **kwargs)


def test_a_server_that_accepts_and_never_greets_times_out_plainly(scripted):
    server = scripted(lambda conn: None)  # accepts, says nothing, keeps the line open
    with pytest.raises(SocketcandConnectError) as caught:
        open_client(server.port, connect_timeout=0.3)
    assert (
        str(caught.value)
        == f"socketcand server 127.0.0.1:{server.port} accepted but did not greet within 0.3 s"
    )
    assert isinstance(caught.value, can.CanInitializationError)  # for programs using can.Bus


def test_the_workshop_opens_it_under_the_sources_deadline(scripted):
    # `-i socketcand` through the factory and opening.py: the policy's deadline, the plain line.
    server = scripted(lambda conn: None)
    config = SourceSpec(interface="socketcand", port=server.port).bus_config()
    assert config.interface == "workshop-socketcand" and config.fd
    assert config.describe() == f"socketcand 127.0.0.1:{server.port} can0"
    with pytest.raises(SourceError) as caught:
        open_bus(config, connect_timeout=0.3)
    assert (
        str(caught.value)
        == f"socketcand server 127.0.0.1:{server.port} accepted but did not greet within 0.3 s"
    )
    # python-can's own client stays reachable under its own name.
    assert SourceSpec(interface="socketcand-python-can", port=1).bus_config().interface == "socketcand"


def test_a_refused_connection_names_the_server():
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with pytest.raises(
        SocketcandConnectError, match=rf"socketcand server 127.0.0.1:{port} refused the connection"
    ):
        open_client(port)


def test_an_unknown_bus_and_a_full_server_are_plain_errors():
    channel = f"sc-link-{uuid.uuid4().hex}"
    handle = can.Bus(interface="virtual", channel=channel)
    server = SocketcandServer(handle, port=0, max_clients=1)
    server.start()
    first = None
    try:
        port = server.address[1]
        with pytest.raises(SocketcandConnectError) as caught:
            can.Bus(interface="workshop-socketcand", host="127.0.0.1", port=port, channel="vcan9")
        assert (
            str(caught.value)
            == f"socketcand server 127.0.0.1:{port} could not open bus 'vcan9': could not open bus"
        )
        wait_for(lambda: server.clients == 0, 5, "the refused client to be gone")
        first = open_client(port)
        with pytest.raises(SocketcandConnectError) as caught:
            open_client(port)
        assert str(caught.value) == (
            f"socketcand server 127.0.0.1:{port} turned the connection away: too many clients (limit 1)"
        )
    finally:
        if first is not None:
            first.shutdown()
        server.stop()
        handle.shutdown()


def _real_socketcand_without_fd_extension(
    server: ScriptedServer, lines: list[str]
) -> Callable[[socket.socket], None]:
    def script(conn: socket.socket) -> None:
        conn.sendall(b"< hi >")
        assert server.read_element(conn) == "< open can0 >"
        conn.sendall(b"< ok >")
        assert server.read_element(conn) == "< fdframes on >"
        conn.sendall(b"< error unknown command >")
        assert server.read_element(conn) == "< rawmode >"
        # socketcand sends frames as soon as raw mode starts: in the same segment as the < ok >.
        conn.sendall(("< ok >" + "".join(lines)).encode())

    return script


def test_a_server_that_refuses_fdframes_on_still_delivers_fd_frames(scripted):
    lines = [
        "< frame 123 1700000000.000100 0102 >",
        "< fdframe 0ABCDEF0 01 1700000000.000200 " + "A5" * 64 + " >",
        "< fdframe 456 03 1700000000.000300 " + "11" * 12 + " >",
    ]
    holder: list[ScriptedServer] = []
    server = scripted(lambda conn: _real_socketcand_without_fd_extension(holder[0], lines)(conn))
    holder.append(server)
    bus = open_client(server.port)
    try:
        assert isinstance(bus, SocketcandBus) and bus.fd_frames_requested is False
        got = [bus.recv(5.0) for _ in lines]
        assert [
            (m.arbitration_id, m.is_fd, m.bitrate_switch, m.error_state_indicator, len(m.data)) for m in got
        ] == [
            (0x123, False, False, False, 2),
            (0x0ABCDEF0, True, True, False, 64),
            (0x456, True, True, True, 12),
        ]
    finally:
        bus.shutdown()


def test_a_link_that_goes_silent_is_declared_dead(scripted):
    holder: list[ScriptedServer] = []
    heard: list[str] = []

    def script(conn: socket.socket) -> None:
        s = holder[0]
        conn.sendall(b"< hi >")
        s.read_element(conn)
        conn.sendall(b"< ok >")
        s.read_element(conn)
        conn.sendall(b"< ok >")
        s.read_element(conn)
        conn.sendall(b"< ok >< frame 100 1.000000 01 >")
        # From here on: nothing, not even an answer to the keep-alive (a host that vanished).
        heard.append(s.read_element(conn))

    server = scripted(script)
    holder.append(server)
    bus = open_client(server.port, keepalive=0.1, link_timeout=0.6)
    try:
        assert bus.recv(5.0).arbitration_id == 0x100  # what came before the silence is delivered
        wait_for(lambda: heard, 5, "a keep-alive")
        assert heard == ["< echo >"]
        with pytest.raises(
            LinkBroken, match=rf"the server sent nothing for .* \(socketcand 127.0.0.1:{server.port}\)"
        ):
            bus.recv(5.0)
    finally:
        bus.shutdown()


def test_frames_before_a_close_are_delivered_then_recv_raises(scripted):
    holder: list[ScriptedServer] = []

    def script(conn: socket.socket) -> None:
        conn.sendall(b"< hi >")
        for _ in range(2):  # open, fdframes on
            holder[0].read_element(conn)
            conn.sendall(b"< ok >")
        holder[0].read_element(conn)  # rawmode
        # The answer and the frames in one segment, as a busy server may send them.
        frames = b"".join(f"< frame {n:03X} 1.{n:06d} {n:02X} >".encode() for n in range(100))
        conn.sendall(b"< ok >" + frames)

    server = scripted(script)
    holder.append(server)
    server.release.set()  # close right after the frames
    bus = open_client(server.port)
    try:
        got = [bus.recv(5.0) for _ in range(100)]
        assert [m.arbitration_id for m in got] == list(range(100))
        with pytest.raises(
            LinkBroken, match=rf"the server closed the connection \(socketcand 127.0.0.1:{server.port}\)"
        ):
            bus.recv(5.0)
        with pytest.raises(can.CanOperationError, match="not sent"):
            bus.send(can.Message(arbitration_id=0x7E0, is_extended_id=False, data=b"\x01"))
    finally:
        bus.shutdown()


def test_the_source_reconnects_when_the_server_dies_mid_stream():
    channel = f"sc-link-{uuid.uuid4().hex}"
    car = can.Bus(interface="virtual", channel=channel)
    handles: list[can.BusABC] = []
    servers: list[SocketcandServer] = []

    def serve(port: int = 0) -> SocketcandServer:
        handle = can.Bus(interface="virtual", channel=channel)
        server = SocketcandServer(handle, port=port)
        handles.append(handle)
        servers.append(server)
        server.start()
        return server

    first = serve()
    port = first.address[1]
    ring = FrameRing()
    spec = SourceSpec(interface="socketcand", port=port, reconnect=ReconnectPolicy(retry_interval=0.1))
    source = make_source(spec, ring)
    received: list[Frame] = []

    def arrived(can_id: int) -> bool:
        received.extend(ring.drain())
        return any(f.arbitration_id == can_id for f in received)

    source.start()
    try:
        assert source.caps.fd
        wait_for(lambda: first.client_stats() and first.client_stats()[0].mode == "raw", 5, "raw mode")
        fd = can.Message(
            arbitration_id=0x3C0, is_extended_id=False, is_fd=True, bitrate_switch=True, data=bytes(range(64))
        )
        car.send(fd)
        wait_for(lambda: arrived(0x3C0), 5, "the FD frame before the loss")
        first.stop()  # the server goes away mid-stream
        wait_for(lambda: source.state is SourceState.RECONNECTING, 5, "the loss to be noticed")
        assert f"the server closed the connection (socketcand 127.0.0.1:{port})" in (source.error or "")
        second = serve(port)
        wait_for(lambda: source.state is SourceState.RUNNING, 10, "the reconnect")
        wait_for(
            lambda: second.client_stats() and second.client_stats()[0].mode == "raw", 5, "raw mode again"
        )
        car.send(can.Message(arbitration_id=0x3C1, is_extended_id=False, is_fd=True, data=bytes(48)))
        wait_for(lambda: arrived(0x3C1), 5, "an FD frame after the return")
        assert source.reconnects == 1
        (gap,) = source.gaps
        assert gap.ended is not None and "closed the connection" in gap.reason
        source.send(Frame(0, 0x7E0, bytes(range(16)), "can0", is_fd=True, bitrate_switch=True))
        sent = car.recv(5.0)
        assert sent is not None and sent.is_fd and bytes(sent.data) == bytes(range(16))
        fd_frames = [f for f in received if f.arbitration_id in (0x3C0, 0x3C1)]
        assert [(f.is_fd, len(f.data)) for f in fd_frames] == [(True, 64), (True, 48)]
    finally:
        source.stop()
        for server in servers:
            server.stop()
        for handle in handles:
            handle.shutdown()
        car.shutdown()


def test_a_server_that_stops_reading_ends_the_link_on_send(scripted):
    holder: list[ScriptedServer] = []

    def script(conn: socket.socket) -> None:
        s = holder[0]
        conn.sendall(b"< hi >")
        for _ in range(3):  # open, fdframes on, rawmode
            s.read_element(conn)
            conn.sendall(b"< ok >")
        # Then it reads nothing more: the kernel's buffers fill up behind our sends.

    server = scripted(script)
    holder.append(server)
    bus = open_client(server.port, keepalive=0.2, link_timeout=0)
    frame = can.Message(arbitration_id=0x123, is_extended_id=False, is_fd=True, data=bytes(64))
    try:
        with pytest.raises(can.CanOperationError, match="not sent") as caught:
            for _ in range(1_000_000):  # a bound; the buffers hold some tens of thousands
                bus.send(frame)
        assert "timed out" in str(caught.value)
        with pytest.raises(LinkBroken, match=r"the server did not take what we sent within 0.2 s"):
            bus.recv(5.0)
    finally:
        bus.shutdown()
