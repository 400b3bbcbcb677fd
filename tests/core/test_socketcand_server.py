"""SocketcandServer over real TCP on 127.0.0.1, checked with python-can's own socketcand client."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import can
import pytest
from helpers.socketcand_raw import RawClient

from workshop_app.core.sim.socketcand_server import SocketcandServer, format_message

PEER_SCRIPT = Path(__file__).resolve().parents[1] / "helpers" / "socketcand_peer.py"


@pytest.fixture
def channel() -> str:
    return f"socketcand-test-{uuid.uuid4().hex}"


@pytest.fixture
def car(channel: str) -> Iterator[can.BusABC]:
    """The test's own handle of the virtual bus (plays the car)."""
    bus = can.Bus(interface="virtual", channel=channel, preserve_timestamps=True)
    yield bus
    bus.shutdown()


@pytest.fixture
def make_server(channel: str) -> Iterator[Callable[..., SocketcandServer]]:
    made: list[tuple[SocketcandServer, can.BusABC]] = []

    def make(**kwargs: object) -> SocketcandServer:
        bus = can.Bus(interface="virtual", channel=channel)
        server = SocketcandServer(bus, port=0, **kwargs)  # type: ignore[arg-type]
        server.start()
        made.append((server, bus))
        return server

    yield make
    for server, bus in made:
        server.stop()
        bus.shutdown()


@pytest.fixture
def server(make_server: Callable[..., SocketcandServer]) -> SocketcandServer:
    return make_server()


@pytest.fixture
def clients(server: SocketcandServer) -> Iterator[Callable[[], can.BusABC]]:
    opened: list[can.BusABC] = []

    def connect() -> can.BusABC:
        host, port = server.address
        bus = can.Bus(interface="socketcand", host=host, port=port, channel="can0")
        opened.append(bus)
        return bus

    yield connect
    for bus in opened:
        bus.shutdown()


def recv_all(bus: can.BusABC, count: int, timeout: float = 5.0) -> list[can.Message]:
    got: list[can.Message] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        msg = bus.recv(0.05)
        if msg is not None:
            got.append(msg)
    return got


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def std(can_id: int, data: bytes) -> can.Message:
    return can.Message(arbitration_id=can_id, is_extended_id=False, data=data)


def ext(can_id: int, data: bytes) -> can.Message:
    return can.Message(arbitration_id=can_id, is_extended_id=True, data=data)


# -- in-process, python-can client ---------------------------------------------------------------


def test_python_can_client_receives_bus_frames_exactly(server, clients, car):
    client = clients()
    sent = [std(0x000, b""), std(0x7FF, bytes(range(1, 9))), ext(0x0, b"\x00"), ext(0x1FFFFFFF, b"\xff" * 8)]
    sent += [std(0x100 + n, bytes(range(0xA0, 0xA0 + n))) for n in range(9)]
    sent += [ext(0x18DAF100 + n, bytes(range(n))) for n in range(9)]
    for n, msg in enumerate(sent):
        msg.timestamp = 1_700_000_000.0 + n * 0.001001  # preserved by the test bus
        car.send(msg)

    got = recv_all(client, len(sent))

    assert len(got) == len(sent)
    for want, have in zip(sent, got, strict=True):
        assert have.arbitration_id == want.arbitration_id
        assert have.is_extended_id == want.is_extended_id
        assert bytes(have.data) == bytes(want.data)
        assert have.dlc == len(want.data)
        assert not (have.is_error_frame or have.is_remote_frame or have.is_fd)
        assert have.timestamp == pytest.approx(want.timestamp, abs=1e-6)
    # The server counts a frame once the kernel took it, which may be after the client read it.
    deadline = time.monotonic() + 2
    while server.stats.frames_sent < len(sent) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert server.stats.frames_sent == len(sent)


def test_python_can_client_receives_error_frames(server, clients, car):
    client = clients()
    car.send(can.Message(arbitration_id=0x004, is_error_frame=True, data=bytes(8)))
    car.send(std(0x10, b"\x01"))

    got = recv_all(client, 2)

    assert got[0].is_error_frame and got[0].arbitration_id == 0x004
    assert got[1].arbitration_id == 0x10 and not got[1].is_error_frame


def test_frames_sent_by_python_can_client_arrive_on_bus(server, clients, car):
    client = clients()
    sent = [std(0x123, b"\x11\x22"), ext(0x1ABCDEF0, b""), std(0x7FF, bytes(range(8))), ext(0x5, b"\xde\xad")]
    for msg in sent:
        client.send(msg)

    got = recv_all(car, len(sent))

    assert [(m.arbitration_id, m.is_extended_id, bytes(m.data)) for m in got] == [
        (m.arbitration_id, m.is_extended_id, bytes(m.data)) for m in sent
    ]
    assert all(not m.is_fd for m in got)
    assert server.stats.frames_received == len(sent)


