"""Diagnostics over the cloud link, end to end: the workshop's CLI and python-can programs on
one side, the real agent with the simulated car on the other, mosquitto with mutual TLS between.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import can
import pytest
from conftest import VIN, VIN2, CloudTrial, wait_until
from helpers.http_folder import http_folder
from helpers.sim_packages import build_sim_package, trusting

from workshop_app.cli import main
from workshop_app.commands.common import LinkStateWatcher
from workshop_app.core.cloud.agent import CloudAgent
from workshop_app.core.cloud.canbus import CloudBus
from workshop_app.core.cloud.errors import CloudError
from workshop_app.core.diag.client import DiagError, EcuAddress, EcuClient
from workshop_app.core.diag.ecu_spec import demo_vehicle_spec
from workshop_app.core.diag.watch import DtcEvent, DtcWatcher
from workshop_app.core.history.audit import AuditTrail
from workshop_app.core.history.location import workshop_home
from workshop_app.core.sources.factory import SourceSpec, make_source
from workshop_app.core.update.campaign import UpdateCampaign
from workshop_app.core.update.repository import PackageRepository

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


def test_frames_flow_again_after_a_broker_restart_with_no_new_connection(
    cloud: CloudTrial, agent: CloudAgent
) -> None:
    with can.Bus(interface="workshop-cloud", channel=VIN, profile=cloud.garage1) as bus:
        assert bus.recv(10) is not None
        connects = bus.link.connects
        cloud.broker.restart()
        assert wait_until(lambda: bus.link.connects > connects and bus.link_state == "connected", 30)
        while bus.recv(0) is not None:  # what was queued before the restart
            pass
        assert bus.recv(15) is not None


@contextmanager
def flashable_car(
    cloud: CloudTrial, tmp_path: Path, **options: Any
) -> Iterator[tuple[CloudAgent, str, PackageRepository]]:
    """The agent on a parked simulated car (time nearly still), its package served over HTTP."""
    pkg = tmp_path / "pkg"
    repo = build_sim_package(pkg)
    store = trusting(repo, tmp_path / "car-trust")
    car = CloudAgent(
        cloud.vehicle,
        SourceSpec(sim_time_scale=1e-6),
        health_interval=0,
        history=tmp_path / "car.db",
        trust_dir=store.folder,
        **options,
    )
    with http_folder(pkg) as url:
        car.start()
        try:
            assert car.wait_connected(10)
            ecus = car.source.ecus  # type: ignore[attr-defined]
            ecus.ecu("ECM").bootloader.timing.erase_seconds = 0.05
            yield car, url, repo
        finally:
            car.stop()


def test_the_update_campaign_reads_the_car_over_the_cloud(cloud: CloudTrial, tmp_path: Path) -> None:
    with flashable_car(cloud, tmp_path) as (_car, url, repo):
        bus = CloudBus(VIN, profile=cloud.garage1)
        notifier = can.Notifier(bus, [], timeout=0.05)
        try:
            store = trusting(repo, tmp_path / "workshop-trust")
            plan = UpdateCampaign(bus, notifier, url, store=store, history=tmp_path / "w.db").prepare()
        finally:
            notifier.stop()
            bus.shutdown()
    assert plan.reading.vin == VIN
    assert plan.ok, plan.refusals
    assert [(s.ecu, s.from_version, s.to_version) for s in plan.steps] == [("ECM", "SW 0412", "SW 0500")]


def test_cli_signed_flash_over_the_cloud_prints_progress_and_audits(
    cloud: CloudTrial, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "workshop.db"
    common = ["--cloud-profile", str(cloud.profile_paths["garage-1"]), "--history", str(history)]
    with flashable_car(cloud, tmp_path, allow_remote_flash=True) as (_car, url, _repo):
        assert main(["cloud", "flash", VIN, "--package-url", url, "--ecu", "ECM", *common]) == 0
    out = capsys.readouterr().out
    assert "package verified: ECM SW 0412 → SW 0500" in out
    assert f"{VIN}: flash: flashed ECM SW 0412 → SW 0500" in out
    with AuditTrail(history) as trail:
        (row,) = trail.rows(VIN)
    # The versions the car reported, and who asked through which cloud identity.
    assert (row.entry.ecu, row.entry.result, row.entry.from_version, row.entry.to_version) == (
        "ECM",
        "success",
        "SW 0412",
        "SW 0500",
    )
    assert row.entry.user.endswith(" via cloud as garage-1")


def test_cli_flash_refused_when_the_car_has_remote_flashing_off(
    cloud: CloudTrial, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "workshop.db"
    common = ["--cloud-profile", str(cloud.profile_paths["garage-1"]), "--history", str(history)]
    with flashable_car(cloud, tmp_path) as (_car, url, _repo):
        assert main(["cloud", "flash", VIN, "--package-url", url, "--ecu", "ECM", *common]) == 1
    err = capsys.readouterr().err
    assert f"{VIN}: flash refused (remote-flash-off)" in err
    with AuditTrail(history) as trail:
        (row,) = trail.rows(VIN)
    assert (row.entry.ecu, row.entry.result) == ("ECM", "refused")


def test_record_and_clear_over_the_cloud(
    cloud: CloudTrial, agent: CloudAgent, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = ["-i", "workshop-cloud", "--channel", VIN, "--cloud-profile", str(cloud.profile_paths["garage-1"])]
    log = tmp_path / "drive.asc"
    assert main(["record", *link, "--duration", "2", "--no-history", str(log)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    ids = {m.arbitration_id for m in can.LogReader(str(log))}
    assert {672, 676} <= ids
    assert main(["dtc", "clear", *link, "--ecu", "ECM", "--yes", "--no-history"]) == 0, (
        capsys.readouterr().err
    )
    assert "ECM    cleared: fault memory cleared" in capsys.readouterr().out


def test_capture_commands_say_when_the_cloud_link_goes_and_comes_back(
    cloud: CloudTrial, agent: CloudAgent
) -> None:
    spec = SourceSpec(interface="workshop-cloud", channel=VIN, cloud_profile=cloud.profile_paths["garage-1"])
    source = make_source(spec)
    source.start()
    watcher = LinkStateWatcher(source)
    lines: list[str] = []
    stop = threading.Event()

    def poll() -> None:  # as run_capture's loop does, on its tick
        while not stop.wait(0.01):
            lines.extend(watcher.poll())

    poller = threading.Thread(target=poll, name="test-link-poll")
    poller.start()
    try:
        assert wait_until(lambda: getattr(source.bus, "latency_ms", None) is not None)
        assert lines == []  # connected from the start: nothing to say
        cloud.broker.restart()
        assert wait_until(lambda: any(" link connected" in line for line in lines), 30), lines
    finally:
        stop.set()
        poller.join(5)
        source.stop()
    # The car's own last will ("vehicle offline") may reach this side before the broker drops
    # it: either way the link is first said to be reconnecting, then connected again.
    said = [line for line in lines if "link vehicle offline" not in line]
    assert said[0].startswith(f"cloud vehicle {VIN}: link reconnecting: "), lines
    assert " link connected" in said[-1], lines
    assert "Traceback" not in "".join(lines)


def test_update_install_over_the_cloud_reads_and_verifies_then_points_to_the_signed_flash(
    cloud: CloudTrial, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "workshop.db"
    link = ["-i", "workshop-cloud", "--channel", VIN, "--cloud-profile", str(cloud.profile_paths["garage-1"])]
    with flashable_car(cloud, tmp_path) as (_car, url, repo):
        trusting(repo, workshop_home() / "update")  # the workshop trusts the maker's roots
        assert main(["update", "install", url, "--yes", *link, "--history", str(history)]) == 2
    out, err = capsys.readouterr()
    assert "ECM: SW 0412 -> SW 0500" in out  # the car was read and the package verified for it
    assert "[cloud_link] programming over the cloud link is the car's own job" in err
    assert f"workshop cloud flash {VIN} --package-url URL" in err and "Traceback" not in err
    with AuditTrail(history) as trail:
        assert [r.entry.result for r in trail.rows(VIN)] == ["refused"]


def test_update_flash_over_the_cloud_is_refused_before_anything_is_sent(
    cloud: CloudTrial, agent: CloudAgent, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "ecm.bin"
    image.write_bytes(bytes(range(256)) * 8)
    link = ["-i", "workshop-cloud", "--channel", VIN, "--cloud-profile", str(cloud.profile_paths["garage-1"])]
    args = [
        "update",
        "flash",
        "--image",
        str(image),
        "--ecu",
        "ECM",
        "--sw-version",
        "SW 0500",
        "--release",
        "2",
        "--address",
        "0x8000",
    ]
    assert main([*args, *link, "--history", str(tmp_path / "h.db")]) != 0
    out, err = capsys.readouterr()
    assert "ECM: programming over the cloud link is the car's own job" in out + err
    assert "Traceback" not in out + err


def test_an_ecu_that_never_answers_times_out_naming_the_car_and_the_ecu(
    cloud: CloudTrial, agent: CloudAgent
) -> None:
    with can.Bus(interface="workshop-cloud", channel=VIN, profile=cloud.garage1) as bus:
        notifier = can.Notifier(bus, [], timeout=0.05)
        try:
            with (
                EcuClient(bus, notifier, EcuAddress(0x7E5, 0x7ED), name="ECU 0x7E5") as client,
                pytest.raises(DiagError) as failed,
            ):
                client.tester_present()
        finally:
            notifier.stop()
    assert failed.value.kind == "timeout"
    assert str(failed.value).startswith(
        f"ECU 0x7E5: tester present: no answer in time over the cloud link to {VIN} (127.0.0.1:"
    )
    assert str(failed.value).endswith("ECU 0x7E5/0x7ED")


def test_another_workshops_certificate_sees_nothing_of_the_car(cloud: CloudTrial, agent: CloudAgent) -> None:
    with (
        can.Bus(interface="workshop-cloud", channel=VIN, profile=cloud.garage2) as foreign,
        can.Bus(interface="workshop-cloud", channel=VIN, profile=cloud.garage1) as granted,
    ):
        # Both subscribed before these frames: the broker delivers them to the granted one only.
        got = 0
        while got < 200 and granted.recv(5.0) is not None:
            got += 1
        assert got == 200
        assert foreign.recv(0) is None and foreign.tracker.received == 0
        with pytest.raises(CloudError, match=f"{VIN} does not answer through the cloud link"):
            foreign.check_vehicle(timeout=1.0)


def test_cli_cloud_connection_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere.json"
    assert (
        main(["dtc", "scan", "-i", "workshop-cloud", "--channel", VIN, "--cloud-profile", str(missing)]) == 1
    )
    err = capsys.readouterr().err
    assert err == f"workshop dtc: error: cloud vehicle {VIN}: {missing}: no such cloud profile\n"
    assert main(["record", "-i", "workshop-cloud", "--duration", "1", str(tmp_path / "x.asc")]) == 1
    assert "the cloud link needs the vehicle's VIN as its channel (--channel VIN)" in capsys.readouterr().err


def test_watching_for_fault_codes_over_the_cloud(cloud: CloudTrial, agent: CloudAgent) -> None:
    ecm = demo_vehicle_spec().ecu("ECM")
    with can.Bus(interface="workshop-cloud", channel=VIN, profile=cloud.garage1) as bus:
        notifier = can.Notifier(bus, [], timeout=0.05)
        try:
            watcher = DtcWatcher(bus, notifier, [ecm])
            assert watcher.poll() == []  # the first poll learns what is stored
            agent.source.vehicle.inject_fault("coolant_sensor_open")  # type: ignore[attr-defined]
            events: list[DtcEvent] = []
            assert wait_until(lambda: bool(events.extend(watcher.poll()) or events), 30), watcher.problems
        finally:
            notifier.stop()
    assert [(e.ecu, e.dtc.sae, e.kind) for e in events] == [("ECM", "P0118", "appeared")]
    assert watcher.problems == []
