"""`update flash --max-message`: the TransferData message length the workshop asks for."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from workshop_app.cli import main


def test_max_message_sets_the_transfer_blocks_on_the_simulated_ecm(tmp_path: Path) -> None:
    image = tmp_path / "ecm.bin"
    image.write_bytes(os.urandom(16 * 1024))
    history = tmp_path / "history.db"
    args = ["update", "flash", "--image", str(image), "--address", "0x10000", "--ecu", "ECM"]
    args += ["--sw-version", "SW 0610", "--release", "30", "--history", str(history), "--max-message", "1026"]
    assert main(args) == 0
    with sqlite3.connect(history) as conn:
        rows = conn.execute("SELECT block_bytes, bytes_done, result FROM flash_journal").fetchall()
    # 1026 bytes per message: SID and block counter, then 1024 data bytes.
    assert rows == [(1024, 16 * 1024, "success")]


def test_a_message_too_short_to_carry_data_is_refused_where_parsed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["update", "flash", "--image", "x.bin", "--ecu", "ECM", "--max-message", "2"])
    assert "'2' must be between 3 and 4294967295 bytes" in capsys.readouterr().err
