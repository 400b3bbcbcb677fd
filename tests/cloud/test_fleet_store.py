"""Health summaries in the history (schema v6): the v5 → v6 migration and the per-VIN table."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from workshop_app.core.history import SCHEMA_VERSION, HistoryStore
from workshop_app.core.history import schema as schema_module
from workshop_app.core.history.fleet_store import FleetStore

VIN = "WSADEM5T2T0000421"
OTHER = "WSADEM5T2T0000422"


def _tables(path) -> set[str]:
    conn = sqlite3.connect(str(path))
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()


def test_a_version_5_file_migrates_to_6_and_keeps_its_rows(tmp_path, monkeypatch):
    path = tmp_path / "history.db"
    # The previous release: the same code with migrations 1 to 5 only.
    with monkeypatch.context() as m:
        m.setattr(schema_module, "MIGRATIONS", schema_module.MIGRATIONS[:5])
        m.setattr(schema_module, "SCHEMA_VERSION", 5)
        with HistoryStore(path) as old:
            assert old.schema_version == 5
            car = old.add_vehicle(vin=VIN, make="Workshop", model="Sedan")
    assert "vehicle_health" not in _tables(path)

    with FleetStore(path) as fleet:
        assert fleet.add(VIN, 1_000.0, {"battery_v": 12.6, "dtcs": []}, dtc_count=0, battery_v=12.6)
        assert fleet.latest(VIN).battery_v == 12.6
    assert SCHEMA_VERSION == 6
    with HistoryStore(path) as store:
        assert store.schema_version == 6
        assert store.find_vehicle(VIN).id == car
    conn = sqlite3.connect(str(path))
    try:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]
        columns = {r[1] for r in conn.execute("PRAGMA table_info(vehicle_health)")}
    finally:
        conn.close()
    assert versions == [1, 2, 3, 4, 5, 6]
    assert {"vin", "time", "summary", "dtc_count", "battery_v", "odometer_km"} <= columns


def test_summaries_are_kept_per_vin_newest_first_and_a_redelivery_once(tmp_path):
    with FleetStore(tmp_path / "history.db") as fleet:
        assert fleet.latest(VIN) is None
        for t, volts in ((100.0, 12.5), (160.0, 12.1), (220.0, 11.7)):
            assert fleet.add(VIN, t, {"time": t, "battery_v": volts}, battery_v=volts, dtc_count=1)
        assert fleet.add(OTHER, 150.0, {"time": 150.0}, dtc_count=0)
        # QoS 1 delivers at least once: the same summary again is not a second row.
        assert not fleet.add(VIN, 220.0, {"time": 220.0, "battery_v": 11.7}, battery_v=11.7)
        rows = fleet.history(VIN)
        assert [r.time for r in rows] == [220.0, 160.0, 100.0]
        assert rows[0].summary == {"time": 220.0, "battery_v": 11.7}
        assert rows[0].dtc_count == 1
        assert fleet.latest(OTHER).battery_v is None
        assert fleet.vins() == [VIN, OTHER]
        assert len(fleet.history(VIN, limit=2)) == 2


def test_writes_from_another_thread_while_reading(tmp_path):
    # The watcher writes on paho's thread while the window reads on its own.
    with FleetStore(tmp_path / "history.db") as fleet:
        errors: list[BaseException] = []

        def write() -> None:
            try:
                for n in range(200):
                    fleet.add(VIN, float(n), {"time": n}, dtc_count=n % 3)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=write)
        thread.start()
        while thread.is_alive():
            fleet.latest(VIN)
        thread.join()
        assert errors == []
        assert fleet.latest(VIN).time == 199.0
        assert len(fleet.history(VIN, limit=None)) == 200


def test_a_foreign_database_is_refused_untouched(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(str(path))
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    with pytest.raises(Exception, match="not a workshop history"):
        FleetStore(path)
    assert _tables(path) == {"customers"}
