"""A real mosquitto (mutual TLS, ACL) granting one workshop several vehicles, for fleet tests.

Clients made with :meth:`FleetBroker.connect` are disconnected and their paho threads joined
by :meth:`FleetBroker.close`, which also stops the broker.
"""

from __future__ import annotations

import json
from pathlib import Path

import paho.mqtt.client as mqtt

from workshop_app.core.cloud import topics
from workshop_app.core.cloud.broker import MosquittoBroker
from workshop_app.core.cloud.profile import CloudProfile, mqtt_client

WAIT = 10.0  # a bound on the broker's acknowledgement, not a measurement


class FleetBroker:
    def __init__(self, folder: Path, vins: list[str], workshop: str = "garage-1") -> None:
        self.workshop = workshop
        self.broker = MosquittoBroker(folder / "broker", grants={workshop: list(vins)})
        self.profiles = {name: self._profile(folder, name) for name in (*vins, workshop)}
        self.clients: list[mqtt.Client] = []

    def _profile(self, folder: Path, name: str) -> CloudProfile:
        identity = self.broker.issue_client(name, folder / "clients")
        return CloudProfile(
            "127.0.0.1",
            self.broker.port,
            self.broker.ca_cert,
            identity.cert,
            identity.key,
            name,
            reconnect_min=0.1,
            reconnect_max=1.0,
        )

    @property
    def garage(self) -> CloudProfile:
        return self.profiles[self.workshop]

    def start(self) -> FleetBroker:
        self.broker.start()
        return self

    def connect(self, name: str) -> mqtt.Client:
        client = mqtt_client(self.profiles[name])
        self.clients.append(client)
        client.connect("127.0.0.1", self.broker.port)
        client.loop_start()
        return client

    def close(self) -> None:
        for client in self.clients:
            client.disconnect()
            client.loop_stop()
        self.clients.clear()
        self.broker.stop()


def health(vin: str, when: float, **fields: object) -> bytes:
    """A health summary in the documented format (docs/cloud.md, "Fleet overview")."""
    doc: dict[str, object] = {"v": 1, "vin": vin, "time": when, "interval": 60.0, "dtcs": []}
    doc.update(fields)
    doc["dtc_count"] = len(doc["dtcs"])  # type: ignore[arg-type]
    return json.dumps(doc).encode()


def dtc(ecu: str, code: str, status: int) -> dict[str, object]:
    return {"ecu": ecu, "code": code, "status": status, "description": ""}


def publish(client: mqtt.Client, vin: str, leaf: str, payload: bytes, retain: bool = False) -> None:
    client.publish(topics.vehicle_topic(vin, leaf), payload, qos=1, retain=retain).wait_for_publish(WAIT)
