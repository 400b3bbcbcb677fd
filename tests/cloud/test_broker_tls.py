"""The real broker with mutual TLS: who may connect at all."""

from __future__ import annotations

from conftest import VIN, CloudTrial, Received

from workshop_app.core.cloud import topics


def test_workshop_receives_vehicle_publish_through_mutual_tls(cloud: CloudTrial) -> None:
    got = Received()
    workshop = cloud.connect(cloud.garage1, received=got)
    cloud.subscribe(workshop, topics.all_vehicles(topics.STATE))
    vehicle = cloud.connect(cloud.vehicle)
    vehicle.publish(topics.vehicle_topic(VIN, topics.STATE), b'{"online": true}', qos=1).wait_for_publish(10)
    assert got.wait_for(1)
    assert got.messages[0].topic == f"wsp/v1/{VIN}/state"
    assert got.messages[0].payload == b'{"online": true}'
