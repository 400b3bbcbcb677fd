"""The `workshop` command line, run as a user would (in-process for speed, subprocess for the
two-terminal socketcand scenario)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import can
import cantools
import pytest
from helpers.processes import ENV, free_port, simulator_process

from workshop_app.cli import main

REPO = Path(__file__).resolve().parents[1]


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_info_loads_every_shared_dbc(capsys, shared_data):
    dbcs = sorted((shared_data / "dbc").glob("*.dbc"))
    assert len(dbcs) == 11
    for path in dbcs:
        code, out, err = _run(capsys, "info", str(path), "--json")
        assert code == 0, f"{path.name}: {err}"
        info = json.loads(out)
        assert info["messages"] > 0, path.name
    code, out, _ = _run(capsys, "info", str(shared_data / "dbc" / "tesla_can.dbc"))
    assert code == 0
    assert "warning(s) while loading" in out and "tesla_can.dbc:" in out


def test_info_on_demo_vehicle_lists_its_messages(capsys):
    code, out, _ = _run(capsys, "info", str(REPO / "dbc" / "demo_vehicle.dbc"), "--json", "--signals")
    assert code == 0
    info = json.loads(out)
    assert info["messages"] >= 12 and info["warnings"] == []
    assert any(m["fd"] and m["length"] > 8 for m in info["message_list"])
    assert any(m["extended"] for m in info["message_list"])
    assert any(m["multiplexed"] for m in info["message_list"])


def test_info_syntax_error_names_file_and_line_without_traceback(capsys, tmp_path):
    bad = tmp_path / "broken.dbc"
    bad.write_text(
        'VERSION ""\n\nNS_ :\n\nBS_:\n\nBU_: ECU\n\n'
        "BO_ 256 Engine: 8 ECU\n"
        ' SG_ Rpm : 0|16@1+ (0.25,0) [0|16383] "rpm" Vector__XXX\n'
        ' SG_ Temp : 16|8@1+ (1,-40 [-40|215] "degC" Vector__XXX\n'
    )
    code, _, err = _run(capsys, "info", str(bad))
    assert code != 0
    assert "Traceback" not in err
    assert "broken.dbc:11" in err
    assert err.count("\n") == 1


def test_missing_files_are_one_line_errors(capsys, tmp_path):
    code, _, err = _run(capsys, "info", str(tmp_path / "none.dbc"))
    assert code == 1 and "none.dbc" in err and err.count("\n") == 1
    code, _, err = _run(
        capsys, "decode", str(tmp_path / "none.log"), "--dbc", str(REPO / "dbc" / "demo_vehicle.dbc")
    )
    assert code == 1 and "none.log" in err


def test_decode_real_tesla_log_matches_cantools(capsys, tmp_path, shared_data):
    log = shared_data / "logs" / "savvycan_tesla_model_s_candump.log"
    dbc = shared_data / "dbc" / "tesla_powertrain.dbc"
    out_csv = tmp_path / "tesla.csv"
    code, _, err = _run(capsys, "decode", str(log), "--dbc", str(dbc), "-o", str(out_csv))
    assert code == 0, err
    assert "12974 frames, 2423 decoded" in err

    db = cantools.database.load_file(dbc, strict=False)
    expected = []
    for msg in can.LogReader(log):
        try:
            m = db.get_message_by_frame_id(msg.arbitration_id)
        except KeyError:
            continue
        for name, value in m.decode(bytes(msg.data), decode_choices=False).items():
            expected.append((round(msg.timestamp, 6), m.name, name, float(value)))
    with out_csv.open() as f:
        rows = list(csv.DictReader(f))
    got = [(round(float(r["timestamp"]), 6), r["message"], r["signal"], float(r["value"])) for r in rows]
    assert len(got) == len(expected) > 10_000
    assert got == expected
    labelled = [r for r in rows if r["label"]]
    assert labelled, "value-table signals carry their state names"


def test_decode_reports_undecodable_short_frames(capsys, tmp_path):
    log = tmp_path / "short.log"
    db = cantools.database.load_file(REPO / "dbc" / "demo_vehicle.dbc")
    m = next(m for m in db.messages if not m.is_extended_frame and m.length == 8)
    log.write_text(f"(1.0) can0 {m.frame_id:03X}#0102\n(1.1) can0 7FF#00\n")
    code, _, err = _run(capsys, "decode", str(log), "--dbc", str(REPO / "dbc" / "demo_vehicle.dbc"))
    assert code == 0
    assert "2 frames, 0 decoded, 1 with ids not in the databases, 1 undecodable" in err


def test_record_from_the_simulator_then_decode(capsys, tmp_path):
    out = tmp_path / "sim.blf"
    code, stdout, err = _run(capsys, "record", str(out), "--duration", "1.5")
    assert code == 0, err
    written = int(stdout.split(" frames written")[0])
    assert written > 100
    assert "0 dropped" in stdout
    assert sum(1 for _ in can.LogReader(out)) == written


def test_monitor_on_the_simulator_shows_decoded_values(capsys):
    code, out, err = _run(capsys, "monitor", "--duration", "1.5", "--interval", "0.5")
    assert code == 0, err
    final = out.split("--- final\n", 1)[1]
    db = cantools.database.load_file(REPO / "dbc" / "demo_vehicle.dbc")
    names = {m.name for m in db.messages}
    shown = {line.split()[2] for line in final.splitlines()[1:] if line.startswith("can0 ")}
    assert len(shown & names) >= 10


def test_unknown_fault_and_interface_are_plain_errors(capsys):
    code, _, err = _run(capsys, "simulate", "--fault", "no_such_fault", "--duration", "0.1")
    assert code == 1 and "no_such_fault" in err
    code, _, err = _run(capsys, "monitor", "-i", "no_such_iface", "--duration", "0.1")
    assert code == 1 and "no_such_iface" in err and "Traceback" not in err


def _workshop(*argv: str) -> list[str]:
    return [sys.executable, "-m", "workshop_app", *argv]


def test_simulate_serve_socketcand_and_monitor_in_another_process():
    port = free_port()
    with simulator_process(port) as sim:
        mon = subprocess.run(
            # 4 s: the ECM's frames start at key-on (1 s into the drive), and our client connects
            # sooner than python-can's did, so a loaded machine could end 2 s before it.
            _workshop("monitor", "-i", "socketcand", "--port", str(port), "--duration", "4"),
            capture_output=True,
            text=True,
            timeout=60,
            env=ENV,
        )
    assert mon.returncode == 0, mon.stderr
    final = mon.stdout.split("--- final\n", 1)[1]
    assert f"socketcand 127.0.0.1:{port}" in final
    assert "ENGINE_DATA" in final
    decoded_lines = [line for line in final.splitlines() if line.startswith("    ")]
    assert len(decoded_lines) > 30
    assert sim.returncode == 0, sim.stderr_text
    assert "frames sent" in sim.stderr_text


@pytest.mark.parametrize("argv", [["--version"]])
def test_version(argv):
    result = subprocess.run(_workshop(*argv), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "workshop 0.1.0" in result.stdout


def test_decode_summary_matches_cantools_statistics(capsys, shared_data):
    log = shared_data / "logs" / "savvycan_tesla_model_s_candump.log"
    dbc = shared_data / "dbc" / "tesla_powertrain.dbc"
    code, out, err = _run(capsys, "decode", str(log), "--dbc", str(dbc), "--summary", "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["frames"] == 12974 and info["decoded_frames"] == 2423
    assert info["unknown_frames"] == 12974 - 2423 and info["undecodable_frames"] == 0
    db = cantools.database.load_file(dbc, strict=False)
    values: dict[tuple[str, str], list[float]] = {}
    for msg in can.LogReader(log):
        try:
            m = db.get_message_by_frame_id(msg.arbitration_id)
        except KeyError:
            continue
        for name, value in m.decode(bytes(msg.data), decode_choices=False).items():
            values.setdefault((m.name, name), []).append(float(value))
    got = {(r["message"], r["signal"]): r for r in info["signals"]}
    assert set(got) == set(values)
    for key, vals in values.items():
        row = got[key]
        assert row["values"] == len(vals)
        assert row["min"] == min(vals) and row["max"] == max(vals)
        assert row["mean"] == pytest.approx(sum(vals) / len(vals), rel=1e-12)


def test_decode_summary_of_a_truncated_log_names_the_line(capsys, tmp_path):
    log = tmp_path / "cut.log"
    log.write_text(
        "(1.000000) can0 0C0#0102030405060708\n(1.010000) can0 0C0#01020304050607\n(1.02) can0 0C0#0G\n"
    )
    code, _, err = _run(
        capsys, "decode", str(log), "--dbc", str(REPO / "dbc" / "demo_vehicle.dbc"), "--summary"
    )
    # The damage is named once on stderr; the summary covers the frames before it.
    assert code == 0
    assert err.count("warning") == 1 and "cut.log:3: bad frame" in err and "2 frames kept" in err
    code, _, err = _run(
        capsys, "decode", str(log), "--dbc", str(REPO / "dbc" / "demo_vehicle.dbc"), "--summary", "--strict"
    )
    assert code == 1 and "cut.log:3:" in err


def test_decode_csv_of_a_damaged_log_keeps_the_rows_before_the_damage(capsys, tmp_path):
    log = tmp_path / "bad.log"
    log.write_text(
        "(1.000000) can0 0C0#0102030405060708\n(1.010000) can0 0C0#0102030405060708\n(1.02) can0 XYZ\n"
    )
    out_csv = tmp_path / "out.csv"
    code, _, err = _run(
        capsys, "decode", str(log), "--dbc", str(REPO / "dbc" / "demo_vehicle.dbc"), "-o", str(out_csv)
    )
    assert code == 0
    assert "bad.log:3" in err and "2 frames kept" in err
    with out_csv.open() as f:
        rows = list(csv.DictReader(f))
    assert {r["timestamp"] for r in rows} == {"1.000000", "1.010000"}
    assert all(r["message"] == "ENGINE_DATA" for r in rows)
