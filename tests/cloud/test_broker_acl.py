"""The broker's access list on the real mosquitto: each party reaches only its own topics.

mosquitto grants a SUBSCRIBE it will never serve, so a refusal is tested by non-delivery: the
same publish reaches the party allowed to see it, and a round trip on the other party's own
connection afterwards (a SUBACK, which the broker queues behind anything it sent before)
proves nothing was on its way.
"""

from __future__ import annotations

import threading
from typing import Any

import paho.mqtt.client as mqtt
from conftest import GARAGE1, GARAGE2, VIN, VIN2, CloudTrial, Received

from workshop_app.core.cloud import topics

ACK_TIMEOUT = 10.0


def publish(client: mqtt.Client, topic: str, payload: bytes, retain: bool = False) -> None:
    """QoS 1 and wait for the PUBACK: the broker has routed the message by then."""
    info = client.publish(topic, payload, qos=1, retain=retain)
    info.wait_for_publish(ACK_TIMEOUT)
    assert info.is_published(), f"no PUBACK for {topic}"


def round_trip(cloud: CloudTrial, client: mqtt.Client) -> None:
    cloud.subscribe(client, "wsp/v1/round-trip/check")


def vehicle_topics(vin: str) -> list[str]:
    return [topics.vehicle_topic(vin, leaf) for leaf in (topics.STATE, topics.FRAMES, topics.HEALTH)]


def test_a_workshop_without_a_grant_receives_nothing_of_a_vehicle(cloud: CloudTrial) -> None:
    granted, refused = Received(), Received()
    garage1 = cloud.connect(cloud.garage1, received=granted)
    garage2 = cloud.connect(cloud.garage2, received=refused)
    for client in (garage1, garage2):
        for leaf in (topics.STATE, topics.FRAMES, topics.HEALTH):
            cloud.subscribe(client, topics.all_vehicles(leaf))
        cloud.subscribe(client, f"wsp/v1/{VIN}/#")  # granted by mosquitto, served only if allowed
    car = cloud.connect(cloud.vehicle)
    publish(car, topics.vehicle_topic(VIN, topics.STATE), b'{"state": "online"}', retain=True)
    publish(car, topics.vehicle_topic(VIN, topics.FRAMES), b"WF\x01\x00")
    publish(car, topics.vehicle_topic(VIN, topics.HEALTH), b"{}")
    publish(car, topics.reply_topic(VIN, GARAGE2), b"{}")  # even a reply addressed to it

    assert granted.wait_for(6)  # 3 leaves twice (two matching subscriptions), no reply of garage-2
    round_trip(cloud, garage1)
    assert sorted(set(granted.topics())) == sorted(vehicle_topics(VIN))
    round_trip(cloud, garage2)
    assert refused.topics() == []

    # The retained state is not handed to it on a fresh subscription either.
    cloud.subscribe(garage2, topics.vehicle_topic(VIN, topics.STATE))
    round_trip(cloud, garage2)
    assert refused.topics() == []


def test_a_vehicle_cannot_publish_on_another_vehicles_topics(cloud: CloudTrial) -> None:
    got = Received()
    garage1 = cloud.connect(cloud.garage1, received=got)
    cloud.subscribe(garage1, f"wsp/v1/{VIN}/#")
    impostor = cloud.connect(cloud.vehicle2)
    for topic in [*vehicle_topics(VIN), topics.reply_topic(VIN, GARAGE1)]:
        publish(impostor, topic, b'{"forged": true}')
    round_trip(cloud, garage1)
    assert got.topics() == []

    car = cloud.connect(cloud.vehicle)  # the real car on the same topics is heard
    publish(car, topics.reply_topic(VIN, GARAGE1), b"{}")
    assert got.wait_for(1)
    assert got.topics() == [topics.reply_topic(VIN, GARAGE1)]


def test_a_vehicle_cannot_read_another_vehicles_requests(cloud: CloudTrial) -> None:
    own, other = Received(), Received()
    car = cloud.connect(cloud.vehicle, received=own)
    snoop = cloud.connect(cloud.vehicle2, received=other)
    request = topics.vehicle_topic(VIN, topics.REQUEST)
    cloud.subscribe(car, request)
    cloud.subscribe(snoop, request)
    cloud.subscribe(snoop, "wsp/v1/+/req")
    publish(cloud.connect(cloud.garage1), request, b'{"v": 1, "kind": "ping", "sent": 0}')
    assert own.wait_for(1)
    round_trip(cloud, snoop)
    assert other.topics() == []


def test_a_workshop_cannot_send_requests_to_a_vehicle_not_granted(cloud: CloudTrial) -> None:
    first, second = Received(), Received()
    car = cloud.connect(cloud.vehicle, received=first)
    other_car = cloud.connect(cloud.vehicle2, received=second)
    cloud.subscribe(car, topics.vehicle_topic(VIN, topics.REQUEST))
    cloud.subscribe(other_car, topics.vehicle_topic(VIN2, topics.REQUEST))
    garage1 = cloud.connect(cloud.garage1)
    garage2 = cloud.connect(cloud.garage2)
    publish(garage1, topics.vehicle_topic(VIN2, topics.REQUEST), b"{}")  # VIN2 is not granted to it
    publish(garage2, topics.vehicle_topic(VIN, topics.REQUEST), b"{}")  # garage-2 has no grant at all
    publish(garage1, topics.vehicle_topic(VIN, topics.REQUEST), b'{"from": "garage-1"}')
    assert first.wait_for(1)
    round_trip(cloud, car)
    round_trip(cloud, other_car)
    assert [m.payload for m in first.messages] == [b'{"from": "garage-1"}']
    assert second.topics() == []


def test_a_workshop_reads_only_its_own_replies(cloud: CloudTrial) -> None:
    got = Received()
    garage1 = cloud.connect(cloud.garage1, received=got)
    cloud.subscribe(garage1, f"wsp/v1/{VIN}/reply/+")
    car = cloud.connect(cloud.vehicle)
    publish(car, topics.reply_topic(VIN, GARAGE2), b"for garage-2")
    publish(car, topics.reply_topic(VIN, GARAGE1), b"for garage-1")
    assert got.wait_for(1)
    round_trip(cloud, garage1)
    assert [m.payload for m in got.messages] == [b"for garage-1"]


def test_a_restarted_broker_keeps_its_port_and_clients_come_back(cloud: CloudTrial) -> None:
    port = cloud.broker.port
    got = Received()
    garage1 = cloud.connect(cloud.garage1, received=got)
    connects = threading.Semaphore(0)

    def on_connect(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        c.subscribe(topics.all_vehicles(topics.STATE), 1)  # no persistence: subscriptions are gone
        connects.release()

    garage1.on_connect = on_connect
    cloud.broker.restart()
    assert cloud.broker.port == port and cloud.broker.running
    assert connects.acquire(timeout=ACK_TIMEOUT), "garage-1 did not reconnect after the restart"
    round_trip(cloud, garage1)
    publish(cloud.connect(cloud.vehicle), topics.vehicle_topic(VIN, topics.STATE), b"back")
    assert got.wait_for(1)
