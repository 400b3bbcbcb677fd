"""The flash journal: where an ECU's programming stands, kept in the history database.

The flash job writes a row before it touches the ECU and moves it forward after every step and
every TransferData block the ECU acknowledged, each as its own committed transaction. If the
tool dies (kill -9, power cut) the row says what the ECU last confirmed, so the next start can
resume from there; the row is closed when the flash ends, whatever the outcome.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workshop_app.core.history.audit import AuditEntry, AuditTrail, audit_time
from workshop_app.core.history.errors import HistoryError

try:  # POSIX: a flock dies with its process (kill -9 included), which is what "still running" means
    import fcntl
except ImportError:  # pragma: no cover - Windows: only the age of the entry tells
    fcntl = None  # type: ignore[assignment]

TABLE = "flash_journal"
# ``image_path`` of a flash from a signed package: this prefix, then the package's path or URL.
# `update resume` verifies that package again instead of trusting any copy of the image.
PACKAGE_PREFIX = "package:"
# An open entry with no running owner we can see (another host, no lock file) counts as
# interrupted once it has not moved for this long; a long erase updates nothing for minutes.
STALE_AFTER_S = 30 * 60.0
# A new entry is locked right after its insert; this covers that gap for a reader elsewhere.
LOCK_GRACE_S = 10.0

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

    @property
    def package_source(self) -> str | None:
        """The package (folder, archive or URL) this image came from; None for a plain image file."""
        if self.image_path.startswith(PACKAGE_PREFIX):
            return self.image_path[len(PACKAGE_PREFIX) :]
        return None


def package_reference(source: str | Path) -> str:
    """What the journal keeps of a package: its URL, or its absolute path (resume runs elsewhere)."""
    text = str(source)
    if "://" not in text:
        text = str(Path(text).expanduser().resolve())
    return PACKAGE_PREFIX + text


@dataclass(frozen=True, slots=True)
class Owner:
    """Who runs an open entry's flash, as its lock file says: ``alive`` False means it is gone."""

    alive: bool
    pid: int | None = None
    host: str = ""

    def describe(self) -> str:
        if self.pid is None:
            return "no process recorded"
        return f"process {self.pid} on {self.host}"


