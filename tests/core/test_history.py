"""The history database, on real SQLite files in tmp_path."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from workshop_app.core.capture.recorder import Recorder, RecordingSummary
from workshop_app.core.errors import WorkshopError
from workshop_app.core.history import (
    SCHEMA_VERSION,
    HistoryError,
    HistoryFileError,
    HistoryStore,
    default_history_path,
    default_recordings_dir,
)
from workshop_app.core.types import Frame

T0 = 1_700_000_000.25


@pytest.fixture
def store(tmp_path):
    s = HistoryStore(tmp_path / "history.db")
    yield s
    s.close()


def _summary(path: Path, started: float = T0, frames: int = 100, dropped: int = 0) -> RecordingSummary:
    path.write_bytes(b"x" * 1234)
    return RecordingSummary(path, started, 12.5, frames, dropped)


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(path))


def test_new_file_gets_the_schema_and_wal(tmp_path):
    path = tmp_path / "deep" / "folder" / "history.db"
    with HistoryStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert path.with_name("history.db-wal").exists()  # WAL while open
    conn = _raw(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"schema_version", "vehicles", "recordings"} <= tables
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]
        assert versions == list(range(1, SCHEMA_VERSION + 1))
        columns = {r[1] for r in conn.execute("PRAGMA table_info(recordings)")}
        assert {"path", "format", "started", "started_epoch", "duration_s", "frames", "dropped"} <= columns
        assert {"source", "vehicle_id", "notes", "size_bytes"} <= columns
        fks = conn.execute("PRAGMA foreign_key_list(recordings)").fetchall()
        assert [(fk[2], fk[3], fk[4]) for fk in fks] == [("vehicles", "vehicle_id", "id")]
    finally:
        conn.close()


def test_reopening_does_not_migrate_again(tmp_path):
    path = tmp_path / "history.db"
    HistoryStore(path).close()
    with HistoryStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
    conn = _raw(path)
    assert conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_index_and_list_recordings(tmp_path, store):
    older = store.index_recording(_summary(tmp_path / "a.blf", T0), "simulated vehicle")
    newer = store.index_recording(
        _summary(tmp_path / "b.asc.gz", T0 + 60, frames=7, dropped=2), "pcan PCAN_USBBUS1", extra_dropped=3
    )
    assert newer > older
    rows = store.recordings()
    assert [r.id for r in rows] == [newer, older]  # most recent first
    b = rows[0]
    assert b.path == (tmp_path / "b.asc.gz").resolve()
    assert b.format == "asc.gz" and b.frames == 7 and b.dropped == 5
    assert b.source == "pcan PCAN_USBBUS1" and b.size_bytes == 1234 and b.duration_s == 12.5
    assert b.started_epoch == T0 + 60
    assert b.started.isoformat() == "2023-11-14T22:14:20.250000+00:00"
    assert store.recordings(limit=1) == [b]
    assert store.recording(older).format == "blf"
    assert store.recording(9999) is None
    json.dumps([r.as_dict() for r in rows])  # the CLI's --json
    conn = _raw(tmp_path / "history.db")
    assert conn.execute("SELECT started FROM recordings WHERE id = ?", [newer]).fetchone()[0] == (
        "2023-11-14T22:14:20.250+00:00"
    )
    conn.close()


def test_index_a_real_recording(tmp_path, store):
    rec = Recorder(tmp_path / "drive.log")
    rec.write([Frame(T0 + i * 0.001, 0x100 + i % 8, bytes(8)) for i in range(500)])
    summary = rec.stop()
    row = store.recording(store.index_recording(summary, "simulated vehicle"))
    assert row.format == "candump" and row.frames == 500 and row.dropped == 0
    assert row.size_bytes == (tmp_path / "drive.log").stat().st_size > 0
    assert row.notes is None


def test_recording_errors_and_warnings_go_to_the_notes(tmp_path, store):
    summary = RecordingSummary(
        tmp_path / "x.trc", T0, 1.0, 5, 3, 10, error=None, warning="3 frame(s) not written: TRC ..."
    )
    row = store.recording(store.index_recording(summary, "sim", notes="left front sensor unplugged"))
    assert row.notes == "left front sensor unplugged\nwarning: 3 frame(s) not written: TRC ..."


def test_vehicles_and_lookup_by_vin(tmp_path, store):
    golf = store.add_vehicle(vin="wvw zzz1jz-xw000001", make="VW", model="Golf", year=1999, plate="B-AB 123")
    unknown = store.add_vehicle(make="Fiat", notes="no VIN plate")
    another_unknown = store.add_vehicle(make="Fiat")  # several cars without VIN are fine
    assert len({golf, unknown, another_unknown}) == 3
    found = store.find_vehicle("WVWZZZ1JZXW000001")
    assert found is not None and found.id == golf and found.vin == "WVWZZZ1JZXW000001"
    assert found.year == 1999 and found.describe() == "1999 VW Golf (B-AB 123, WVWZZZ1JZXW000001)"
    assert store.find_vehicle("WVWZZZ1JZXW000002") is None
    assert store.find_vehicle("") is None
    assert [v.id for v in store.vehicles()] == [another_unknown, unknown, golf]

    with pytest.raises(HistoryError, match=rf"WVWZZZ1JZXW000001 is already in the history \(id {golf}\)"):
        store.add_vehicle(vin="WVWZZZ1JZXW000001")
    with pytest.raises(HistoryError, match="invalid VIN"):
        store.add_vehicle(vin="WVW*ZZ")

    store.index_recording(_summary(tmp_path / "g1.blf", T0), "sim", golf)
    store.index_recording(_summary(tmp_path / "f1.blf", T0 + 1), "sim", unknown)
    store.index_recording(_summary(tmp_path / "g2.blf", T0 + 2), "sim", golf)
    assert [r.path.name for r in store.recordings(vehicle_id=golf)] == ["g2.blf", "g1.blf"]
    with pytest.raises(HistoryError, match="no vehicle with id 4242"):
        store.index_recording(_summary(tmp_path / "x.blf"), "sim", 4242)


def _write_version_1(path: Path) -> None:
    """The file an earlier release (schema 1: no size column, no indexes) left behind."""
    conn = _raw(path)
    conn.executescript(
        """
        CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL,
                                     applied TEXT NOT NULL);
        INSERT INTO schema_version VALUES (1, 'vehicles and recordings', '2024-03-01T08:00:00+00:00');
        CREATE TABLE vehicles (id INTEGER PRIMARY KEY, vin TEXT, make TEXT, model TEXT, year INTEGER,
                               plate TEXT, notes TEXT, created TEXT NOT NULL);
        CREATE UNIQUE INDEX idx_vehicles_vin ON vehicles (vin);
        CREATE TABLE recordings (
            id INTEGER PRIMARY KEY, path TEXT NOT NULL, format TEXT NOT NULL, started TEXT NOT NULL,
            started_epoch FLOAT NOT NULL, duration_s FLOAT NOT NULL, frames INTEGER NOT NULL,
            dropped INTEGER NOT NULL, source TEXT NOT NULL, vehicle_id INTEGER REFERENCES vehicles(id),
            notes TEXT);
        INSERT INTO vehicles VALUES (1, 'VF1AAAAA555000001', 'Renault', 'Clio', 2005, NULL, NULL,
                                     '2024-03-01T08:00:00+00:00');
        INSERT INTO recordings VALUES (1, '/data/old.blf', 'blf', '2024-03-01T08:05:00.000+00:00',
                                       1709280300.0, 30.0, 120000, 0, 'pcan PCAN_USBBUS1', 1, NULL);
        """
    )
    conn.commit()
    conn.close()


def test_migrates_a_version_1_file_and_keeps_its_rows(tmp_path):
    path = tmp_path / "history.db"
    _write_version_1(path)
    with HistoryStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        (old,) = store.recordings()
        assert old.path == Path("/data/old.blf") and old.frames == 120000 and old.size_bytes is None
        assert old.vehicle_id == store.find_vehicle("VF1AAAAA555000001").id
        new = store.index_recording(_summary(tmp_path / "new.mf4", 1709280400.0), "sim", old.vehicle_id)
        assert [r.id for r in store.recordings(vehicle_id=old.vehicle_id)] == [new, old.id]
        assert store.recording(new).size_bytes == 1234
    conn = _raw(path)
    indexes = {r[1] for r in conn.execute("PRAGMA index_list(recordings)")}
    assert len(indexes) >= 2
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_a_file_that_is_not_sqlite_is_a_clear_error_and_left_alone(tmp_path):
    path = tmp_path / "history.db"
    content = b"VIN,notes\nWVWZZZ1JZXW000001,spreadsheet saved over the history\n" * 50
    path.write_bytes(content)
    with pytest.raises(HistoryFileError, match=r"history\.db: not a readable SQLite database") as info:
        HistoryStore(path)
    assert isinstance(info.value, WorkshopError)
    assert str(path) in str(info.value)
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.db"]


def test_another_programs_database_is_refused_untouched(tmp_path):
    path = tmp_path / "other.db"
    conn = _raw(path)
    conn.execute("CREATE TABLE messages (ts REAL, arbitration_id INTEGER)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(HistoryFileError, match=r"other\.db: is a SQLite database but not a workshop history"):
        HistoryStore(path)
    assert path.read_bytes() == before
    conn = _raw(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "history.db"
    HistoryStore(path).close()
    conn = _raw(path)
    conn.execute(
        "INSERT INTO schema_version VALUES (?, 'from the future', '2031-01-01')", [SCHEMA_VERSION + 1]
    )
    conn.commit()
    conn.close()
    with pytest.raises(HistoryFileError, match="newer workshop"):
        HistoryStore(path)


def test_a_folder_is_not_a_history_file(tmp_path):
    with pytest.raises(HistoryFileError, match="is a folder"):
        HistoryStore(tmp_path)


def test_one_connection_per_thread(tmp_path, store):
    ids: list[int] = []
    connections = []

    def worker() -> None:
        ids.append(store.index_recording(_summary(tmp_path / "w.blf"), "worker thread"))
        connections.append(store._db().conn)

    thread = threading.Thread(target=worker, name="history-test-worker")
    thread.start()
    thread.join()
    assert [r.id for r in store.recordings()] == ids
    assert connections[0] is not store._db().conn
    store.close()
    with pytest.raises(HistoryError, match="closed"):
        store.recordings()


def test_two_stores_on_one_file_see_each_others_rows(tmp_path):
    path = tmp_path / "history.db"
    with HistoryStore(path) as gui, HistoryStore(path) as cli:
        rid = cli.index_recording(_summary(tmp_path / "c.blf"), "cli")
        assert [r.id for r in gui.recordings()] == [rid]


def test_default_location(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKSHOP_HOME", str(tmp_path / "wh"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_history_path() == tmp_path / "wh" / "history.db"
    assert default_recordings_dir() == tmp_path / "wh" / "recordings"
    monkeypatch.delenv("WORKSHOP_HOME")
    assert default_history_path() == tmp_path / "xdg" / "workshop" / "history.db"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_history_path() == tmp_path / "home" / ".local" / "share" / "workshop" / "history.db"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_history_path() == tmp_path / "home" / ".local" / "share" / "workshop" / "history.db"
