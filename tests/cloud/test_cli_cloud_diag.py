"""Diagnostics over the cloud link, end to end: the workshop's CLI and python-can programs on
one side, the real agent with the simulated car on the other, mosquitto with mutual TLS between.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import can
import pytest
from conftest import VIN, VIN2, CloudTrial, wait_until

from workshop_app.cli import main
from workshop_app.core.cloud.agent import CloudAgent
from workshop_app.core.sources.factory import SourceSpec

FAULTS = ("coolant_sensor_open", "wheel_speed_fl_dropout")


@pytest.fixture
def agent(cloud: CloudTrial) -> Iterator[CloudAgent]:
    car = CloudAgent(cloud.vehicle, SourceSpec(), health_interval=0, history=cloud.folder / "car.db")
    car.start()
    try:
        assert car.wait_connected(10)
        yield car
    finally:
        car.stop()


def test_python_can_receives_the_simulated_cars_frames(cloud: CloudTrial, agent: CloudAgent) -> None:
    with can.Bus(interface="workshop-cloud", channel=VIN, profile=cloud.profile_paths["garage-1"]) as bus:
        seen: set[int] = set()

        def body_status_seen() -> bool:
            msg = bus.recv(0.1)
            if msg is not None:
                seen.add(msg.arbitration_id)
            return {672, 676} <= seen

        assert wait_until(body_status_seen, 15), sorted(seen)
        assert wait_until(lambda: bus.latency_ms is not None)
        assert bus.link_state == "connected"


def test_dtc_scan_over_the_cloud_finds_the_cars_ecus_and_codes(
    cloud: CloudTrial, agent: CloudAgent, capsys: pytest.CaptureFixture[str]
) -> None:
    vehicle = agent.source.vehicle  # type: ignore[attr-defined]
    ecus = agent.source.ecus  # type: ignore[attr-defined]
    for fault in FAULTS:
        vehicle.inject_fault(fault)
    ecus.wait_confirmed(list(FAULTS), timeout=20.0)
    args = ["dtc", "scan", "-i", "workshop-cloud", "--channel", VIN]
    args += ["--cloud-profile", str(cloud.profile_paths["garage-1"]), "--json", "--no-history"]
    assert main(args) == 0, capsys.readouterr().err
    scan = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in scan["ecus"]] == ["ECM", "TCM", "ABS", "BCM", "GW"]
    codes = {e["name"]: [d["code"] for d in e["dtcs"]] for e in scan["ecus"]}
    assert codes == {"ECM": ["P0118"], "TCM": [], "ABS": ["C0035"], "BCM": [], "GW": []}
    assert scan["connection"] == f"cloud vehicle {VIN}"
    assert scan["vin"] == VIN


def test_a_scan_of_a_car_not_granted_says_so_plainly(
    cloud: CloudTrial, agent: CloudAgent, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["dtc", "scan", "-i", "workshop-cloud", "--channel", VIN2]
    args += ["--cloud-profile", str(cloud.profile_paths["garage-1"]), "--no-history"]
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert f"{VIN2} does not answer through the cloud link" in err
    assert "not granted to workshop garage-1" in err
