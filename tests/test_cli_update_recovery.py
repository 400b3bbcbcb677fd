"""Recovery from the command line: a package install killed with SIGKILL, `workshop audit` and
`workshop update resume` after it, `update check` against this workshop's record, and the
`[y/N]` question answered on a terminal.

The demo car (simulated vehicle, ECUs and bootloaders) runs in this process on a virtual bus
served over socketcand; the tool runs as a real `python -m workshop_app` process, so a kill
leaves the car exactly as a real one would be left.
"""

from __future__ import annotations

import json
import os
import pty
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest
from helpers.sim_packages import VIN, build_sim_package
from helpers.update_cli import BLOCK, WORKSHOP, env, kill_install_midway, served, trust

from workshop_app.cli import main
from workshop_app.core.history.audit import AuditTrail
from workshop_app.core.update.journal import FlashJournal


def test_killed_install_is_audited_as_interrupted_then_resume_verifies_the_package_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pkg = tmp_path / "pkg"
    build_sim_package(pkg, size=24 * BLOCK)
    trust(pkg)
    db = tmp_path / "h.db"
    with served(tmp_path) as (car, link):
        kill_install_midway(car, link, pkg, db)
        with FlashJournal(db) as journal:
            (entry,) = journal.open_entries()
        assert entry.package_source == str(pkg.resolve()) and entry.target_name == "ECM-SW0500.bin"
        assert entry.resumable and entry.result == ""
        capsys.readouterr()

        # Never resumed, the attempt is still in the audit trail: `workshop audit` records it once.
        assert main(["audit", "--history", str(db)]) == 0
        out, err = capsys.readouterr()
        assert "interrupted" in out and f"journal entry {entry.id}" in out and "is gone" in out
        assert "`workshop update resume` continues it" in err
        assert main(["audit", "--history", str(db), "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert [r["result"] for r in rows] == ["interrupted"] and rows[0]["vin"] == VIN
        assert main(["audit", "verify", "--history", str(db)]) == 0
        assert "intact (1 row" in capsys.readouterr().out

        # Nothing re-typed: the journal says which package and image; TUF and the car are checked again.
        blocks_before = car.watch.programming_requests().count(0x36)
        resumed = subprocess.run(
            [*WORKSHOP, "update", "resume", "--json", *link],
            capture_output=True,
            text=True,
            env=env(),
            timeout=180,
        )
        assert resumed.returncode == 0, resumed.stderr
        assert car.net.ecu("ECM").flash.software_version == "SW 0500"  # type: ignore[union-attr]
        blocks_resumed = car.watch.programming_requests().count(0x36) - blocks_before
    data = json.loads(resumed.stdout)
    assert data["plan"]["ok"] and data["plan"]["package"] == str(pkg.resolve())
    (flash,) = data["outcome"]["flashes"]
    assert flash["result"] == "success" and flash["resumed"]
    assert any(n.startswith(f"resumed at segment 0 offset {entry.offset}") for n in flash["notes"]), flash
    # The acknowledged blocks were not sent again (the one in flight at the kill may be).
    assert blocks_resumed <= 24 - entry.offset // BLOCK + 1 < 24
    with AuditTrail(db) as trail:
        assert [r.entry.result for r in trail.rows()] == ["interrupted", "success"] and trail.verify().ok
    with FlashJournal(db) as journal:
        assert journal.open_entries() == []


def test_resume_names_the_package_path_when_it_is_gone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pkg = tmp_path / "pkg"
    build_sim_package(pkg, size=16 * BLOCK)
    trust(pkg)
    db = tmp_path / "h.db"
    with served(tmp_path) as (car, link):
        kill_install_midway(car, link, pkg, db)
        pkg.rename(tmp_path / "moved")
        capsys.readouterr()
        assert main(["update", "resume", *link]) == 1
        requests_after = car.watch.programming_requests()
    err = capsys.readouterr().err
    assert f"{pkg.resolve()}: the update package of the unfinished flash" in err
    assert "is not there any more" in err and "ECM-SW0500.bin" in err
    # The kill was recorded when the command started, the refusal sent nothing that programs.
    assert "recorded in the audit trail as interrupted" in err
    assert len(requests_after) == len(car.watch.programming_requests())
    with AuditTrail(db) as trail:
        assert [r.entry.result for r in trail.rows()] == ["interrupted"]


def test_resume_refuses_another_car_than_the_one_in_the_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pkg = tmp_path / "pkg"
    build_sim_package(pkg, size=16 * BLOCK)
    trust(pkg)
    db = tmp_path / "h.db"
    with served(tmp_path) as (car, link):
        kill_install_midway(car, link, pkg, db)
        # The journal's row names another car (as if that car had been flashed from this package).
        with closing(sqlite3.connect(db)) as conn, conn:
            conn.execute("UPDATE flash_journal SET vin = 'WDD2220461A000001' WHERE open = 1")
        before = len(car.watch.programming_requests())
        capsys.readouterr()
        assert main(["update", "resume", *link]) == 1
        assert len(car.watch.programming_requests()) == before
    err = capsys.readouterr().err
    assert f"the connected car is {VIN}" in err and "was on WDD2220461A000001" in err


def test_check_refuses_a_counter_below_what_this_workshop_flashed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "ecm.bin"
    image.write_bytes(bytes(range(256)) * 16)
    db = tmp_path / "h.db"
    with served(tmp_path) as (car, link):
        flash = ["update", "flash", "--image", str(image), "--ecu", "ECM", "--address", "0x10000"]
        assert main([*flash, "--sw-version", "SW 0450", "--release", "5", *link]) == 0
        assert car.net.ecu("ECM").flash.release_counter == 5  # type: ignore[union-attr]
    pkg = tmp_path / "pkg"
    build_sim_package(pkg, ecm_counter=4)
    trust(pkg)
    capsys.readouterr()
    # The ECU itself reports counter 1 (as after a swap back): only the history knows better.
    facts = ["--vin", VIN, "--ecu", "ECM:HW H13:BL-02.01:SW 0412:1"]
    assert main(["update", "check", str(pkg), *facts, "--history", str(db)]) == 2
    err = capsys.readouterr().err
    assert "[release_counter_rollback]" in err and "this workshop has recorded" in err
    assert main(["update", "check", str(pkg), *facts, "--history", str(tmp_path / "new.db")]) == 0


def _install_on_a_terminal(link: list[str], pkg: Path, answer: str) -> tuple[int, str]:
    """`update install PKG` in its own process with a terminal on stdin, answering the question."""
    master, slave = pty.openpty()
    try:
        tool = subprocess.Popen(
            [*WORKSHOP, "update", "install", str(pkg), *link],
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(),
        )
        os.write(master, answer.encode() + b"\n")  # the terminal keeps the line until it is read
        out, err = tool.communicate(timeout=180)
    finally:
        os.close(slave)
        os.close(master)
    return tool.returncode, out + err


@pytest.mark.parametrize("answer", ["n", "y"])
def test_the_confirmation_question_on_a_terminal(tmp_path: Path, answer: str) -> None:
    pkg = tmp_path / "pkg"
    build_sim_package(pkg)
    trust(pkg)
    db = tmp_path / "h.db"
    with served(tmp_path) as (car, link):
        code, text = _install_on_a_terminal(link, pkg, answer)
        sent = car.watch.programming_requests()
        version = car.net.ecu("ECM").flash.software_version  # type: ignore[union-attr]
    assert "Flash now? The car must stay connected and powered. [y/N]" in text
    if answer == "n":
        assert code == 1 and sent == [] and version == "SW 0412"
        with AuditTrail(db) as trail:
            assert trail.rows() == []
    else:
        assert code == 0, text
        assert 0x36 in sent and version == "SW 0500" and "ECM: flashed SW 0412 -> SW 0500" in text
        with AuditTrail(db) as trail:
            assert [r.entry.result for r in trail.rows()] == ["success"]
