"""Packages built with the publisher API, read through both fetchers, verified on the good path."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.update_packages import BCM_ADDRESS, BCM_BINARY, ECM_SEGMENTS, VIN, build_package, car, trusting

from workshop_app.core.errors import WorkshopError
from workshop_app.core.update import refusals as R
from workshop_app.core.update.repository import PackageRepository
from workshop_app.core.update.verify import TrustStore, verify_package


def _assert_good(result, package_name: str = "") -> None:  # type: ignore[no-untyped-def]
    assert result.refusals == (), result.refusals
    assert result.ok
    images = {i.ecu: i for i in result.images}
    ecm = images["ECM"]
    assert [(s.address, s.data) for s in ecm.segments] == list(ECM_SEGMENTS)  # byte-exact, two segments
    assert ecm.software_version == "2.1" and ecm.release_counter == 5
    assert ecm.hardware == ("HW-ECM-01", "HW-ECM-02") and ecm.min_bootloader == "BL-02.00"
    bcm = images["BCM"]
    assert [(s.address, s.data) for s in bcm.segments] == [(BCM_ADDRESS, BCM_BINARY)]
    changes = {c.ecu: c for c in result.changes}
    assert (changes["ECM"].from_version, changes["ECM"].to_version) == ("2.0", "2.1")
    assert (changes["BCM"].from_counter, changes["BCM"].to_counter) == (2, 3)


def test_folder_package_verifies_into_flash_images(tmp_path: Path) -> None:
    repo = build_package(tmp_path / "pkg")
    store = trusting(repo, tmp_path / "trust")
    _assert_good(verify_package(tmp_path / "pkg", car(), store=store))
    # Trusted metadata is kept per repository in the store, as tuf left it.
    assert (store.metadata_dir("image") / "timestamp.json").is_file()
    assert (store.metadata_dir("director") / "targets.json").is_file()


@pytest.mark.parametrize("suffix", [".tar", ".tar.gz"])
def test_archive_package_without_keys(tmp_path: Path, suffix: str) -> None:
    repo = build_package(tmp_path / "pkg")
    archive = repo.archive(tmp_path / f"pkg{suffix}")
    import tarfile

    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert not [n for n in names if "keys" in n or n.endswith(".pem")]
    _assert_good(verify_package(archive, car(), store=trusting(repo, tmp_path / "trust")))


def test_zip_package_with_a_top_folder(tmp_path: Path) -> None:
    import zipfile

    repo = build_package(tmp_path / "pkg")
    with zipfile.ZipFile(tmp_path / "pkg.zip", "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(tmp_path.joinpath("pkg").rglob("*")):
            if path.is_file() and "keys" not in path.parts:
                z.write(path, "release-7/" + path.relative_to(tmp_path / "pkg").as_posix())
    _assert_good(verify_package(tmp_path / "pkg.zip", car(), store=trusting(repo, tmp_path / "trust")))


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    served = tmp_path / "www"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))

    class Quiet(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
            pass

    server = Quiet(("127.0.0.1", 0), handler)
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_http_package_from_a_real_server(tmp_path: Path, http_root: tuple[Path, str]) -> None:
    served, url = http_root
    repo = build_package(served / "pkg")
    store = trusting(repo, tmp_path / "trust")
    _assert_good(verify_package(f"{url}/pkg", car(), store=store))
    # A later release on the server is picked up by the same trusted store.
    repo.publish()
    _assert_good(verify_package(f"{url}/pkg/", car(), store=store))
    ts = json.loads((store.metadata_dir("image") / "timestamp.json").read_text())
    assert ts["signed"]["version"] == 3


def test_http_missing_package_is_refused_plainly(tmp_path: Path, http_root: tuple[Path, str]) -> None:
    _served, url = http_root
    repo = build_package(tmp_path / "pkg")
    result = verify_package(f"{url}/nothing-here", car(), store=trusting(repo, tmp_path / "trust"))
    assert result.codes == [R.PACKAGE_UNREADABLE]
    assert "nothing-here" in str(result.refusals[0])


def test_without_a_trusted_root_nothing_is_taken_from_the_package(tmp_path: Path) -> None:
    build_package(tmp_path / "pkg")
    result = verify_package(tmp_path / "pkg", car(), store=TrustStore(tmp_path / "trust"))
    assert result.codes == [R.NOT_TRUSTED]
    assert not (tmp_path / "trust" / "metadata" / "image" / "root.json").exists()


def test_trust_refuses_a_file_that_is_not_a_self_signed_root(tmp_path: Path) -> None:
    repo = build_package(tmp_path / "pkg")
    with pytest.raises(WorkshopError, match="not a root"):
        TrustStore(tmp_path / "t").trust(
            tmp_path / "pkg/image/metadata/targets.json", repo.trusted_root("director")
        )
    data = json.loads(repo.trusted_root("image").read_text())
    data["signed"]["expires"] = "2099-01-01T00:00:00Z"
    (tmp_path / "edited.json").write_text(json.dumps(data))
    with pytest.raises(WorkshopError, match="not signed by its own keys"):
        TrustStore(tmp_path / "t").trust(tmp_path / "edited.json", repo.trusted_root("director"))


def test_publisher_refuses_unsafe_names_and_raw_binaries_without_address(tmp_path: Path) -> None:
    repo = PackageRepository.init(tmp_path / "pkg")
    (tmp_path / "a.bin").write_bytes(b"\x00" * 16)
    with pytest.raises(WorkshopError, match="target name"):
        repo.add_image(
            tmp_path / "a.bin",
            ecu="ECM",
            version="1",
            release_counter=1,
            hardware=["H"],
            address=0,
            name="../x",
        )
    with pytest.raises(WorkshopError, match="address"):
        repo.add_image(tmp_path / "a.bin", ecu="ECM", version="1", release_counter=1, hardware=["H"])
    with pytest.raises(WorkshopError, match="already here"):
        PackageRepository.init(tmp_path / "pkg")
    assert oct((tmp_path / "pkg/keys/image-root-1.pem").stat().st_mode & 0o777) == "0o600"


def test_default_target_name_of_a_version_as_ecus_report_it(tmp_path: Path) -> None:
    # The demo ECUs report versions like "SW 0500": the default name must still be a safe one.
    repo = PackageRepository.init(tmp_path / "pkg")
    (tmp_path / "a.bin").write_bytes(b"\x00" * 16)
    name = repo.add_image(
        tmp_path / "a.bin", ecu="ECM", version="SW 0500", release_counter=2, hardware=["HW H13"], address=0
    )
    assert name == "ECM-SW_0500.bin"


def test_segments_match_the_signed_custom_fields(tmp_path: Path) -> None:
    repo = build_package(tmp_path / "pkg")
    targets = json.loads((tmp_path / "pkg/image/metadata/targets.json").read_text())["signed"]["targets"]
    custom = targets["ECM-2.1.hex"]["custom"]
    assert custom["segments"] == [[a, len(d)] for a, d in ECM_SEGMENTS]
    assert custom["format"] == "ihex" and custom["ecu"] == "ECM"
    director = json.loads((tmp_path / "pkg/director/metadata/targets.json").read_text())["signed"]["targets"]
    assert director[f"{VIN}/ECM-2.1.hex"]["hashes"] == targets["ECM-2.1.hex"]["hashes"]
    assert repo.trusted_root("image").is_file()


def test_inspect_over_http(tmp_path: Path, http_root: tuple[Path, str]) -> None:
    from workshop_app.core.update.inspect import inspect_package

    served, url = http_root
    build_package(served / "pkg")
    info = inspect_package(f"{url}/pkg")
    assert info["verified"] is False and info["archive"] is False
    assert info["image"]["targets"]["BCM-1.1.bin"]["custom"]["address"] == BCM_ADDRESS
    assert set(info["director"]["targets"]) == {f"{VIN}/ECM-2.1.hex", f"{VIN}/BCM-1.1.bin"}


def test_s_record_and_intel_hex_read_to_the_same_segments(tmp_path: Path) -> None:
    import bincopy

    from workshop_app.core.update.imagefile import read_segments

    binfile = bincopy.BinFile()
    for address, data in ECM_SEGMENTS:
        binfile.add_binary(data, address=address)
    from_srec = read_segments(binfile.as_srec().encode(), "x.s19")
    from_hex = read_segments(binfile.as_ihex().encode(), "x.hex")
    assert from_srec == from_hex
    assert [(s.address, s.data) for s in from_srec] == list(ECM_SEGMENTS)
    with pytest.raises(WorkshopError, match="not a readable ihex image"):
        read_segments(b":10000000ZZ\n", "broken.hex")


def test_http_refuses_an_image_longer_than_signed(tmp_path: Path, http_root: tuple[Path, str]) -> None:
    served, url = http_root
    repo = build_package(served / "pkg")
    (target,) = (served / "pkg/image/targets").glob("*.ECM-2.1.hex")
    target.write_bytes(target.read_bytes() + b"\x00" * 1_000_000)  # the server streams it all
    result = verify_package(f"{url}/pkg", car(), store=trusting(repo, tmp_path / "trust"))
    assert result.codes == [R.ENDLESS_DATA] and not result.images


def test_key_rotation_is_followed_and_retired_keys_are_refused(tmp_path: Path) -> None:
    repo = build_package(tmp_path / "pkg")
    store = trusting(repo, tmp_path / "trust")
    assert verify_package(tmp_path / "pkg", car(), store=store).ok
    assert repo.rotate_keys("image", "targets") == 2
    assert repo.rotate_keys("image", "root") == 3
    repo.publish()
    # The workshop still trusts only root v1 on file, and follows v2 and v3 from the package.
    assert verify_package(tmp_path / "pkg", car(), store=store).ok
    cached = json.loads((store.metadata_dir("image") / "root.json").read_text())
    assert cached["signed"]["version"] == 3
    # Whoever holds the retired targets key can no longer sign for the image repository.
    keys = tmp_path / "pkg/keys"
    (retired,) = (keys / "retired").glob("image-targets-1-*.pem")
    retired.replace(keys / "image-targets-1.pem")
    repo.publish(expires_days=30)
    result = verify_package(tmp_path / "pkg", car(), store=store)
    assert result.codes == [R.UNKNOWN_KEY], result.refusals
