"""SocketcandServer with many clients: one loop for all, a client cap, bounded per-client queues.

Real TCP sockets on 127.0.0.1 throughout; the bus is a python-can virtual channel played by the test.
"""

from __future__ import annotations

import re
import selectors
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import can
import pytest
from helpers.processes import free_port, simulator_process
from helpers.socketcand_raw import RawClient
from helpers.waiting import wait_for

from workshop_app.core.sim.socketcand_server import SocketcandServer


@pytest.fixture
def channel() -> str:
    return f"socketcand-clients-{uuid.uuid4().hex}"


@pytest.fixture
def car(channel: str) -> Iterator[can.BusABC]:
    bus = can.Bus(interface="virtual", channel=channel)
    yield bus
    bus.shutdown()


@pytest.fixture
def make_server(channel: str) -> Iterator[Callable[..., SocketcandServer]]:
    made: list[tuple[SocketcandServer, can.BusABC]] = []

    def make(**kwargs: object) -> SocketcandServer:
        bus = can.Bus(interface="virtual", channel=channel)
        try:
            server = SocketcandServer(bus, port=0, **kwargs)  # type: ignore[arg-type]
            server.start()
        except BaseException:
            bus.shutdown()
            raise
        made.append((server, bus))
        return server

    yield make
    for server, bus in made:
        server.stop()
        bus.shutdown()


@pytest.fixture
def raw_clients() -> Iterator[list[RawClient]]:
    opened: list[RawClient] = []
    yield opened
    for client in opened:
        client.close()


def frame(n: int) -> can.Message:
    return can.Message(arbitration_id=n & 0x7FF, is_extended_id=False, data=n.to_bytes(4, "big"))


def send_paced(car: can.BusABC, count: int, pause: float = 0.002) -> None:
    for n in range(count):
        car.send(frame(n))
        if n % 50 == 49:
            time.sleep(pause)  # a bus has a pace


def read_frames(clients: list[RawClient], count: int, timeout: float = 20.0) -> list[list[int]]:
    """Frame numbers (the 4 data bytes) each client received, read with one selector."""
    got: list[list[int]] = [[] for _ in clients]
    tails = [""] * len(clients)
    with selectors.DefaultSelector() as sel:
        for i, c in enumerate(clients):
            c.sock.setblocking(False)
            sel.register(c.sock, selectors.EVENT_READ, i)
        deadline = time.monotonic() + timeout
        while any(len(g) < count for g in got) and time.monotonic() < deadline:
            for key, _ in sel.select(0.1):
                i = key.data
                data = clients[i].sock.recv(1 << 16)
                if not data:
                    sel.unregister(clients[i].sock)
                    continue
                text = tails[i] + data.decode("ascii")
                cut = text.rfind(">") + 1
                tails[i] = text[cut:]
                got[i] += [
                    int(m, 16) for m in re.findall(r"< frame [0-9A-F]+ [0-9.]+ ([0-9A-F]{8}) >", text[:cut])
                ]
    for c in clients:
        c.sock.setblocking(True)
    return got


# -- one loop for every client -------------------------------------------------------------------


def test_no_thread_per_client(make_server, raw_clients, car):
    server = make_server()
    first = RawClient(server.address)
    raw_clients.append(first)
    first.open_raw()
    threads_with_one = threading.active_count()

    for _ in range(30):
        client = RawClient(server.address)
        raw_clients.append(client)
        client.open_raw()
    assert wait_for(lambda: server.clients == 31)

    assert threading.active_count() == threads_with_one
    car.send(frame(7))
    assert all(c.read().startswith("< frame 007 ") for c in raw_clients)


def test_64_clients_each_receive_every_frame(make_server, raw_clients, car):
    server = make_server(max_clients=64)
    for _ in range(64):
        client = RawClient(server.address)
        raw_clients.append(client)
        client.open_raw()
    assert wait_for(lambda: sum(s.mode == "raw" for s in server.client_stats()) == 64)
    time.sleep(0.15)  # past the hold after rawmode's < ok >

    count = 500
    sender = threading.Thread(target=send_paced, args=(car, count))
    sender.start()
    got = read_frames(raw_clients, count)
    sender.join()

    assert all(g == list(range(count)) for g in got), [len(g) for g in got]
    assert server.stats.frames_dropped == 0


# -- the cap -------------------------------------------------------------------------------------


def test_clients_beyond_the_cap_are_refused_clearly(make_server, raw_clients):
    server = make_server(max_clients=3)
    for _ in range(3):
        client = RawClient(server.address)
        raw_clients.append(client)
        assert client.read() == "< hi >"

    extra = RawClient(server.address)
    raw_clients.append(extra)
    assert extra.read() == "< error too many clients (limit 3) >"
    assert extra.closed_by_server()

    # python-can's client reports the refusal instead of hanging.
    host, port = server.address
    with pytest.raises(can.CanError, match="too many clients"):
        can.Bus(interface="socketcand", host=host, port=port, channel="can0")

    assert server.clients == 3
    assert server.stats.refused == 2
    # A place that frees up is taken by the next client.
    raw_clients[0].close()
    assert wait_for(lambda: server.clients == 2)
    again = RawClient(server.address)
    raw_clients.append(again)
    assert again.read() == "< hi >"


