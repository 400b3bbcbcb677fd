"""Verification time of an update package with 50 targets (issue 11, item 9).

Run: .venv/bin/python benchmarks/update_verify.py [--image-kib 64]
50 ECUs, one Intel HEX image each (two segments), all assigned to one VIN. Timed: a first
verification (empty trust cache: every metadata file fetched and checked, 50 images downloaded,
hashed and parsed), a repeat (metadata cached), and the same from a .tar.gz archive.
Baseline in the same run: reading the 50 images with bincopy and hashing them, with no TUF at
all, the floor any verification pays.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

import bincopy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workshop_app.core.update.imagefile import read_segments  # noqa: E402
from workshop_app.core.update.repository import PackageRepository  # noqa: E402
from workshop_app.core.update.verify import EcuFacts, TrustStore, VehicleFacts, verify_package  # noqa: E402

VIN = "WDD2220461A000001"
TARGETS = 50


def build(folder: Path, image_kib: int) -> tuple[PackageRepository, list[Path]]:
    repo = PackageRepository.init(folder / "pkg")
    names, files = [], []
    for n in range(TARGETS):
        binfile = bincopy.BinFile()
        half = image_kib * 512
        binfile.add_binary(bytes((n + i) & 0xFF for i in range(half)), address=0x8000)
        binfile.add_binary(bytes((n * 7 + i) & 0xFF for i in range(half)), address=0x80000)
        path = folder / f"ecu{n:02d}.hex"
        path.write_text(binfile.as_ihex())
        files.append(path)
        names.append(
            repo.add_image(path, ecu=f"ECU{n:02d}", version="2.0", release_counter=2, hardware=[f"HW{n:02d}"])
        )
    repo.assign(VIN, names)
    repo.publish()
    return repo, files


def timed(fn):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--image-kib", type=int, default=64)
    args = parser.parse_args()
    car = VehicleFacts(VIN, {f"ECU{n:02d}": EcuFacts(f"HW{n:02d}", "BL-1", "1.0", 1) for n in range(TARGETS)})
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t_build, (repo, files) = timed(lambda: build(folder, args.image_kib))
        archive = repo.archive(folder / "pkg.tar.gz")

        def floor() -> None:
            for path in files:
                data = path.read_bytes()
                hashlib.sha256(data).hexdigest()
                read_segments(data, str(path))

        t_floor, _ = timed(floor)

        def trusted(name: str) -> TrustStore:
            store = TrustStore(folder / name)
            store.trust(repo.trusted_root("image"), repo.trusted_root("director"))
            return store

        store = trusted("trust-folder")
        t_first, first = timed(lambda: verify_package(folder / "pkg", car, store=store))
        t_again, again = timed(lambda: verify_package(folder / "pkg", car, store=store))
        archive_store = trusted("trust-archive")
        t_archive, from_archive = timed(lambda: verify_package(archive, car, store=archive_store))
        for result in (first, again, from_archive):
            assert result.ok and len(result.images) == TARGETS, result.refusals
        total = sum(i.size for i in first.images)
        print(
            f"{TARGETS} targets, {total / 1024:.0f} KiB of image data ({args.image_kib} KiB each, Intel HEX)"
        )
        print(f"  publish (50 adds + sign):           {t_build:7.3f} s")
        print(f"  baseline, read + hash only:         {t_floor:7.3f} s")
        print(f"  verify folder, empty trust cache:   {t_first:7.3f} s  ({t_first / t_floor:.1f}x baseline)")
        print(f"  verify folder, metadata cached:     {t_again:7.3f} s")
        print(f"  verify .tar.gz, empty trust cache:  {t_archive:7.3f} s")


if __name__ == "__main__":
    main()
