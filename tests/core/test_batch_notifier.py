"""BatchNotifier with our socketcand client against the simulator's real server (TCP, 127.0.0.1).

Batches go whole to listeners that take them; every other listener (as ISO-TP attaches) still
sees each frame once and in order; a bus without batches is read frame by frame.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import can
import pytest
from helpers.waiting import wait_for

from workshop_app.core.sim.socketcand_server import SocketcandServer
from workshop_app.core.sources.batch_notifier import BatchNotifier


class Batches:
    def __init__(self) -> None:
        self.calls = 0
        self.ids: list[int] = []

    def on_messages(self, messages: Sequence[can.Message]) -> None:
        self.calls += 1
        self.ids += [m.arbitration_id for m in messages]

    def on_message_received(self, msg: can.Message) -> None:
        raise AssertionError("a batch listener is given batches")

    def __call__(self, msg: can.Message) -> None:
        self.on_message_received(msg)


@dataclass
class Rig:
    channel: str  # the car's virtual bus
    car: can.BusABC
    server: SocketcandServer  # serving that bus on 127.0.0.1


@pytest.fixture
def rig() -> Iterator[Rig]:
    channel = f"batch-notifier-{uuid.uuid4().hex}"
    car = can.Bus(interface="virtual", channel=channel)
    served = can.Bus(interface="virtual", channel=channel)
    server = SocketcandServer(served, port=0)
    server.start()
    try:
        yield Rig(channel, car, server)
    finally:
        server.stop()
        served.shutdown()
        car.shutdown()


def test_batches_go_whole_and_per_frame_listeners_see_every_frame_in_order(rig):
    server, car = rig.server, rig.car
    host, port = server.address
    client = can.Bus(interface="workshop-socketcand", host=host, port=port, channel="can0")
    batches, each = Batches(), can.BufferedReader()
    notifier = BatchNotifier(client, [batches], timeout=0.05)
    try:
        wait_for(lambda: server.client_stats()[0].mode == "raw", 5, "raw mode")
        notifier.add_listener(each)  # as ISO-TP attaches to a running source's Notifier
        sent = [0x100 + i % 50 for i in range(3_000)]
        for can_id in sent:
            car.send(can.Message(arbitration_id=can_id, is_extended_id=False, data=b"\x01\x02"))
        wait_for(lambda: len(batches.ids) == len(sent), 10, "every frame in a batch")
        assert batches.ids == sent
        assert batches.calls < len(sent) / 5  # taken many frames at a time
        got = [each.get_message(1.0) for _ in sent]
        assert [m.arbitration_id for m in got if m is not None] == sent
    finally:
        notifier.stop()
        client.shutdown()


def test_a_lost_link_reaches_the_listeners_error_handler(rig):
    server = rig.server
    host, port = server.address
    client = can.Bus(interface="workshop-socketcand", host=host, port=port, channel="can0")
    errors: list[Exception] = []
    lost = threading.Event()

    class Watch(can.Listener):
        def on_message_received(self, msg: can.Message) -> None:
            pass

        def on_error(self, exc: Exception) -> None:
            errors.append(exc)
            lost.set()

    notifier = BatchNotifier(client, [Watch()], timeout=0.05)
    try:
        wait_for(lambda: server.client_stats()[0].mode == "raw", 5, "raw mode")
        server.stop()
        assert lost.wait(10), "the lost link was not reported"
        assert "closed the connection" in str(errors[0]) or "broke" in str(errors[0])
    finally:
        notifier.stop()
        client.shutdown()


def test_a_bus_without_batches_is_read_frame_by_frame(rig):
    car = rig.car
    bus = can.Bus(interface="virtual", channel=rig.channel)
    each = can.BufferedReader()
    notifier = BatchNotifier(bus, [each], timeout=0.05)
    try:
        for i in range(20):
            car.send(can.Message(arbitration_id=i, is_extended_id=False))
        got = [each.get_message(2.0) for _ in range(20)]
        assert [m.arbitration_id for m in got if m is not None] == list(range(20))
    finally:
        notifier.stop()
        bus.shutdown()
