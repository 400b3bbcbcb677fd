"""HistoryStore: the workshop's SQLite history (sqlite-utils, WAL).

Vehicles (keyed by VIN), the recordings made of them, whole diagnostic scans (ECUs, DTCs,
freeze frames), DTCs seen appearing or clearing live, and clear-DTC actions.

Threads: SQLite connections must not be shared between threads, so the store opens one
connection per calling thread, lazily, and ``close`` closes them all. WAL mode lets the GUI,
the CLI and any later writer thread read while another writes.

>>> store = HistoryStore(tmp / "history.db")                    # doctest: +SKIP
>>> car = store.add_vehicle(vin="WVWZZZ1JZXW000001", make="VW")   # doctest: +SKIP
>>> store.index_recording(recorder.stop(), "pcan PCAN_USBBUS1", car)  # doctest: +SKIP
>>> [r.path.name for r in store.recordings(limit=5)]             # doctest: +SKIP
>>> scan_id = store.add_scan(scanner.scan())                      # doctest: +SKIP
>>> store.compare_with_previous(scan_id).gone                     # doctest: +SKIP
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from workshop_app.core.history.errors import HistoryError, HistoryFileError
from workshop_app.core.history.schema import describe_sqlite_error, migrate, schema_version
from workshop_app.core.sources.reconnect import LinkGap

if TYPE_CHECKING:  # only for annotations: listing the history needs no numpy or asammdf
    from workshop_app.core.capture.recorder import RecordingSummary
from workshop_app.core.history.records import (
    RecordingRow,
    VehicleRow,
    _add,
    _insert,
    _iso,
    log_format_name,
    normalize_vin,
)
from workshop_app.core.history.scan_store import ScanHistory


class HistoryStore(ScanHistory):
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
        gaps: tuple[LinkGap, ...] = (),
    ) -> int:
        """Add a finished recording; returns its id.

        ``gaps``: times the link was down during the recording (see :meth:`recording_gaps`).

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
                rid = _insert(self._db(), "recordings", record)
                self._db().table("recording_gaps").insert_all(
                    {
                        "recording_id": rid,
                        "started_epoch": g.started,
                        "duration_s": g.seconds(),
                        "reason": g.reason,
                    }
                    for g in gaps
                )
                return rid
            except sqlite3.IntegrityError as exc:
                if vehicle_id is not None and self.vehicle(vehicle_id) is None:
                    raise HistoryError(f"no vehicle with id {vehicle_id} in the history") from exc
                raise

    def recording_gaps(self, recording_id: int) -> list[LinkGap]:
        """The recording's link gaps, oldest first (empty when the link held)."""
        with self._errors("looking up a recording's gaps"):
            rows = (
                self._db()
                .table("recording_gaps")
                .rows_where("recording_id = ?", [recording_id], order_by="started_epoch")
            )
            return [
                LinkGap(r["started_epoch"], r["started_epoch"] + r["duration_s"], r["reason"] or "")
                for r in rows
            ]

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

    # -- scans ------------------------------------------------------------------------------

    @contextmanager
    def _write(self, action: str) -> Iterator[sqlite3.Connection]:
        """One write transaction. IMMEDIATE takes the write lock first, so a concurrent writer
        waits at the start instead of failing half-way through a scan."""
        conn = self._db().conn
        with self._errors(action):
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _query(self, sql: str, args: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        cursor = self._db().conn.execute(sql, args)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def _resolve_vehicle(
        self, conn: sqlite3.Connection, vin: str | None, vehicle_id: int | None, *, notes: str | None = None
    ) -> int | None:
        """The vehicle a new row belongs to: ``vehicle_id`` if given, else the one with this VIN,
        added when new. None when neither is known. Runs inside the caller's transaction."""
        if vehicle_id is not None:
            if conn.execute("SELECT 1 FROM vehicles WHERE id = ?", [vehicle_id]).fetchone() is None:
                raise HistoryError(f"no vehicle with id {vehicle_id} in the history")
            return vehicle_id
        normalized = normalize_vin(vin)
        if normalized is None:
            return None
        row = conn.execute("SELECT id FROM vehicles WHERE vin = ?", [normalized]).fetchone()
        if row is not None:
            return int(row[0])
        created = datetime.now(UTC).isoformat(timespec="seconds")
        return _add(conn, "vehicles", {"vin": normalized, "notes": notes, "created": created})
