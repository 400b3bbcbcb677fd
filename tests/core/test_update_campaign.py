"""The update workflow on the simulated demo car: signed package → car facts → plan → flash.

Real parts only: TUF metadata signed with Ed25519 keys made here, the demo vehicle's ECUs and
bootloaders over a python-can virtual bus with can-isotp, the history in SQLite. Every attack is
refused by code, and a second connection on the bus sees no RequestDownload (0x34) or
TransferData (0x36) request for it.
"""

from __future__ import annotations

import json
import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers.sim_packages import SPEC, VIN, SimCar, build_sim_package, sim_car, trusting

from workshop_app.core.diag.scan import ScanOptions, VehicleScanner
from workshop_app.core.history.audit import AuditTrail
from workshop_app.core.update import refusals as R
from workshop_app.core.update.campaign import (
    RateMeter,
    UpdateCampaign,
    flashing_order,
    read_car,
    recorded_counters,
)
from workshop_app.core.update.image import FlashImage
from workshop_app.core.update.keys import generate_keys
from workshop_app.core.update.repository import Dependency, PackageRepository
from workshop_app.core.update.verify import TrustStore


def _campaign(car: SimCar, pkg: Path, store: TrustStore, tmp_path: Path) -> UpdateCampaign:
    return UpdateCampaign(car.bus, car.notifier, pkg, spec=SPEC, store=store, history=tmp_path / "history.db")


def test_reading_the_car(tmp_path: Path) -> None:
    with sim_car(tmp_path / "flash") as car:
        reading = read_car(car.bus, car.notifier, SPEC)
    assert reading.vin == VIN
    ecm = {e.name: e for e in reading.ecus}["ECM"]
    assert (ecm.hardware, ecm.bootloader, ecm.software_version) == ("HW H13", "BL-02.01", "SW 0412")
    assert ecm.release_counter == 1 and ecm.app_valid is True and not ecm.error
    assert set(reading.facts().ecus) == {"ECM", "BCM"}


