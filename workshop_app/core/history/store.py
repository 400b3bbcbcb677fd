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

import json
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from workshop_app.core.diag.dtc import Dtc, SnapshotValue, sae_code, status_words
from workshop_app.core.diag.model import EcuResult, ScanComparison, ScanLabel, ScanResult, compare_scans
from workshop_app.core.history.errors import HistoryError, HistoryFileError
from workshop_app.core.history.schema import describe_sqlite_error, migrate, schema_version
from workshop_app.core.logfiles import log_suffix
from workshop_app.core.sources.reconnect import LinkGap

if TYPE_CHECKING:  # only for annotations: listing the history needs no numpy or asammdf
    from workshop_app.core.capture.recorder import RecordingSummary
    from workshop_app.core.diag.scan import ClearOutcome

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
    kind, text = row["value_type"], row["value"]
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


def _add_dtc(conn: sqlite3.Connection, scan_id: int, ecu_id: int | None, ecu: str, dtc: Dtc) -> None:
    dtc_id = _add(
        conn,
        "scan_dtcs",
        {
            "scan_ecu_id": ecu_id,
            "scan_id": scan_id,
            "ecu": ecu,
            "code": dtc.code,
            "sae": dtc.sae,
            "status": dtc.status,
            "description": dtc.description,
            "source": dtc.source,
            "occurrences": dtc.occurrence_count(),
        },
    )
    rows = [
        (dtc_id, kind, record, v.name, *_value_columns(v.value).values(), v.unit, v.did)
        for kind, records in (("snapshot", dtc.snapshots), ("extended", dtc.extended))
        for record, values in records.items()
        for v in values
    ]
    conn.executemany(
        "INSERT INTO dtc_snapshots (scan_dtc_id, kind, record, name, value, number, value_type, unit, did) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


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

    def add_scan(self, result: ScanResult, *, vehicle_id: int | None = None, note: str = "") -> int:
        """Store a whole scan in one transaction; returns its id and sets ``result.scan_id``.

        The vehicle is ``vehicle_id`` or the one with the scan's VIN (added when new). A scan
        whose VIN is unreadable is still kept, just not linked to a vehicle: losing the scan
        would be worse.
        """
        try:
            vin = normalize_vin(result.vin)
        except HistoryError:
            vin = None
        with self._write("saving a scan") as conn:
            vid = self._resolve_vehicle(conn, vin, vehicle_id, notes=result.vehicle or None)
            scan_id = _add(
                conn,
                "scans",
                {
                    "vehicle_id": vid,
                    "started": _iso(result.started),
                    "started_epoch": result.started,
                    "seconds": result.seconds,
                    "label": result.label.value,
                    "connection": result.connection,
                    "mileage_km": result.mileage_km,
                    "vin": result.vin,
                    "vehicle": result.vehicle,
                    "dtc_count": result.dtc_count,
                    "note": note,
                },
            )
            for ecu in result.ecus:
                ecu_id = _add(
                    conn,
                    "scan_ecus",
                    {
                        "scan_id": scan_id,
                        "name": ecu.name,
                        "address": ecu.address,
                        "description": ecu.description,
                        "state": ecu.state.value,
                        "responded": int(ecu.responded),
                        "expected": int(ecu.expected),
                        "identification": json.dumps(ecu.identification, ensure_ascii=False),
                        "problems": json.dumps(ecu.problems, ensure_ascii=False),
                        "seconds": ecu.seconds,
                    },
                )
                for dtc in ecu.dtcs:
                    _add_dtc(conn, scan_id, ecu_id, ecu.name, dtc)
            for dtc in result.obd_dtcs:
                _add_dtc(conn, scan_id, None, "", dtc)
        result.scan_id = scan_id
        return scan_id

    def scan(self, scan_id: int) -> ScanResult:
        """The stored scan rebuilt: ECUs, DTCs, freeze frames and extended data as they were saved."""
        with self._errors("reading a scan"):
            rows = self._query("SELECT * FROM scans WHERE id = ?", [scan_id])
            if not rows:
                raise HistoryError(f"no scan with id {scan_id} in the history")
            head = rows[0]
            result = ScanResult(
                started=head["started_epoch"],
                seconds=head["seconds"],
                vin=head["vin"] or "",
                vehicle=head["vehicle"] or "",
                mileage_km=head["mileage_km"],
                label=ScanLabel(head["label"]),
                connection=head["connection"] or "",
                scan_id=scan_id,
            )
            ecus: dict[int, EcuResult] = {}
            for r in self._query("SELECT * FROM scan_ecus WHERE scan_id = ? ORDER BY id", [scan_id]):
                ecu = EcuResult(
                    r["name"],
                    r["address"] or "",
                    r["description"] or "",
                    responded=bool(r["responded"]),
                    expected=bool(r["expected"]),
                    identification=json.loads(r["identification"] or "{}"),
                    problems=json.loads(r["problems"] or "[]"),
                    seconds=r["seconds"] or 0.0,
                )
                ecus[r["id"]] = ecu
                result.ecus.append(ecu)
            dtcs: dict[int, Dtc] = {}
            for r in self._query("SELECT * FROM scan_dtcs WHERE scan_id = ? ORDER BY id", [scan_id]):
                dtc = Dtc(r["code"], r["status"], r["description"] or "", source=r["source"] or "uds")
                dtcs[r["id"]] = dtc
                owner = ecus[r["scan_ecu_id"]].dtcs if r["scan_ecu_id"] is not None else result.obd_dtcs
                owner.append(dtc)
            values = self._query(
                "SELECT v.* FROM dtc_snapshots v JOIN scan_dtcs d ON d.id = v.scan_dtc_id "
                "WHERE d.scan_id = ? ORDER BY v.id",
                [scan_id],
            )
            for r in values:
                dtc = dtcs[r["scan_dtc_id"]]
                records = dtc.snapshots if r["kind"] == "snapshot" else dtc.extended
                value = SnapshotValue(r["name"], _value_from(r), r["unit"] or "", r["did"])
                records.setdefault(r["record"], []).append(value)
        return result

    def scans(
        self, vin: str | None = None, limit: int | None = None, *, vehicle_id: int | None = None
    ) -> list[ScanSummary]:
        """Scans, newest first; only one vehicle's with ``vin`` or ``vehicle_id``."""
        where = ""
        args: list[str | int | None] = []
        if vin is not None:
            normalized = normalize_vin(vin)
            where, args = "WHERE vehicle_id IN (SELECT id FROM vehicles WHERE vin = ?)", [normalized]
        elif vehicle_id is not None:
            where, args = "WHERE vehicle_id = ?", [vehicle_id]
        sql = f"SELECT * FROM scans {where} ORDER BY started_epoch DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._errors("listing scans"):
            return [ScanSummary.from_row(r) for r in self._query(sql, args)]

    def previous_scan(self, scan_id: int) -> ScanResult | None:
        """The same vehicle's scan just before this one, or None (first scan, or no vehicle)."""
        with self._errors("looking up the previous scan"):
            rows = self._query("SELECT vehicle_id, started_epoch FROM scans WHERE id = ?", [scan_id])
            if not rows:
                raise HistoryError(f"no scan with id {scan_id} in the history")
            vid, started = rows[0]["vehicle_id"], rows[0]["started_epoch"]
            if vid is None:
                return None
            # Scans of the same second are ordered by id, i.e. by when they were stored.
            before = self._query(
                "SELECT id FROM scans WHERE vehicle_id = ? AND id != ? "
                "AND (started_epoch < ? OR (started_epoch = ? AND id < ?)) "
                "ORDER BY started_epoch DESC, id DESC LIMIT 1",
                [vid, scan_id, started, started, scan_id],
            )
        return self.scan(before[0]["id"]) if before else None

    def compare_with_previous(self, scan_id: int) -> ScanComparison | None:
        """DTCs of this scan against the vehicle's previous one (new / gone / still), or None."""
        previous = self.previous_scan(scan_id)
        return compare_scans(previous, self.scan(scan_id)) if previous is not None else None

    def expected_ecus(self, vin: str) -> list[str]:
        """ECUs that answered in any stored scan of this vehicle, in the order first seen.

        The network view marks those missing from a new scan: a module that answered before
        and is silent now is worth a look (fuse, connector, dead module).
        """
        normalized = normalize_vin(vin)
        if normalized is None:
            return []
        with self._errors("listing a vehicle's ECUs"):
            rows = self._query(
                "SELECT e.name FROM scan_ecus e JOIN scans s ON s.id = e.scan_id "
                "JOIN vehicles v ON v.id = s.vehicle_id "
                "WHERE v.vin = ? AND e.responded = 1 GROUP BY e.name ORDER BY min(e.id)",
                [normalized],
            )
        return [r["name"] for r in rows]

    # -- clears and DTC events --------------------------------------------------------------

    def add_clears(self, outcomes: Iterable[ClearOutcome], *, vin: str | None) -> None:
        """Log the outcome of a clear flow, each stamped when the ECU answered (not now).

        The window and ``workshop dtc clear`` store outcomes after the post-repair scan; a
        stamp taken here would put the clear after that scan on the vehicle's timeline.
        """
        for o in outcomes:
            self.add_clear(
                o.ecu, result="done" if o.done else "failed", detail=o.detail, time=o.time, vin=vin
            )

    def add_clear(
        self,
        ecu: str = "ALL",
        *,
        result: str = "done",
        detail: str = "",
        time: float | None = None,
        vin: str | None = None,
        vehicle_id: int | None = None,
    ) -> int:
        """Log a clear-DTCs action (``ecu`` a name or ``"ALL"``; ``result`` done/failed)."""
        if result not in CLEAR_RESULTS:
            raise HistoryError(f"clear result must be one of {', '.join(CLEAR_RESULTS)}, not {result!r}")
        with self._write("logging a clear") as conn:
            record = {
                "vehicle_id": self._resolve_vehicle(conn, vin, vehicle_id),
                "time": _now() if time is None else time,
                "ecu": ecu,
                "result": result,
                "detail": detail,
            }
            return _add(conn, "clears", record)

    def add_dtc_event(
        self,
        ecu: str,
        code: int,
        kind: str,
        *,
        status: int = 0,
        time: float | None = None,
        vin: str | None = None,
        vehicle_id: int | None = None,
        recording_id: int | None = None,
    ) -> int:
        """Log a DTC seen appearing or clearing while watching live (``kind`` appeared/cleared)."""
        if kind not in DTC_EVENT_KINDS:
            raise HistoryError(f"DTC event kind must be one of {', '.join(DTC_EVENT_KINDS)}, not {kind!r}")
        try:
            sae = sae_code(code)
        except ValueError as exc:
            raise HistoryError(str(exc)) from exc
        with self._write("logging a DTC event") as conn:
            if recording_id is not None and (
                conn.execute("SELECT 1 FROM recordings WHERE id = ?", [recording_id]).fetchone() is None
            ):
                raise HistoryError(f"no recording with id {recording_id} in the history")
            record = {
                "vehicle_id": self._resolve_vehicle(conn, vin, vehicle_id),
                "time": _now() if time is None else time,
                "ecu": ecu,
                "code": code,
                "sae": sae,
                "status": status,
                "kind": kind,
                "recording_id": recording_id,
            }
            return _add(conn, "dtc_events", record)

    def timeline(self, vin: str) -> list[TimelineEntry]:
        """A vehicle's scans, clears, live DTC events and recordings, oldest first."""
        car = self.find_vehicle(vin)
        if car is None:
            return []
        entries: list[TimelineEntry] = []
        with self._errors("reading a vehicle's timeline"):
            for r in self._query(
                "SELECT s.*, (SELECT count(*) FROM scan_ecus e WHERE e.scan_id = s.id AND e.responded = 1) "
                "AS answered FROM scans s WHERE vehicle_id = ?",
                [car.id],
            ):
                label = f" ({r['label']})" if r["label"] else ""
                text = (
                    f"Scan{label}: {r['answered']} ECUs answered, {r['dtc_count']} DTCs"
                    f"{_mileage_text(r['mileage_km'])}"
                )
                entries.append(TimelineEntry(r["started_epoch"], "scan", r["id"], text))
            for r in self._query("SELECT * FROM clears WHERE vehicle_id = ?", [car.id]):
                target = "all ECUs" if r["ecu"] == "ALL" else r["ecu"]
                text = (
                    f"Cleared DTCs of {target}"
                    if r["result"] == "done"
                    else f"Clearing DTCs of {target} failed"
                )
                entries.append(
                    TimelineEntry(
                        r["time"], "clear", r["id"], text + (f": {r['detail']}" if r["detail"] else "")
                    )
                )
            for r in self._query("SELECT * FROM dtc_events WHERE vehicle_id = ?", [car.id]):
                words = ", ".join(status_words(r["status"]))
                text = f"{r['sae']} {r['kind']} on {r['ecu']}" + (f" ({words})" if words else "")
                entries.append(TimelineEntry(r["time"], "dtc", r["id"], text))
            for rec in self.recordings(limit=None, vehicle_id=car.id):
                text = (
                    f"Recording {rec.path.name}: {rec.duration_s:.1f} s, {rec.frames} frames ({rec.format})"
                )
                entries.append(TimelineEntry(rec.started_epoch, "recording", rec.id, text))
        order = {"recording": 0, "scan": 1, "clear": 2, "dtc": 3}
        entries.sort(key=lambda e: (e.time, order[e.kind], e.id))
        return entries
