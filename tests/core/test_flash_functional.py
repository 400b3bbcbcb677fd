"""The flash job quiets the whole car, not only the ECU it flashes (ISO 14229-1, functional 0x7DF).

The real simulated vehicle on a python-can virtual bus: the ECM is flashed while the body ECU
(BCM), which the job never addresses physically, must stop its periodic BODY_STATUS frames and
its DTC setting, stay so past its S3 time, and come back after — also when the flash is cancelled
or fails.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import can
import pytest

from workshop_app.core.diag.client import EcuAddress
from workshop_app.core.diag.functional import FUNCTIONAL_ID_11BIT, functional_frame
from workshop_app.core.history.audit import AuditTrail
from workshop_app.core.sim.demo_vehicle import DemoVehicle
from workshop_app.core.sim.ecus import EcuNetwork
from workshop_app.core.sim.ecus.uds_server import S3_SERVER_S
from workshop_app.core.update.flash import FlashJob, FlashOptions
from workshop_app.core.update.image import FlashImage, Segment
from workshop_app.core.update.journal import FlashJournal

ECM = EcuAddress(0x7E0, 0x7E8)
BODY_STATUS = 0x2A0  # sent by the BCM every 100 ms (dbc/demo_vehicle.dbc)
BLOCK = 4093


@dataclass
class Watch:
    """Bus times of the BCM's BODY_STATUS frames and of the functional requests."""

    body: list[float] = field(default_factory=list)
    functional: list[tuple[float, bytes]] = field(default_factory=list)
    body_seen: threading.Event = field(default_factory=threading.Event)

    def __call__(self, msg: can.Message) -> None:
        if msg.arbitration_id == BODY_STATUS:
            self.body.append(msg.timestamp)
            self.body_seen.set()
        elif msg.arbitration_id == FUNCTIONAL_ID_11BIT:
            self.functional.append((msg.timestamp, bytes(msg.data[1 : 1 + msg.data[0]])))

    def body_between(self, start: float, end: float) -> list[float]:
        return [t for t in self.body if start <= t <= end]

    def body_after(self, t: float, timeout: float) -> bool:
        """Wait until a BODY_STATUS frame later than ``t`` is seen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(x > t for x in self.body):
                return True
            self.body_seen.clear()
            self.body_seen.wait(0.05)
        return any(x > t for x in self.body)


@dataclass
class Car:
    net: EcuNetwork
    bus: can.BusABC
    notifier: can.Notifier
    watch: Watch


@contextmanager
def car(tmp_path: Path, name: str) -> Iterator[Car]:
    channel = f"flash-functional-{name}"
    car_bus = can.Bus(interface="virtual", channel=channel)
    ecu_bus = can.Bus(interface="virtual", channel=channel)
    tester = can.Bus(interface="virtual", channel=channel)
    spy = can.Bus(interface="virtual", channel=channel)  # sees the tester's own frames too
    vehicle = DemoVehicle(car_bus, time_scale=1e-6)  # engine off, standing still
    net = EcuNetwork(ecu_bus, vehicle, flash_dir=tmp_path / "sim")
    watch = Watch()
    notifier = can.Notifier(tester, [], timeout=0.05)
    spying = can.Notifier(spy, [watch], timeout=0.05)
    try:
        vehicle.start()
        net.start()
        yield Car(net, tester, notifier, watch)
    finally:
        net.stop()
        vehicle.stop()
        notifier.stop()
        spying.stop()
        for bus in (spy, tester, ecu_bus, car_bus):
            bus.shutdown()


def ecm_image(size: int) -> FlashImage:
    data = (hashlib.sha256(b"functional").digest() * (size // 32 + 1))[:size]
    return FlashImage(
        "ECM", "ecm.bin", hashlib.sha256(data).hexdigest(), (Segment(0x10000, data),), "SW 0600", 20
    )


def flash(c: Car, tmp_path: Path, image: FlashImage, progress=None, cancel=None):
    db = tmp_path / "history.db"
    with FlashJournal(db) as journal, AuditTrail(db) as audit:
        job = FlashJob(c.bus, c.notifier, ECM, image, journal=journal, audit=audit, options=FlashOptions())
        return job.run(progress, cancel or threading.Event())


def test_functional_frame_is_one_padded_single_frame():
    msg = functional_frame(bytes((0x28, 0x83, 0x01)))
    assert (msg.arbitration_id, msg.is_extended_id, bytes(msg.data)) == (
        0x7DF,
        False,
        b"\x03\x28\x83\x01\xcc\xcc\xcc\xcc",
    )
    assert functional_frame(b"\x3e\x80", extended=True).arbitration_id == 0x18DB33F1
    with pytest.raises(ValueError, match="single frame"):
        functional_frame(bytes(8))


def test_body_ecu_stays_quiet_through_a_flash_longer_than_s3_and_comes_back(tmp_path):
    with car(tmp_path, "s3") as c:
        bcm = c.net.ecu("BCM").uds
        assert c.watch.body_after(0.0, 5.0), "the BCM sends BODY_STATUS before the flash"
        # An erase of 6 s (NRC 0x78 repeated): the BCM hears nothing but functional TesterPresent.
        c.net.ecu("ECM").bootloader.timing.erase_seconds = S3_SERVER_S + 1.0  # type: ignore[union-attr]
        marks: dict[str, float] = {}
        during: list[tuple[bool, bool, int]] = []

        def progress(phase: str, done: int, total: int) -> None:
            marks.setdefault(phase, time.time())
            if phase == "download":
                marks["download end"] = time.time()
                during.append((bcm.transmitting, bcm.dtc_setting_on, bcm.session))

        result = flash(c, tmp_path, ecm_image(4 * BLOCK), progress)
        finished = time.time()
        assert result.ok, result.error
        # From just after the erase began (the quiet request went out before it; 0.5 s for a
        # loaded machine to schedule the BCM) to the last block, longer than S3: not one frame.
        quiet_from = marks["erase"] + 0.5
        assert marks["download end"] - quiet_from > S3_SERVER_S
        assert c.watch.body_between(quiet_from, marks["download end"]) == []
        assert during and all(d == (False, False, 0x03) for d in during)  # quiet, no DTCs, extended
        keepalives = [t for t, data in c.watch.functional if data == b"\x3e\x80"]
        assert len(keepalives) >= 2  # every 2 s: what kept the BCM in its session past S3
        assert c.watch.body_after(finished, 5.0), "BODY_STATUS is back after the flash"
        assert (bcm.transmitting, bcm.dtc_setting_on, bcm.session) == (True, True, 0x01)


@pytest.mark.parametrize("ending", ["cancelled", "failed"])
def test_body_ecu_comes_back_after_a_cancelled_or_failed_flash(tmp_path, ending):
    with car(tmp_path, ending) as c:
        bcm = c.net.ecu("BCM").uds
        assert c.watch.body_after(0.0, 5.0)
        c.net.ecu("ECM").bootloader.timing.erase_seconds = 0.3  # type: ignore[union-attr]
        cancel = threading.Event()
        quiet: list[bool] = []

        def progress(phase: str, done: int, total: int) -> None:
            if phase == "download" and done >= 2 * BLOCK:
                quiet.append(not bcm.transmitting)
                if ending == "cancelled":
                    cancel.set()

        if ending == "failed":
            c.net.ecu("ECM").bootloader.corrupt_writes = True  # type: ignore[union-attr]
        result = flash(c, tmp_path, ecm_image(4 * BLOCK), progress, cancel)
        finished = time.time()
        assert result.result == ending, result.error
        assert quiet and all(quiet)
        assert c.watch.body_after(finished, 5.0), f"BODY_STATUS is back after the {ending} flash"
        assert (bcm.transmitting, bcm.dtc_setting_on, bcm.session) == (True, True, 0x01)
        restored = [data for _, data in c.watch.functional][-3:]
        assert restored == [b"\x28\x80\x01", b"\x85\x81", b"\x10\x81"]