def test_two_clients_see_each_others_frames(server, clients, car):
    a, b = clients(), clients()
    assert wait_for(lambda: [s.mode for s in server.client_stats()] == ["raw", "raw"])

    a.send(std(0x321, b"\x01\x02\x03"))

    on_b = recv_all(b, 1)
    on_bus = recv_all(car, 1)
    assert [(m.arbitration_id, bytes(m.data)) for m in on_b] == [(0x321, b"\x01\x02\x03")]
    assert [(m.arbitration_id, bytes(m.data)) for m in on_bus] == [(0x321, b"\x01\x02\x03")]
    assert a.recv(0.3) is None  # a real bus does not echo a node's own frame to it
    stats_a, stats_b = server.client_stats()
    assert (stats_a.frames_received, stats_b.frames_sent) == (1, 1)


# -- cross-process --------------------------------------------------------------------------------


def test_second_process_receives_and_answers(server, car):
    count = 200
    host, port = server.address
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAN_")}
    child = subprocess.Popen(
        [sys.executable, str(PEER_SCRIPT), host, str(port), str(count), "10"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert wait_for(
            lambda: any(s.mode == "raw" for s in server.client_stats()) or child.poll() is not None, 10
        )
        assert child.poll() is None, child.communicate()
        sent = []
        for n in range(count):
            msg = (
                ext(0x10000 + n, bytes((n + i) & 0xFF for i in range(n % 9)))
                if n % 2
                else std(n, bytes([n & 0xFF] * (n % 9)))
            )
            car.send(msg)
            sent.append(msg)

        replies = recv_all(car, count, timeout=10)
        out, err = child.communicate(timeout=10)

        assert child.returncode == 0, err
        assert out.strip() == f"done {count}"
        assert [(m.arbitration_id, m.is_extended_id, bytes(m.data)) for m in replies] == [
            (m.arbitration_id + 1, m.is_extended_id, bytes(reversed(m.data))) for m in sent
        ]
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate(timeout=5)


# -- protocol -------------------------------------------------------------------------------------


def test_malformed_input_gets_errors_and_connection_stays_usable(server, car):
    raw = RawClient(server.address)
    try:
        assert raw.read() == "< hi >"
        assert raw.ask("garbage\n").startswith("< error ")
        assert raw.ask("< rawmode >").startswith("< error ")  # no bus opened yet
        assert raw.ask("< bogus >").startswith("< error ")
        assert raw.ask("< echo >") == "< echo >"
        assert raw.ask("< open can0 >") == "< ok >"
        assert raw.ask("< send 123 1 AA >").startswith("< error ")  # only in raw mode
        assert raw.ask("< subscribe 0 0 123 >").startswith("< error ")  # no BCM jobs
        assert raw.ask("< rawmode >") == "< ok >"
        for bad in (
            "< send 12G 1 00 >",  # bad id
            "< send 123 2 11 ZZ >",  # bad hex byte
            "< send 123 3 11 22 >",  # length mismatch
            "< send 800 0 >",  # standard id out of range
            "< send 123 9 0 0 0 0 0 0 0 0 0 >",  # 9 bytes is no CAN frame length
            "< send >",
            "< >",
            "< whatever 1 2 3 >",
            "\xff\xfe",
            "< sendrtr 123 \xb2 >",  # a digit, but not an ASCII one
            "< send 123 1 \xe9 >",
        ):
            assert raw.ask(bad).startswith("< error "), bad
        assert raw.ask("< abc < echo >").startswith("< error ")  # unterminated, then...
        assert raw.read() == "< echo >"  # ...the next command still runs
        assert raw.ask("< echo >< echo >") == "< echo >"
        assert raw.read() == "< echo >"

        raw.send("< send 1ABCDEF0 3 1 2 3 >< sen")
        raw.send("d 7FF 0 >")
        got = recv_all(car, 2)
        assert [(m.arbitration_id, m.is_extended_id, bytes(m.data)) for m in got] == [
            (0x1ABCDEF0, True, b"\x01\x02\x03"),
            (0x7FF, False, b""),
        ]
        assert server.client_stats()[0].protocol_errors == 17
    finally:
        raw.close()


def test_unknown_bus_is_refused_and_closed(server):
    raw = RawClient(server.address)
    try:
        assert raw.read() == "< hi >"
        assert raw.ask("< open vcan9 >") == "< error could not open bus >"
        assert raw.sock.recv(100) == b""  # the server hung up, as socketcand does
    finally:
        raw.close()
    assert wait_for(lambda: server.clients == 0)


def test_bcmmode_stops_the_stream(server, car):
    raw = RawClient(server.address)
    try:
        raw.open_raw()
        car.send(std(0x1, b"\x01"))
        assert raw.read().startswith("< frame 001 ")
        assert raw.ask("< bcmmode >") == "< ok >"
        car.send(std(0x2, b"\x02"))
        assert raw.ask("< echo >") == "< echo >"  # no frame 002 in between
    finally:
        raw.close()


def test_remote_frames_both_ways(server, car):
    raw = RawClient(server.address)
    try:
        raw.open_raw()
        car.send(can.Message(arbitration_id=0x7DF, is_extended_id=False, is_remote_frame=True, dlc=3))
        line = raw.read()
        assert line.startswith("< rtr 7DF ") and line.endswith(" 3 >")
        raw.send("< sendrtr 18DAF110 8 >")
        (msg,) = recv_all(car, 1)
        assert (msg.arbitration_id, msg.is_extended_id, msg.is_remote_frame, msg.dlc) == (
            0x18DAF110,
            True,
            True,
            8,
        )
    finally:
        raw.close()


def test_fd_frames_only_for_clients_that_ask(server, clients, car):
    plain = clients()
    fd_client = RawClient(server.address)
    try:
        fd_client.open_raw()
        assert fd_client.ask("< fdframes on >") == "< ok >"
        car.send(
            can.Message(
                arbitration_id=0x123,
                is_extended_id=False,
                is_fd=True,
                bitrate_switch=True,
                data=bytes(range(12)),
            )
        )
        car.send(std(0x124, b"\x01"))

        got = recv_all(plain, 1)
        assert [m.arbitration_id for m in got] == [0x124]  # python-can's client cannot parse fdframe
        assert plain.recv(0.2) is None
        assert server.client_stats()[0].fd_skipped == 1
        fd_line = fd_client.read()
        assert fd_line.startswith("< fdframe 123 01 ") and fd_line.endswith(" 000102030405060708090A0B >")
        assert fd_client.read().startswith("< frame 124 ")

        fd_client.send("< fdsend 1ABCDEF0 03 16 " + " ".join(f"{b:02X}" for b in range(16)) + " >")
        (msg,) = recv_all(car, 1)
        assert msg.is_fd and msg.bitrate_switch and msg.error_state_indicator and msg.is_extended_id
        assert bytes(msg.data) == bytes(range(16))
        # python-can's client writes FD messages with `send` and a hex length; accepted as FD.
        plain.send(can.Message(arbitration_id=0x55, is_extended_id=False, is_fd=True, data=bytes(64)))
        (msg,) = recv_all(car, 1)
        assert msg.is_fd and len(msg.data) == 64 and not msg.bitrate_switch
    finally:
        fd_client.close()


def test_fd_server_sends_fdframes_to_everyone(make_server, car):
    server = make_server(fd=True)
    raw = RawClient(server.address)
    try:
        raw.open_raw()
        car.send(
            can.Message(
                arbitration_id=0x1, is_extended_id=True, is_fd=True, error_state_indicator=True, data=b"\xab"
            )
        )
        assert raw.read().startswith("< fdframe 00000001 02 ")
    finally:
        raw.close()


def test_format_message_matches_python_can_parser():
    from can.interfaces.socketcand.socketcand import convert_ascii_message_to_can_message

    for msg in (std(0x7FF, b""), ext(0x1FFFFFFF, bytes(8)), std(0, b"\x0f")):
        msg.timestamp = 12.5
        line, is_fd = format_message(msg)
        back = convert_ascii_message_to_can_message(line)
        assert not is_fd
        assert (back.arbitration_id, back.is_extended_id, bytes(back.data), back.timestamp) == (
            msg.arbitration_id,
            msg.is_extended_id,
            bytes(msg.data),
            12.5,
        )


def test_rawmode_ok_arrives_alone_on_a_busy_bus(server, car):
    # python-can's client compares one recv() with "< ok >"; frames right behind the reply
    # would end up in the same read when the client is a little late.
    raw = RawClient(server.address)
    try:
        assert raw.read() == "< hi >"
        assert raw.ask("< open can0 >") == "< ok >"
        raw.send("< rawmode >")
        # The bus gets busy the moment the server has switched this client to raw mode.
        deadline = time.monotonic() + 5
        while not any(c.mode == "raw" for c in server.client_stats()) and time.monotonic() < deadline:
            time.sleep(0.002)
        for n in range(20):
            car.send(std(n, b"\x00"))
        time.sleep(0.05)  # a late client
        assert raw.sock.recv(256) == b"< ok >"
        assert raw.read().startswith("< frame 000 ")  # held back, not lost
    finally:
        raw.close()


# -- robustness -----------------------------------------------------------------------------------


def test_slow_client_drops_without_blocking_others(make_server, car):
    # No hold after rawmode: the flood starts at once and the hold would fill the fast queue too.
    server = make_server(fd=True, max_queue=2000, raw_start_delay=0.0)
    slow = RawClient(server.address, rcvbuf=4096)
    fast = RawClient(server.address)
    received = 0
    try:
        slow.open_raw()
        fast.open_raw()
        count = 50_000  # 64-byte FD frames: ~8 MB, twice what the kernel buffers for a stalled peer

        def read_fast() -> None:
            nonlocal received
            fast.sock.settimeout(3.0)
            with_tail = ""
            while received < count:
                try:
                    data = fast.sock.recv(1 << 20)
                except OSError:
                    return
                if not data:
                    return
                with_tail += data.decode("ascii")
                received += with_tail.count(">")
                with_tail = with_tail[with_tail.rfind(">") + 1 :]

        reader = threading.Thread(target=read_fast)
        reader.start()
        frame = can.Message(arbitration_id=0x10, is_extended_id=False, is_fd=True, data=bytes(range(64)))
        for n in range(count):
            car.send(frame)
            if n % 200 == 199:
                time.sleep(0.001)  # a bus has a pace; a flat-out loop would starve every thread
        # The bus side kept going although one client reads nothing.
        assert wait_for(lambda: server.stats.frames_from_bus == count, 5)
        reader.join(10)

        slow_stats, fast_stats = server.client_stats()
        assert slow_stats.frames_dropped > 0
        assert fast_stats.frames_dropped == 0
        assert received == count
        assert server.stats.frames_dropped == slow_stats.frames_dropped
    finally:
        slow.close()
        fast.close()


def test_abrupt_disconnect_does_not_disturb_others(server, clients, car):
    keeper = clients()
    rude = RawClient(server.address)
    rude.open_raw()
    car.send(std(0x1, b"\x01"))
    assert rude.read().startswith("< frame 001 ")
    # RST instead of a clean FIN
    rude.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    rude.send("< send 123 1 ")
    rude.close()
    assert wait_for(lambda: server.clients == 1)

    car.send(std(0x2, b"\x02"))
    got = recv_all(keeper, 2)
    assert [m.arbitration_id for m in got] == [0x1, 0x2]
    keeper.send(std(0x3, b"\x03"))
    assert [m.arbitration_id for m in recv_all(car, 1)] == [0x3]


def test_stop_with_clients_leaves_nothing_behind(channel, car):
    before = set(threading.enumerate())
    bus = can.Bus(interface="virtual", channel=channel)
    server = SocketcandServer(bus, port=0)
    server.start()
    address = server.address
    python_can_client = can.Bus(interface="socketcand", host=address[0], port=address[1], channel="can0")
    raw = RawClient(address)
    try:
        assert raw.read() == "< hi >"
        assert wait_for(lambda: server.clients == 2)
        car.send(std(0x1, b"\x01"))
        assert recv_all(python_can_client, 1)

        server.stop()
        server.stop()  # idempotent

        assert set(threading.enumerate()) - before == set()
        assert server.clients == 0
        assert raw.sock.recv(100) == b""
        with pytest.raises(OSError):
            socket.create_connection(address, timeout=1.0).close()
    finally:
        raw.close()
        python_can_client.shutdown()
        bus.shutdown()


def test_context_manager_and_lifecycle(channel):
    bus = can.Bus(interface="virtual", channel=channel)
    try:
        server = SocketcandServer(bus, port=0)
        with pytest.raises(RuntimeError):
            _ = server.address
        server.stop()  # stop before start is harmless
        with SocketcandServer(bus, port=0) as running:
            assert running.running
            host, port = running.address
            assert host == "127.0.0.1" and port > 0
            with pytest.raises(RuntimeError):
                running.start()
        assert not running.running
    finally:
        bus.shutdown()


def test_second_notifier_on_same_bus_is_refused(channel):
    bus = can.Bus(interface="virtual", channel=channel)
    notifier = can.Notifier(bus, [], timeout=0.05)
    try:
        with pytest.raises(ValueError, match="own bus handle"):
            SocketcandServer(bus, port=0).start()
    finally:
        notifier.stop()
        bus.shutdown()
