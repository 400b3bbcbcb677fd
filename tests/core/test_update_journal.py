"""The flash journal's owner lock: a flash whose process died is audited once as interrupted.

Real parts: the history database in SQLite, the lock file held by a second Python process that
is then killed with SIGKILL, the hash-chained audit trail.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from workshop_app.core.history.audit import AuditTrail
from workshop_app.core.update.journal import (
    PACKAGE_PREFIX,
    STALE_AFTER_S,
    FlashJournal,
    package_reference,
)

OPENER = """
import sys, time
from workshop_app.core.update.journal import FlashJournal
j = FlashJournal(sys.argv[1])
entry = j.open_entry(vin="WDEMO000000000042", ecu="ECM", target_name="ecm.bin", target_hash="ab" * 32,
                     image_path="package:/media/usb/pkg", image_crc=1, total_bytes=40960,
                     release_counter=5, from_version="SW 0412", to_version="SW 0500")
j.step(entry, "erased")
j.acknowledged(entry, 0, 8190, 3, 8190, 4095)
print(entry, flush=True)
time.sleep(600)
"""


def _flashing_process(db: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", OPENER, str(db)], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the entry id, once the row and its lock exist
    assert line.strip().isdigit(), line
    return proc, int(line)


def test_a_killed_flash_is_audited_once_and_only_after_its_process_died(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    proc, entry_id = _flashing_process(db)
    try:
        with FlashJournal(db) as journal, AuditTrail(db) as audit:
            (entry,) = journal.open_entries()
            owner = journal.owner(entry)
            assert owner.alive and owner.pid == proc.pid and owner.host == socket.gethostname()
            assert journal.record_interrupted(audit) == []  # still flashing: nothing to record
            assert audit.rows() == []
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    with FlashJournal(db) as journal, AuditTrail(db) as audit:
        (entry,) = journal.open_entries()
        assert not journal.owner(entry).alive
        (found,) = journal.record_interrupted(audit)
        assert found.id == entry_id and found.result == "interrupted" and found.open and found.resumable
        assert journal.record_interrupted(audit) == []  # once
        (row,) = audit.rows()
    with FlashJournal(db) as again, AuditTrail(db) as audit:  # a later start records nothing more
        assert again.record_interrupted(audit) == []
        assert len(audit.rows()) == 1 and audit.verify().ok
    e = row.entry
    assert (e.result, e.ecu, e.vin, e.from_version, e.to_version) == (
        "interrupted",
        "ECM",
        "WDEMO000000000042",
        "SW 0412",
        "SW 0500",
    )
    assert f"after 8190 of 40960 bytes (journal entry {entry_id}; process {proc.pid} on" in e.error
    assert found.package_source == "/media/usb/pkg"


def test_a_resume_claims_the_entry_and_a_kill_of_the_resume_is_recorded_again(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    proc, entry_id = _flashing_process(db)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    with FlashJournal(db) as journal, AuditTrail(db) as audit:
        assert len(journal.record_interrupted(audit)) == 1
        journal.claim(entry_id)  # resuming: this process owns it now, its result is empty again
        (entry,) = journal.open_entries()
        assert entry.result == "" and journal.owner(entry).alive
        with FlashJournal(db) as other:  # another start, same process or not, sees it alive
            assert other.owner(entry).alive and other.record_interrupted(audit) == []
            with pytest.raises(Exception, match=f"journal entry {entry_id} is being flashed by process"):
                other.claim(entry_id)
    # The resuming journal closed without ending the entry (as a kill would): recorded again.
    with FlashJournal(db) as journal, AuditTrail(db) as audit:
        assert len(journal.record_interrupted(audit)) == 1
        assert [r.entry.result for r in audit.rows()] == ["interrupted", "interrupted"]


def test_ended_attempts_are_not_interrupted_and_closed_entries_drop_their_lock(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    with FlashJournal(db) as journal, AuditTrail(db) as audit:
        kwargs = dict(
            target_name="x", target_hash="cd" * 32, image_path="/x.hex", image_crc=0, total_bytes=10
        )
        cancelled = journal.open_entry(vin="V1", ecu="ECM", from_version="a", to_version="b", **kwargs)
        journal.set_result(cancelled, "cancelled")
        done = journal.open_entry(vin="V1", ecu="BCM", from_version="a", to_version="b", **kwargs)
        assert (journal.lock_dir() / f"{done}.lock").is_file()
        journal.close_entry(done, "success")
        assert not (journal.lock_dir() / f"{done}.lock").exists()
    with FlashJournal(db) as journal, AuditTrail(db) as audit:
        assert journal.record_interrupted(audit) == [] and audit.rows() == []


def test_an_entry_flashed_from_another_machine_is_interrupted_only_when_stale(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    with FlashJournal(db) as journal:
        entry_id = journal.open_entry(
            vin="V1",
            ecu="ECM",
            target_name="x",
            target_hash="ef" * 32,
            image_path=package_reference("https://updates.example/pkg/"),
            image_crc=0,
            total_bytes=10,
            from_version="a",
            to_version="b",
        )
    # The lock file says another host runs it: its processes cannot be seen from here.
    (journal.lock_dir() / f"{entry_id}.lock").write_text("4242 workbench-7\n")
    with FlashJournal(db) as journal:
        (entry,) = journal.open_entries()
        assert entry.package_source == "https://updates.example/pkg/"
        assert entry.image_path == PACKAGE_PREFIX + "https://updates.example/pkg/"
        fresh = journal.owner(entry)
        assert fresh.alive and (fresh.pid, fresh.host) == (4242, "workbench-7")
        assert not journal.owner(entry, now=entry.updated + STALE_AFTER_S + 1).alive


def test_package_reference_keeps_urls_and_makes_paths_absolute(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    assert package_reference("pkg.tar.gz") == PACKAGE_PREFIX + str(tmp_path / "pkg.tar.gz")
    assert package_reference("http://127.0.0.1:8000/pkg/") == PACKAGE_PREFIX + "http://127.0.0.1:8000/pkg/"
