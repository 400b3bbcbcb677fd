"""The ``workshop-cloud`` python-can interface on the real broker (mutual TLS, ACLs).

The vehicle's side here is a plain MQTT client with the vehicle's certificate that publishes
frame batches and answers requests: what the wire format and the access list allow an agent
to do, and nothing the bus could lean on beyond that.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import can
import paho.mqtt.client as mqtt
import pytest
import udsoncan
from conftest import VIN, VIN2, CloudTrial, Received, wait_until
from udsoncan.client import Client
from udsoncan.exceptions import TimeoutException

from workshop_app.core.cloud import messages, topics, wire
from workshop_app.core.cloud.canbus import CloudBus
from workshop_app.core.cloud.messages import EcuRoute
from workshop_app.core.cloud.pki import CertificateAuthority
from workshop_app.core.cloud.uds_link import CloudLinkError
from workshop_app.core.types import Frame

ECM = EcuRoute(0x7E0, 0x7E8)

Answer = Callable[[dict[str, Any], bytes], list[tuple[bytes, bytes]]]


class VehicleEnd:
    """The vehicle's MQTT side, by hand: publishes batches, answers requests with ``answer``."""

    def __init__(self, cloud: CloudTrial, answer: Answer | None = None) -> None:
        self.cloud = cloud
        self.requests: list[tuple[dict[str, Any], mqtt.MQTTMessage]] = []
        self.answer = answer
        self.pong = True
        self.seq = 0
        self.index = 0
        received = Received()
        self.client = cloud.connect(cloud.vehicle, received=received)
        self.client.on_message = self._on_message
        cloud.subscribe(self.client, topics.vehicle_topic(VIN, topics.REQUEST))

    def _on_message(self, client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        doc = json.loads(msg.payload)
        self.requests.append((doc, msg))
        correlation = msg.properties.CorrelationData
        if doc["kind"] == "ping":
            if not self.pong:
                return
            replies = [(messages.encode("pong", sent=doc["sent"], agent_time=0.0), correlation)]
        elif self.answer is not None:
            replies = self.answer(doc, correlation)
        else:
            replies = []
        for payload, corr in replies:
            client.publish(
                msg.properties.ResponseTopic, payload, qos=1, properties=messages.reply_properties(corr)
            )

    def publish_frames(self, frames: list[Frame], *, skip: int = 0) -> None:
        self.index += skip
        batch = wire.FrameBatch(7, self.seq, self.index, "can0", frames)
        self.seq += 1
        self.index += len(frames)
        self.client.publish(topics.vehicle_topic(VIN, topics.FRAMES), wire.encode_batch(batch), qos=0)

    def publish_raw(self, leaf: str, payload: bytes) -> None:
        self.client.publish(topics.vehicle_topic(VIN, leaf), payload, qos=1)


def _frames(n: int, t0: float = 1_700_000_000.0, can_id: int = 0x2A0) -> list[Frame]:
    return [Frame(t0 + i * 0.001, can_id, bytes([i & 0xFF, 1, 2, 3]), "can0") for i in range(n)]


def _recv_all(bus: can.BusABC, n: int, timeout: float = 10.0) -> list[can.Message]:
    got: list[can.Message] = []

    def enough() -> bool:
        msg = bus.recv(0.05)
        if msg is not None:
            got.append(msg)
        return len(got) >= n

    wait_until(enough, timeout)
    return got


@pytest.fixture
def bus(cloud: CloudTrial) -> Iterator[can.BusABC]:
    b = can.Bus(interface="workshop-cloud", channel=VIN, profile=str(cloud.profile_paths["garage-1"]))
    try:
        yield b
    finally:
        b.shutdown()


def test_python_can_opens_the_plugin_and_receives_the_cars_frames(cloud: CloudTrial, bus: can.BusABC) -> None:
    assert isinstance(bus, CloudBus)
    car = VehicleEnd(cloud)
    sent = _frames(50)
    car.publish_frames(sent[:20])
    car.publish_frames(sent[20:])
    got = _recv_all(bus, 50)
    assert [m.arbitration_id for m in got] == [f.arbitration_id for f in sent]
    assert [bytes(m.data) for m in got] == [f.data for f in sent]
    # The vehicle's own clock, to the microsecond the wire keeps.
    assert [m.timestamp for m in got] == pytest.approx([f.timestamp for f in sent], abs=1e-6)
    assert bus.lost_frames == 0
    assert bus.link_state == "connected"


def test_gaps_in_the_frame_index_are_counted_as_lost(cloud: CloudTrial, bus: CloudBus) -> None:
    car = VehicleEnd(cloud)
    car.publish_frames(_frames(10))
    car.publish_frames(_frames(10), skip=25)
    assert len(_recv_all(bus, 20)) == 20
    assert bus.lost_frames == 25


def test_a_malformed_batch_is_counted_and_named_not_raised(cloud: CloudTrial, bus: CloudBus) -> None:
    car = VehicleEnd(cloud)
    car.publish_raw(topics.FRAMES, b"WF\x01garbage")
    car.publish_frames(_frames(3))
    assert len(_recv_all(bus, 3)) == 3
    assert bus.bad_batches == 1
    assert "truncated" in bus.link.last_problem and VIN in bus.link.last_problem


def test_raw_frames_are_refused_in_plain_words(bus: CloudBus) -> None:
    with pytest.raises(can.CanOperationError, match="not raw frames"):
        bus.send(can.Message(arbitration_id=0x2B0, data=b"\x01\x00"))


def test_latency_is_measured_and_an_offline_vehicle_is_shown(cloud: CloudTrial) -> None:
    car = VehicleEnd(cloud)
    with can.Bus(
        interface="workshop-cloud", channel=VIN, profile=cloud.profile_paths["garage-1"], ping_interval=0.2
    ) as bus:
        assert wait_until(lambda: bus.latency_ms is not None)
        assert bus.latency_ms > 0
        assert bus.link_state == "connected"
        car.pong = False  # gone: its will says offline, and pings go unanswered
        car.publish_raw(topics.STATE, json.dumps({"v": 1, "state": "offline"}).encode())
        assert wait_until(lambda: bus.link_state == "vehicle offline")
        car.pong = True
        car.publish_raw(topics.STATE, b"online")  # the bare word counts too
        assert wait_until(lambda: bus.link_state == "connected")


def test_a_missing_profile_or_broker_is_one_plain_error(cloud: CloudTrial) -> None:
    with pytest.raises(can.CanInitializationError, match="no such cloud profile"):
        can.Bus(interface="workshop-cloud", channel=VIN, profile=cloud.folder / "nowhere.json")
    with pytest.raises(can.CanInitializationError, match=f"cloud profile {VIN}: not a workshop's profile"):
        can.Bus(interface="workshop-cloud", channel=VIN, profile=cloud.profile_paths[VIN])
    with pytest.raises(can.CanInitializationError, match="channel must be the VIN"):
        can.Bus(interface="workshop-cloud", channel="can0", profile=cloud.profile_paths["garage-1"])
    cloud.broker.stop()
    with pytest.raises(
        can.CanInitializationError, match=r"nothing is listening there \(is the broker running"
    ):
        can.Bus(interface="workshop-cloud", channel=VIN, profile=cloud.profile_paths["garage-1"])


def test_a_wrong_ca_or_a_foreign_certificate_is_refused_in_plain_words(
    cloud: CloudTrial, tmp_path: Path
) -> None:
    other = CertificateAuthority.create(tmp_path / "other-ca")
    with pytest.raises(can.CanInitializationError, match=r"its certificate is not trusted by .*other-ca"):
        CloudBus(VIN, profile=replace(cloud.garage1, ca=other.cert_path))
    # A client certificate the broker's CA never issued, with the right name: the broker hangs up.
    rogue = other.issue_client(tmp_path / "rogue", "garage-1")
    with pytest.raises(can.CanInitializationError, match=r"does not accept this certificate") as refused:
        CloudBus(VIN, profile=replace(cloud.garage1, cert=rogue.cert, key=rogue.key), connect_timeout=3)
    assert "\n" not in str(refused.value) and "Traceback" not in str(refused.value)


def _uds_client(bus: CloudBus, timeout: float = 2.0) -> Client:
    config = dict(udsoncan.configs.default_client_config)
    config.update({"p2_timeout": timeout, "request_timeout": timeout})
    return Client(bus.uds_connection(ECM), config=config)


def test_uds_request_is_answered_through_the_link_pending_included(cloud: CloudTrial, bus: CloudBus) -> None:
    def answer(doc: dict[str, Any], corr: bytes) -> list[tuple[bytes, bytes]]:
        assert doc["ecu"] == ECM.as_json() and doc["data"] == "3e00"
        return [
            (messages.encode("uds", data="7f3e78", final=False), corr),
            (messages.encode("uds", data="7e00", final=True), corr),
        ]

    VehicleEnd(cloud, answer)
    with _uds_client(bus) as client:
        response = client.tester_present()
    assert response.positive


def test_a_forged_reply_with_a_fresh_correlation_is_not_taken(cloud: CloudTrial, bus: CloudBus) -> None:
    def answer(doc: dict[str, Any], corr: bytes) -> list[tuple[bytes, bytes]]:
        forged = messages.new_correlation()
        # The forgery first, on the right topic, claiming a positive answer with made-up data.
        return [
            (messages.encode("uds", data="62f190" + b"FORGED-VIN-00000".hex(), final=True), forged),
            (messages.encode("uds", data="62f190" + VIN.encode().hex(), final=True), corr),
        ]

    VehicleEnd(cloud, answer)
    config = dict(udsoncan.configs.default_client_config)
    config.update({"p2_timeout": 2.0, "data_identifiers": {0xF190: udsoncan.AsciiCodec(17)}})
    with Client(bus.uds_connection(ECM), config=config) as client:
        response = client.read_data_by_identifier([0xF190])
    assert response.service_data.values[0xF190] == VIN
    assert bus.link.ignored_replies == 1


def test_an_error_reply_is_a_plain_error_naming_the_vehicle(cloud: CloudTrial, bus: CloudBus) -> None:
    def answer(doc: dict[str, Any], corr: bytes) -> list[tuple[bytes, bytes]]:
        return [(messages.encode("error", code="refused", message="programming is not allowed"), corr)]

    VehicleEnd(cloud, answer)
    with (
        _uds_client(bus) as client,
        pytest.raises(CloudLinkError, match=f"{VIN} ECU 0x7E0/0x7E8: programming"),
    ):
        client.tester_present()


def test_a_vehicle_not_granted_to_this_workshop_times_out_plainly(cloud: CloudTrial) -> None:
    # The second car answers everything: the broker never lets the request reach it.
    car2 = cloud.connect(cloud.vehicle2)
    asked = threading.Event()
    car2.on_message = lambda c, u, m: asked.set()
    cloud.subscribe(car2, topics.vehicle_topic(VIN2, topics.REQUEST))
    with can.Bus(interface="workshop-cloud", channel=VIN2, profile=cloud.profile_paths["garage-1"]) as bus:
        conn = bus.uds_connection(ECM).open()
        conn.send(b"\x3e\x00")
        with pytest.raises(TimeoutException, match=f"{VIN2} ECU 0x7E0/0x7E8: no answer over the cloud link"):
            conn.wait_frame(timeout=1.0, exception=True)
        conn.close()
    assert not asked.is_set()


def test_frames_flow_again_after_a_broker_restart(cloud: CloudTrial, bus: CloudBus) -> None:
    car = VehicleEnd(cloud)
    car.publish_frames(_frames(5))
    assert len(_recv_all(bus, 5)) == 5
    connects = bus.link.connects
    cloud.broker.restart()
    assert wait_until(lambda: bus.link_state.startswith("reconnecting") or bus.link.connects > connects)
    assert wait_until(lambda: bus.link.connects > connects and bus.link_state == "connected", 20)
    assert wait_until(car.client.is_connected, 20)  # paho reconnects the vehicle end too
    car.publish_frames(_frames(5))
    assert len(_recv_all(bus, 5)) == 5
    assert bus.lost_frames == 0
