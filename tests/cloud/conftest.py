"""The ``cloud`` fixture: a real mosquitto with mutual TLS, two vehicles and two workshops.

garage-1 is granted the first vehicle (broker ACL and an owner grant for every scope, valid
an hour); garage-2 is granted nothing. Vehicle profiles carry the owner's public key,
workshop profiles their command-signing key (and garage-1 its grant file). Every client made with
``cloud.connect`` is disconnected and its network thread stopped at teardown, and the broker
is stopped, so no paho thread or mosquitto process outlives its test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from workshop_app.core.cloud.broker import MosquittoBroker
from workshop_app.core.cloud.profile import CloudProfile, mqtt_client
from workshop_app.core.cloud.signing import (
    ALL_SCOPES,
    generate_signing_key,
    load_private_key,
    load_public_key,
    make_grant,
    save_grant,
)

VIN = "WSADEM5T2T0000421"
VIN2 = "WSADEM5T2T0000422"
GARAGE1 = "garage-1"
GARAGE2 = "garage-2"
CONNECT_TIMEOUT = 10.0


@dataclass
class Received:
    """Messages a test client got, with a condition to wait on."""

    messages: list[mqtt.MQTTMessage] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def add(self, message: mqtt.MQTTMessage) -> None:
        with self.cond:
            self.messages.append(message)
            self.cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.messages) >= count, timeout)

    def topics(self) -> list[str]:
        with self.cond:
            return [m.topic for m in self.messages]


@dataclass
class CloudTrial:
    folder: Path
    broker: MosquittoBroker
    profiles: dict[str, CloudProfile]
    profile_paths: dict[str, Path]
    owner_key: Path  # the cars' owner's Ed25519 private key (owner.pub beside it)
    signing_keys: dict[str, Path]  # workshop id → its Ed25519 command-signing private key
    grant: dict[str, Any]  # the owner's grant of every scope on VIN to garage-1's key
    grant_path: Path
    _clients: list[mqtt.Client] = field(default_factory=list)

    @property
    def vehicle(self) -> CloudProfile:
        return self.profiles[VIN]

    @property
    def vehicle2(self) -> CloudProfile:
        return self.profiles[VIN2]

    @property
    def garage1(self) -> CloudProfile:
        return self.profiles[GARAGE1]

    @property
    def garage2(self) -> CloudProfile:
        return self.profiles[GARAGE2]

    def connect(
        self,
        profile: CloudProfile,
        *,
        will: tuple[str, bytes] | None = None,
        received: Received | None = None,
    ) -> mqtt.Client:
        """A started, connected paho client (stopped at teardown); messages go to ``received``."""
        client = mqtt_client(profile, will=will)
        connected = threading.Event()
        result: list[Any] = []

        def on_connect(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
            result.append(reason)
            connected.set()

        client.on_connect = on_connect
        if received is not None:
            client.on_message = lambda c, u, m: received.add(m)
        self._clients.append(client)
        client.connect(profile.host, profile.port, keepalive=profile.keepalive)
        client.loop_start()
        assert connected.wait(CONNECT_TIMEOUT), f"{profile.client_id} did not connect"
        assert not result[0].is_failure, f"{profile.client_id} refused: {result[0]}"
        return client

    def subscribe(self, client: mqtt.Client, topic: str, qos: int = 1) -> None:
        """Subscribe and wait for the broker's SUBACK (granted; mosquitto grants even denied ones)."""
        acked = threading.Event()
        previous = client.on_subscribe
        client.on_subscribe = lambda *a: acked.set()
        client.subscribe(topic, qos)
        assert acked.wait(CONNECT_TIMEOUT), f"no SUBACK for {topic}"
        client.on_subscribe = previous

    def close(self) -> None:
        for client in self._clients:
            client.disconnect()
            client.loop_stop()
        self._clients.clear()
        self.broker.stop()


def _profile(trial_dir: Path, broker: MosquittoBroker, name: str, **extra: Any) -> CloudProfile:
    identity = broker.issue_client(name, trial_dir / "clients")
    return CloudProfile(
        host="127.0.0.1",
        port=broker.port,
        ca=broker.ca_cert,
        cert=identity.cert,
        key=identity.key,
        client_id=name,
        data_dir=trial_dir / "data" / name,
        reconnect_min=0.1,
        reconnect_max=1.0,
        **extra,
    )


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[CloudTrial]:
    folder = tmp_path / "cloud"
    broker = MosquittoBroker(folder / "broker", grants={GARAGE1: [VIN], GARAGE2: []})
    keys = folder / "keys"
    owner_key = keys / "owner.key"
    owner_public = generate_signing_key(owner_key)
    signing = {g: keys / f"{g}.signing.key" for g in (GARAGE1, GARAGE2)}
    workshop_public = {g: generate_signing_key(path) for g, path in signing.items()}
    grant = make_grant(
        load_private_key(owner_key), VIN, load_public_key(workshop_public[GARAGE1]), ALL_SCOPES, 3600.0
    )
    grant_path = save_grant(keys / f"grant-{VIN}-{GARAGE1}.json", grant)
    profiles = {vin: _profile(folder, broker, vin, owner_key=owner_public) for vin in (VIN, VIN2)}
    profiles[GARAGE1] = _profile(folder, broker, GARAGE1, signing_key=signing[GARAGE1], grants=(grant_path,))
    profiles[GARAGE2] = _profile(folder, broker, GARAGE2, signing_key=signing[GARAGE2])
    paths = {name: p.save(folder / f"{name}.json") for name, p in profiles.items()}
    trial = CloudTrial(folder, broker, profiles, paths, owner_key, signing, grant, grant_path)
    broker.start()
    try:
        yield trial
    finally:
        trial.close()


def wait_until(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())