def test_connection_storm_at_the_cap_does_not_disturb_a_connected_client(make_server, raw_clients, car):
    server = make_server(max_clients=4)
    for _ in range(4):
        client = RawClient(server.address)
        raw_clients.append(client)
        client.open_raw()
    watched = raw_clients[-1]
    time.sleep(0.15)  # past the hold after rawmode's < ok >

    attempts = 400
    answers: list[bytes] = []

    def storm() -> None:
        host, port = server.address
        for _ in range(attempts):
            with socket.create_connection((host, port), timeout=5) as s:
                reply = b""
                while chunk := s.recv(256):
                    reply += chunk
                answers.append(reply)

    stormers = [threading.Thread(target=storm) for _ in range(2)]
    for t in stormers:
        t.start()
    count = 1000
    send_paced(car, count)
    got = read_frames([watched], count)
    for t in stormers:
        t.join()

    assert got[0] == list(range(count))
    assert watched.ask("< echo >") == "< echo >"
    assert answers == [b"< error too many clients (limit 4) >"] * (2 * attempts)
    assert server.stats.refused == 2 * attempts
    assert server.clients == 4


# -- slow readers ----------------------------------------------------------------------------------


def test_reader_that_never_reads_loses_only_its_own_frames_and_they_are_counted(
    make_server, raw_clients, car
):
    # The reader's queue must ride out moments when the test process gets no CPU.
    server = make_server(max_queue=4000)
    stalled = RawClient(server.address, rcvbuf=4096)
    reader = RawClient(server.address)
    raw_clients += [stalled, reader]
    stalled.open_raw()
    reader.open_raw()
    time.sleep(0.15)

    count = 40_000  # ~1.5 MB of lines: far more than the kernel buffers for the stalled peer
    sender = threading.Thread(target=send_paced, args=(car, count, 0.005))
    sender.start()
    got = read_frames([reader], count)
    sender.join()
    assert wait_for(lambda: server.stats.frames_from_bus == count)

    assert got[0] == list(range(count))
    stalled_stats, reader_stats = server.client_stats()
    assert reader_stats.frames_dropped == 0
    assert stalled_stats.frames_dropped > 0
    # Nothing vanishes silently: every frame was sent, is still queued, or was counted as dropped.
    assert stalled_stats.frames_sent + stalled_stats.frames_queued + stalled_stats.frames_dropped == count
    assert stalled_stats.frames_queued <= 4000
    assert server.stats.frames_dropped == stalled_stats.frames_dropped
    # Once it reads again it gets what was written and queued for it, in order, then the reply.
    stalled.send("< echo >")
    numbers = []
    while (element := stalled.read()) != "< echo >":
        numbers.append(int(element.split()[-2], 16))
    assert len(numbers) == stalled_stats.frames_sent + stalled_stats.frames_queued
    assert numbers == sorted(numbers) and numbers[: stalled_stats.frames_sent] == list(
        range(stalled_stats.frames_sent)
    )


# -- error replies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "reply"),
    [
        ("garbage\n", '< error text outside a command: "garbage" >'),
        ("a>b ", '< error text outside a command: "a\\x3eb" >'),
        ("\xff\xfe", '< error text outside a command: "\\xff\\xfe" >'),
        ("< bogus >", '< error unknown command "bogus" >'),
        ('< b"o\\gus >', '< error unknown command "b\\"o\\\\gus" >'),
        ("< >", "< error empty command >"),
        ("< abc < echo >", '< error unterminated command "abc" >'),
        ("< send 12G 1 00 >", '< error bad CAN id "12G" >'),
        ("< send 123 2 11 ZZ >", '< error bad data byte "ZZ" >'),
        ("< send 123 1 \xe9 >", '< error bad data byte "\\xe9" >'),
        ("< sendrtr 123 \xb2 >", '< error bad dlc "\\xb2" in sendrtr >'),
        ("< fdframes maybe >", '< error fdframes takes "on" or "off", got "maybe" >'),
        ("< " + "x" * 100 + " >", '< error unknown command "' + "x" * 40 + '"... >'),
    ],
)
def test_error_replies_quote_the_offending_text_readably(make_server, raw_clients, sent, reply):
    server = make_server()
    client = RawClient(server.address)
    raw_clients.append(client)
    client.open_raw()

    assert client.ask(sent) == reply
    # The connection stays usable.
    assert client.read() == "< echo >" if sent.startswith("< abc") else client.ask("< echo >") == "< echo >"


# -- the command line ------------------------------------------------------------------------------


def test_simulate_max_clients_option_caps_the_server():
    port = free_port()
    with simulator_process(port, "--max-clients", "1", "--no-ecus") as proc:

        def greeted() -> RawClient | None:
            # The start-up probe holds the only place until the server has seen it go.
            client = RawClient(("127.0.0.1", port))
            if client.read() == "< hi >":
                return client
            client.close()
            return None

        first = wait_for(greeted, what="a greeting")
        try:
            second = RawClient(("127.0.0.1", port))
            try:
                assert second.read() == "< error too many clients (limit 1) >"
            finally:
                second.close()
        finally:
            first.close()
    assert proc.returncode == 0, proc.stderr_text  # type: ignore[attr-defined]
    assert "client limit 1 " in proc.stderr_text  # type: ignore[attr-defined]
