"""Our socketcand client against the simulator's real server over TCP on 127.0.0.1.

The car is the demo vehicle (or the test itself) on a python-can virtual bus; the server is
``SocketcandServer`` in this process; the client is ``can.Bus(interface="workshop-socketcand")``,
opened through python-can's entry point as any program would.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import can
import pytest
from helpers.waiting import wait_for

from workshop_app.core.sim.demo_vehicle import DemoVehicle
from workshop_app.core.sim.socketcand_server import SocketcandServer
from workshop_app.core.sources.socketcand_client import SocketcandBus


@pytest.fixture
def channel() -> str:
    return f"sc-client-{uuid.uuid4().hex}"


@pytest.fixture
def car(channel: str) -> Iterator[can.BusABC]:
    bus = can.Bus(interface="virtual", channel=channel, preserve_timestamps=True)
    yield bus
    bus.shutdown()


@pytest.fixture
def server(channel: str) -> Iterator[SocketcandServer]:
    bus = can.Bus(interface="virtual", channel=channel)
    srv = SocketcandServer(bus, port=0)
    srv.start()
    yield srv
    srv.stop()
    bus.shutdown()


@pytest.fixture
def connect(server: SocketcandServer) -> Iterator[Callable[..., can.BusABC]]:
    opened: list[can.BusABC] = []

    def make(interface: str = "workshop-socketcand", **kwargs: object) -> can.BusABC:
        host, port = server.address
        bus = can.Bus(interface=interface, host=host, port=port, channel="can0", **kwargs)
        opened.append(bus)
        return bus

    yield make
    for bus in opened:
        bus.shutdown()


def recv_n(bus: can.BusABC, count: int, timeout: float = 10.0) -> list[can.Message]:
    got: list[can.Message] = []

    def more() -> bool:
        while (msg := bus.recv(0.05)) is not None:
            got.append(msg)
        return len(got) >= count

    wait_for(more, timeout, f"{count} frames")
    return got


def key(msg: can.Message) -> tuple[object, ...]:
    """Everything socketcand carries of a frame, timestamps to the microsecond."""
    return (
        f"{msg.timestamp:.6f}",
        msg.arbitration_id,
        msg.is_extended_id,
        msg.is_remote_frame,
        msg.is_error_frame,
        msg.is_fd,
        msg.bitrate_switch,
        msg.error_state_indicator,
        msg.dlc if msg.is_remote_frame else None,
        bytes(msg.data),
    )


def test_it_is_a_python_can_interface(connect):
    bus = connect()
    assert isinstance(bus, SocketcandBus)
    assert bus.fd_frames_requested and bus.protocol is can.CanProtocol.CAN_FD
    assert "socketcand 127.0.0.1:" in bus.channel_info


def test_the_demo_cars_fd_frames_arrive_byte_exact_and_none_is_lost(channel, server, connect, car):
    reference = can.Bus(interface="virtual", channel=channel)  # sees what the car puts on the bus
    vehicle_bus = can.Bus(interface="virtual", channel=channel)
    vehicle = DemoVehicle(vehicle_bus, start_at=20.0, data_bitrate=2_000_000, listen=False)
    client = connect()
    python_can = connect("socketcand")  # python-can's own client on the same server, to compare
    wait_for(
        lambda: all(s.mode == "raw" for s in server.client_stats()) and server.clients == 2, 5, "raw mode"
    )
    try:
        vehicle.start()
        # FD frames with the error state indicator (the demo car sends none) among the car's own.
        for n in range(20):
            car.send(
                can.Message(
                    timestamp=1_700_000_000 + n / 1000,
                    arbitration_id=0x3C0 + n,
                    is_extended_id=n % 2 == 1,
                    is_fd=True,
                    bitrate_switch=n % 3 == 0,
                    error_state_indicator=True,
                    data=bytes((n + i) & 0xFF for i in (12, 16, 20, 24, 32, 48, 64, 8)[n % 8] * [1]),
                )
            )
        wait_for(lambda: vehicle.frames_sent > 400, 20, "the car to run")
    finally:
        vehicle.stop()
    sent = []
    while (msg := reference.recv(0)) is not None:
        sent.append(msg)
    reference.shutdown()
    vehicle_bus.shutdown()
    fd_sent = sum(m.is_fd for m in sent)
    assert fd_sent > 20  # the car's own FD frames as well as the test's

    got = recv_n(client, len(sent))
    assert [key(m) for m in got] == [key(m) for m in sent]
    assert sum(m.is_fd and m.bitrate_switch for m in got) > 0
    assert sum(m.error_state_indicator for m in got) == 20
    # The server counts a write once send() returned, which may be after the client read it.
    wait_for(lambda: server.client_stats()[0].frames_sent == len(sent), 5, "the server's count")
    wait_for(
        lambda: client.stats.frames_received == len(sent), 5, "the client's count"
    )  # kept after hand-over
    ours, theirs = (s for s in server.client_stats())
    stats = client.stats
    assert stats.frames_received == ours.frames_sent == len(sent)
    assert stats.fd_frames == fd_sent
    assert (stats.frames_dropped, ours.frames_dropped, ours.fd_skipped) == (0, 0, 0)
    # The loss this client exists for: python-can's client never gets those frames.
    assert theirs.fd_skipped == fd_sent
    assert len(recv_n(python_can, len(sent) - fd_sent)) == len(sent) - fd_sent


def test_classic_extended_remote_and_error_frames(server, connect, car):
    client = connect()
    wait_for(lambda: server.client_stats()[0].mode == "raw", 5, "raw mode")
    sent = [
        can.Message(arbitration_id=0x000, is_extended_id=False, data=b""),
        can.Message(arbitration_id=0x7FF, is_extended_id=False, data=bytes(range(1, 9))),
        can.Message(arbitration_id=0x0, is_extended_id=True, data=b"\x00"),
        can.Message(arbitration_id=0x1FFFFFFF, is_extended_id=True, data=b"\xff" * 8),
        can.Message(arbitration_id=0x123, is_extended_id=False, is_remote_frame=True, dlc=6),
        can.Message(arbitration_id=0x18DB33F1, is_extended_id=True, is_remote_frame=True, dlc=0),
        can.Message(arbitration_id=0x004, is_extended_id=False, is_error_frame=True),
    ]
    sent += [
        can.Message(arbitration_id=0x100 + n, is_extended_id=False, data=bytes(range(n))) for n in range(9)
    ]
    for n, msg in enumerate(sent):
        msg.timestamp = 1_700_000_000.0 + n * 0.001001
        car.send(msg)
    got = recv_n(client, len(sent))
    assert [key(m) for m in got] == [key(m) for m in sent]
    wait_for(lambda: client.stats.frames_received == len(sent), 5, "the client's count")
    assert client.stats.malformed == 0


def test_classic_fd_and_remote_frames_we_send_reach_the_car_and_the_other_clients(server, connect, car):
    sender = connect()
    listener = connect()
    python_can = connect("socketcand")
    wait_for(
        lambda: server.clients == 3 and all(s.mode == "raw" for s in server.client_stats()), 5, "raw mode"
    )
    frames = [
        can.Message(arbitration_id=0x7E0, is_extended_id=False, data=b"\x02\x10\x03"),
        can.Message(arbitration_id=0x18DA10F1, is_extended_id=True, data=bytes(range(8))),
        can.Message(
            arbitration_id=0x7E0, is_extended_id=False, is_fd=True, bitrate_switch=True, data=bytes(range(64))
        ),
        can.Message(arbitration_id=0x1ABCDEF0, is_fd=True, error_state_indicator=True, data=bytes(range(12))),
        can.Message(arbitration_id=0x321, is_extended_id=False, is_remote_frame=True, dlc=4),
    ]
    for msg in frames:
        sender.send(msg)

    def same(m: can.Message) -> tuple[object, ...]:
        return key(m)[1:]  # the bus stamps frames as they go out

    on_car = recv_n(car, len(frames))
    assert [same(m) for m in on_car] == [same(m) for m in frames]
    assert [same(m) for m in recv_n(listener, len(frames))] == [same(m) for m in frames]
    # python-can's client sees the two classic data frames (the server keeps FD frames from it,
    # and it cannot read remote frames).
    classic = [(f.arbitration_id, bytes(f.data)) for f in frames[:2]]
    assert [(m.arbitration_id, bytes(m.data)) for m in recv_n(python_can, 2)] == classic
    assert sender.stats.frames_received == 0  # a bus does not echo a node's own frames


def test_frames_beyond_the_queue_are_dropped_and_counted(server, connect, car):
    client = connect(max_queue=10)
    wait_for(lambda: server.client_stats()[0].mode == "raw", 5, "raw mode")
    for n in range(50):
        car.send(can.Message(arbitration_id=n, is_extended_id=False, data=bytes([n])))
    wait_for(lambda: client.stats.frames_received == 50, 10, "all frames parsed")
    assert client.stats.frames_dropped == 40
    got = recv_n(client, 10)
    assert [m.arbitration_id for m in got] == list(range(10))  # the oldest kept, the newest dropped
    assert client.recv(0.1) is None


def test_a_frame_the_server_refuses_is_reported(server, connect, car):
    client = connect()
    wait_for(lambda: server.client_stats()[0].mode == "raw", 5, "raw mode")
    client._write(b"< send 7E0 9 01 >")  # a length that does not match: the server complains
    wait_for(lambda: client.stats.complaints == 1, 5, "the complaint")
    assert "does not match" in client.last_complaint


def test_keepalive_echoes_keep_a_quiet_link_alive(server, connect):
    client = connect(keepalive=0.1, link_timeout=0.5)
    wait_for(lambda: client.stats.echoes >= 5, 10, "echo answers")
    assert client.recv(0.05) is None  # quiet, and still alive


def test_shutdown_stops_the_receive_thread_and_recv_returns_none(connect):
    client = connect()
    thread = client._rx_thread
    client.shutdown()
    assert not thread.is_alive()
    assert client.recv(0.01) is None
    client.send(can.Message(arbitration_id=1, is_extended_id=False))  # dropped quietly, as documented


def test_python_can_filters_still_apply(server, connect, car):
    client = connect(can_filters=[{"can_id": 0x100, "can_mask": 0x7FF, "extended": False}])
    wait_for(lambda: server.client_stats()[0].mode == "raw", 5, "raw mode")
    for can_id in (0x0FF, 0x100, 0x101, 0x100):
        car.send(can.Message(arbitration_id=can_id, is_extended_id=False, data=b"\x01"))
    wait_for(lambda: client.stats.frames_received == 4, 5, "all four parsed")
    assert [m.arbitration_id for m in recv_n(client, 2)] == [0x100, 0x100]
    assert client.recv(0.1) is None
