"""VIN validation (ISO 3779 form, 49 CFR 565 check digit) and the warning a scan gives."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from workshop_app.commands.dtc_text import scan_lines
from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.diag.ecu_spec import demo_vehicle_spec, load_vehicle_spec
from workshop_app.core.diag.model import ScanResult
from workshop_app.core.diag.report import report_html
from workshop_app.core.diag.scan import ScanOptions, VehicleScanner
from workshop_app.core.diag.vin import check_digit, vin_problems
from workshop_app.core.sources.simulator import SimulatorSource

REPO = Path(__file__).resolve().parents[2]
BAD_VIN = "WSA0DEMO5T0000421"  # the letter O, twice


@pytest.mark.parametrize(
    ("vin", "digit"),
    [
        ("1M8GDM9AXKP042788", "X"),
        ("11111111111111111", "1"),
        ("1HGCM82633A004352", "3"),
    ],
)
def test_check_digit_follows_49_cfr_565(vin, digit):
    assert check_digit(vin) == digit
    assert vin_problems(vin) == ()


def test_forbidden_letters_wrong_length_and_other_characters_are_named():
    assert vin_problems(BAD_VIN) == ("contains O, which no VIN may contain (ISO 3779: no I, O or Q)",)
    (problem,) = vin_problems("WVWZZZ1JZXW00001")
    assert "16 characters" in problem
    assert any("'-'" in p for p in vin_problems("WVWZZZ1JZXW-00001"))
    assert len(vin_problems("1M8GDM9AIKQ042788")) == 1  # I and Q in one sentence
    assert vin_problems("") == () and vin_problems("  1M8GDM9AXKP042788 ") == ()


def test_check_digit_is_a_warning_only_where_the_law_makes_it_one():
    (problem,) = vin_problems("1M8GDM9A1KP042788")  # North America: position 9 must be X
    assert "check digit" in problem and "X" in problem
    assert vin_problems("LVSHCAMB5CE000001") != ()  # China (GB 16735) too
    assert vin_problems("WVWZZZ1JZXW000001") == ()  # Europe: position 9 is free


def test_every_vin_shipped_is_valid():
    assert vin_problems(demo_vehicle_spec().vin) == ()
    specs = sorted((REPO / "resources").rglob("*.json"))
    vins = [load_vehicle_spec(p).vin for p in specs if '"vin"' in p.read_text()]
    assert vins and all(vin_problems(v) == () for v in vins)


@pytest.fixture
def sim() -> Iterator[SimulatorSource]:
    src = SimulatorSource(FrameRing(), pace_bitrate=None)
    src.start()
    try:
        yield src
    finally:
        src.stop()


def _report_bad_vin(src: SimulatorSource, vin: str) -> None:
    # as if the ECUs had been programmed with a damaged VIN: UDS F190 and OBD mode 09 both
    assert src.ecus is not None
    for ecu in src.ecus.ecus.values():
        ecu.vin = vin
        if ecu.obd is not None:
            ecu.obd.vin = vin


def test_a_car_reporting_an_invalid_vin_gets_a_warning_in_scan_cli_json_and_report(sim):
    _report_bad_vin(sim, BAD_VIN)
    spec = demo_vehicle_spec()
    result = VehicleScanner(
        sim.bus, sim.notifier, spec, options=ScanOptions(sweep=False), connection=sim.describe()
    ).scan()
    assert result.vin == BAD_VIN  # kept as read: the warning does not hide what the car said
    assert result.vin_warnings == vin_problems(BAD_VIN)
    assert json.loads(json.dumps(result.to_json()))["vin_warnings"] == list(vin_problems(BAD_VIN))
    lines = scan_lines(result)
    warning = [line for line in lines if "not a valid VIN" in line]
    assert len(warning) == 1 and "contains O" in warning[0] and BAD_VIN in warning[0]
    html = report_html(result)
    assert "not a valid VIN" in html and "contains O" in html


def test_a_valid_vin_gives_no_warning():
    result = ScanResult(started=time.time(), vin=demo_vehicle_spec().vin)
    assert result.vin_warnings == ()
    assert not any("valid VIN" in line for line in scan_lines(result))
    assert "not a valid VIN" not in report_html(result)
