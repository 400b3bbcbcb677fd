"""Signed remote functions end to end: the workshop's RemoteControl and CLI, the real agent on
the simulated car, mosquitto with mutual TLS between. The car's answer is checked where a
workshop sees it: in the status frames that come back through the cloud.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import can
import cantools
import pytest
from conftest import GARAGE2, VIN, VIN2, CloudTrial, wait_until

from workshop_app.cli import main
from workshop_app.core.cloud.agent import CloudAgent
from workshop_app.core.cloud.errors import CloudError
from workshop_app.core.cloud.remote import RemoteControl
from workshop_app.core.history.audit import AuditTrail
from workshop_app.core.sources.factory import SourceSpec
from workshop_app.paths import demo_dbc_path


@pytest.fixture
def agent(cloud: CloudTrial) -> Iterator[CloudAgent]:
    car = CloudAgent(cloud.vehicle, SourceSpec(), health_interval=0, history=cloud.folder / "car.db")
    car.start()
    try:
        assert car.wait_connected(10)
        yield car
    finally:
        car.stop()


class StatusView:
    """The car's BODY_STATUS and LIGHT_STATUS as decoded from the frames the cloud delivers."""

    def __init__(self, bus: can.BusABC) -> None:
        self.bus = bus
        self.db = cantools.database.load_file(str(demo_dbc_path()))
        self.latest: dict[str, Any] = {}

    def read(self) -> None:
        while (msg := self.bus.recv(0.02)) is not None:
            if msg.arbitration_id in (672, 676):
                self.latest.update(self.db.decode_message(msg.arbitration_id, msg.data))

    def shows(self, signal: str, value: str) -> bool:
        self.read()
        return str(self.latest.get(signal)) == value


def test_lock_and_lights_change_what_the_cloud_frames_show(cloud: CloudTrial, agent: CloudAgent) -> None:
    history = cloud.folder / "workshop.db"
    remote = RemoteControl(cloud.garage1, history=history)
    with can.Bus(interface="workshop-cloud", channel=VIN, profile=cloud.garage1) as bus:
        view = StatusView(bus)
        assert wait_until(lambda: view.shows("LockState", "Unlocked") or view.shows("LockState", "Locked"))
        result = remote.command(VIN, "lock", timeout=20)
        assert result["ok"] is True and result["code"] == "done", result
        assert wait_until(lambda: view.shows("LockState", "Locked"))
        result = remote.command(VIN, "unlock", timeout=20)
        assert result["ok"] is True, result
        assert wait_until(lambda: view.shows("LockState", "Unlocked"))
        result = remote.command(VIN, "lights", {"mode": "LowBeam"}, timeout=20)
        assert result["ok"] is True, result
        assert wait_until(lambda: view.shows("LowBeam", "On"))
    with AuditTrail(history) as trail:
        rows = trail.rows(VIN)
    assert [(r.entry.ecu, r.entry.result, r.entry.to_version) for r in rows] == [
        ("BCM", "success", "remote lock"),
        ("BCM", "success", "remote unlock"),
        ("BCM", "success", "remote lights LowBeam"),
    ]
    assert all(r.entry.user.endswith(" via cloud as garage-1") for r in rows)


def test_a_grant_for_another_workshop_is_refused_by_the_car(cloud: CloudTrial, agent: CloudAgent) -> None:
    # garage-1's connection and grant, but signed with garage-2's key: the grant names another key.
    impostor = replace(cloud.garage1, signing_key=cloud.signing_keys[GARAGE2])
    history = cloud.folder / "workshop.db"
    result = RemoteControl(impostor, history=history).command(VIN, "lock", timeout=20)
    assert (result["ok"], result["code"]) == (False, "grant_workshop"), result
    assert "another workshop's key" in result["message"]
    assert agent.source.vehicle.model.state.locked is False  # type: ignore[attr-defined]
    with AuditTrail(history) as trail:
        (row,) = trail.rows(VIN)
    assert row.entry.result == "refused" and result["code"] in row.entry.error


def test_no_grant_no_key_and_no_answer_are_plain_errors(cloud: CloudTrial, agent: CloudAgent) -> None:
    with pytest.raises(CloudError, match=f"no owner grant for {VIN2}"):
        RemoteControl(cloud.garage1).command(VIN2, "lock")
    with pytest.raises(CloudError, match="no signing_key"):
        RemoteControl(replace(cloud.garage1, signing_key=None)).command(VIN, "lock")
    with pytest.raises(CloudError, match="unknown remote action 'honk'"):
        RemoteControl(cloud.garage1).command(VIN, "honk")
    agent.stop()
    with pytest.raises(CloudError, match=f"{VIN} did not answer the lock command within 1 s"):
        RemoteControl(cloud.garage1).command(VIN, "lock", timeout=1)


def test_cli_lock_prints_the_result_and_refusals_exit_1(
    cloud: CloudTrial, agent: CloudAgent, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    profile = ["--cloud-profile", str(cloud.profile_paths["garage-1"]), "--history", str(tmp_path / "h.db")]
    assert main(["cloud", "lock", VIN, *profile]) == 0
    out = capsys.readouterr().out
    assert f"{VIN}: lock: LockState is Locked" in out
    impostor = replace(cloud.garage1, signing_key=cloud.signing_keys[GARAGE2])
    path = impostor.save(cloud.folder / "impostor.json")
    assert (
        main(["cloud", "unlock", VIN, "--cloud-profile", str(path), "--history", str(tmp_path / "h.db")]) == 1
    )
    err = capsys.readouterr().err
    assert f"{VIN}: unlock refused (" in err and "Traceback" not in err
    assert main(["cloud", "lights", VIN2, "LowBeam", *profile]) == 1
    assert f"no owner grant for {VIN2}" in capsys.readouterr().err


def test_a_mistyped_vin_is_one_plain_error(cloud: CloudTrial) -> None:
    with pytest.raises(CloudError, match="'WSADEM5T2T000042' is not a VIN"):
        RemoteControl(cloud.garage1).command("WSADEM5T2T000042", "lock")
