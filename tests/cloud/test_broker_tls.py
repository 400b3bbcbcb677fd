"""The real broker with mutual TLS: who may connect at all."""

from __future__ import annotations

import dataclasses
import ssl
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from conftest import GARAGE1, VIN, CloudTrial, Received
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from workshop_app.core.cloud import topics
from workshop_app.core.cloud.pki import CertificateAuthority
from workshop_app.core.cloud.profile import connection_problem, mqtt_client


def test_workshop_receives_vehicle_publish_through_mutual_tls(cloud: CloudTrial) -> None:
    got = Received()
    workshop = cloud.connect(cloud.garage1, received=got)
    cloud.subscribe(workshop, topics.all_vehicles(topics.STATE))
    vehicle = cloud.connect(cloud.vehicle)
    vehicle.publish(topics.vehicle_topic(VIN, topics.STATE), b'{"online": true}', qos=1).wait_for_publish(10)
    assert got.wait_for(1)
    assert got.messages[0].topic == f"wsp/v1/{VIN}/state"
    assert got.messages[0].payload == b'{"online": true}'


def attempt(client: mqtt.Client, port: int) -> str:
    """Try to connect; the outcome in words ("connack Success" only if the broker let us in)."""
    outcome: list[str] = []
    done = threading.Event()

    def on_connect(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        outcome.append(f"connack {reason}")
        done.set()

    def on_disconnect(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        outcome.append(f"disconnected {reason}")
        done.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    try:
        client.connect("127.0.0.1", port, keepalive=30)
    except (ssl.SSLError, OSError) as exc:  # TLS 1.2 fails inside the handshake
        return f"refused: {exc}"
    client.loop_start()
    try:
        done.wait(10)  # TLS 1.3 lets the handshake finish, then the broker hangs up
    finally:
        client.disconnect()
        client.loop_stop()
    return outcome[0] if outcome else "no answer"


def refused(outcome: str) -> bool:
    """Turned away at the handshake or hung up on before any CONNACK."""
    return outcome.startswith(("refused:", "disconnected"))


def test_a_client_certificate_from_another_ca_is_refused(cloud: CloudTrial, tmp_path: Path) -> None:
    foreign = CertificateAuthority.create(tmp_path / "foreign").issue_client(tmp_path / "foreign", GARAGE1)
    profile = dataclasses.replace(cloud.garage1, cert=foreign.cert, key=foreign.key)
    assert refused(attempt(mqtt_client(profile), cloud.broker.port))
    # The broker was up and accepting the whole time: the real garage-1 gets in.
    assert attempt(mqtt_client(cloud.garage1), cloud.broker.port) == "connack Success"


def test_a_broker_certificate_from_another_ca_is_refused_by_the_client(
    cloud: CloudTrial, tmp_path: Path
) -> None:
    other_ca = CertificateAuthority.create(tmp_path / "other").cert_path
    profile = dataclasses.replace(cloud.garage1, ca=other_ca)
    outcome = attempt(mqtt_client(profile), cloud.broker.port)
    assert outcome.startswith("refused:") and "certificate verify failed" in outcome
    assert attempt(mqtt_client(cloud.garage1), cloud.broker.port) == "connack Success"


def test_a_client_without_a_certificate_is_refused(cloud: CloudTrial) -> None:
    bare = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=GARAGE1, protocol=MQTTProtocolVersion.MQTTv5)
    bare.tls_set(ca_certs=str(cloud.broker.ca_cert))  # trusts the broker, shows nothing of its own
    assert refused(attempt(bare, cloud.broker.port))
    assert attempt(mqtt_client(cloud.garage1), cloud.broker.port) == "connack Success"


def test_a_client_without_tls_is_refused(cloud: CloudTrial) -> None:
    plain = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=GARAGE1, protocol=MQTTProtocolVersion.MQTTv5)
    assert refused(attempt(plain, cloud.broker.port))


def test_connection_problems_are_told_in_plain_words(cloud: CloudTrial, tmp_path: Path) -> None:
    assert connection_problem(cloud.garage1) is None
    other = CertificateAuthority.create(tmp_path / "other")
    untrusting = dataclasses.replace(cloud.garage1, ca=other.cert_path)
    assert "its certificate is not trusted by" in (connection_problem(untrusting) or "")
    foreign = other.issue_client(tmp_path / "other", GARAGE1)
    stranger = dataclasses.replace(cloud.garage1, cert=foreign.cert, key=foreign.key)
    problem = connection_problem(stranger) or ""
    assert f"refused certificate {foreign.cert}" in problem or "does not accept certificate" in problem
    cloud.broker.stop()
    assert "nothing listens there" in (connection_problem(cloud.garage1) or "")
