"""`workshop record` indexing into the history, and `workshop history`, run in-process."""

from __future__ import annotations

import json
import re

import can
import pytest

from workshop_app.cli import main
from workshop_app.core.history import HistoryStore
from workshop_app.core.history.location import default_history_path


@pytest.fixture(autouse=True)
def workshop_home(monkeypatch, tmp_path):
    """Never touch the real ~/.local/share/workshop."""
    home = tmp_path / "home"
    monkeypatch.setenv("WORKSHOP_HOME", str(home))
    return home


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_record_indexes_the_recording_and_history_lists_it(capsys, tmp_path, workshop_home):
    out = tmp_path / "drive.blf"
    code, stdout, err = _run(capsys, "record", str(out), "--duration", "1.0")
    assert code == 0, err
    written = int(stdout.split(" frames written")[0])
    assert written > 100
    match = re.search(r"recording id (\d+) in (.+)$", stdout, re.MULTILINE)
    assert match, stdout
    assert match.group(2) == str(workshop_home / "history.db") == str(default_history_path())

    code, listing, err = _run(capsys, "history", "--json")
    assert code == 0, err
    (entry,) = json.loads(listing)
    assert entry["id"] == int(match.group(1))
    assert entry["path"] == str(out.resolve()) and entry["format"] == "blf"
    assert entry["frames"] == written == sum(1 for _ in can.LogReader(out))
    assert entry["dropped"] == 0 and entry["size_bytes"] == out.stat().st_size
    assert entry["source"].startswith("simulated vehicle")
    assert entry["started"].endswith("+00:00") and entry["duration_s"] >= 0.9

    code, table, _ = _run(capsys, "history")
    assert code == 0
    header, row = table.splitlines()
    assert header.split()[:2] == ["id", "started"]
    assert row.split()[0] == match.group(1) and row.endswith(str(out.resolve()))
    assert f"{written:,}" in row


def test_explicit_history_file_and_no_history(capsys, tmp_path, workshop_home):
    custom = tmp_path / "bench" / "runs.db"
    code, stdout, err = _run(
        capsys, "record", str(tmp_path / "a.log"), "--duration", "0.3", "--history", str(custom)
    )
    assert code == 0, err
    assert f"recording id 1 in {custom}" in stdout
    assert not (workshop_home / "history.db").exists()

    code, stdout, err = _run(capsys, "record", str(tmp_path / "b.log"), "--duration", "0.3", "--no-history")
    assert code == 0, err
    assert "recording id" not in stdout
    assert not (workshop_home / "history.db").exists()

    code, listing, _ = _run(capsys, "history", "--history", str(custom), "--json")
    assert [e["path"] for e in json.loads(listing)] == [str((tmp_path / "a.log").resolve())]
    assert json.loads(listing)[0]["format"] == "candump"


def test_history_vehicles_and_filter_by_vin(capsys, tmp_path, workshop_home):
    from workshop_app.core.capture.recorder import RecordingSummary

    with HistoryStore(default_history_path()) as store:
        golf = store.add_vehicle(vin="WVWZZZ1JZXW000001", make="VW", model="Golf", year=1999)
        store.add_vehicle(make="Fiat", model="Panda")
        for i, vehicle in enumerate((golf, None, golf)):
            path = tmp_path / f"r{i}.asc"
            path.write_text("x")
            store.index_recording(RecordingSummary(path, 1_700_000_000.0 + i, 1.0, 10, 0), "sim", vehicle)

    code, out, err = _run(capsys, "history", "vehicles", "--json")
    assert code == 0, err
    vehicles = json.loads(out)
    assert [v["make"] for v in vehicles] == ["Fiat", "VW"]
    assert vehicles[1]["vin"] == "WVWZZZ1JZXW000001" and vehicles[1]["year"] == 1999

    code, out, _ = _run(capsys, "history", "vehicles")
    assert code == 0 and "WVWZZZ1JZXW000001" in out and "Panda" in out

    code, out, _ = _run(capsys, "history", "--vin", "wvwzzz1jzxw000001", "--json")
    assert [e["path"].rsplit("/", 1)[1] for e in json.loads(out)] == ["r2.asc", "r0.asc"]
    code, out, _ = _run(capsys, "history", "--limit", "1", "--json")
    assert [e["path"].rsplit("/", 1)[1] for e in json.loads(out)] == ["r2.asc"]

    code, _, err = _run(capsys, "history", "--vin", "VF1AAAAA555000001")
    assert code == 1 and "no vehicle with VIN VF1AAAAA555000001" in err and err.count("\n") == 1


def test_history_without_a_file_creates_none(capsys, workshop_home):
    code, out, err = _run(capsys, "history", "--json")
    assert code == 0 and json.loads(out) == []
    code, out, err = _run(capsys, "history", "vehicles")
    assert code == 0 and out == "" and "no history yet" in err
    assert not workshop_home.exists()


def test_corrupt_history_is_a_one_line_error_and_nothing_is_recorded(capsys, tmp_path):
    bad = tmp_path / "history.db"
    bad.write_text("not a database, just text\n" * 40)
    out = tmp_path / "never.blf"
    code, stdout, err = _run(capsys, "record", str(out), "--duration", "0.3", "--history", str(bad))
    assert code == 1
    assert err.count("\n") == 1 and str(bad) in err and "not a readable SQLite database" in err
    assert "Traceback" not in err and stdout == ""
    assert not out.exists()
    code, _, err = _run(capsys, "history", "--history", str(bad))
    assert code == 1 and str(bad) in err and err.count("\n") == 1
    assert bad.read_text() == "not a database, just text\n" * 40


def test_history_and_no_history_exclude_each_other(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["record", str(tmp_path / "x.blf"), "--no-history", "--history", str(tmp_path / "h.db")])
    assert "not allowed with" in capsys.readouterr().err
