"""A SQLite frame log in python-can's table layout, written synchronously in batches.

python-can's ``SqliteWriter`` loses every frame still queued when ``stop()`` is called, so the
recorder writes this format itself; python-can's ``SqliteReader`` reads the result.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import can

_SCHEMA = """CREATE TABLE IF NOT EXISTS messages (
  ts REAL, arbitration_id INTEGER, extended INTEGER, remote INTEGER,
  error INTEGER, dlc INTEGER, data BLOB)"""


class SqliteFrameWriter(can.Listener):
    """Buffers frames and inserts them in one transaction per ``flush`` (or per 10k frames).

    The recorder calls ``flush`` every half second, so a killed process leaves every committed
    transaction in the file (WAL mode: SQLite replays its journal when the file is next opened).
    """

    BATCH = 10_000

    def __init__(self, path: str | Path) -> None:
        self._conn = sqlite3.connect(str(path), check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(_SCHEMA)
        self._conn.commit()
        self._rows: list[tuple[float, int, int, int, int, int, bytes]] = []
        self.committed = 0  # rows in the file: what a crash or a later write error leaves

    def on_message_received(self, msg: can.Message) -> None:
        self._rows.append(
            (
                msg.timestamp,
                msg.arbitration_id,
                int(msg.is_extended_id),
                int(msg.is_remote_frame),
                int(msg.is_error_frame),
                msg.dlc,
                bytes(msg.data),
            )
        )
        if len(self._rows) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            with self._conn:
                self._conn.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?)", self._rows)
            self.committed += len(self._rows)
            self._rows.clear()

    def stop(self) -> None:
        self.flush()
        self._conn.close()

    def abandon(self) -> None:
        """Close after a failed write: the failed transaction is rolled back, earlier ones stay."""
        self._rows.clear()
        try:
            self._conn.rollback()
        finally:
            self._conn.close()
