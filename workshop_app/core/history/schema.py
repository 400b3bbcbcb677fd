"""The history's schema as numbered forward migrations, and the table recording which ran.

A migration is applied once, in order, inside one ``BEGIN IMMEDIATE`` transaction together
with its row in ``schema_version``, so two programs opening an old file at once (GUI and CLI)
do not both migrate it, and a failed migration leaves the file as it was. Never edit a
released migration: append a new one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlite_utils import Database

from workshop_app.core.history.errors import HistoryFileError

VERSION_TABLE = "schema_version"
OUR_TABLES = {
    "vehicles",
    "recordings",
    "scans",
    "scan_ecus",
    "scan_dtcs",
    "dtc_snapshots",
    "dtc_events",
    "clears",
    "recording_gaps",
    "flash_journal",
    "flash_audit",
    "vehicle_health",
}


def _v1_vehicles_and_recordings(db: Database) -> None:
    db.table("vehicles").create(
        {
            "id": int,
            "vin": str,  # NULL for a car without a known VIN; SQLite lets several NULLs be unique
            "make": str,
            "model": str,
            "year": int,
            "plate": str,
            "notes": str,
            "created": str,  # ISO-8601 UTC
        },
        pk="id",
        not_null={"created"},
    )
    db.table("vehicles").create_index(["vin"], unique=True)
    db.table("recordings").create(
        {
            "id": int,
            "path": str,
            "format": str,
            "started": str,  # ISO-8601 UTC, for people and other tools
            "started_epoch": float,  # seconds, for sorting and arithmetic
            "duration_s": float,
            "frames": int,
            "dropped": int,
            "source": str,
            "vehicle_id": int,
            "notes": str,
        },
        pk="id",
        not_null={"path", "format", "started", "started_epoch", "duration_s", "frames", "dropped", "source"},
        foreign_keys=[("vehicle_id", "vehicles", "id")],
    )


def _v2_recording_size_and_indexes(db: Database) -> None:
    db.table("recordings").add_column("size_bytes", int)
    db.table("recordings").create_index(["started_epoch"])
    db.table("recordings").create_index(["vehicle_id"])


def _v3_scans_dtcs_and_clears(db: Database) -> None:
    db.table("scans").create(
        {
            "id": int,
            "vehicle_id": int,  # NULL for a scan of a car without a known VIN
            "started": str,  # ISO-8601 UTC
            "started_epoch": float,
            "seconds": float,
            "label": str,  # ScanLabel value: '', 'pre-repair' or 'post-repair'
            "connection": str,
            "mileage_km": float,
            "vin": str,  # as the scan read it, kept even when the vehicle row changes
            "vehicle": str,  # the vehicle's name as the scan showed it
            "dtc_count": int,
            "note": str,
        },
        pk="id",
        not_null={"started", "started_epoch", "seconds", "label", "dtc_count"},
        foreign_keys=[("vehicle_id", "vehicles", "id")],
    )
    db.table("scan_ecus").create(
        {
            "id": int,
            "scan_id": int,
            "name": str,
            "address": str,
            "description": str,
            "state": str,  # EcuState value, for queries; the object derives it again
            "responded": int,
            "expected": int,
            "identification": str,  # JSON object
            "problems": str,  # JSON list
            "seconds": float,
        },
        pk="id",
        not_null={"scan_id", "name", "state", "responded", "expected"},
        foreign_keys=[("scan_id", "scans", "id")],
    )
    db.table("scan_dtcs").create(
        {
            "id": int,
            "scan_ecu_id": int,  # NULL for codes read with OBD-II modes 03/07/0A
            "scan_id": int,
            "ecu": str,
            "code": int,  # 3-byte UDS DTC
            "sae": str,
            "status": int,
            "description": str,
            "source": str,
            "occurrences": int,
        },
        pk="id",
        not_null={"scan_id", "code", "sae", "status"},
        foreign_keys=[("scan_ecu_id", "scan_ecus", "id"), ("scan_id", "scans", "id")],
    )
    db.table("dtc_snapshots").create(
        {
            "id": int,
            "scan_dtc_id": int,
            "kind": str,  # 'snapshot' (freeze frame) or 'extended'
            "record": int,
            "name": str,
            "value": str,  # exact text of the value (repr for floats)
            "number": float,  # the value when numeric, NULL otherwise: for queries and plots
            "value_type": str,  # 'int', 'float' or 'str': rebuilds the Python value exactly
            "unit": str,
            "did": int,
        },
        pk="id",
        not_null={"scan_dtc_id", "kind", "record", "name", "value", "value_type"},
        foreign_keys=[("scan_dtc_id", "scan_dtcs", "id")],
    )
    db.table("dtc_events").create(
        {
            "id": int,
            "vehicle_id": int,
            "time": float,  # unix time
            "ecu": str,
            "code": int,
            "sae": str,
            "status": int,
            "kind": str,  # 'appeared' or 'cleared'
            "recording_id": int,
        },
        pk="id",
        not_null={"time", "code", "sae", "status", "kind"},
        foreign_keys=[("vehicle_id", "vehicles", "id"), ("recording_id", "recordings", "id")],
    )
    db.table("clears").create(
        {
            "id": int,
            "vehicle_id": int,
            "time": float,  # unix time
            "ecu": str,  # an ECU name or 'ALL'
            "result": str,  # 'done' or 'failed'
            "detail": str,
        },
        pk="id",
        not_null={"time", "ecu", "result"},
        foreign_keys=[("vehicle_id", "vehicles", "id")],
    )
    for table, columns in (
        ("scans", ["vehicle_id"]),
        ("scans", ["started_epoch"]),
        ("scan_ecus", ["scan_id"]),
        ("scan_dtcs", ["scan_id"]),
        ("scan_dtcs", ["scan_ecu_id"]),
        ("dtc_snapshots", ["scan_dtc_id"]),
        ("dtc_events", ["vehicle_id"]),
        ("dtc_events", ["time"]),
        ("dtc_events", ["recording_id"]),
        ("clears", ["vehicle_id"]),
        ("clears", ["time"]),
    ):
        db.table(table).create_index(columns)


def _v4_recording_gaps(db: Database) -> None:
    # Times a recording's link was down and reconnected: the file has no frames there.
    db.table("recording_gaps").create(
        {
            "id": int,
            "recording_id": int,
            "started_epoch": float,
            "duration_s": float,
            "reason": str,
        },
        pk="id",
        not_null={"recording_id", "started_epoch", "duration_s"},
        foreign_keys=[("recording_id", "recordings", "id")],
    )
    db.table("recording_gaps").create_index(["recording_id"])


def _v5_flash_journal_and_audit(db: Database) -> None:
    # Open flash jobs (resume after a crash) and the hash-chained audit trail (core/history/audit.py).
    # (Released migrations are frozen here, not shared with the modules that use the tables,
    # so a later change to those modules can never change what an old file migrates to.)
    db.table("flash_journal").create(
        {
            "id": int,
            "vin": str,
            "ecu": str,
            "target_name": str,
            "target_hash": str,  # SHA-256 hex of the image being written
            "image_path": str,  # where the image came from, so `update resume` can read it again
            "image_crc": int,
            "image_address": int,  # load address of a raw binary image (NULL for HEX/S-record)
            "release_counter": int,  # what the flash writes to 0xF1B0
            "step": str,  # one of journal.STEPS
            "segment": int,  # index of the segment being written
            "offset": int,  # bytes of that segment the ECU acknowledged
            "block_counter": int,  # the next TransferData block sequence counter (0..255)
            "block_bytes": int,  # data bytes per TransferData block in this download
            "bytes_done": int,  # acknowledged bytes of the whole image
            "total_bytes": int,
            "from_version": str,
            "to_version": str,
            "started": float,  # unix time
            "updated": float,
            "open": int,  # 1 until the flash ends (success, failure or a clean restart)
            "result": str,
        },
        pk="id",
        not_null={"ecu", "target_hash", "step", "segment", "offset", "block_counter", "started", "open"},
    )
    db.table("flash_journal").create_index(["open"])
    db.table("flash_audit").create(
        {
            "id": int,
            "time": str,  # ISO-8601 UTC of the attempt's start
            "user": str,  # the workshop user (login name) who ran it
            "vin": str,
            "ecu": str,
            "from_version": str,
            "to_version": str,
            "target_hash": str,
            "result": str,  # 'success', 'failed', 'refused', 'cancelled'
            "duration_s": float,
            "error": str,
            "prev_hash": str,
            "row_hash": str,
        },
        pk="id",
        not_null={"time", "user", "ecu", "result", "duration_s", "prev_hash", "row_hash"},
    )
    db.table("flash_audit").create_index(["vin"])
    for action in ("UPDATE", "DELETE"):
        db.execute(
            f"CREATE TRIGGER flash_audit_no_{action.lower()} BEFORE {action} ON flash_audit "
            f"BEGIN SELECT RAISE(ABORT, 'the flash audit trail is append-only'); END"
        )


def _v6_vehicle_health(db: Database) -> None:
    # Health summaries the cloud agents publish, one row per summary and VIN (core/history/fleet_store.py).
    db.table("vehicle_health").create(
        {
            "id": int,
            "vin": str,
            "time": float,  # unix time of the summary (the agent's clock; receipt time if it gave none)
            "received": str,  # ISO-8601 UTC, workshop clock
            "summary": str,  # the summary as published, JSON
            "dtc_count": int,
            "battery_v": float,
            "odometer_km": float,
        },
        pk="id",
        not_null={"vin", "time", "received", "summary"},
    )
    # QoS 1 is at-least-once: a summary delivered twice is stored once.
    db.table("vehicle_health").create_index(["vin", "time"], unique=True)


# (version, description, migration); versions are 1, 2, 3, ... without gaps.
MIGRATIONS: tuple[tuple[int, str, Callable[[Database], None]], ...] = (
    (1, "vehicles and recordings", _v1_vehicles_and_recordings),
    (
        2,
        "recording file size; indexes for recent-first and per-vehicle lists",
        _v2_recording_size_and_indexes,
    ),
    (
        3,
        "vehicle scans with ECUs, DTCs and freeze frames; live DTC events; clears",
        _v3_scans_dtcs_and_clears,
    ),
    (4, "link gaps of recordings (lost and reconnected connections)", _v4_recording_gaps),
    (
        5,
        "flash journal (resumable ECU programming) and hash-chained flash audit",
        _v5_flash_journal_and_audit,
    ),
    (6, "vehicle health summaries received over the cloud link, per VIN", _v6_vehicle_health),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def schema_version(db: Database) -> int:
    """The file's schema version: 0 for an empty database."""
    if not db.table(VERSION_TABLE).exists():
        return 0
    row = db.execute(f"SELECT max(version) FROM {VERSION_TABLE}").fetchone()
    return int(row[0] or 0)


