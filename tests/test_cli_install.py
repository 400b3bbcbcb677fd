"""`workshop update install PKG`: the demo car's ECM flashed from a signed package over socketcand.

The car (simulated vehicle and its ECUs) runs in this process on a virtual bus served over
socketcand, as a real car behind a socketcand adapter would; the CLI runs in-process.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.sim_packages import VIN, build_sim_package
from helpers.update_cli import served, trust

from workshop_app.cli import main


def test_install_flashes_the_ecm_with_a_progress_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pkg = tmp_path / "pkg"
    build_sim_package(pkg, size=32 * 1024)
    trust(pkg)
    with served(tmp_path) as (car, link):
        code = main(["update", "install", str(pkg), "--yes", *link])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert car.net.ecu("ECM").flash.software_version == "SW 0500"  # type: ignore[union-attr]
    assert f"car {VIN}" in out
    assert "ECM: SW 0412 -> SW 0500, release 1 -> 2, 32,768 bytes" in out
    assert "ECM: flashed SW 0412 -> SW 0500" in out and "audit #1: ECM success" in out
    # The bar: bytes, percent, rate and time left, ending at 100 %.
    assert "ECM: download" in err and "32,768 / 32,768 B  100.0 %" in err and "KiB/s" in err


def test_install_json_and_a_refused_package(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pkg = tmp_path / "pkg"
    build_sim_package(pkg, ecm_hardware=("HW H99",))
    trust(pkg)
    capsys.readouterr()
    with served(tmp_path) as (car, link):
        code = main(["update", "install", str(pkg), "--yes", "--json", *link])
        out, err = capsys.readouterr()
        assert car.watch.programming_requests() == []
    assert code == 2, err
    data = json.loads(out)
    assert data["plan"]["ok"] is False and data["plan"]["vin"] == VIN
    assert [r["code"] for r in data["plan"]["refusals"]] == ["hardware_not_allowed"]
    assert data["outcome"]["result"] == "refused" and data["outcome"]["audit"][0]["result"] == "refused"


def test_install_without_yes_and_without_a_terminal_flashes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pkg = tmp_path / "pkg"
    build_sim_package(pkg)
    trust(pkg)
    with served(tmp_path) as (car, link):
        assert main(["update", "install", str(pkg), *link]) == 1
        assert car.watch.programming_requests() == []
    out, err = capsys.readouterr()
    assert "verified; the update would flash:" in out and "confirm with --yes" in err
