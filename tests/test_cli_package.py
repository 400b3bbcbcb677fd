"""The publisher CLI builds a package end to end; `workshop update check` verifies it for a car."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers.update_packages import BCM_ADDRESS, BCM_BINARY, ECM_SEGMENTS, VIN, write_ihex

from workshop_app.cli import main

FACTS = {
    "vin": VIN,
    "ecus": {
        "ECM": {
            "hardware": "HW-ECM-01",
            "bootloader": "BL-02.01",
            "software_version": "2.0",
            "release_counter": 4,
        },
        "BCM": {
            "hardware": "HW-BCM-01",
            "bootloader": "BL-01.00",
            "software_version": "1.0",
            "release_counter": 2,
        },
    },
}


def _build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    pkg = tmp_path / "pkg"
    hexfile = write_ihex(tmp_path / "ecm.hex")
    (tmp_path / "bcm.bin").write_bytes(BCM_BINARY)
    assert main(["package", "init", str(pkg), "--threshold", "2", "--expires", "30"]) == 0
    assert main(
        ["package", "add", str(pkg), str(hexfile), "--ecu", "ECM", "--version", "2.1", "--release-counter", "5",
         "--hardware", "HW-ECM-01,HW-ECM-02", "--min-bootloader", "BL-02.00", "--depends", "BCM>=1.1"]
    ) == 0  # fmt: skip
    assert main(
        ["package", "add", str(pkg), str(tmp_path / "bcm.bin"), "--ecu", "BCM", "--version", "1.1",
         "--release-counter", "3", "--hardware", "HW-BCM-01", "--address", hex(BCM_ADDRESS)]
    ) == 0  # fmt: skip
    assert main(["package", "assign", str(pkg), "--vin", VIN, "ECM-2.1.hex", "BCM-1.1.bin"]) == 0
    assert main(["package", "publish", str(pkg), "--archive", str(tmp_path / "pkg.tar.gz")]) == 0
    capsys.readouterr()
    return pkg


def test_publisher_cli_then_check_from_the_archive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pkg = _build(tmp_path, capsys)
    assert len(list((pkg / "keys").glob("image-*.pem"))) == 8  # 2 per role
    (tmp_path / "car.json").write_text(json.dumps(FACTS))
    archive = tmp_path / "pkg.tar.gz"
    # Before trusting the manufacturer's roots nothing is accepted.
    assert main(["update", "check", str(archive), "--facts", str(tmp_path / "car.json")]) == 2
    assert "no_trusted_root" in capsys.readouterr().err
    assert main(
        ["update", "trust", "--image-root", str(pkg / "image/metadata/1.root.json"),
         "--director-root", str(pkg / "director/metadata/1.root.json")]
    ) == 0  # fmt: skip
    assert str(Path(os.environ["WORKSHOP_HOME"]) / "update") in capsys.readouterr().out
    assert main(["update", "check", str(archive), "--facts", str(tmp_path / "car.json"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["refusals"] == []
    ecm = next(i for i in out["images"] if i["ecu"] == "ECM")
    assert [(s["address"], s["length"]) for s in ecm["segments"]] == [(a, len(d)) for a, d in ECM_SEGMENTS]
    assert {(c["ecu"], c["from_version"], c["to_version"]) for c in out["changes"]} == {
        ("ECM", "2.0", "2.1"),
        ("BCM", "1.0", "1.1"),
    }
    assert main(["update", "check", str(pkg), "--facts", str(tmp_path / "car.json")]) == 0
    text = capsys.readouterr().out
    assert "ECM: 2.0 -> 2.1, release 4 -> 5" in text
    # The director's timestamp keys rotated: the workshop follows the new root and still verifies.
    assert main(["package", "rotate", str(pkg), "--repository", "director", "--role", "timestamp"]) == 0
    assert "root version 2" in capsys.readouterr().out
    assert main(["package", "publish", str(pkg)]) == 0
    assert main(["update", "check", str(pkg), "--facts", str(tmp_path / "car.json")]) == 0


def test_check_refusal_names_code_and_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pkg = _build(tmp_path, capsys)
    main(["update", "trust", "--image-root", str(pkg / "image/metadata/1.root.json"),
          "--director-root", str(pkg / "director/metadata/1.root.json")])  # fmt: skip
    capsys.readouterr()
    status = main(
        ["update", "check", str(pkg), "--vin", VIN, "--ecu", "ECM:HW-ECM-77:BL-02.01:2.0:4",
         "--ecu", "BCM:HW-BCM-01:BL-01.00:1.0:2", "--json"]
    )  # fmt: skip
    assert status == 2
    out = json.loads(capsys.readouterr().out)
    assert [r["code"] for r in out["refusals"]] == ["hardware_not_allowed"]
    assert out["images"] == []


def test_publish_warns_when_keys_are_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pkg = _build(tmp_path, capsys)
    (pkg / "keys/director-timestamp-1.pem").unlink()
    assert main(["package", "sign", str(pkg)]) == 0
    assert "director timestamp: 1 key(s) for a threshold of 2" in capsys.readouterr().err


def test_inspect_folder_and_archive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pkg = _build(tmp_path, capsys)
    assert main(["package", "inspect", str(tmp_path / "pkg.tar.gz"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    ecm = info["image"]["targets"]["ECM-2.1.hex"]["custom"]
    assert ecm["depends"] == [{"ecu": "BCM", "min_version": "1.1"}]
    assert ecm["hardware"] == ["HW-ECM-01", "HW-ECM-02"] and ecm["release_counter"] == 5
    assert info["director"]["targets"][f"{VIN}/ECM-2.1.hex"]["custom"]["ecu"] == "ECM"
    assert info["archive"] is True and info["verified"] is False
    assert main(["package", "inspect", str(pkg)]) == 0
    text = capsys.readouterr().out
    assert (
        "ECU ECM 2.1 (release 5), hardware HW-ECM-01,HW-ECM-02, bootloader >= BL-02.00, depends BCM>=1.1"
        in text
    )


def test_plain_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["package", "add", str(tmp_path / "nothing"), str(tmp_path / "x.hex"), "--ecu", "E",
                 "--version", "1", "--release-counter", "1", "--hardware", "H"]) == 1  # fmt: skip
    assert "no package here" in capsys.readouterr().err
    pkg = _build(tmp_path, capsys)
    assert main(["package", "add", str(pkg), str(tmp_path / "bcm.bin"), "--ecu", "BCM", "--version", "1",
                 "--release-counter", "1", "--hardware", "H"]) == 1  # fmt: skip
    assert "needs its load address" in capsys.readouterr().err
    assert main(["package", "assign", str(pkg), "--vin", "SHORT", "ECM-2.1.hex"]) == 1
    assert "VIN 'SHORT'" in capsys.readouterr().err
    assert main(["package", "add", str(pkg), str(tmp_path / "bcm.bin"), "--ecu", "BCM", "--version", "1",
                 "--release-counter", "1", "--hardware", "H", "--address", "0", "--depends", "BCM"]) == 1  # fmt: skip
    assert "ECU>=VERSION" in capsys.readouterr().err
