"""The flash job, its journal and its audit rows, over can-isotp on a python-can virtual bus.

``Responder`` (tests/helpers/flash_ecu.py) is a small programming ECU written for these tests
that can also misbehave in ways the simulated vehicle cannot.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import can
import pytest
from helpers.flash_ecu import Faults, Responder

from workshop_app.core.diag.client import EcuAddress
from workshop_app.core.diag.ecu_spec import demo_vehicle_spec
from workshop_app.core.diag.scan import ScanOptions, VehicleScanner
from workshop_app.core.history.audit import AuditTrail
from workshop_app.core.sim.demo_vehicle import DemoVehicle
from workshop_app.core.sim.ecus import EcuNetwork
from workshop_app.core.update.flash import FlashJob, FlashOptions, next_counter
from workshop_app.core.update.image import FlashImage, Segment
from workshop_app.core.update.journal import FlashJournal

ECM = EcuAddress(0x7E0, 0x7E8)
FUNCTIONAL = 0x7DF  # every ECU (ISO 15765-4 functional request id)
BLOCK = 4093  # data bytes per TransferData: a 4095-byte ISO-TP message minus SID and counter


class TesterSide:
    """The tester side: its own bus handle and notifier, plus a record of every request frame."""

    __test__ = False

    def __init__(self, channel: str) -> None:
        self.bus = can.Bus(interface="virtual", channel=channel, receive_own_messages=False)
        self.frames: list[can.Message] = []
        self.notifier = can.Notifier(self.bus, [], timeout=0.05)
        self._own = can.Bus(interface="virtual", channel=channel, receive_own_messages=False)
        self._spy = can.Notifier(self._own, [self._seen], timeout=0.05)

    def _seen(self, msg: can.Message) -> None:
        if msg.arbitration_id in (ECM.request_id, FUNCTIONAL):
            self.frames.append(msg)

    def requests(self) -> list[tuple[str, bytes]]:
        """("to ECM" or "to all", the request's first bytes) of single and first frames, in order."""
        out = []
        for m in self.frames:
            kind = m.data[0] >> 4
            to = "to all" if m.arbitration_id == FUNCTIONAL else "to ECM"
            if kind == 0:
                out.append((to, bytes(m.data[1 : 1 + (m.data[0] & 0x0F)])))
            elif kind == 1:
                out.append((to, bytes(m.data[2:])))
        return out

    def request_sids(self) -> list[int]:
        """Service ids of the requests to the ECM on the bus (single and first frames)."""
        return [data[0] for to, data in self.requests() if to == "to ECM"]

    def close(self) -> None:
        self._spy.stop()
        self.notifier.stop()
        self._own.shutdown()
        self.bus.shutdown()


def image_of(size: int, *, segments: int = 1, version: str = "APP-0200", release: int = 7) -> FlashImage:
    data = hashlib.sha256(b"seed").digest() * (size // 32 + 1)
    part = size // segments
    segs = tuple(Segment(0x8000 + i * 0x20000, data[i * part : (i + 1) * part]) for i in range(segments))
    return FlashImage(
        ecu="ECM",
        target_name="ecm-app.hex",
        target_hash=hashlib.sha256(b"".join(s.data for s in segs)).hexdigest(),
        segments=segs,
        software_version=version,
        release_counter=release,
    )


@pytest.fixture
def rig(request, tmp_path) -> Iterator[tuple[TesterSide, Responder, FlashJournal, AuditTrail]]:
    channel = f"flash-{request.node.name}"
    faults = getattr(request, "param", None)
    responder = Responder(channel, faults).__enter__()
    tester = TesterSide(channel)
    journal = FlashJournal(tmp_path / "history.db")
    audit = AuditTrail(tmp_path / "history.db")
    try:
        yield tester, responder, journal, audit
    finally:
        journal.close()
        audit.close()
        tester.close()
        responder.__exit__()


def job(tester: TesterSide, image: FlashImage, journal, audit, **kwargs) -> FlashJob:
    options = FlashOptions(vin="WDEMO000000000001", **kwargs.pop("options", {}))
    return FlashJob(
        tester.bus, tester.notifier, ECM, image, journal=journal, audit=audit, options=options, **kwargs
    )


def test_block_counter_wraps_from_ff_to_00():
    assert [next_counter(c) for c in (1, 0xFE, 0xFF, 0x00)] == [2, 0xFF, 0x00, 0x01]


@pytest.mark.parametrize("rig", [Faults(max_block_length=0x0102)], indirect=True)
def test_64k_image_flashes_with_counter_wrap_and_is_audited(rig):
    tester, ecu, journal, audit = rig
    image = image_of(64 * 1024)
    phases: list[tuple[str, int, int]] = []
    result = job(tester, image, journal, audit).run(lambda *a: phases.append(a), threading.Event())
    assert result.ok, result.error
    assert ecu.crc() == image.crc32() and len(ecu.memory) == 64 * 1024
    assert ecu.blocks == 256  # 256-byte blocks: counters 1..0xFF, then 0x00
    counters = [r[1] for r in ecu.requests if r[0] == 0x36]
    assert counters[254:257] == [0xFF, 0x00]
    assert (ecu.version, ecu.release, ecu.app_valid) == ("APP-0200", 7, 1)
    assert result.from_version == "OLD-0001" and result.to_version == "APP-0200"
    assert ("download", 64 * 1024, 64 * 1024) in phases
    deadline = time.monotonic() + 5  # until the spy's notifier has handed over the last request
    while ("to all", b"\x10\x81") not in tester.requests() and time.monotonic() < deadline:
        time.sleep(0.01)
    sids = [(to, data[0]) for to, data in tester.requests()]
    order = iter(sids)  # the ISO 14229 sequence, in this order (other requests between)
    ecm = [("to ECM", s) for s in (0x22, 0x10)]
    ecm += [("to all", s) for s in (0x10, 0x85, 0x28)]  # the whole car quiet, functionally
    ecm += [("to ECM", s) for s in (0x10, 0x27, 0x31, 0x34, 0x36, 0x37, 0x31, 0x2E, 0x11)]
    ecm += [("to all", s) for s in (0x28, 0x85, 0x10)]  # and back
    assert all(s in order for s in ecm), sids
    everyone = [data for to, data in tester.requests() if to == "to all" and data[0] != 0x3E]
    assert everyone == [b"\x10\x83", b"\x85\x82", b"\x28\x83\x01", b"\x28\x80\x01", b"\x85\x81", b"\x10\x81"]
    assert not journal.open_entries()
    row = audit.rows()[-1]
    assert (row.entry.result, row.entry.vin, row.entry.target_hash) == (
        "success",
        "WDEMO000000000001",
        image.target_hash,
    )


@pytest.mark.parametrize("rig", [Faults(max_block_length=0x4002)], indirect=True)
@pytest.mark.parametrize(("max_message", "blocks"), [(None, 17), (0x4002, 4), (0x8000, 4)])
def test_blocks_as_long_as_the_ecu_offers_when_allowed(rig, max_message, blocks):
    # The ECU takes 16 KiB TransferData messages: by default the job stays at 4095-byte
    # messages (every ISO-TP takes them); allowed longer ones, it uses what the ECU offers.
    tester, ecu, journal, audit = rig
    image = image_of(64 * 1024)
    options = {} if max_message is None else {"max_message": max_message}
    result = job(tester, image, journal, audit, options=options).run(None, threading.Event())
    assert result.ok, result.error
    assert ecu.blocks == blocks and ecu.crc() == image.crc32()


@pytest.mark.parametrize("rig", [Faults(battery_mv=11400)], indirect=True)
def test_low_battery_refused_before_any_download_request(rig):
    tester, _ecu, journal, audit = rig
    result = job(tester, image_of(4096), journal, audit).run(None, threading.Event())
    assert result.result == "refused"
    assert "11.40 V" in result.error and "0xF1A1" in result.error
    time.sleep(0.1)  # let the spy see the last frames
    sids = tester.request_sids()
    assert 0x22 in sids
    assert not {0x10, 0x27, 0x34, 0x36} & set(sids)
    assert audit.rows()[-1].entry.result == "refused"


@pytest.mark.parametrize("rig", [Faults(crc_fails=True)], indirect=True)
def test_failed_memory_check_is_a_failure_and_nothing_is_activated(rig):
    tester, ecu, journal, audit = rig
    result = job(tester, image_of(8192), journal, audit).run(None, threading.Event())
    assert result.result == "failed" and "memory check" in result.error
    assert 0x2E not in [r[0] for r in ecu.requests] and 0x11 not in [r[0] for r in ecu.requests]
    assert ecu.version == "OLD-0001" and ecu.app_valid == 0
    assert audit.rows()[-1].entry.result == "failed"


@pytest.mark.parametrize("rig", [Faults(wrong_echo_at=3)], indirect=True)
def test_wrong_block_counter_from_the_ecu_stops_the_flash(rig):
    tester, ecu, journal, audit = rig
    result = job(tester, image_of(5 * BLOCK), journal, audit).run(None, threading.Event())
    assert result.result == "failed" and "block 3" in result.error
    assert ecu.blocks == 3 and 0x37 not in [r[0] for r in ecu.requests]
    entry = journal.get(result.journal_id)
    assert entry.open and entry.offset == 2 * BLOCK  # blocks 1 and 2 were acknowledged


@pytest.mark.parametrize("rig", [Faults(drop_answer_at=2)], indirect=True)
def test_lost_answer_resends_the_same_block_with_the_same_counter(rig):
    tester, ecu, journal, audit = rig
    image = image_of(4 * BLOCK)
    result = job(tester, image, journal, audit).run(None, threading.Event())
    assert result.ok, result.error
    sent = [(r[1], len(r)) for r in ecu.requests if r[0] == 0x36]
    assert [c for c, _ in sent] == [1, 2, 2, 3, 4] and sent[1] == sent[2]
    assert ecu.crc() == image.crc32()


@pytest.mark.parametrize("rig", [Faults(erase_pending_s=20.5)], indirect=True)
def test_erase_held_behind_nrc_78_for_20_s(rig):
    tester, _ecu, journal, audit = rig
    result = job(tester, image_of(4096), journal, audit).run(None, threading.Event())
    assert result.ok, result.error
    assert result.seconds > 20.5  # udsoncan's own overall timeout (5 s) would have given up


@pytest.mark.parametrize("rig", [Faults(erase_pending_s=3.0)], indirect=True)
def test_erase_longer_than_the_erase_timeout_fails_and_is_not_resumable(rig):
    tester, ecu, journal, audit = rig
    result = job(tester, image_of(4096), journal, audit, options={"erase_timeout_s": 1.5}).run()
    assert result.result == "failed" and "erase" in result.error and "no answer in time" in result.error
    assert 0x34 not in [r[0] for r in ecu.requests]
    assert not journal.open_entries()  # nothing acknowledged to resume: the next flash erases again


@pytest.mark.parametrize("rig", [Faults(pause_at=5)], indirect=True)
def test_cancel_mid_transfer_leaves_a_resumable_state_and_resume_completes(rig):
    tester, ecu, journal, audit = rig
    image = image_of(12 * BLOCK, segments=2)
    cancel = threading.Event()
    threading.Thread(target=lambda: (ecu.faults.paused.wait(10), cancel.set()), daemon=True).start()
    first = job(tester, image, journal, audit).run(None, cancel)
    assert first.result == "cancelled"
    entry = journal.open_entries("ECM")[0]
    assert entry.resumable and entry.segment == 0 and entry.offset == 5 * BLOCK
    assert ecu.app_valid == 0 and ecu.version == "OLD-0001"
    blocks_before = ecu.blocks
    second = job(tester, image, journal, audit, resume=entry).run(None, threading.Event())
    assert second.ok, second.error
    assert second.resumed and any("resumed at segment 0" in n for n in second.notes)
    assert ecu.blocks - blocks_before == 12 - 5  # only what was missing was sent
    assert ecu.crc() == image.crc32() and ecu.version == "APP-0200"
    assert not journal.open_entries()
    assert [r.entry.result for r in audit.rows()] == ["cancelled", "success"]


def test_audit_chain_verifies_and_names_an_edited_row(tmp_path):
    from workshop_app.core.history.audit import AuditEntry

    db = tmp_path / "history.db"
    with AuditTrail(db) as trail:
        for n in range(4):
            trail.append(AuditEntry(ecu="ECM", result="success", duration_s=1.5 + n, vin=f"VIN{n}"))
        assert trail.verify().ok and trail.verify().rows == 4
    conn = sqlite3.connect(db)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE flash_audit SET result = 'failed' WHERE id = 3")
    conn.execute("DROP TRIGGER flash_audit_no_update")
    conn.execute("UPDATE flash_audit SET result = 'failed' WHERE id = 3")
    conn.commit()
    conn.close()
    with AuditTrail(db) as trail:
        check = trail.verify()
    assert check.broken_at == 3 and "edited" in check.reason


# --- the real simulated vehicle: the ECM's bootloader (core/sim/ecus/bootloader.py) ---------------


@dataclass
class SimRig:
    tester: TesterSide
    car: DemoVehicle
    net: EcuNetwork


@contextmanager
def sim_rig(tmp_path: Path, name: str, *, engine_running: bool = False) -> Iterator[SimRig]:
    channel = f"flash-sim-{name}"
    car_bus = can.Bus(interface="virtual", channel=channel)
    ecu_bus = can.Bus(interface="virtual", channel=channel)
    # Time almost stands still, so the engine stays as it was: off at 0 s, running at 15 s.
    car = DemoVehicle(car_bus, time_scale=1e-6, start_at=15.0 if engine_running else 0.0)
    net = EcuNetwork(ecu_bus, car, flash_dir=tmp_path / "sim")
    tester = TesterSide(channel)
    try:
        net.ecu("ECM").bootloader.timing.erase_seconds = 0.1  # type: ignore[union-attr]
        car.start()
        net.start()
        yield SimRig(tester, car, net)
    finally:
        net.stop()
        car.stop()
        tester.close()
        ecu_bus.shutdown()
        car_bus.shutdown()


def sim_image(size: int, version: str = "SW 0500", release: int = 12) -> FlashImage:
    data = (hashlib.sha256(b"sim").digest() * (size // 32 + 1))[:size]
    return FlashImage(
        ecu="ECM",
        target_name="ecm.hex",
        target_hash=hashlib.sha256(data).hexdigest(),
        segments=(Segment(0x00010000, data),),
        software_version=version,
        release_counter=release,
    )


def sim_job(rig: SimRig, image: FlashImage, db: Path, **kwargs) -> FlashJob:
    return FlashJob(
        rig.tester.bus,
        rig.tester.notifier,
        ECM,
        image,
        journal=FlashJournal(db),
        audit=AuditTrail(db),
        options=FlashOptions(),
        **kwargs,
    )


def test_simulated_ecm_flashed_with_64k_and_the_next_scan_sees_the_new_version(tmp_path):
    image = sim_image(64 * 1024)
    with sim_rig(tmp_path, "64k") as rig:
        result = sim_job(rig, image, tmp_path / "h.db").run(None, threading.Event())
        assert result.ok, result.error
        assert len(result.vin) == 17  # read from the ECU (0xF190)
        assert result.from_version == "SW 0412" and result.to_version == "SW 0500"
        flash = rig.net.ecu("ECM").flash
        assert flash.app_valid and flash.crc32() == image.crc32()
        scan = VehicleScanner(
            rig.tester.bus,
            rig.tester.notifier,
            demo_vehicle_spec(),
            options=ScanOptions(sweep=False, obd=False),
        )
        ecm = scan.scan_ecu(ECM, demo_vehicle_spec().ecu("ECM"))
        assert ecm.identification["Software version"] == "SW 0500"
    with AuditTrail(tmp_path / "h.db") as trail:
        (row,) = trail.rows()
        assert row.entry.result == "success" and row.entry.vin and row.entry.from_version == "SW 0412"


def test_simulated_car_driving_is_refused_with_the_speed_read_before_any_programming_request(tmp_path):
    with sim_rig(tmp_path, "engine", engine_running=True) as rig:
        result = sim_job(rig, sim_image(4096), tmp_path / "h.db").run(None, threading.Event())
        time.sleep(0.1)
        sids = rig.tester.request_sids()
        assert result.result == "refused" and "vehicle moving at 25 km/h (DID 0x1003)" in result.error
        assert not {0x27, 0x31, 0x34, 0x36} & set(sids)
        assert rig.net.ecu("ECM").flash.app_valid


def test_simulated_ecm_with_a_bad_flash_cell_fails_the_memory_check(tmp_path):
    with sim_rig(tmp_path, "badcell") as rig:
        rig.net.ecu("ECM").bootloader.corrupt_writes = True  # type: ignore[union-attr]
        result = sim_job(rig, sim_image(3 * BLOCK), tmp_path / "h.db").run(None, threading.Event())
        assert result.result == "failed" and "memory check" in result.error
        assert not rig.net.ecu("ECM").flash.app_valid


def test_simulated_ecm_cancelled_mid_transfer_then_resumed(tmp_path):
    image = sim_image(20 * BLOCK)
    db = tmp_path / "h.db"
    with sim_rig(tmp_path, "cancel") as rig:
        cancel = threading.Event()

        def progress(phase: str, done: int, total: int) -> None:
            if phase == "download" and done >= 6 * BLOCK:
                cancel.set()

        first = sim_job(rig, image, db).run(progress, cancel)
        assert first.result == "cancelled"
        with FlashJournal(db) as journal:
            (entry,) = journal.open_entries("ECM")
        assert entry.resumable and entry.offset == 6 * BLOCK and entry.result == "cancelled"
        assert not rig.net.ecu("ECM").flash.app_valid  # the ECU waits in its bootloader
        second = sim_job(rig, image, db, resume=entry).run(None, threading.Event())
        assert second.ok, second.error
        assert second.bytes_sent - entry.bytes_done == 14 * BLOCK
        assert any("resumed at segment 0 offset 24558" in n for n in second.notes)
        assert rig.net.ecu("ECM").flash.crc32() == image.crc32()
    with AuditTrail(db) as trail:
        assert [r.entry.result for r in trail.rows()] == ["cancelled", "success"] and trail.verify().ok


@pytest.mark.parametrize("rig", [Faults(pause_at=3)], indirect=True)
def test_resume_continues_when_the_ecu_holds_two_blocks_past_the_journal(rig):
    # A block's journal row is committed while the next block travels: a tool killed right then
    # leaves the ECU holding that block and the one in flight, two past the journal.
    tester, ecu, journal, audit = rig
    image = image_of(8 * BLOCK)
    cancel = threading.Event()
    threading.Thread(target=lambda: (ecu.faults.paused.wait(10), cancel.set()), daemon=True).start()
    assert job(tester, image, journal, audit).run(None, cancel).result == "cancelled"
    (entry,) = journal.open_entries("ECM")
    assert entry.offset == 3 * BLOCK and ecu.blocks == 3
    journal.acknowledged(entry.id, 0, BLOCK, 2, BLOCK, BLOCK)  # the last two rows never landed
    (entry,) = journal.open_entries("ECM")
    second = job(tester, image, journal, audit, resume=entry).run(None, threading.Event())
    assert second.ok, second.error
    assert any(f"continued at offset {3 * BLOCK}" in n for n in second.notes), second.notes
    assert not any("restarted from the erase" in n for n in second.notes)
    assert ecu.blocks == 8 and ecu.crc() == image.crc32()  # nothing sent twice, nothing erased


def test_one_mib_flash_time_on_the_unpaced_virtual_bus(tmp_path, capsys):
    image = sim_image(1024 * 1024)
    with sim_rig(tmp_path, "1mib") as rig:
        rig.net.ecu("ECM").bootloader.timing.erase_seconds = 0.0  # type: ignore[union-attr]
        result = sim_job(rig, image, tmp_path / "h.db").run(None, threading.Event())
    assert result.ok, result.error
    with capsys.disabled():
        print(f"\n1 MiB flash of the simulated ECM, unpaced virtual bus: {result.seconds:.2f} s")


def test_simulated_ecm_reset_mid_transfer_fails_the_attempt_and_resume_completes(tmp_path):
    image = sim_image(16 * BLOCK)
    db = tmp_path / "h.db"
    with sim_rig(tmp_path, "reset") as rig:
        uds = rig.net.ecu("ECM").uds
        resets: list[object] = []

        def progress(phase: str, done: int, total: int) -> None:
            if phase == "download" and done >= 5 * BLOCK and not resets:
                resets.append(uds.handle(b"\x11\x01"))  # a watchdog reset inside the ECU

        first = sim_job(rig, image, db).run(progress, threading.Event())
        assert first.result == "failed" and "transfer data block 6" in first.error and resets
        with FlashJournal(db) as journal:
            (entry,) = journal.open_entries("ECM")
        assert entry.resumable and entry.offset == 5 * BLOCK and entry.result == "failed"
        assert not rig.net.ecu("ECM").flash.app_valid
        second = sim_job(rig, image, db, resume=entry).run(None, threading.Event())
        assert second.ok, second.error
        assert any("resumed at segment 0 offset 20465" in n for n in second.notes)
        assert rig.net.ecu("ECM").flash.crc32() == image.crc32()


@pytest.mark.parametrize("rig", [Faults(pause_at=3)], indirect=True)
def test_resume_refused_while_the_battery_is_low_keeps_the_journal_entry(rig):
    tester, ecu, journal, audit = rig
    image = image_of(8 * BLOCK)
    cancel = threading.Event()
    threading.Thread(target=lambda: (ecu.faults.paused.wait(10), cancel.set()), daemon=True).start()
    assert job(tester, image, journal, audit).run(None, cancel).result == "cancelled"
    (entry,) = journal.open_entries("ECM")
    ecu.faults.battery_mv = 11000
    refused = job(tester, image, journal, audit, resume=entry).run(None, threading.Event())
    assert refused.result == "refused" and "11.00 V" in refused.error
    (still,) = journal.open_entries("ECM")
    assert still.id == entry.id and still.resumable and still.offset == 3 * BLOCK
    ecu.faults.battery_mv = 13500
    assert job(tester, image, journal, audit, resume=still).run(None, threading.Event()).ok
    assert [r.entry.result for r in audit.rows()] == ["cancelled", "refused", "success"]


def test_simulated_ecm_flashed_over_can_fd(tmp_path):
    # ISO-TP on 64-byte CAN FD frames: the same sequence, far fewer frames on the bus.
    image = sim_image(32 * 1024)
    with sim_rig(tmp_path, "fd") as rig:
        frames: list[can.Message] = []
        rig.tester.notifier.add_listener(frames.append)
        job = FlashJob(
            rig.tester.bus,
            rig.tester.notifier,
            ECM,
            image,
            journal=FlashJournal(tmp_path / "h.db"),
            audit=AuditTrail(tmp_path / "h.db"),
            options=FlashOptions(fd=True),
        )
        result = job.run(None, threading.Event())
        assert result.ok, result.error
        assert rig.net.ecu("ECM").flash.crc32() == image.crc32()
        answers = [m for m in frames if m.arbitration_id == ECM.response_id]
        assert answers and all(m.is_fd for m in answers)  # the ECU answered in kind
