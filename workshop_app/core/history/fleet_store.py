"""Health summaries of cloud-connected vehicles, one row per summary, in the history database.

The fleet overview writes here from the MQTT network thread while the window or the CLI
reads, so the store keeps one connection of its own behind a lock (like the audit trail)
instead of sharing a HistoryStore connection across threads.

>>> fleet = FleetStore(tmp / "history.db")                          # doctest: +SKIP
>>> fleet.add("WSADEM5T2T0000421", 1733500000.0, {"battery_v": 12.4}, battery_v=12.4)  # doctest: +SKIP
>>> fleet.latest("WSADEM5T2T0000421").battery_v                       # doctest: +SKIP
12.4
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from workshop_app.core.history.errors import HistoryError

TABLE = "vehicle_health"


@dataclass(frozen=True, slots=True)
class HealthRow:
    id: int
    vin: str
    time: float
    received: str
    summary: dict[str, Any]
    dtc_count: int | None
    battery_v: float | None
    odometer_km: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "vin": self.vin,
            "time": self.time,
            "received": self.received,
            "summary": self.summary,
            "dtc_count": self.dtc_count,
            "battery_v": self.battery_v,
            "odometer_km": self.odometer_km,
        }


def _row(values: tuple[Any, ...]) -> HealthRow:
    id_, vin, time, received, summary, dtc_count, battery_v, odometer_km = values
    try:
        doc = json.loads(summary)
    except json.JSONDecodeError:
        doc = {}
    return HealthRow(
        int(id_),
        vin,
        float(time),
        received,
        doc if isinstance(doc, dict) else {},
        dtc_count,
        battery_v,
        odometer_km,
    )


_COLUMNS = "id, vin, time, received, summary, dtc_count, battery_v, odometer_km"


class FleetStore:
    """The ``vehicle_health`` table of the history database at ``path`` (created and migrated on open)."""

    def __init__(self, path: str | Path) -> None:
        from workshop_app.core.history.store import HistoryStore

        self.path = Path(path).expanduser()
        HistoryStore(self.path).close()  # creates or migrates the file, refusing foreign ones
        self._conn = sqlite3.connect(str(self.path), timeout=10.0, check_same_thread=False)
        # The file is in WAL mode: NORMAL syncs at checkpoints instead of every commit, so a
        # summary costs ~0.1 ms instead of a disk flush on paho's thread. A power cut can lose
        # the last summaries, never the file's integrity; the next ones come within a minute.
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> FleetStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def add(
        self,
        vin: str,
        time: float,
        summary: dict[str, Any],
        *,
        dtc_count: int | None = None,
        battery_v: float | None = None,
        odometer_km: float | None = None,
    ) -> bool:
        """Keep one summary; False when the same VIN and time is already stored (a redelivery)."""
        received = datetime.now(UTC).isoformat(timespec="milliseconds")
        text = json.dumps(summary, sort_keys=True, separators=(",", ":"))
        with self._lock:
            try:
                cursor = self._conn.execute(
                    f"INSERT OR IGNORE INTO {TABLE} "
                    "(vin, time, received, summary, dtc_count, battery_v, odometer_km) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (vin, time, received, text, dtc_count, battery_v, odometer_km),
                )
                self._conn.commit()
            except sqlite3.Error as exc:
                raise HistoryError(f"{self.path}: storing the health summary of {vin} failed: {exc}") from exc
        return cursor.rowcount == 1

    def _select(self, where: str, args: tuple[Any, ...]) -> list[HealthRow]:
        with self._lock:
            try:
                rows = self._conn.execute(f"SELECT {_COLUMNS} FROM {TABLE} {where}", args).fetchall()
            except sqlite3.Error as exc:
                raise HistoryError(f"{self.path}: reading health summaries failed: {exc}") from exc
        return [_row(r) for r in rows]

    def latest(self, vin: str) -> HealthRow | None:
        """The newest summary of ``vin``, or None."""
        rows = self._select("WHERE vin = ? ORDER BY time DESC LIMIT 1", (vin,))
        return rows[0] if rows else None

    def history(self, vin: str, limit: int | None = 100) -> list[HealthRow]:
        """Summaries of ``vin``, newest first."""
        if limit is None:
            return self._select("WHERE vin = ? ORDER BY time DESC", (vin,))
        return self._select("WHERE vin = ? ORDER BY time DESC LIMIT ?", (vin, limit))

    def vins(self) -> list[str]:
        """Every VIN with a stored summary, sorted."""
        with self._lock:
            rows = self._conn.execute(f"SELECT DISTINCT vin FROM {TABLE} ORDER BY vin").fetchall()
        return [r[0] for r in rows]
