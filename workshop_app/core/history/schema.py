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
OUR_TABLES = {"vehicles", "recordings"}


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


# (version, description, migration); versions are 1, 2, 3, ... without gaps.
MIGRATIONS: tuple[tuple[int, str, Callable[[Database], None]], ...] = (
    (1, "vehicles and recordings", _v1_vehicles_and_recordings),
    (
        2,
        "recording file size; indexes for recent-first and per-vehicle lists",
        _v2_recording_size_and_indexes,
    ),
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
