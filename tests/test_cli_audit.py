"""`workshop update flash|resume` in real processes (killed with SIGKILL mid-transfer), and `workshop audit`.

The programming ECU (tests/helpers/flash_ecu.py) runs in this process on a virtual bus shared
over socketcand, so it outlives the killed tool exactly as a car does.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import zlib

import bincopy
import can
import pytest
from helpers.flash_ecu import Faults, Responder
from helpers.processes import ENV, free_port

from workshop_app.cli import main
from workshop_app.core.history.audit import AuditEntry, AuditTrail
from workshop_app.core.sim.socketcand_server import SocketcandServer
from workshop_app.core.update.journal import FlashJournal

WORKSHOP = [sys.executable, "-m", "workshop_app"]
BLOCK = 4093
VIN = "WDEMO000000000042"


def hex_image(path, size: int) -> bytes:
    data = (hashlib.sha256(b"cli").digest() * (size // 32 + 1))[:size]
    binfile = bincopy.BinFile()
    binfile.add_binary(data, address=0x10000)
    path.write_text(binfile.as_ihex())
    return data


@pytest.mark.parametrize("landed", [False, True], ids=["block-lost", "block-landed"])
def test_killed_flash_is_resumed_from_the_journal_and_audited(tmp_path, landed):
    image = tmp_path / "ecm.hex"
    data = hex_image(image, 40 * BLOCK)
    db = tmp_path / "history.db"
    port = free_port()
    faults = Faults(hold_at=12, hold_written=landed)
    with Responder(f"cli-kill-{landed}", faults) as ecu:
        server_bus = can.Bus(interface="virtual", channel=f"cli-kill-{landed}")
        server = SocketcandServer(server_bus, port=port)
        server.start()
        try:
            link = ["-i", "socketcand", "--port", str(port), "--history", str(db), "--vin", VIN]
            tool = subprocess.Popen(
                [
                    *WORKSHOP,
                    "update",
                    "flash",
                    "--image",
                    str(image),
                    "--ecu",
                    "ECM",
                    "--sw-version",
                    "APP-0300",
                    "--release",
                    "9",
                    *link,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=ENV,
            )
            try:
                # Wait for block 12 or for the tool to end on its own (then its stderr says why).
                deadline = time.monotonic() + 180
                while not faults.holding.wait(0.2) and tool.poll() is None and time.monotonic() < deadline:
                    pass
            finally:
                if tool.poll() is None:
                    os.kill(tool.pid, signal.SIGKILL)
                _, err = tool.communicate(timeout=10)
            assert faults.holding.is_set(), f"the tool never reached block 12: {err}"
            assert tool.returncode == -signal.SIGKILL, err
            faults.release.set()  # the block in flight is lost with the tool
            with FlashJournal(db) as journal:
                (entry,) = journal.open_entries()
            assert entry.resumable and entry.offset == 11 * BLOCK and entry.result == ""
            assert ecu.app_valid == 0 and ecu.blocks == (12 if landed else 11)

            resumed = subprocess.run(
                [*WORKSHOP, "update", "resume", "--json", *link[:-2]],
                capture_output=True,
                text=True,
                env=ENV,
                timeout=120,
            )
        finally:
            server.stop()
            server_bus.shutdown()
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["result"] == "success" and result["resumed"] and result["vin"] == VIN
    assert any("resumed at segment 0 offset 45023" in n for n in result["notes"])
    # A block that landed unacknowledged is not written twice: the ECU would refuse it (0x70).
    assert any("continued at offset 49116" in n for n in result["notes"]) == landed
    assert ecu.blocks == 40 and ecu.crc() == zlib.crc32(data)
    assert (ecu.version, ecu.release, ecu.app_valid) == ("APP-0300", 9, 1)
    with FlashJournal(db) as journal:
        assert not journal.open_entries()
    with AuditTrail(db) as trail:
        rows = trail.rows(VIN)
        assert trail.verify().ok
    assert [r.entry.result for r in rows] == ["interrupted", "success"]
    assert "after 45023 of 163720 bytes" in rows[0].entry.error


def _attempts(db) -> None:
    with AuditTrail(db) as trail:
        for n, vin in enumerate(["VIN-A", "VIN-B", "VIN-A"]):
            trail.append(
                AuditEntry(
                    ecu="ECM",
                    result="success" if n != 1 else "failed",
                    duration_s=10.0 + n,
                    vin=vin,
                    from_version="APP-0100",
                    to_version="APP-0200",
                    target_hash="ab" * 32,
                    error="" if n != 1 else "memory check failed",
                )
            )


def test_audit_lists_filters_by_vin_and_prints_json(tmp_path, capsys):
    db = tmp_path / "history.db"
    _attempts(db)
    assert main(["audit", "--history", str(db)]) == 0
    out = capsys.readouterr().out
    assert out.count("APP-0100 → APP-0200") == 3 and "memory check failed" in out
    assert main(["audit", "--history", str(db), "--vin", "VIN-A", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == [1, 3] and rows[0]["user"] and len(rows[0]["row_hash"]) == 64


def test_audit_verify_names_the_first_broken_link_after_tampering(tmp_path, capsys):
    db = tmp_path / "history.db"
    _attempts(db)
    assert main(["audit", "verify", "--history", str(db)]) == 0
    assert "intact (3 rows" in capsys.readouterr().out
    conn = sqlite3.connect(db)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("DELETE FROM flash_audit WHERE id = 2")
    conn.execute("DROP TRIGGER flash_audit_no_update")
    conn.execute("UPDATE flash_audit SET result = 'success', error = '' WHERE id = 2")
    conn.commit()
    conn.close()
    assert main(["audit", "verify", "--history", str(db)]) == 1
    err = capsys.readouterr().err
    assert "BROKEN at row 2" in err and "edited" in err


def test_audit_verify_names_a_removed_row(tmp_path, capsys):
    db = tmp_path / "history.db"
    _attempts(db)
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER flash_audit_no_delete")
    conn.execute("DELETE FROM flash_audit WHERE id = 2")
    conn.commit()
    conn.close()
    assert main(["audit", "verify", "--history", str(db), "--json"]) == 1
    check = json.loads(capsys.readouterr().out)
    assert check["broken_at"] == 3 and "removed" in check["reason"]


def test_flash_killed_on_the_simulated_car_in_another_process_then_resumed(tmp_path):
    """The real simulator (`workshop simulate --serve socketcand`) keeps its ECM's flash while the tool dies."""
    image = tmp_path / "ecm.hex"
    data = (hashlib.sha256(b"sim-kill").digest() * (64 * BLOCK // 32 + 1))[: 64 * BLOCK]
    binfile = bincopy.BinFile()
    binfile.add_binary(data, address=0x00010000)
    image.write_text(binfile.as_ihex())
    db = tmp_path / "history.db"
    port = free_port()
    env = {**ENV, "WORKSHOP_HOME": str(tmp_path / "home")}
    # Time almost stands still in the car: the engine stays off, so the preconditions hold.
    sim = subprocess.Popen(
        [
            *WORKSHOP,
            "simulate",
            "--serve",
            "socketcand",
            "--port",
            str(port),
            "-c",
            f"kill-{port}",
            "--time-scale",
            "1e-6",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30  # start-up bound, not a measurement
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        link = ["-i", "socketcand", "--port", str(port), "--history", str(db)]
        flash = ["update", "flash", "--image", str(image), "--ecu", "ECM", "--sw-version", "SW 0600"]
        tool = subprocess.Popen(
            [*WORKSHOP, *flash, "--release", "20", *link],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        try:
            done = 0
            deadline = time.monotonic() + 90
            while done < 10 * BLOCK and time.monotonic() < deadline and tool.poll() is None:
                time.sleep(0.05)
                if db.exists():
                    with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(db)) as conn:
                        row = conn.execute(
                            "SELECT max(bytes_done) FROM flash_journal WHERE open = 1"
                        ).fetchone()
                        done = row[0] or 0 if row else 0
        finally:
            os.kill(tool.pid, signal.SIGKILL)
            _, err = tool.communicate(timeout=10)
        assert done >= 10 * BLOCK, err.decode()
        with FlashJournal(db) as journal:
            (entry,) = journal.open_entries()
        assert entry.resumable and entry.bytes_done < 64 * BLOCK
        resumed = subprocess.run(
            [*WORKSHOP, "update", "resume", "--json", *link],
            capture_output=True,
            text=True,
            env=env,
            timeout=180,
        )
        assert resumed.returncode == 0, resumed.stderr
        result = json.loads(resumed.stdout)
        # The ECU read back the new version and counter after its reset (else no success).
        assert result["result"] == "success" and result["to_version"] == "SW 0600"
        # Continued where the journal stood (or one block on, when the block in flight had landed).
        assert any(n.startswith("resumed at segment 0") for n in result["notes"]), result["notes"]
        assert not any("restarted" in n for n in result["notes"]), result["notes"]
    finally:
        sim.send_signal(signal.SIGINT)
        try:
            sim.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.communicate()
    with AuditTrail(db) as trail:
        assert [r.entry.result for r in trail.rows()] == ["interrupted", "success"] and trail.verify().ok


def test_flash_refused_on_low_battery_says_the_voltage_and_is_audited(tmp_path, capsys):
    image = tmp_path / "ecm.hex"
    hex_image(image, 4 * BLOCK)
    db = tmp_path / "history.db"
    port = free_port()
    with Responder("cli-low", Faults(battery_mv=11800)) as ecu:
        server_bus = can.Bus(interface="virtual", channel="cli-low")
        server = SocketcandServer(server_bus, port=port)
        server.start()
        try:
            code = main(
                [
                    "update",
                    "flash",
                    "--image",
                    str(image),
                    "--ecu",
                    "ECM",
                    "--sw-version",
                    "APP-0300",
                    "--release",
                    "9",
                    "-i",
                    "socketcand",
                    "--port",
                    str(port),
                    "--history",
                    str(db),
                ]
            )
        finally:
            server.stop()
            server_bus.shutdown()
    captured = capsys.readouterr()
    assert code == 1 and "REFUSED" in captured.out
    assert "battery at 11.80 V (DID 0xF1A1)" in captured.err
    assert not {0x31, 0x34, 0x36} & {r[0] for r in ecu.requests}
    with AuditTrail(db) as trail:
        assert [r.entry.result for r in trail.rows()] == ["refused"]


def test_resume_without_an_unfinished_flash_says_so(tmp_path, capsys):
    db = tmp_path / "history.db"
    assert main(["update", "resume", "--history", str(db)]) == 1
    err = capsys.readouterr().err
    assert "no unfinished flash in the journal" in err and str(db) in err


def test_ctrl_c_during_a_flash_cancels_at_a_block_boundary_and_resume_finishes(tmp_path):
    image = tmp_path / "ecm.hex"
    data = hex_image(image, 30 * BLOCK)
    db = tmp_path / "history.db"
    port = free_port()
    with Responder("cli-int", Faults(block_delay_s=0.05)) as ecu:
        server_bus = can.Bus(interface="virtual", channel="cli-int")
        server = SocketcandServer(server_bus, port=port)
        server.start()
        try:
            link = ["-i", "socketcand", "--port", str(port), "--history", str(db)]
            flash = ["update", "flash", "--image", str(image), "--ecu", "ECM", "--sw-version", "APP-0400"]
            tool = subprocess.Popen(
                [*WORKSHOP, *flash, "--release", "11", *link],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=ENV,
            )
            deadline = time.monotonic() + 60
            while ecu.blocks < 5 and time.monotonic() < deadline and tool.poll() is None:
                time.sleep(0.02)
            tool.send_signal(signal.SIGINT)
            out, err = tool.communicate(timeout=30)
            assert tool.returncode == 130, err
            assert b"CANCELLED" in out and b"workshop update resume" in err
            with FlashJournal(db) as journal:
                (entry,) = journal.open_entries()
            assert entry.result == "cancelled" and entry.bytes_done == ecu.blocks * BLOCK < 30 * BLOCK
            ecu.faults.block_delay_s = 0.0
            resumed = subprocess.run(
                [*WORKSHOP, "update", "resume", *link], capture_output=True, text=True, env=ENV, timeout=120
            )
        finally:
            server.stop()
            server_bus.shutdown()
    assert resumed.returncode == 0, resumed.stderr
    assert "flashed" in resumed.stdout and ecu.crc() == zlib.crc32(data) and ecu.version == "APP-0400"
