"""The agent's periodic health summary, read by the workshop's own fleet parser."""

from __future__ import annotations

import json
import time

from helpers.agent_rig import observer

from workshop_app.core.cloud.agent import CloudAgent
from workshop_app.core.cloud.fleet import parse_health
from workshop_app.core.sources.factory import SourceSpec
from workshop_app.core.sources.simulator import SimulatorSource

VIN = "WSADEM5T2T0000421"


def test_health_summaries_come_every_interval_with_the_cars_facts(cloud) -> None:  # type: ignore[no-untyped-def]
    agent = CloudAgent(cloud.vehicle, SourceSpec(), health_interval=1.0)
    assert isinstance(agent.source, SimulatorSource)

    def with_p0118() -> bool:
        return any(b'"P0118"' in h for h in obs.health)

    with observer(cloud.garage1, VIN) as obs:
        agent.start()
        try:
            assert obs.wait(lambda: len(obs.health) >= 2, timeout=60), "two summaries did not come"
            assert agent.source.vehicle is not None and agent.source.ecus is not None
            agent.source.ecus.set_confirm_seconds(0.3)
            agent.source.vehicle.inject_fault("coolant_sensor_open")
            assert agent.source.ecus.wait_confirmed(["coolant_sensor_open"], 10)
            assert obs.wait(with_p0118, timeout=60), "the fault code did not reach the summary"
        finally:
            agent.stop()
    first, second = (json.loads(h) for h in obs.health[:2])
    assert second["time"] > first["time"] and first["interval"] == 1.0
    assert first["dtcs"] == [] and first["dtc_count"] == 0
    faulty = next(h for h in obs.health if b'"P0118"' in h)
    summary = parse_health(VIN, faulty, time.time())
    assert summary.vin == VIN and summary.interval == 1.0
    assert summary.dtc_count == 1 and summary.dtcs == ("ECM:P0118",) and summary.mil
    assert summary.battery_v is not None and 8.0 < summary.battery_v < 16.0
    assert summary.odometer_km is not None and summary.odometer_km > 0
    software = dict(summary.software)
    assert software["ECM"] == "SW 0412" and {"TCM", "ABS", "BCM", "GW"} <= set(software)
    doc = json.loads(faulty)
    assert doc["dtcs"][0]["ecu"] == "ECM" and doc["frames"]["sent"] > 0 and doc["frames"]["dropped"] == 0
    assert doc["vehicle_time"] is not None and abs(doc["vehicle_time"] - doc["time"]) < 60
