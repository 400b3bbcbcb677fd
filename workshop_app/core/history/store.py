"""HistoryStore: the workshop's SQLite history of vehicles and recordings (sqlite-utils, WAL).

Threads: SQLite connections must not be shared between threads, so the store opens one
connection per calling thread, lazily, and ``close`` closes them all. WAL mode lets the GUI,
the CLI and any later writer thread read while another writes.

>>> store = HistoryStore(tmp / "history.db")                    # doctest: +SKIP
>>> car = store.add_vehicle(vin="WVWZZZ1JZXW000001", make="VW")   # doctest: +SKIP
>>> store.index_recording(recorder.stop(), "pcan PCAN_USBBUS1", car)  # doctest: +SKIP
>>> [r.path.name for r in store.recordings(limit=5)]             # doctest: +SKIP
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from workshop_app.core.history.errors import HistoryError, HistoryFileError
from workshop_app.core.history.schema import describe_sqlite_error, migrate, schema_version
from workshop_app.core.logfiles import log_suffix

if TYPE_CHECKING:  # only for annotations: listing the history needs no numpy or asammdf
    from workshop_app.core.capture.recorder import RecordingSummary

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


class HistoryStore:
    """The history database at ``path``, created and migrated on open.

    A file that is not a SQLite database, is damaged, belongs to another program or was
    written by a newer workshop raises :class:`HistoryFileError` and is left untouched.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[Database] = []
        self._closed = False
        if self.path.is_dir():
            raise HistoryFileError(f"{self.path}: is a folder, not a history file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HistoryFileError(f"{self.path}: cannot create its folder ({exc.strerror or exc})") from exc
        self._open(migrate_file=True)

    # -- connections ------------------------------------------------------------------------

    def _open(self, *, migrate_file: bool = False) -> Database:
        try:
            conn = sqlite3.connect(str(self.path), timeout=5.0, check_same_thread=False)
        except sqlite3.Error as exc:
            raise HistoryFileError(f"{self.path}: {describe_sqlite_error(exc)}") from exc
        try:
            # Reading the header is what fails on a file that is not SQLite at all.
            conn.execute("PRAGMA schema_version").fetchone()
            conn.execute("PRAGMA foreign_keys = ON")
            db = Database(conn, execute_plugins=False)
            if migrate_file:
                migrate(db, self.path)  # refuses other programs' databases before any change
                db.enable_wal()
        except HistoryFileError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise HistoryFileError(
                f"{self.path}: {describe_sqlite_error(exc)}; "
                "it was left as it is: move it away or choose another file with --history"
            ) from exc
        self._local.db = db
        with self._lock:
            self._connections.append(db)
        return db

    def _db(self) -> Database:
        if self._closed:
            raise HistoryError(f"{self.path}: the history is closed")
        db = getattr(self._local, "db", None)
        return db if db is not None else self._open()

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            text = describe_sqlite_error(exc)
            cls = HistoryFileError if "SQLite database" in text else HistoryError
            raise cls(f"{self.path}: {action} failed: {text}") from exc

    def close(self) -> None:
        """Close every thread's connection. Idempotent."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for db in connections:
            db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        with self._errors("reading the schema version"):
            return schema_version(self._db())

    # -- vehicles ---------------------------------------------------------------------------

    def add_vehicle(
        self,
        *,
        vin: str | None = None,
        make: str | None = None,
        model: str | None = None,
        year: int | None = None,
        plate: str | None = None,
        notes: str | None = None,
    ) -> int:
        """Add a vehicle; returns its id. A VIN already in the history is a HistoryError."""
        normalized = normalize_vin(vin)
        record = {
            "vin": normalized,
            "make": make,
            "model": model,
            "year": year,
            "plate": plate,
            "notes": notes,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        db = self._db()
        with self._errors("adding a vehicle"):
            try:
                return _insert(db, "vehicles", record)
            except sqlite3.IntegrityError as exc:
                existing = self.find_vehicle(normalized) if normalized else None
                if existing is None:
                    raise
                raise HistoryError(
                    f"a vehicle with VIN {normalized} is already in the history (id {existing.id})"
                ) from exc

    def find_vehicle(self, vin: str) -> VehicleRow | None:
        """The vehicle with this VIN (any case, spaces and dashes ignored), or None."""
        normalized = normalize_vin(vin)
        if normalized is None:
            return None
        with self._errors("looking up a vehicle"):
            rows = list(self._db().table("vehicles").rows_where("vin = ?", [normalized], limit=1))
        return VehicleRow.from_row(rows[0]) if rows else None

    def vehicle(self, vehicle_id: int) -> VehicleRow | None:
        with self._errors("looking up a vehicle"):
            rows = list(self._db().table("vehicles").rows_where("id = ?", [vehicle_id], limit=1))
        return VehicleRow.from_row(rows[0]) if rows else None

    def vehicles(self, limit: int | None = None) -> list[VehicleRow]:
        """Vehicles, most recently added first."""
        with self._errors("listing vehicles"):
            rows = self._db().table("vehicles").rows_where(order_by="id DESC", limit=limit)
            return [VehicleRow.from_row(r) for r in rows]

    # -- recordings -------------------------------------------------------------------------

    def index_recording(
        self,
        summary: RecordingSummary,
        source: str,
        vehicle_id: int | None = None,
        *,
        notes: str | None = None,
        extra_dropped: int = 0,
    ) -> int:
        """Add a finished recording; returns its id.

        ``source`` describes what was recorded (``FrameSource.describe()``); ``extra_dropped``
        adds frames lost before the recorder (ring overflow) to the recorder's own drops.
        A write error or format limitation of the recording is kept in the notes.
        """
        remarks = [notes] if notes else []
        if summary.error:
            remarks.append(f"error: {summary.error}")
        if summary.warning:
            remarks.append(f"warning: {summary.warning}")
        size = summary.size_bytes
        if not size:
            try:
                size = summary.path.stat().st_size
            except OSError:
                size = 0
        record = {
            "path": str(summary.path.expanduser().resolve()),
            "format": log_format_name(summary.path),
            "started": _iso(summary.started),
            "started_epoch": summary.started,
            "duration_s": summary.duration,
            "frames": summary.frames_written,
            "dropped": summary.frames_dropped + extra_dropped,
            "source": source,
            "vehicle_id": vehicle_id,
            "notes": "\n".join(remarks) or None,
            "size_bytes": size,
        }
        with self._errors("indexing a recording"):
            try:
                return _insert(self._db(), "recordings", record)
            except sqlite3.IntegrityError as exc:
                if vehicle_id is not None and self.vehicle(vehicle_id) is None:
                    raise HistoryError(f"no vehicle with id {vehicle_id} in the history") from exc
                raise

    def recording(self, recording_id: int) -> RecordingRow | None:
        with self._errors("looking up a recording"):
            rows = list(self._db().table("recordings").rows_where("id = ?", [recording_id], limit=1))
        return RecordingRow.from_row(rows[0]) if rows else None

    def recordings(self, limit: int | None = 50, vehicle_id: int | None = None) -> list[RecordingRow]:
        """Recordings, most recent first; only one vehicle's with ``vehicle_id``."""
        where, args = ("vehicle_id = ?", [vehicle_id]) if vehicle_id is not None else (None, None)
        with self._errors("listing recordings"):
            rows = (
                self._db()
                .table("recordings")
                .rows_where(where, args, order_by="started_epoch DESC, id DESC", limit=limit)
            )
            return [RecordingRow.from_row(r) for r in rows]