def test_good_package_flashes_the_ecm_and_the_next_scan_reads_the_new_version(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    repo = build_sim_package(pkg)
    store = trusting(repo, tmp_path / "trust")
    seen: list[tuple[str, int, int]] = []
    with sim_car(tmp_path / "flash") as car:
        campaign = _campaign(car, pkg, store, tmp_path)
        plan = campaign.prepare()
        assert plan.ok, plan.refusals
        (step,) = plan.steps
        assert (step.ecu, step.from_version, step.to_version) == ("ECM", "SW 0412", "SW 0500")
        assert (step.from_counter, step.to_counter, step.size) == (1, 2, 8 * 1024)
        assert car.watch.programming_requests() == []  # preparing sends nothing that programs
        outcome = campaign.run(lambda *a: seen.append(a), threading.Event())
        assert outcome.ok, outcome.error
        assert outcome.bytes_sent == outcome.total_bytes == 8 * 1024
        assert 0x34 in car.watch.services() and 0x36 in car.watch.services()
        scan = VehicleScanner(car.bus, car.notifier, SPEC, options=ScanOptions(obd=False)).scan()
    ident = scan.ecu("ECM").identification  # type: ignore[union-attr]
    assert ident["Software version"] == "SW 0500" and ident["Release counter"] == "2"
    # Progress over the whole update: bytes only grow and end at the total.
    downloads = [d for phase, d, t in seen if phase == "ECM: download"]
    assert downloads == sorted(downloads) and seen[-1] == ("done", 8 * 1024, 8 * 1024)
    (row,) = outcome.audit
    assert (row.entry.ecu, row.entry.result, row.entry.vin) == ("ECM", "success", VIN)
    assert (row.entry.from_version, row.entry.to_version) == ("SW 0412", "SW 0500")
    # The journal now says this workshop flashed release 2: a package with 1 is a rollback here.
    assert recorded_counters(tmp_path / "history.db")(VIN, "ECM") == 2


def test_images_flash_in_dependency_order(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    # The ECM needs the BCM at SW 0400, which the same package brings: the BCM goes first.
    repo = build_sim_package(pkg, with_bcm=True, ecm_depends=(Dependency("BCM", "SW 0400"),))
    with sim_car(tmp_path / "flash") as car:
        campaign = _campaign(car, pkg, trusting(repo, tmp_path / "trust"), tmp_path)
        plan = campaign.prepare()
        assert [s.ecu for s in plan.steps] == ["BCM", "ECM"], plan.refusals
        outcome = campaign.run()
    assert outcome.ok, outcome.error
    assert [f.ecu for f in outcome.flashes] == ["BCM", "ECM"]
    assert [r.entry.result for r in outcome.audit] == ["success", "success"]


def test_flashing_order_refuses_a_circle() -> None:
    a = FlashImage("A", "a", "0" * 64, (), "1", 1)
    b = FlashImage("B", "b", "1" * 64, (), "1", 1)
    assert flashing_order([a, b], {"A": ["B"]}) == [b, a]
    with pytest.raises(Exception, match="circle"):
        flashing_order([a, b], {"A": ["B"], "B": ["A"]})


def test_rate_meter() -> None:
    meter = RateMeter()
    meter.update(0, 1000, now=0.0)
    meter.update(0, 1000, now=10.0)  # erasing: no bytes yet, the clock waits
    meter.update(500, 1000, now=11.0)
    assert meter.rate == 500 and meter.left_s == 1.0
    assert "50.0 %" in meter.text(500, 1000) and "1 s left" in meter.text(500, 1000)


# --- attacks: refused, and not one programming request on the bus ---------------------------------


def _target(pkg: Path) -> Path:
    (found,) = (pkg / "image/targets").glob("*.ECM-SW0500.bin")
    return found


def _tampered(pkg: Path, tmp: Path) -> PackageRepository:
    repo = build_sim_package(pkg)
    data = bytearray(_target(pkg).read_bytes())
    data[100] ^= 0x01
    _target(pkg).write_bytes(bytes(data))
    return repo


def _endless(pkg: Path, tmp: Path) -> PackageRepository:
    repo = build_sim_package(pkg)
    _target(pkg).write_bytes(_target(pkg).read_bytes() + b"\x00" * 100_000)
    return repo


def _unknown_key(pkg: Path, tmp: Path) -> PackageRepository:
    repo = build_sim_package(pkg)
    trusting(repo, tmp / "trust")  # the workshop trusted the original roots
    (pkg / "keys/image-targets-1.pem").unlink()
    generate_keys(pkg / "keys", "image", "targets", 1)
    repo.publish(expires_days=30)
    return repo


def _too_few_signatures(pkg: Path, tmp: Path) -> PackageRepository:
    repo = build_sim_package(pkg, threshold=2)
    trusting(repo, tmp / "trust")
    (pkg / "keys/image-timestamp-2.pem").unlink()
    repo.publish()
    return repo


def _expired(pkg: Path, tmp: Path) -> PackageRepository:
    repo = build_sim_package(pkg)
    repo.publish(timestamp_expires=datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1))
    return repo


def _mix_and_match(pkg: Path, tmp: Path) -> PackageRepository:
    repo = build_sim_package(pkg)
    meta = pkg / "image/metadata"
    version = json.loads((meta / "targets.json").read_text())["signed"]["version"]
    shutil.copy(meta / f"{version - 1}.targets.json", meta / f"{version}.targets.json")
    return repo


def _director_disagrees(pkg: Path, tmp: Path) -> PackageRepository:
    repo = build_sim_package(pkg)
    other = tmp / "other.bin"
    other.write_bytes(b"\x11" * 512)
    repo.add_image(
        other,
        ecu="ECM",
        version="SW 0500",
        release_counter=2,
        hardware=["HW H13"],
        address=0x10000,
        name="ECM-SW0500.bin",
    )
    repo.publish()
    return repo


ATTACKS = {
    "tampered image": (_tampered, R.HASH_MISMATCH),
    "endless data": (_endless, R.ENDLESS_DATA),
    "unknown key": (_unknown_key, R.UNKNOWN_KEY),
    "too few signatures": (_too_few_signatures, R.THRESHOLD_NOT_MET),
    "expired timestamp": (_expired, R.EXPIRED),
    "mix and match": (_mix_and_match, R.MIX_AND_MATCH),
    "director and image disagree": (_director_disagrees, R.DIRECTOR_MISMATCH),
    "wrong hardware": (
        lambda pkg, tmp: build_sim_package(pkg, ecm_hardware=("HW H99",)),
        R.HARDWARE_NOT_ALLOWED,
    ),
    "release counter rollback": (lambda pkg, tmp: build_sim_package(pkg, ecm_counter=0), R.RELEASE_ROLLBACK),
    "unmet dependency": (
        lambda pkg, tmp: build_sim_package(pkg, ecm_depends=(Dependency("BCM", "SW 0400"),)),
        R.DEPENDENCY_NOT_MET,
    ),
}


def _assert_refused_without_programming(car: SimCar, campaign: UpdateCampaign, code: str) -> None:
    plan = campaign.prepare()
    assert code in [r.code for r in plan.refusals], plan.refusals
    assert not plan.ok and plan.steps == ()
    outcome = campaign.run()  # asked to flash anyway: refused, recorded, nothing sent
    assert outcome.result == "refused" and code in outcome.error
    (row,) = outcome.audit
    assert row.entry.result == "refused" and row.entry.vin == VIN
    assert car.watch.services(), "the bus watch saw the facts being read"
    assert car.watch.programming_requests() == []
    assert car.net.ecu("ECM").flash.software_version == "SW 0412"  # type: ignore[union-attr]


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_attack_is_refused_before_any_programming_request(tmp_path: Path, attack: str) -> None:
    build, code = ATTACKS[attack]
    pkg = tmp_path / "pkg"
    repo = build(pkg, tmp_path)
    store = (
        TrustStore(tmp_path / "trust")
        if (tmp_path / "trust").is_dir()
        else trusting(repo, tmp_path / "trust")
    )
    with sim_car(tmp_path / "flash") as car:
        _assert_refused_without_programming(car, _campaign(car, pkg, store, tmp_path), code)


def test_metadata_rollback_is_refused_before_any_programming_request(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    repo = build_sim_package(pkg)
    shutil.copytree(pkg, tmp_path / "old-release")
    repo.publish()
    store = trusting(repo, tmp_path / "trust")
    with sim_car(tmp_path / "flash") as car:
        assert _campaign(car, pkg, store, tmp_path).prepare().ok  # the newer release is trusted now
        old = _campaign(car, tmp_path / "old-release", store, tmp_path)
        _assert_refused_without_programming(car, old, R.ROLLBACK)


def test_counter_lower_than_this_workshop_recorded_is_refused(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    repo = build_sim_package(pkg, ecm_counter=2)
    store = trusting(repo, tmp_path / "trust")
    with sim_car(tmp_path / "flash") as car:
        assert _campaign(car, pkg, store, tmp_path).run().ok
    # The car's flash is swapped back to the factory state (another ECU fitted, say): the
    # ECU reports counter 1 again, yet this workshop flashed 2 to this VIN's ECM.
    shutil.rmtree(tmp_path / "flash")
    older = tmp_path / "older"
    repo_old = build_sim_package(older, ecm_counter=1, ecm_version="SW 0450")
    store_old = trusting(repo_old, tmp_path / "trust-old")
    with sim_car(tmp_path / "flash") as car:
        campaign = _campaign(car, older, store_old, tmp_path)
        _assert_refused_without_programming(car, campaign, R.RELEASE_ROLLBACK)
        assert "recorded" in campaign.plan.refusals[0].message  # type: ignore[union-attr]
    with AuditTrail(tmp_path / "history.db") as trail:
        assert trail.verify().ok and [r.entry.result for r in trail.rows()] == ["success", "refused"]


def test_cancel_leaves_a_safe_state_and_installing_again_resumes(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    repo = build_sim_package(pkg, size=64 * 1024)
    store = trusting(repo, tmp_path / "trust")
    cancel = threading.Event()

    def stop_midway(phase: str, done: int, total: int) -> None:
        if phase == "ECM: download" and done >= 20_000:
            cancel.set()

    with sim_car(tmp_path / "flash") as car:
        first = _campaign(car, pkg, store, tmp_path)
        assert first.prepare().ok
        outcome = first.run(stop_midway, cancel)
        assert outcome.result == "cancelled", outcome.error
        assert 20_000 <= outcome.bytes_sent < 64 * 1024
        ecm = car.net.ecu("ECM").flash
        assert ecm is not None and not ecm.app_valid  # waits in its bootloader, not half-started
        # Installing the same package again reads the ECU in its bootloader and finishes the job.
        again = _campaign(car, pkg, store, tmp_path)
        plan = again.prepare()
        reading = {e.name: e for e in plan.reading.ecus}["ECM"]
        assert reading.app_valid is False and not reading.error
        assert plan.ok, plan.refusals
        done = again.run()
        assert done.ok, done.error
        (flash,) = done.flashes
        assert flash.resumed and any(n.startswith("resumed at segment 0 offset 2") for n in flash.notes)
        assert ecm.app_valid and ecm.software_version == "SW 0500"
    assert [r.entry.result for r in outcome.audit + done.audit] == ["cancelled", "success"]
