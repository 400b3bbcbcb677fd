"""`workshop dtc ...` end to end on the simulated vehicle, with a real history file."""

from __future__ import annotations

import json
import subprocess

import pytest
from helpers.processes import ENV, WORKSHOP, free_port, simulator_process
from helpers.waiting import wait_until

from workshop_app.cli import main
from workshop_app.core.diag.dtc import CONFIRMED
from workshop_app.core.history import HistoryStore

FAULTS = ["--fault", "coolant_sensor_open", "--fault", "wheel_speed_fl_dropout", "--settle", "2.3"]


def test_scan_clear_history_and_report(capsys, tmp_path):
    history = tmp_path / "h.db"
    assert main(["dtc", "scan", *FAULTS, "--no-sweep", "--json", "--history", str(history)]) == 0
    scan = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in scan["ecus"]] == ["ECM", "TCM", "ABS", "BCM", "GW"]
    codes = {e["name"]: [d["code"] for d in e["dtcs"]] for e in scan["ecus"]}
    assert codes == {"ECM": ["P0118"], "TCM": [], "ABS": ["C0035"], "BCM": [], "GW": []}
    p0118 = scan["ecus"][0]["dtcs"][0]
    assert p0118["description"] and p0118["uds"] == "011800"
    assert {"name": "Coolant temperature", "value": -40, "unit": "°C", "did": 0x1002} in p0118["snapshots"][
        "1"
    ]

    args = ["dtc", "clear", *FAULTS, "--repair", "--yes", "--no-sweep", "--history", str(history)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "gone           ECM    P0118" in out and "gone           ABS    C0035" in out
    with HistoryStore(history) as store:
        rows = store.scans()
        assert [r.label.value for r in rows] == ["post-repair", "pre-repair", ""]
        assert [r.dtc_count for r in rows] == [0, 2, 2]
        timeline = store.timeline(scan["vin"])
        assert [e.kind for e in timeline].count("clear") == 5

    assert main(["dtc", "history", "--history", str(history)]) == 0
    listing = capsys.readouterr().out
    assert "post-repair" in listing and "pre-repair" in listing
    report = tmp_path / "report.html"
    assert main(["dtc", "report", str(report), "--history", str(history), "--workshop", "Test Garage"]) == 0
    html = report.read_text(encoding="utf-8")
    # The latest scan was the post-repair one: the report pairs it with the pre-repair scan.
    assert "Test Garage" in html and "P0118" in html and "C0035" in html and "Cleared" in html


def test_dtc_errors_are_one_line(capsys, tmp_path):
    assert main(["dtc", "scan", "--fault", "no_such_fault", "--no-history"]) == 1
    err = capsys.readouterr().err
    assert "unknown fault 'no_such_fault'" in err and "Traceback" not in err
    assert main(["dtc", "history", "--history", str(tmp_path / "none.db")]) == 1
    assert "no history yet" in capsys.readouterr().err
    bad_spec = tmp_path / "spec.json"
    bad_spec.write_text('{"ecus": [ {"name": "X",, }]}')
    assert main(["dtc", "scan", "--spec", str(bad_spec), "--no-history"]) == 1
    assert f"{bad_spec}:1:" in capsys.readouterr().err


def test_scan_the_simulator_of_another_process_over_socketcand():
    port = free_port()
    command = [*WORKSHOP, "dtc", "scan", "-i", "socketcand", "--port", str(port), "--json", "--no-history"]

    def confirmed_misfire() -> dict | None:
        scan = subprocess.run(command, capture_output=True, text=True, timeout=120, env=ENV)
        assert scan.returncode == 0, scan.stderr
        result = json.loads(scan.stdout)
        ecm = next(e for e in result["ecus"] if e["name"] == "ECM")
        # On a loaded machine the simulator, running 20 times faster than the car, may answer
        # one ECU's request late on one pass: that pass reports it missing and the next is taken.
        answered = all(e["state"] != "missing" for e in result["ecus"])
        return result if answered and any(d["status"] & CONFIRMED for d in ecm["dtcs"]) else None

    # At 20 times the simulated pace the engine starts and the misfire confirms in well under a
    # second; the scan is repeated until every ECU answers and the ECM reports it confirmed.
    with simulator_process(port, "--fault", "misfire_cyl2", "--time-scale", "20") as sim:
        result = wait_until(
            confirmed_misfire, 120, "every ECU to answer and the ECM to report P0302 confirmed"
        )
    ecm = next(e for e in result["ecus"] if e["name"] == "ECM")
    assert [d["code"] for d in ecm["dtcs"]] == ["P0302"]
    assert result["connection"].startswith("socketcand")
    assert "diagnostic ECUs answering: ECM, TCM, ABS, BCM, GW" in sim.stderr_text


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # cantools' CDD support is deprecated
def test_import_cdd_writes_a_description_that_loads(capsys, tmp_path, shared_data):
    out = tmp_path / "ex.json"
    cdd = shared_data / "uds" / "cantools_example.cdd"
    args = [
        "dtc",
        "import-cdd",
        str(cdd),
        "-o",
        str(out),
        "--ecu",
        "EX",
        "--request",
        "0x7E2",
        "--response",
        "0x7EA",
    ]
    assert main(args) == 0
    assert "EX with 13 DIDs" in capsys.readouterr().out
    spec = json.loads(out.read_text())
    assert spec["ecus"][0]["request_id"] == "0x7E2"
    assert {d["name"] for d in spec["ecus"][0]["dids"]} >= {"A_D_Werte", "Serial_Number", "Coding"}
