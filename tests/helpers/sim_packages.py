"""Signed update packages that fit the demo vehicle's simulated ECM and BCM, and a rig to flash them.

The ECM is "HW H13" with bootloader "BL-02.01", software "SW 0412", release counter 1; the BCM
"HW H05", "BL-01.07", "SW 0330" (``core/sim/ecus/flash_memory.py``).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import can

from workshop_app.core.diag.ecu_spec import demo_vehicle_spec
from workshop_app.core.sim.demo_vehicle import DemoVehicle
from workshop_app.core.sim.ecus import EcuNetwork
from workshop_app.core.sim.ecus.flash_memory import FLASH_LAYOUTS
from workshop_app.core.update.repository import Dependency, PackageRepository
from workshop_app.core.update.verify import TrustStore

SPEC = demo_vehicle_spec()
VIN = SPEC.vin
ECM_REQUEST = SPEC.ecu("ECM").request_id
_channels = itertools.count()


def payload(size: int, seed: int = 1) -> bytes:
    return bytes((i * 131 + seed * 17 + (i >> 8)) & 0xFF for i in range(size))


def build_sim_package(
    folder: Path,
    *,
    size: int = 8 * 1024,
    threshold: int = 1,
    ecm_version: str = "SW 0500",
    ecm_counter: int = 2,
    ecm_hardware: tuple[str, ...] = ("HW H13",),
    ecm_depends: tuple[Dependency, ...] = (),
    with_bcm: bool = False,
) -> PackageRepository:
    """ECM (and with ``with_bcm`` the BCM, "SW 0400") images as raw binaries at their flash start."""
    repo = PackageRepository.init(folder, threshold=threshold)
    work = folder.parent / f"{folder.name}-images"
    work.mkdir(exist_ok=True)
    (work / "ecm.bin").write_bytes(payload(size))
    names = [
        repo.add_image(
            work / "ecm.bin",
            ecu="ECM",
            version=ecm_version,
            release_counter=ecm_counter,
            hardware=list(ecm_hardware),
            min_bootloader="BL-02.00",
            depends=ecm_depends,
            address=FLASH_LAYOUTS["ECM"].start,
            name="ECM-SW0500.bin",
        )
    ]
    if with_bcm:
        (work / "bcm.bin").write_bytes(payload(size // 2, seed=2))
        names.append(
            repo.add_image(
                work / "bcm.bin",
                ecu="BCM",
                version="SW 0400",
                release_counter=2,
                hardware=["HW H05"],
                address=FLASH_LAYOUTS["BCM"].start,
                name="BCM-SW0400.bin",
            )
        )
    repo.assign(VIN, names)
    repo.publish()
    return repo


def trusting(repo: PackageRepository, folder: Path) -> TrustStore:
    store = TrustStore(folder)
    store.trust(repo.trusted_root("image"), repo.trusted_root("director"))
    return store


@dataclass
class BusWatch:
    """Every request frame to the ECM as seen on the bus by a separate connection."""

    frames: list[can.Message] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, msg: can.Message) -> None:
        if msg.arbitration_id == ECM_REQUEST:
            with self.lock:
                self.frames.append(msg)

    def services(self) -> list[int]:
        """Service bytes of ISO-TP single frames and first frames (the start of each request)."""
        out = []
        with self.lock:
            frames = list(self.frames)
        for m in frames:
            kind = m.data[0] >> 4
            if kind == 0:
                out.append(m.data[1] if m.data[0] & 0x0F else m.data[2])  # CAN FD escape: length 0
            elif kind == 1:
                out.append(m.data[2] if (m.data[0] & 0x0F or m.data[1]) else m.data[6])
        return out

    def programming_requests(self) -> list[int]:
        return [s for s in self.services() if s in (0x34, 0x36)]


@dataclass
class SimCar:
    channel: str
    car: DemoVehicle
    net: EcuNetwork
    bus: can.BusABC
    notifier: can.Notifier
    watch: BusWatch


@contextmanager
def sim_car(flash_dir: Path, *, erase_seconds: float = 0.05) -> Iterator[SimCar]:
    """The demo car (engine off, time nearly still) with its ECUs, a tester connection and a bus watch."""
    channel = f"campaign-{os.getpid()}-{next(_channels)}"
    buses = [can.Bus(interface="virtual", channel=channel) for _ in range(4)]
    car_bus, ecu_bus, tester, spy = buses
    car = DemoVehicle(car_bus, time_scale=1e-6)
    net = EcuNetwork(ecu_bus, car, flash_dir=flash_dir)
    notifier = can.Notifier(tester, [], timeout=0.05)
    watch = BusWatch()
    spy_notifier = can.Notifier(spy, [watch], timeout=0.05)
    try:
        for ecu in FLASH_LAYOUTS:
            net.ecu(ecu).bootloader.timing.erase_seconds = erase_seconds  # type: ignore[union-attr]
        car.start()
        net.start()
        yield SimCar(channel, car, net, tester, notifier, watch)
    finally:
        net.stop()
        car.stop()
        notifier.stop()
        spy_notifier.stop()
        for b in buses:
            b.shutdown()
