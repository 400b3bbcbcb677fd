"""Scans, DTC events and clears in the history, on real SQLite files in tmp_path."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from report_sample import STARTED, VIN, after_repair_scan, sample_scan

from workshop_app.core.capture.recorder import RecordingSummary
from workshop_app.core.diag.dtc import CONFIRMED, Dtc, SnapshotValue, parse_sae
from workshop_app.core.diag.model import ScanLabel, ScanResult
from workshop_app.core.history import SCHEMA_VERSION, HistoryError, HistoryFileError, HistoryStore
from workshop_app.core.history import schema as schema_module
from workshop_app.core.history.schema import OUR_TABLES


@pytest.fixture
def store(tmp_path):
    s = HistoryStore(tmp_path / "history.db")
    yield s
    s.close()


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(path))


def test_new_file_has_the_scan_tables_and_indexes(tmp_path, store):
    assert SCHEMA_VERSION == 6
    conn = _raw(tmp_path / "history.db")
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert tables - {"schema_version"} == OUR_TABLES
        fks = {
            (table, fk[3], fk[2])
            for table in ("scans", "scan_ecus", "scan_dtcs", "dtc_snapshots", "dtc_events", "clears")
            for fk in conn.execute(f"PRAGMA foreign_key_list({table})")
        }
        assert fks == {
            ("scans", "vehicle_id", "vehicles"),
            ("scan_ecus", "scan_id", "scans"),
            ("scan_dtcs", "scan_id", "scans"),
            ("scan_dtcs", "scan_ecu_id", "scan_ecus"),
            ("dtc_snapshots", "scan_dtc_id", "scan_dtcs"),
            ("dtc_events", "vehicle_id", "vehicles"),
            ("dtc_events", "recording_id", "recordings"),
            ("clears", "vehicle_id", "vehicles"),
        }
        # Every foreign key and every time column is indexed.
        indexed = {
            (table, col[2])
            for table in ("scans", "scan_ecus", "scan_dtcs", "dtc_snapshots", "dtc_events", "clears")
            for idx in conn.execute(f"PRAGMA index_list({table})")
            for col in conn.execute(f"PRAGMA index_info({idx[1]})")
        }
        assert {(t, c) for t, c, _ in fks} <= indexed
        assert {("scans", "started_epoch"), ("dtc_events", "time"), ("clears", "time")} <= indexed
    finally:
        conn.close()


def test_a_scan_round_trips_exactly(tmp_path, store):
    original = sample_scan()
    # An OBD-II code outside any ECU, and values of every type, must come back too.
    original.obd_dtcs = [Dtc(parse_sae("P0300"), CONFIRMED, "Random misfire", source="obd")]
    original.ecus[1].dtcs[0].extended = {3: [SnapshotValue("Ratio", 0.1 + 0.2, "", None)]}
    scan_id = store.add_scan(original, note="customer says: lamp on since Monday")
    assert original.scan_id == scan_id
    store.close()

    with HistoryStore(tmp_path / "history.db") as reopened:
        back = reopened.scan(scan_id)
    assert back == original  # dataclass equality: every ECU, DTC, snapshot and extended value
    assert back.to_json() == original.to_json()
    ecm = back.ecu("ECM")
    assert ecm is not None
    values = ecm.dtcs[0].snapshots[1]
    assert [type(v.value) for v in values] == [int, float, float, float]
    assert [v.text() for v in values] == ["-40 °C", "812 rpm", "13.9 V", "48213.4 km"]
    assert ecm.dtcs[0].occurrence_count() == 3
    assert back.ecus[1].dtcs[0].extended[3][0].value == 0.1 + 0.2
    assert back.ecu("GW").responded is False and back.ecu("GW").problems == original.ecu("GW").problems

    conn = _raw(tmp_path / "history.db")
    try:
        row = conn.execute("SELECT label, vin, dtc_count, note, mileage_km FROM scans").fetchone()
        assert row == ("pre-repair", VIN, 2, "customer says: lamp on since Monday", 48213.4)
        states = conn.execute("SELECT name, state FROM scan_ecus ORDER BY id").fetchall()
        assert states == [
            ("ECM", "faults"),
            ("ABS", "faults"),
            ("TCM", "ok"),
            ("BCM", "ok"),
            ("GW", "missing"),
        ]
        dtcs = conn.execute("SELECT ecu, sae, occurrences FROM scan_dtcs ORDER BY id").fetchall()
        assert dtcs == [("ECM", "P0118", 3), ("ABS", "C0035", None), ("", "P0300", None)]
        numbers = dict(conn.execute("SELECT name, number FROM dtc_snapshots WHERE kind = 'snapshot'"))
        assert numbers["Coolant temperature"] == -40.0 and numbers["Battery voltage"] == 13.9
        assert conn.execute("SELECT number FROM dtc_snapshots WHERE name = 'Last seen'").fetchone() == (None,)
        identification = conn.execute("SELECT identification FROM scan_ecus WHERE name = 'ECM'").fetchone()[0]
        assert json.loads(identification)["Supplier"] == "Bosch"
    finally:
        conn.close()


def test_a_scan_finds_or_creates_its_vehicle(store):
    first = store.add_scan(sample_scan())
    car = store.find_vehicle(VIN)
    assert car is not None and car.notes == "2021 Workshop Sedan 1.6"
    second = store.add_scan(after_repair_scan())
    assert [v.id for v in store.vehicles()] == [car.id]  # the same car, not a second row
    other = store.add_vehicle(make="Fiat")
    third = store.add_scan(ScanResult(started=STARTED), vehicle_id=other)
    no_vin = store.add_scan(ScanResult(started=STARTED, vin="not a VIN!"))  # kept, just unlinked
    assert {s.id: s.vehicle_id for s in store.scans()} == {
        first: car.id,
        second: car.id,
        third: other,
        no_vin: None,
    }
    with pytest.raises(HistoryError, match="no vehicle with id 999"):
        store.add_scan(sample_scan(), vehicle_id=999)
    assert len(store.scans()) == 4  # the failed one left nothing behind


def test_scan_list_newest_first_with_labels(store):
    pre = store.add_scan(sample_scan())
    post = store.add_scan(after_repair_scan())
    store.add_scan(ScanResult(started=STARTED + 10, vin="VF1AAAAA555000001"))
    rows = store.scans(vin=VIN.lower())
    assert [r.id for r in rows] == [post, pre]
    assert [r.label for r in rows] == [ScanLabel.POST_REPAIR, ScanLabel.PRE_REPAIR]
    assert rows[1].dtc_count == 2 and rows[0].dtc_count == 2 and rows[0].mileage_km == 48221.0
    assert rows[1].started.isoformat() == "2025-06-15T15:06:40.500000+00:00"
    assert [r.id for r in store.scans(limit=1)] == [post]
    assert len(store.scans()) == 3
    json.dumps([r.as_dict() for r in rows])
    with pytest.raises(HistoryError, match="no scan with id 77"):
        store.scan(77)


def test_compare_with_the_previous_scan(store):
    pre = store.add_scan(sample_scan())
    store.add_scan(ScanResult(started=STARTED + 5, vin="VF1AAAAA555000001"))  # another car between
    post = store.add_scan(after_repair_scan())
    assert store.previous_scan(pre) is None
    assert store.compare_with_previous(pre) is None
    previous = store.previous_scan(post)
    assert previous is not None and previous.scan_id == pre
    diff = store.compare_with_previous(post)
    assert diff is not None
    assert [(ecu, d.sae) for ecu, d in diff.new] == [("TCM", "U0100")]
    assert [(ecu, d.sae) for ecu, d in diff.gone] == [("ECM", "P0118")]
    assert [(ecu, d.sae) for ecu, d in diff.still] == [("ABS", "C0035")]


def test_timeline_in_time_order(tmp_path, store):
    store.add_scan(sample_scan())
    car = store.find_vehicle(VIN)
    log = tmp_path / "drive.blf"
    log.write_bytes(b"x" * 10)
    rec = store.index_recording(RecordingSummary(log, STARTED + 600, 42.0, 1000, 0), "sim", car.id)
    store.add_dtc_event(
        "ECM", parse_sae("P0118"), "appeared", status=0x89, time=STARTED + 620, vin=VIN, recording_id=rec
    )
    store.add_clear("ALL", time=STARTED + 1800, vin=VIN)
    store.add_clear(
        "ABS", result="failed", detail="conditions not correct (engine running)", time=STARTED + 1801, vin=VIN
    )
    store.add_dtc_event("ECM", parse_sae("P0118"), "cleared", time=STARTED + 1802, vehicle_id=car.id)
    store.add_scan(after_repair_scan())
    store.add_clear(time=STARTED + 50, vin="VF1AAAAA555000001")  # another car: not in this timeline

    entries = store.timeline(VIN)
    assert [e.kind for e in entries] == ["scan", "recording", "dtc", "clear", "clear", "dtc", "scan"]
    assert [e.time for e in entries] == sorted(e.time for e in entries)
    assert [e.text for e in entries] == [
        "Scan (pre-repair): 4 ECUs answered, 2 DTCs, 48,213 km",
        "Recording drive.blf: 42.0 s, 1000 frames (blf)",
        "P0118 appeared on ECM (confirmed, failing now, warning lamp on)",
        "Cleared DTCs of all ECUs",
        "Clearing DTCs of ABS failed: conditions not correct (engine running)",
        "P0118 cleared on ECM",
        "Scan (post-repair): 4 ECUs answered, 2 DTCs, 48,221 km",
    ]
    assert entries[0].when.year == 2025
    assert store.timeline("WVWZZZ1JZXW999999") == []

    with pytest.raises(HistoryError, match="clear result must be one of done, failed"):
        store.add_clear(result="maybe", vin=VIN)
    with pytest.raises(HistoryError, match="appeared, cleared"):
        store.add_dtc_event("ECM", 0x011800, "vanished", vin=VIN)
    with pytest.raises(HistoryError, match="no recording with id 55"):
        store.add_dtc_event("ECM", 0x011800, "appeared", vin=VIN, recording_id=55)
    with pytest.raises(HistoryError, match="not a 3-byte value"):
        store.add_dtc_event("ECM", 1 << 30, "appeared", vin=VIN)


def test_expected_ecus_are_those_that_answered_before(store):
    assert store.expected_ecus(VIN) == []
    store.add_scan(sample_scan())
    assert store.expected_ecus(VIN) == ["ECM", "ABS", "TCM", "BCM"]  # GW never answered
    later = sample_scan(started=STARTED + 60)
    gw = later.ecu("GW")
    gw.responded, gw.problems = True, []
    later.ecus.remove(later.ecu("BCM"))
    store.add_scan(later)
    assert store.expected_ecus(VIN) == ["ECM", "ABS", "TCM", "BCM", "GW"]
    assert store.expected_ecus("") == []


def test_a_version_2_file_migrates_and_keeps_its_rows(tmp_path, monkeypatch):
    path = tmp_path / "history.db"
    # Exactly what the previous release did: the same code with only migrations 1 and 2.
    with monkeypatch.context() as m:
        m.setattr(schema_module, "MIGRATIONS", schema_module.MIGRATIONS[:2])
        m.setattr(schema_module, "SCHEMA_VERSION", 2)
        with HistoryStore(path) as old:
            assert old.schema_version == 2
            car = old.add_vehicle(vin=VIN, make="Workshop", model="Sedan")
    conn = _raw(path)
    assert "scans" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()

    with HistoryStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.find_vehicle(VIN).id == car
        scan_id = store.add_scan(sample_scan())
        assert store.scans()[0].vehicle_id == car
        assert store.scan(scan_id).dtc_count == 2
    conn = _raw(path)
    versions = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
    conn.close()


def test_a_foreign_database_with_a_scans_table_is_refused(tmp_path):
    path = tmp_path / "other.db"
    conn = _raw(path)
    conn.execute("CREATE TABLE scans (id INTEGER PRIMARY KEY, barcode TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(HistoryFileError, match=r"other\.db: .*not a workshop history \(it has tables scans"):
        HistoryStore(path)


def test_a_damaged_file_is_named_in_the_error(tmp_path):
    path = tmp_path / "history.db"
    with HistoryStore(path) as store:
        store.add_scan(sample_scan())
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # wipe the schema page after the header
    path.write_bytes(bytes(data))
    with pytest.raises(HistoryFileError, match=rf"{path.name}: not a readable SQLite database"):
        HistoryStore(path)


def test_a_locked_file_fails_with_a_clear_message_and_stores_nothing(tmp_path, store):
    blocker = _raw(tmp_path / "history.db")
    blocker.execute("BEGIN EXCLUSIVE")  # another program holds the write lock for longer than we wait
    try:
        with pytest.raises(
            HistoryError, match=r"history\.db: saving a scan failed: in use by another program"
        ):
            store.add_scan(sample_scan())
    finally:
        blocker.rollback()
        blocker.close()
    assert store.scans() == []
    store.add_scan(sample_scan())  # works once the other program lets go
    assert len(store.scans()) == 1