def check_is_history(db: Database, path: Path) -> None:
    """Refuse a SQLite file that belongs to something else: we never add tables to it."""
    tables = set(db.table_names())
    if tables and VERSION_TABLE not in tables:
        mine = sorted(tables & OUR_TABLES)
        hint = f" (it has tables {', '.join(mine)} but no {VERSION_TABLE})" if mine else ""
        raise HistoryFileError(
            f"{path}: is a SQLite database but not a workshop history{hint}; "
            "choose another file with --history or move this one away"
        )


def migrate(db: Database, path: Path) -> int:
    """Bring the file to :data:`SCHEMA_VERSION`; returns the version it had before."""
    conn = db.conn
    # IMMEDIATE takes the write lock before reading the version, so the check and the
    # migrations are one step for concurrent openers.
    conn.execute("BEGIN IMMEDIATE")
    try:
        check_is_history(db, path)
        before = schema_version(db)
        if before > SCHEMA_VERSION:
            raise HistoryFileError(
                f"{path}: written by a newer workshop (schema {before}; this version knows up to "
                f"{SCHEMA_VERSION}); update workshop or choose another file with --history"
            )
        if before < SCHEMA_VERSION and not db.table(VERSION_TABLE).exists():
            db.table(VERSION_TABLE).create(
                {"version": int, "description": str, "applied": str},
                pk="version",
                not_null={"description", "applied"},
            )
        for version, description, step in MIGRATIONS:
            if version <= before:
                continue
            step(db)
            db.table(VERSION_TABLE).insert(
                {
                    "version": version,
                    "description": description,
                    "applied": datetime.now(UTC).isoformat(timespec="seconds"),
                }
            )
        conn.execute("COMMIT")
        return before
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def describe_sqlite_error(exc: sqlite3.Error) -> str:
    """Plain words for the SQLite errors a user can meet."""
    text = str(exc)
    if "file is not a database" in text or "malformed" in text:
        return f"not a readable SQLite database ({text})"
    if "locked" in text or "busy" in text:
        return f"in use by another program ({text}); try again"
    if "readonly" in text or "unable to open" in text:
        return f"cannot be opened for writing ({text})"
    return text
