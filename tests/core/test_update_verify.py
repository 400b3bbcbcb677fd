"""One test per attack on an update package: each built with the publisher API, each refused by code.

Nothing is mocked: real Ed25519 keys made here, real TUF metadata, real files and archives.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers.update_packages import VIN, build_package, car, trusting, write_ihex

from workshop_app.core.update import refusals as R
from workshop_app.core.update.keys import generate_keys
from workshop_app.core.update.repository import Dependency
from workshop_app.core.update.verify import Verification, verify_package


def _refused(result: Verification, code: str) -> None:
    assert code in result.codes, result.refusals
    assert result.images == () and not result.ok
    assert all(str(r) for r in result.refusals)  # plain words, never empty


def _target_file(pkg: Path, name: str) -> Path:
    (found,) = (pkg / "image/targets").glob(f"*.{name}")
    return found


def _edit_json(path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


@pytest.fixture
def pkg(tmp_path: Path) -> Path:
    return tmp_path / "pkg"


def test_tampered_image_is_a_hash_mismatch(pkg: Path, tmp_path: Path) -> None:
    repo = build_package(pkg)
    target = _target_file(pkg, "ECM-2.1.hex")
    data = bytearray(target.read_bytes())
    data[20] ^= 0x01  # same length, one bit changed
    target.write_bytes(bytes(data))
    _refused(verify_package(pkg, car(), store=trusting(repo, tmp_path / "t")), R.HASH_MISMATCH)


def test_image_longer_than_signed_is_endless_data(pkg: Path, tmp_path: Path) -> None:
    repo = build_package(pkg)
    target = _target_file(pkg, "ECM-2.1.hex")
    target.write_bytes(target.read_bytes() + b":00000001FF\n" * 1000)
    _refused(verify_package(pkg, car(), store=trusting(repo, tmp_path / "t")), R.ENDLESS_DATA)


def test_targets_signed_by_an_unknown_key(pkg: Path, tmp_path: Path) -> None:
    repo = build_package(pkg)
    store = trusting(repo, tmp_path / "t")
    (pkg / "keys/image-targets-1.pem").unlink()
    generate_keys(pkg / "keys", "image", "targets", 1)  # a key the trusted root never named
    repo.publish(expires_days=30)
    result = verify_package(pkg, car(), store=store)
    _refused(result, R.UNKNOWN_KEY)
    assert "targets.json" in result.refusals[0].where


def test_too_few_signatures_for_the_threshold(pkg: Path, tmp_path: Path) -> None:
    repo = build_package(pkg, threshold=2)
    store = trusting(repo, tmp_path / "t")
    assert verify_package(pkg, car(), store=store).ok
    (pkg / "keys/image-timestamp-2.pem").unlink()  # one of two timestamp keys lost
    repo.publish()
    result = verify_package(pkg, car(), store=store)
    _refused(result, R.THRESHOLD_NOT_MET)
    assert "1 valid signature(s), 2 required" in result.refusals[0].message


def test_metadata_edited_after_signing_is_a_bad_signature(pkg: Path, tmp_path: Path) -> None:
    repo = build_package(pkg)
    meta = pkg / "director/metadata"
    version = json.loads((meta / "targets.json").read_text())["signed"]["version"]

    def grant(data: dict) -> None:  # type: ignore[type-arg]
        data["signed"]["targets"][f"{VIN}/ECM-2.1.hex"]["custom"]["allow_downgrade"] = True

    _edit_json(meta / f"{version}.targets.json", grant)
    _refused(verify_package(pkg, car(), store=trusting(repo, tmp_path / "t")), R.BAD_SIGNATURE)


def test_expired_timestamp_is_a_freeze(pkg: Path, tmp_path: Path) -> None:
    repo = build_package(pkg)
    repo.publish(timestamp_expires=datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1))
    result = verify_package(pkg, car(), store=trusting(repo, tmp_path / "t"))
    _refused(result, R.EXPIRED)
    assert "freeze" in result.refusals[0].message


def test_older_release_after_a_newer_one_is_a_rollback(pkg: Path, tmp_path: Path) -> None:
    repo = build_package(pkg)
    shutil.copytree(pkg, tmp_path / "old-release")
    repo.publish()
    store = trusting(repo, tmp_path / "t")
    assert verify_package(pkg, car(), store=store).ok
    _refused(verify_package(tmp_path / "old-release", car(), store=store), R.ROLLBACK)


def test_targets_from_another_release_is_mix_and_match(pkg: Path, tmp_path: Path) -> None:
    repo = build_package(pkg)
    meta = pkg / "image/metadata"
    version = json.loads((meta / "targets.json").read_text())["signed"]["version"]
    # A validly signed, older targets file served where the snapshot names the newer one.
    shutil.copy(meta / f"{version - 1}.targets.json", meta / f"{version}.targets.json")
    _refused(verify_package(pkg, car(), store=trusting(repo, tmp_path / "t")), R.MIX_AND_MATCH)


def test_director_and_image_repository_disagree(pkg: Path, tmp_path: Path) -> None:
    repo = build_package(pkg)
    # The image repository replaces the ECM image under the same name; the director still names the old one.
    other = write_ihex(tmp_path / "other.hex", ((0x8000, b"\x11" * 512),))
    repo.add_image(
        other, ecu="ECM", version="2.1", release_counter=5, hardware=["HW-ECM-01"], name="ECM-2.1.hex"
    )
    repo.publish()
    result = verify_package(pkg, car(), store=trusting(repo, tmp_path / "t"))
    _refused(result, R.DIRECTOR_MISMATCH)
    assert result.refusals[0].where == "ECM-2.1.hex"


def test_hardware_number_not_allowed(pkg: Path, tmp_path: Path) -> None:
    repo = build_package(pkg)
    result = verify_package(pkg, car(ecm_hardware="HW-ECM-99"), store=trusting(repo, tmp_path / "t"))
    _refused(result, R.HARDWARE_NOT_ALLOWED)
    assert "HW-ECM-99" in result.refusals[0].message


def test_bootloader_too_old(pkg: Path, tmp_path: Path) -> None:
    repo = build_package(pkg)
    result = verify_package(pkg, car(ecm_bootloader="BL-01.09"), store=trusting(repo, tmp_path / "t"))
    _refused(result, R.BOOTLOADER_TOO_OLD)
    # Numbers compare as numbers: 02.10 is newer than 02.00.
    assert verify_package(pkg, car(ecm_bootloader="BL-02.10"), store=trusting(repo, tmp_path / "t2")).ok


def test_release_counter_lower_than_the_ecu_reports(pkg: Path, tmp_path: Path) -> None:
    repo = build_package(pkg)
    result = verify_package(pkg, car(ecm_counter=6), store=trusting(repo, tmp_path / "t"))
    _refused(result, R.RELEASE_ROLLBACK)
    assert "the ECU reports" in result.refusals[0].message


def test_release_counter_lower_than_this_workshop_recorded(pkg: Path, tmp_path: Path) -> None:
    repo = build_package(pkg)
    store = trusting(repo, tmp_path / "t")
    result = verify_package(pkg, car(ecm_counter=4), store=store, recorded_highest={"ECM": 7})
    _refused(result, R.RELEASE_ROLLBACK)
    assert "recorded" in result.refusals[0].message
    seen: list[tuple[str, str]] = []

    def recorded(vin: str, ecu: str) -> int | None:
        seen.append((vin, ecu))
        return 3

    assert verify_package(pkg, car(ecm_counter=4), store=store, recorded_highest=recorded).ok
    assert (VIN, "ECM") in seen


def test_downgrade_granted_by_the_director(pkg: Path, tmp_path: Path) -> None:
    repo = build_package(pkg, allow_downgrade=("ECM",))
    result = verify_package(pkg, car(ecm_counter=6), store=trusting(repo, tmp_path / "t"))
    assert result.ok, result.refusals
    (ecm,) = [c for c in result.changes if c.ecu == "ECM"]
    assert ecm.downgrade_granted and (ecm.from_counter, ecm.to_counter) == (6, 5)


def test_unmet_dependency_on_another_ecu(pkg: Path, tmp_path: Path) -> None:
    repo = build_package(pkg, ecm_depends=(Dependency("BCM", "1.2"),))
    result = verify_package(pkg, car(), store=trusting(repo, tmp_path / "t"))
    _refused(result, R.DEPENDENCY_NOT_MET)
    assert "BCM at 1.2" in result.refusals[0].message


def test_dependency_met_by_the_update_itself(tmp_path: Path) -> None:
    # The BCM goes from 1.0 to 1.1 in the same package: ECM's BCM>=1.1 is met by what is flashed.
    repo = build_package(tmp_path / "pkg", ecm_depends=(Dependency("BCM", "1.1"),))
    assert verify_package(tmp_path / "pkg", car(bcm_version="1.0"), store=trusting(repo, tmp_path / "t")).ok


def test_path_traversal_in_a_target_name(pkg: Path, tmp_path: Path) -> None:
    repo = build_package(pkg)
    evil = repo.add_image(
        write_ihex(tmp_path / "evil.hex"),
        ecu="ECM",
        version="6",
        release_counter=9,
        hardware=["HW-ECM-01"],
        name="../../../home/evil.hex",
        allow_unsafe_name=True,
    )
    repo.assign(VIN, [evil])
    repo.publish()
    _refused(verify_package(pkg, car(), store=trusting(repo, tmp_path / "t")), R.PATH_TRAVERSAL)
    assert not (tmp_path / "home").exists()


def test_path_traversal_in_an_archive_member(pkg: Path, tmp_path: Path) -> None:
    repo = build_package(pkg)
    archive = repo.archive(tmp_path / "pkg.tar")
    with tarfile.open(archive, "a") as tar:
        info = tarfile.TarInfo("../outside.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    _refused(verify_package(archive, car(), store=trusting(repo, tmp_path / "t")), R.PATH_TRAVERSAL)


def test_oversized_metadata(pkg: Path, tmp_path: Path) -> None:
    repo = build_package(pkg)
    ts = pkg / "image/metadata/timestamp.json"
    # Still validly signed (signatures cover the canonical form), but 64 KiB: over the 16 KiB cap.
    ts.write_bytes(ts.read_bytes().rstrip() + b" " * 65536 + b"\n")
    _refused(verify_package(pkg, car(), store=trusting(repo, tmp_path / "t")), R.OVERSIZED_METADATA)


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_archive_bomb(pkg: Path, tmp_path: Path, kind: str) -> None:
    repo = build_package(pkg)
    zeros = bytes(80 * 1024 * 1024)  # compresses to under 100 KiB
    path = tmp_path / f"bomb.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(p for p in pkg.rglob("*") if p.is_file() and "keys" not in p.parts):
                z.write(f, f.relative_to(pkg).as_posix())
            z.writestr("image/targets/padding.bin", zeros)
    else:
        repo.archive(path)
        with tarfile.open(path, "w:gz") as tar:
            for f in sorted(p for p in pkg.rglob("*") if p.is_file() and "keys" not in p.parts):
                tar.add(f, f.relative_to(pkg).as_posix())
            info = tarfile.TarInfo("image/targets/padding.bin")
            info.size = len(zeros)
            tar.addfile(info, io.BytesIO(zeros))
    assert path.stat().st_size < 1024 * 1024
    result = verify_package(path, car(), store=trusting(repo, tmp_path / "t"))
    _refused(result, R.ARCHIVE_BOMB)
    assert "padding.bin" in result.refusals[0].message


def test_vin_without_assignment(pkg: Path, tmp_path: Path) -> None:
    repo = build_package(pkg)
    other = car()
    result = verify_package(
        pkg, type(other)("WDD2220461A999999", other.ecus), store=trusting(repo, tmp_path / "t")
    )
    _refused(result, R.NO_DIRECTOR_TARGETS)


def test_image_declared_larger_than_the_cap(pkg: Path, tmp_path: Path) -> None:
    repo = build_package(pkg)
    result = verify_package(pkg, car(), store=trusting(repo, tmp_path / "t"), max_image_bytes=1000)
    _refused(result, R.IMAGE_TOO_LARGE)
    assert "limit 1000" in result.refusals[0].message


def test_link_member_in_an_archive(pkg: Path, tmp_path: Path) -> None:
    repo = build_package(pkg)
    archive = repo.archive(tmp_path / "pkg.tar")
    with tarfile.open(archive, "a") as tar:
        info = tarfile.TarInfo("image/targets/passwd")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    _refused(verify_package(archive, car(), store=trusting(repo, tmp_path / "t")), R.PATH_TRAVERSAL)


def test_signed_but_malformed_custom_fields(pkg: Path, tmp_path: Path) -> None:
    repo = build_package(pkg)
    # A faulty publishing tool signs a release counter written as text.
    targets = repo._load("image", "targets")
    targets.signed.targets["ECM-2.1.hex"].unrecognized_fields["custom"]["release_counter"] = "five"
    repo._sign_targets("image", targets)
    repo.publish()
    result = verify_package(pkg, car(), store=trusting(repo, tmp_path / "t"))
    _refused(result, R.METADATA_INVALID)
    assert "release_counter" in result.refusals[0].message


def test_hardware_number_padded_as_the_ecu_sends_it(pkg: Path, tmp_path: Path) -> None:
    repo = build_package(pkg)
    assert verify_package(
        pkg, car(ecm_hardware="HW-ECM-02\x00\x00 "), store=trusting(repo, tmp_path / "t")
    ).ok
