"""Signed update packages built with the real publisher API, and the car facts that fit them."""

from __future__ import annotations

from pathlib import Path

import bincopy

from workshop_app.core.update.repository import Dependency, PackageRepository
from workshop_app.core.update.verify import EcuFacts, TrustStore, VehicleFacts

VIN = "WDD2220461A000001"
ECM_SEGMENTS = ((0x0000_8000, bytes(range(256)) * 4), (0x0002_0000, b"\xa5\x5a" * 300))
BCM_BINARY = bytes(range(200)) * 3
BCM_ADDRESS = 0x0001_0000


def write_ihex(path: Path, segments: tuple[tuple[int, bytes], ...] = ECM_SEGMENTS) -> Path:
    binfile = bincopy.BinFile()
    for address, data in segments:
        binfile.add_binary(data, address=address)
    path.write_text(binfile.as_ihex())
    return path


def car(
    *,
    ecm_hardware: str = "HW-ECM-01",
    ecm_bootloader: str = "BL-02.01",
    ecm_counter: int = 4,
    bcm_version: str = "1.0",
) -> VehicleFacts:
    return VehicleFacts(
        VIN,
        {
            "ECM": EcuFacts(ecm_hardware, ecm_bootloader, "2.0", ecm_counter),
            "BCM": EcuFacts("HW-BCM-01", "BL-01.00", bcm_version, 2),
        },
    )


def build_package(
    folder: Path,
    *,
    threshold: int = 1,
    ecm_counter: int = 5,
    ecm_depends: tuple[Dependency, ...] = (),
    allow_downgrade: tuple[str, ...] = (),
) -> PackageRepository:
    """ECM gets an Intel HEX with two segments (2.1), BCM a raw binary (1.1); both for :data:`VIN`."""
    repo = PackageRepository.init(folder, threshold=threshold)
    work = folder.parent / f"{folder.name}-images"
    work.mkdir(exist_ok=True)
    ecm = repo.add_image(
        write_ihex(work / "ecm.hex"),
        ecu="ECM",
        version="2.1",
        release_counter=ecm_counter,
        hardware=["HW-ECM-01", "HW-ECM-02"],
        min_bootloader="BL-02.00",
        depends=ecm_depends,
    )
    (work / "bcm.bin").write_bytes(BCM_BINARY)
    bcm = repo.add_image(
        work / "bcm.bin",
        ecu="BCM",
        version="1.1",
        release_counter=3,
        hardware=["HW-BCM-01"],
        address=BCM_ADDRESS,
    )
    repo.assign(VIN, [ecm, bcm], allow_downgrade=allow_downgrade)
    repo.publish()
    return repo


def trusting(repo: PackageRepository, folder: Path) -> TrustStore:
    """A workshop trust store that trusts this publisher's roots (given once, out of band)."""
    store = TrustStore(folder)
    store.trust(repo.trusted_root("image"), repo.trusted_root("director"))
    return store
