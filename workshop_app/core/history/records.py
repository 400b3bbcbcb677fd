"""Rows of the history as plain values, and the small conversions they share (VINs, times,
sizes, typed values)."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from workshop_app.core.diag.model import ScanLabel
from workshop_app.core.history.errors import HistoryError
from workshop_app.core.logfiles import log_suffix

if TYPE_CHECKING:  # only for annotations: listing the history needs no numpy or asammdf
    pass

# Formats by suffix, named as users call them (".log" alone says little).
_FORMAT_NAMES = {".log": "candump", ".db": "sqlite", ".txt": "text"}
_VIN = re.compile(r"[A-Z0-9]{1,17}")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def _parse_iso(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def log_format_name(path: Path) -> str:
    """``drive.blf`` → ``blf``; ``drive.log`` → ``candump``; ``drive.asc.gz`` → ``asc.gz``."""
    suffix = log_suffix(path)
    name = _FORMAT_NAMES.get(suffix, suffix.lstrip(".")) or "unknown"
    return f"{name}.gz" if path.suffix.lower() == ".gz" else name


def _insert(db: Database, table: str, record: dict[str, Any]) -> int:
    """Insert one row; returns its integer primary key."""
    pk = db.table(table).insert(record).last_pk
    if not isinstance(pk, int):
        raise HistoryError(f"{table}: the database returned no row id")
    return pk


def format_bytes(size: int | None) -> str:
    """``1536`` → ``1.5 kB``; shared by the CLI listing and the GUI."""
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def normalize_vin(vin: str | None) -> str | None:
    """Upper-case, without spaces or dashes; ``None`` for an empty VIN; HistoryError if malformed.

    Up to 17 letters and digits: cars before 1981 and some markets have shorter VINs.
    """
    if vin is None:
        return None
    text = re.sub(r"[\s-]", "", vin).upper()
    if not text:
        return None
    if not _VIN.fullmatch(text):
        raise HistoryError(f"invalid VIN {vin!r}: expected up to 17 letters and digits")
    return text


@dataclass(frozen=True, slots=True)
class VehicleRow:
    id: int
    vin: str | None
    make: str | None
    model: str | None
    year: int | None
    plate: str | None
    notes: str | None
    created: datetime  # UTC

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> VehicleRow:
        return cls(
            row["id"],
            row["vin"],
            row["make"],
            row["model"],
            row["year"],
            row["plate"],
            row["notes"],
            _parse_iso(row["created"]),
        )

    def describe(self) -> str:
        """``2019 VW Golf (WVW…)``-style label for lists."""
        name = " ".join(str(p) for p in (self.year, self.make, self.model) if p) or "vehicle"
        extra = ", ".join(p for p in (self.plate, self.vin) if p)
        return f"{name} ({extra})" if extra else name

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "id": self.id,
            "vin": self.vin,
            "make": self.make,
            "model": self.model,
            "year": self.year,
            "plate": self.plate,
            "notes": self.notes,
            "created": self.created.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class RecordingRow:
    id: int
    path: Path
    format: str
    started: datetime  # UTC
    started_epoch: float
    duration_s: float
    frames: int
    dropped: int
    source: str
    vehicle_id: int | None
    notes: str | None
    size_bytes: int | None  # None for recordings indexed before the size was kept

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RecordingRow:
        return cls(
            row["id"],
            Path(row["path"]),
            row["format"],
            _parse_iso(row["started"]),
            row["started_epoch"],
            row["duration_s"],
            row["frames"],
            row["dropped"],
            row["source"],
            row["vehicle_id"],
            row["notes"],
            row["size_bytes"],
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "id": self.id,
            "path": str(self.path),
            "format": self.format,
            "started": self.started.isoformat(),
            "started_epoch": self.started_epoch,
            "duration_s": self.duration_s,
            "frames": self.frames,
            "dropped": self.dropped,
            "source": self.source,
            "vehicle_id": self.vehicle_id,
            "notes": self.notes,
            "size_bytes": self.size_bytes,
        }


# -- scans, DTC events and clears -------------------------------------------------------------

CLEAR_RESULTS = ("done", "failed")
DTC_EVENT_KINDS = ("appeared", "cleared")


@dataclass(frozen=True, slots=True)
class ScanSummary:
    """One row of the scan list: what a user picks a scan by, without its ECUs and DTCs."""

    id: int
    vehicle_id: int | None
    vin: str
    vehicle: str
    started: datetime  # UTC
    started_epoch: float
    seconds: float
    label: ScanLabel
    connection: str
    mileage_km: float | None
    dtc_count: int
    note: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ScanSummary:
        return cls(
            row["id"],
            row["vehicle_id"],
            row["vin"] or "",
            row["vehicle"] or "",
            _parse_iso(row["started"]),
            row["started_epoch"],
            row["seconds"],
            ScanLabel(row["label"]),
            row["connection"] or "",
            row["mileage_km"],
            row["dtc_count"],
            row["note"] or "",
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "id": self.id,
            "vehicle_id": self.vehicle_id,
            "vin": self.vin,
            "vehicle": self.vehicle,
            "started": self.started.isoformat(),
            "started_epoch": self.started_epoch,
            "seconds": self.seconds,
            "label": self.label.value,
            "connection": self.connection,
            "mileage_km": self.mileage_km,
            "dtc_count": self.dtc_count,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One thing that happened to a vehicle: a scan, a clear, a DTC seen live or a recording."""

    time: float  # unix time
    kind: str  # 'scan', 'clear', 'dtc' or 'recording'
    id: int  # row id in the kind's table
    text: str  # one line for people

    @property
    def when(self) -> datetime:
        return datetime.fromtimestamp(self.time, UTC)


def _value_columns(value: float | int | str) -> dict[str, Any]:
    """A snapshot value as text + number + type, so int, float and str come back as they went in."""
    if isinstance(value, bool):  # a bool is an int to Python, but none of the three types we keep
        value = int(value)
    if isinstance(value, int):
        return {"value": str(value), "number": float(value), "value_type": "int"}
    if isinstance(value, float):
        # repr round-trips every float; SQLite turns NaN into NULL, so the text is what counts.
        return {"value": repr(value), "number": value if value == value else None, "value_type": "float"}
    return {"value": str(value), "number": None, "value_type": "str"}


def _value_from(row: dict[str, Any]) -> float | int | str:
    kind: str = row["value_type"]
    text: str = row["value"]
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    return text


def _mileage_text(km: float | None) -> str:
    return f", {km:,.0f} km" if km is not None else ""


def _now() -> float:
    return datetime.now(UTC).timestamp()


def _add(conn: sqlite3.Connection, table: str, record: dict[str, Any]) -> int:
    """Insert one row with plain SQL: inside our own transaction, and without sqlite-utils'
    per-insert table introspection (a scan writes hundreds of small rows)."""
    columns = ", ".join(record)
    marks = ", ".join("?" * len(record))
    row_id = conn.execute(
        f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(record.values())
    ).lastrowid
    if row_id is None:
        raise HistoryError(f"{table}: the database returned no row id")
    return row_id
