"""The flash job, its journal and its audit rows, over can-isotp on a python-can virtual bus.

``Responder`` is a small programming ECU written for these tests (the bytes of
``core/update/protocol.py``) that can also misbehave in ways the simulated vehicle cannot: echo
a wrong block counter, fail the memory check, lose one answer, hold the erase behind NRC 0x78.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import can
import isotp
import pytest

from workshop_app.core.diag.client import EcuAddress
from workshop_app.core.history.audit import AuditTrail
from workshop_app.core.update import protocol as p
from workshop_app.core.update.flash import FlashJob, FlashOptions, next_counter
from workshop_app.core.update.image import FlashImage, Segment
from workshop_app.core.update.journal import FlashJournal

ECM = EcuAddress(0x7E0, 0x7E8)
BLOCK = 4093  # data bytes per TransferData: a 4095-byte ISO-TP message minus SID and counter


@dataclass
class Faults:
    battery_mv: int = 13800
    max_block_length: int = 0x0FFF + 2
    erase_pending_s: float = 0.0
    crc_fails: bool = False
    wrong_echo_at: int | None = None  # block number (1-based, whole download) echoed wrongly
    drop_answer_at: int | None = None  # block number whose first answer is lost
    pause_at: int | None = None  # block number after which `paused` is set (tests cancel there)
    paused: threading.Event = field(default_factory=threading.Event)


class Responder:
    """A programming ECU on ``channel``: sessions, 0x27 0x11, 0x31, 0x34/0x36/0x37, 0x2E, 0x11."""

    def __init__(self, channel: str, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self.bus = can.Bus(interface="virtual", channel=channel, receive_own_messages=False)
        self.notifier = can.Notifier(self.bus, [], timeout=0.05)
        self.stack = isotp.NotifierBasedCanStack(
            self.bus,
            self.notifier,
            address=isotp.Address(isotp.AddressingMode.Normal_11bits, txid=0x7E8, rxid=0x7E0),
            params={"tx_padding": 0xAA, "blocksize": 0, "stmin": 0, "max_frame_size": 1 << 20},
        )
        self.memory: dict[int, int] = {}  # address -> byte written since the erase
        self.version, self.release, self.app_valid = "OLD-0001", 3, 1
        self._pending: tuple[str | None, int | None] = (None, None)
        self.session, self.unlocked, self.seed = 1, False, b"\x12\x34\x56\x78"
        self.download: list[int] | None = None  # [address, size, received, expected, last]
        self.blocks = 0
        self.requests: list[bytes] = []
        self._dropped = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Responder:
        self.stack.start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        self.stack.stop()
        self.notifier.stop()
        self.bus.shutdown()

    def crc(self) -> int:
        return zlib.crc32(bytes(self.memory[a] for a in sorted(self.memory)))

    def _serve(self) -> None:
        while not self._stop.is_set():
            req = self.stack.recv(block=True, timeout=0.05)
            if req is None:
                continue
            req = bytes(req)
            self.requests.append(req)
            for answer in self._answer(req):
                if answer:
                    self.stack.send(answer)

    def _answer(self, req: bytes) -> list[bytes]:
        sid, f = req[0], self.faults
        if sid == 0x10:
            self.session, self.unlocked = req[1], False
            if self.download:
                self.download = None
            return [bytes((0x50, req[1], 0x00, 0x32, 0x01, 0xF4))]
        if sid == 0x3E:
            return [] if req[1] & 0x80 else [b"\x7e\x00"]
        if sid in (0x85, 0x28):
            return [bytes((sid + 0x40, req[1]))]
        if sid == 0x22:
            did = int.from_bytes(req[1:3], "big")
            values = {
                0xF1A1: f.battery_mv.to_bytes(2, "big"),
                0x1001: b"\x00\x00",
                0x1003: b"\x00",
                p.DID_APP_SOFTWARE: self.version.encode().ljust(8),
                p.DID_RELEASE_COUNTER: self.release.to_bytes(4, "big"),
                p.DID_APP_VALID: bytes((self.app_valid,)),
            }
            return [b"\x62" + req[1:3] + values[did]] if did in values else [b"\x7f\x22\x31"]
        if sid == 0x27:
            if req[1] == p.PROGRAMMING_SECURITY_LEVEL:
                return [b"\x67\x11" + self.seed]
            self.unlocked = req[2:] == p.demo_programming_key(self.seed)
            return [b"\x67\x12"] if self.unlocked else [b"\x7f\x27\x35"]
        if sid == 0x31:
            rid = int.from_bytes(req[2:4], "big")
            head = b"\x71\x01" + req[2:4]
            if rid == p.ROUTINE_CHECK_PROGRAMMING_PRECONDITIONS:
                return [head + b"\x00"]
            if not self.unlocked or self.session != p.PROGRAMMING_SESSION:
                return [b"\x7f\x31\x33"]
            if rid == p.ROUTINE_ERASE_MEMORY:
                self.memory.clear()
                self.app_valid = 0
                pending = []
                deadline = time.monotonic() + f.erase_pending_s
                while time.monotonic() < deadline:  # NRC 0x78 every second, well inside P2*
                    self.stack.send(b"\x7f\x31\x78")
                    time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
                return [*pending, head + b"\x00"]
            if rid == p.ROUTINE_CHECK_MEMORY:
                ok = not f.crc_fails and int.from_bytes(req[4:8], "big") == self.crc()
                return [head + (b"\x00" if ok else b"\x01")]
            return [head + b"\x00"]
        if sid == 0x34:
            address, size = int.from_bytes(req[3:7], "big"), int.from_bytes(req[7:11], "big")
            if any(a in self.memory for a in (address, address + size - 1)):
                return [b"\x7f\x34\x70"]
            self.download = [address, size, 0, 1, -1]
            return [b"\x74\x20" + f.max_block_length.to_bytes(2, "big")]
        if sid == 0x36:
            dl, counter = self.download, req[1]
            if dl is None:
                return [b"\x7f\x36\x24"]
            if counter != dl[3]:
                return [b"\x76" + req[1:2]] if counter == dl[4] else [b"\x7f\x36\x73"]
            for i, byte in enumerate(req[2:]):
                self.memory[dl[0] + dl[2] + i] = byte
            dl[2] += len(req) - 2
            dl[4], dl[3] = counter, (counter + 1) & 0xFF
            self.blocks += 1
            if f.pause_at == self.blocks:
                f.paused.set()
                time.sleep(0.3)
            if f.drop_answer_at == self.blocks and not self._dropped:
                self._dropped = True
                return []
            if f.wrong_echo_at == self.blocks:
                return [b"\x76" + bytes(((counter + 1) & 0xFF,))]
            return [b"\x76" + req[1:2]]
        if sid == 0x37:
            self.download = None
            return [b"\x77"]
        if sid == 0x2E:
            did = int.from_bytes(req[1:3], "big")
            if did == p.DID_APP_SOFTWARE:
                self._pending = (req[3:].decode().strip(), self._pending[1])
            else:
                self._pending = (self._pending[0], int.from_bytes(req[3:7], "big"))
            return [b"\x6e" + req[1:3]]
        if sid == 0x11:
            version, release = self._pending
            if version is not None and release is not None:
                self.version, self.release, self.app_valid = version, release, 1
            self.session, self.unlocked = 1, False
            return [b"\x51\x01"]
        return [bytes((0x7F, sid, 0x11))]


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
        if msg.arbitration_id == ECM.request_id:
            self.frames.append(msg)

    def request_sids(self) -> list[int]:
        """Service ids of the requests on the bus (single and first frames)."""
        out = []
        for m in self.frames:
            kind = m.data[0] >> 4
            if kind == 0:
                out.append(m.data[1])
            elif kind == 1:
                out.append(m.data[2])
        return out

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
    sids = tester.request_sids()
    order = iter(sids)  # the ISO 14229 sequence, in this order (other requests between)
    assert all(
        s in order for s in (0x22, 0x10, 0x85, 0x28, 0x10, 0x27, 0x31, 0x34, 0x36, 0x37, 0x31, 0x2E, 0x11)
    )
    assert not journal.open_entries()
    row = audit.rows()[-1]
    assert (row.entry.result, row.entry.vin, row.entry.target_hash) == (
        "success",
        "WDEMO000000000001",
        image.target_hash,
    )


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


@pytest.mark.parametrize("rig", [Faults(erase_pending_s=6.5)], indirect=True)
def test_erase_held_behind_nrc_78_longer_than_udsoncans_default_timeout(rig):
    tester, _ecu, journal, audit = rig
    result = job(tester, image_of(4096), journal, audit).run(None, threading.Event())
    assert result.ok, result.error
    assert result.seconds > 6.5


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
