"""The flash audit trail: every programming attempt, append-only and hash-chained.

Each row stores the SHA-256 of its own content together with the previous row's hash, so
changing, deleting or inserting a row anywhere breaks the chain from that row on, and
:func:`verify_chain` names the first row where it breaks. SQLite triggers refuse UPDATE and
DELETE as a first line; the chain is what still catches someone who drops the triggers.

>>> trail = AuditTrail(tmp / "history.db")                         # doctest: +SKIP
>>> trail.append(AuditEntry(vin="WDEMO...", ecu="ECM", result="success", ...))  # doctest: +SKIP
>>> trail.verify().ok                                                 # doctest: +SKIP
"""

from __future__ import annotations

import getpass
import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workshop_app.core.history.errors import HistoryError

TABLE = "flash_audit"
GENESIS = "0" * 64  # the "previous hash" of the first row
# The fields a row's hash covers, in this order. Never change it: old chains would break.
HASHED_FIELDS = (
    "id",
    "time",
    "user",
    "vin",
    "ecu",
    "from_version",
    "to_version",
    "target_hash",
    "result",
    "duration_s",
    "error",
    "prev_hash",
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One flash attempt as it is recorded."""

    ecu: str
    result: str
    duration_s: float
    vin: str = ""
    from_version: str = ""
    to_version: str = ""
    target_hash: str = ""
    error: str = ""
    user: str = field(default_factory=getpass.getuser)
    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))


@dataclass(frozen=True, slots=True)
class AuditRow:
    """A stored row with its chain fields."""

    id: int
    entry: AuditEntry
    prev_hash: str
    row_hash: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, **asdict(self.entry), "prev_hash": self.prev_hash, "row_hash": self.row_hash}


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """Result of :meth:`AuditTrail.verify`: ``broken_at`` is the first bad row id (None: intact)."""

    rows: int
    broken_at: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def row_hash(values: dict[str, Any]) -> str:
    """SHA-256 (hex) of a row's hashed fields as canonical JSON (sorted keys, no spaces)."""
    content = {name: values.get(name) for name in HASHED_FIELDS}
    if content["duration_s"] is not None:
        # REAL round-trips exactly through SQLite, but hash a fixed text so readers agree.
        content["duration_s"] = f"{float(content['duration_s']):.6f}"
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class AuditTrail:
    """The audit table of the history database at ``path`` (created and migrated on open)."""

    def __init__(self, path: str | Path) -> None:
        from workshop_app.core.history.store import HistoryStore

        self.path = Path(path).expanduser()
        HistoryStore(self.path).close()  # creates or migrates the file, refusing foreign ones
        self._conn = sqlite3.connect(str(self.path), timeout=10.0, check_same_thread=False)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> AuditTrail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def append(self, entry: AuditEntry) -> AuditRow:
        """Add one attempt at the end of the chain (one IMMEDIATE transaction: writers queue)."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                last = self._conn.execute(
                    f"SELECT id, row_hash FROM {TABLE} ORDER BY id DESC LIMIT 1"
                ).fetchone()
                new_id = (last[0] + 1) if last else 1
                values = {**asdict(entry), "id": new_id, "prev_hash": last[1] if last else GENESIS}
                values["row_hash"] = row_hash(values)
                names = ", ".join(values)
                marks = ", ".join("?" for _ in values)
                self._conn.execute(f"INSERT INTO {TABLE} ({names}) VALUES ({marks})", list(values.values()))
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise HistoryError(f"{self.path}: recording the flash attempt failed: {exc}") from exc
        return AuditRow(new_id, entry, values["prev_hash"], values["row_hash"])

    def rows(self, vin: str | None = None) -> list[AuditRow]:
        sql = f"SELECT * FROM {TABLE}" + (" WHERE vin = ?" if vin else "") + " ORDER BY id"
        with self._lock:
            cursor = self._conn.execute(sql, (vin,) if vin else ())
            names = [d[0] for d in cursor.description]
            found = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
        out = []
        for r in found:
            entry = AuditEntry(
                **{k: (r[k] if r[k] is not None else "") for k in AuditEntry.__slots__ if k != "duration_s"},
                duration_s=float(r["duration_s"]),
            )
            out.append(AuditRow(int(r["id"]), entry, r["prev_hash"], r["row_hash"]))
        return out

    def verify(self) -> ChainCheck:
        """Walk the whole chain; the first row whose content, link or numbering is wrong is named."""
        with self._lock:
            cursor = self._conn.execute(f"SELECT * FROM {TABLE} ORDER BY id")
            names = [d[0] for d in cursor.description]
            found = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
        prev = GENESIS
        for n, r in enumerate(found, start=1):
            if r["id"] != n:
                return ChainCheck(
                    len(found), r["id"], f"row {r['id']}: expected row {n} here (a row was removed)"
                )
            if r["prev_hash"] != prev:
                return ChainCheck(
                    len(found), r["id"], f"row {r['id']}: does not follow row {n - 1} (its link was changed)"
                )
            if row_hash(r) != r["row_hash"]:
                return ChainCheck(
                    len(found), r["id"], f"row {r['id']}: its content does not match its hash (it was edited)"
                )
            prev = r["row_hash"]
        return ChainCheck(len(found))


def audit_time(started_epoch: float | None = None) -> str:
    """ISO-8601 UTC of ``started_epoch`` (now when None), as audit rows store times."""
    return datetime.fromtimestamp(time.time() if started_epoch is None else started_epoch, UTC).isoformat(
        timespec="milliseconds"
    )
