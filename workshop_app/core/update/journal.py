"""The flash journal: where an ECU's programming stands, kept in the history database.

The flash job writes a row before it touches the ECU and moves it forward after every step and
every TransferData block the ECU acknowledged, each as its own committed transaction. If the
tool dies (kill -9, power cut) the row says what the ECU last confirmed, so the next start can
resume from there; the row is closed when the flash ends, whatever the outcome.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from workshop_app.core.history.errors import HistoryError

TABLE = "flash_journal"

# Steps in order; a resume needs at least "erased" (the ECU's memory is ours to write).
STEPS = (
    "started",
    "preconditions",
    "programming",
    "erased",
    "downloading",
    "downloaded",
    "checked",
    "version-written",
    "reset",
    "done",
)


def create_journal_table(db: Database) -> None:
    """Schema v5's journal table (a released migration: never edit, add a new one)."""
    db.table(TABLE).create(
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
    db.table(TABLE).create_index(["open"])


@dataclass(frozen=True, slots=True)
class JournalEntry:
    id: int
    vin: str
    ecu: str
    target_name: str
    target_hash: str
    image_path: str
    image_crc: int
    image_address: int | None
    release_counter: int
    step: str
    segment: int
    offset: int
    block_counter: int
    block_bytes: int
    bytes_done: int
    total_bytes: int
    from_version: str
    to_version: str
    started: float
    updated: float
    open: bool
    result: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> JournalEntry:
        values = {k: row[k] for k in cls.__slots__}
        for text in ("vin", "target_name", "image_path", "from_version", "to_version", "result"):
            values[text] = values[text] or ""
        for number in ("image_crc", "release_counter", "block_bytes", "bytes_done", "total_bytes"):
            values[number] = int(values[number] or 0)
        values["open"] = bool(values["open"])
        values["updated"] = float(values["updated"] or values["started"])
        return cls(**values)

    @property
    def resumable(self) -> bool:
        """Past the erase and before the check: the ECU holds a partial image we can continue."""
        return self.open and self.step in ("erased", "downloading")


class FlashJournal:
    """The journal table of the history database at ``path`` (created and migrated on open)."""

    def __init__(self, path: str | Path) -> None:
        from workshop_app.core.history.store import HistoryStore

        self.path = Path(path).expanduser()
        HistoryStore(self.path).close()  # creates or migrates the file, refusing foreign ones
        self._conn = sqlite3.connect(str(self.path), timeout=10.0, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> FlashJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, action: str, sql: str, args: tuple[Any, ...] | list[Any]) -> sqlite3.Cursor:
        with self._lock:
            try:
                with self._conn:  # one committed transaction: a kill after it keeps the row
                    return self._conn.execute(sql, args)
            except sqlite3.Error as exc:
                raise HistoryError(f"{self.path}: flash journal: {action} failed: {exc}") from exc

    def open_entry(
        self,
        *,
        vin: str,
        ecu: str,
        target_name: str,
        target_hash: str,
        image_path: str,
        image_crc: int,
        total_bytes: int,
        release_counter: int = 0,
        image_address: int | None = None,
        from_version: str,
        to_version: str,
    ) -> int:
        """A new open row for one flash; any older open row of the same ECU and car is closed."""
        now = time.time()
        self._run(
            "closing older entries",
            f"UPDATE {TABLE} SET open = 0, result = 'superseded', updated = ? WHERE open = 1 AND ecu = ? "
            "AND coalesce(vin, '') = ?",
            (now, ecu, vin),
        )
        cursor = self._run(
            "opening an entry",
            f"INSERT INTO {TABLE} (vin, ecu, target_name, target_hash, image_path, image_crc, image_address, "
            "release_counter, step, segment, "
            "offset, block_counter, bytes_done, total_bytes, from_version, to_version, started, updated, "
            "open, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'started', 0, 0, 1, 0, ?, ?, ?, ?, ?, 1, '')",
            (
                vin,
                ecu,
                target_name,
                target_hash,
                image_path,
                image_crc,
                image_address,
                release_counter,
                total_bytes,
                from_version,
                to_version,
                now,
                now,
            ),
        )
        if cursor.lastrowid is None:
            raise HistoryError(f"{self.path}: flash journal: the database returned no row id")
        return cursor.lastrowid

    def step(self, entry_id: int, step: str) -> None:
        if step not in STEPS:
            raise ValueError(f"unknown flash step {step!r}")
        self._run(
            "recording a step",
            f"UPDATE {TABLE} SET step = ?, updated = ? WHERE id = ?",
            (step, time.time(), entry_id),
        )

    def acknowledged(
        self,
        entry_id: int,
        segment: int,
        offset: int,
        next_counter: int,
        bytes_done: int,
        block_bytes: int = 0,
    ) -> None:
        """The ECU acknowledged everything of ``segment`` before ``offset``."""
        self._run(
            "recording a block",
            f"UPDATE {TABLE} SET step = 'downloading', segment = ?, offset = ?, block_counter = ?, "
            "bytes_done = ?, block_bytes = ?, updated = ? WHERE id = ?",
            (segment, offset, next_counter, bytes_done, block_bytes, time.time(), entry_id),
        )

    def set_result(self, entry_id: int, result: str) -> None:
        """How the last attempt on an entry that stays open ended ('' means it never ended: killed)."""
        self._run(
            "recording the result",
            f"UPDATE {TABLE} SET result = ?, updated = ? WHERE id = ?",
            (result, time.time(), entry_id),
        )

    def close_entry(self, entry_id: int, result: str) -> None:
        self._run(
            "closing the entry",
            f"UPDATE {TABLE} SET open = 0, result = ?, updated = ? WHERE id = ?",
            (result, time.time(), entry_id),
        )

    def get(self, entry_id: int) -> JournalEntry | None:
        found = self._select(f"SELECT * FROM {TABLE} WHERE id = ?", (entry_id,))
        return found[0] if found else None

    def open_entries(self, ecu: str | None = None) -> list[JournalEntry]:
        """Flashes that never ended, newest first."""
        sql = f"SELECT * FROM {TABLE} WHERE open = 1" + (" AND ecu = ?" if ecu else "") + " ORDER BY id DESC"
        return self._select(sql, (ecu,) if ecu else ())

    def _select(self, sql: str, args: tuple[Any, ...]) -> list[JournalEntry]:
        with self._lock:
            try:
                cursor = self._conn.execute(sql, args)
                names = [d[0] for d in cursor.description]
                rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
            except sqlite3.Error as exc:
                raise HistoryError(f"{self.path}: flash journal: reading failed: {exc}") from exc
        return [JournalEntry.from_row(r) for r in rows]