class FlashJournal:
    """The journal table of the history database at ``path`` (created and migrated on open)."""

    def __init__(self, path: str | Path) -> None:
        from workshop_app.core.history.store import HistoryStore

        self.path = Path(path).expanduser()
        HistoryStore(self.path).close()  # creates or migrates the file, refusing foreign ones
        self._conn = sqlite3.connect(str(self.path), timeout=10.0, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._lock = threading.Lock()
        self._held: dict[int, int] = {}  # entry id -> file descriptor of its held lock file

    def close(self) -> None:
        for fd in self._held.values():
            os.close(fd)  # the lock goes with it: the entry stays open for a resume
        self._held.clear()
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
        self._release_closed()
        self.claim(cursor.lastrowid)
        return cursor.lastrowid

    def step(self, entry_id: int, step: str) -> None:
        if step not in STEPS:
            raise ValueError(f"unknown flash step {step!r}")
        self.claim(entry_id)  # a resume through the Python API claims on its first write
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
        self.claim(entry_id)
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
        fd = self._held.pop(entry_id, None)
        if fd is not None:  # the attempt ended: a resume, from here or elsewhere, may claim it
            os.close(fd)

    def close_entry(self, entry_id: int, result: str) -> None:
        self._run(
            "closing the entry",
            f"UPDATE {TABLE} SET open = 0, result = ?, updated = ? WHERE id = ?",
            (result, time.time(), entry_id),
        )
        self._drop_lock(entry_id)

    # --- who runs an entry ---------------------------------------------------------------------
    def lock_dir(self) -> Path:
        """Lock files of running flashes, one per open entry, beside the history database."""
        return self.path.with_name(self.path.name + ".flashing")

    def claim(self, entry_id: int) -> None:
        """This process runs the entry now: hold its lock file (pid and host inside) until it ends.

        A claimed entry's result is emptied: if this attempt is killed, the next start sees an
        entry with no result and no living owner, and records it as interrupted.
        """
        if entry_id in self._held:
            return
        folder = self.lock_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(folder / f"{entry_id}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise HistoryError(f"{folder}: cannot write the flash lock file: {exc.strerror or exc}") from exc
        if fcntl is not None:
            deadline = time.monotonic() + 2.0  # another start may be probing it for a moment
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        owner = self._read_owner(fd)
                        os.close(fd)
                        raise HistoryError(
                            f"{self.path}: journal entry {entry_id} is being flashed by {owner.describe()}"
                        ) from None
                    time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        self._held[entry_id] = fd
        self._run(
            "claiming the entry",
            f"UPDATE {TABLE} SET result = '' WHERE id = ? AND open = 1",
            (entry_id,),
        )

    def owner(self, entry: JournalEntry, now: float | None = None) -> Owner:
        """Whether the process that runs ``entry`` still lives (its lock is held) and who it is."""
        if entry.id in self._held:
            return Owner(True, os.getpid(), socket.gethostname())
        now = time.time() if now is None else now
        try:
            fd = os.open(self.lock_dir() / f"{entry.id}.lock", os.O_RDWR)
        except FileNotFoundError:
            return Owner(now - entry.updated < LOCK_GRACE_S)
        except OSError as exc:
            raise HistoryError(f"{self.lock_dir()}: cannot read a flash lock file: {exc}") from exc
        try:
            found = self._read_owner(fd)
            if found.host != socket.gethostname() or fcntl is None:
                # Another machine's processes cannot be seen from here: only the age tells.
                return Owner(now - entry.updated < STALE_AFTER_S, found.pid, found.host)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return Owner(True, found.pid, found.host)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return Owner(False, found.pid, found.host)
        finally:
            os.close(fd)

    @staticmethod
    def _read_owner(fd: int) -> Owner:
        os.lseek(fd, 0, os.SEEK_SET)
        pid_text, _, host = os.read(fd, 512).decode("utf-8", "replace").strip().partition(" ")
        return Owner(False, int(pid_text) if pid_text.isdigit() else None, host)

    def _drop_lock(self, entry_id: int) -> None:
        fd = self._held.pop(entry_id, None)
        with contextlib.suppress(OSError):  # a leftover file of a closed entry is never read
            (self.lock_dir() / f"{entry_id}.lock").unlink(missing_ok=True)
        if fd is not None:
            os.close(fd)

    def _release_closed(self) -> None:
        """Lock files of entries closed as superseded by a newer flash are not needed any more."""
        folder = self.lock_dir()
        if not folder.is_dir():
            return
        open_ids = {e.id for e in self.open_entries()}
        for lock in folder.glob("*.lock"):
            if lock.stem.isdigit() and int(lock.stem) not in open_ids and int(lock.stem) not in self._held:
                lock.unlink(missing_ok=True)

    def record_interrupted(self, audit: AuditTrail) -> list[JournalEntry]:
        """Audit, once each, the open entries whose attempt never ended and whose process is gone.

        Their result becomes 'interrupted' (the entry stays open, so resume still works); a second
        caller, or the flash job resuming it, sees that and writes no second row.
        """
        found = []
        for entry in self.open_entries():
            if entry.result:
                continue  # ended (cancelled, failed…), already recorded, or in no need of it
            owner = self.owner(entry)
            if owner.alive:
                continue
            marked = self._run(
                "marking an interrupted entry",
                f"UPDATE {TABLE} SET result = 'interrupted' WHERE id = ? AND open = 1 AND result = ''",
                (entry.id,),
            )
            if marked.rowcount != 1:
                continue  # another start got there first
            try:
                audit.append(
                    AuditEntry(
                        ecu=entry.ecu,
                        result="interrupted",
                        duration_s=round(max(0.0, entry.updated - entry.started), 3),
                        vin=entry.vin,
                        from_version=entry.from_version,
                        to_version=entry.to_version,
                        target_hash=entry.target_hash,
                        error=f"the tool stopped during step {entry.step!r} after {entry.bytes_done} of "
                        f"{entry.total_bytes} bytes (journal entry {entry.id}; {owner.describe()} is gone)",
                        time=audit_time(entry.started),
                    )
                )
            except HistoryError:
                self.set_result(entry.id, "")  # not recorded: the next start tries again
                raise
            found.append(self.get(entry.id) or entry)
        return found

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
