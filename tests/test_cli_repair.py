"""Unfinished MF4 recordings: read as a kill left them, and finished by `workshop repair`.

The recordings come from a real process killed with SIGKILL in the middle of recording
(tests/helpers/killed_mf4.py); a power cut is imitated by cutting or spoiling the file's tail.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import can
import numpy as np
import pytest
from asammdf import MDF
from helpers.killed_mf4 import batch_frames

from workshop_app.cli import main
from workshop_app.core.capture.mf4_writer import UNFINISHED_ID
from workshop_app.core.errors import LogFileError
from workshop_app.core.logs.mf4_recover import inspect_mf4, is_unfinished_recording
from workshop_app.core.logs.reader import read_log

REPO = Path(__file__).resolve().parents[1]
FLUSHES = 4


def _killed_recording(path: Path, flushes: int = FLUSHES) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "tests" / "helpers" / "killed_mf4.py"), str(path), str(flushes)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -9, proc.stderr


def _expected(batches: int) -> list[tuple[int, bytes, bool, bool]]:
    frames = [f for i in range(batches) for f in batch_frames(i)]
    frames.sort(key=lambda f: f.timestamp)
    return [(f.arbitration_id, f.data, f.is_remote, f.is_error) for f in frames]


def _python_can(path: Path) -> list[can.Message]:
    reader = can.LogReader(path)
    try:
        return list(reader)
    finally:
        reader.stop()


def _as_tuples(messages: list[can.Message]) -> list[tuple[int, bytes, bool, bool]]:
    return [(m.arbitration_id, bytes(m.data), m.is_remote_frame, m.is_error_frame) for m in messages]


def test_killed_recording_reads_as_it_is_and_repair_finishes_it(tmp_path: Path, capsys) -> None:
    path = tmp_path / "killed.mf4"
    _killed_recording(path)
    before = path.read_bytes()
    assert before.startswith(UNFINISHED_ID) and is_unfinished_recording(path)
    expected = _expected(FLUSHES)  # the unflushed last batch died with the process

    # python-can (asammdf) reads it as it is; ours reads it through a finished copy.
    assert _as_tuples(_python_can(path)) == expected
    read = read_log(path)
    assert len(read.frames) == len(expected)
    assert read.damaged == 1 and "unfinished MF4 recording" in str(read.notes[0])  # said, not hidden
    assert path.read_bytes() == before, "reading changed the user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["killed.mf4"], "a copy was left behind"

    assert main(["repair", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}: finished, {len(expected)} frames" in out
    assert path.read_bytes()[:8] == b"MDF     " and not is_unfinished_recording(path)
    assert not (tmp_path / "killed.before-repair.mf4").exists()  # nothing but the mark changed
    messages = _python_can(path)
    assert _as_tuples(messages) == expected
    times = np.array([m.timestamp for m in messages])
    want = np.array(sorted(f.timestamp for i in range(FLUSHES) for f in batch_frames(i)))
    np.testing.assert_allclose(times, want, atol=1e-6, rtol=0)
    with MDF(path) as mdf:
        assert int(mdf.start_time.timestamp()) == int(want[0])

    assert main(["repair", str(path)]) == 0
    assert "finished already, nothing to repair" in capsys.readouterr().out


def _cut_inside_last_block(path: Path) -> None:
    """What a power cut can leave: the last links written, the end of the data never."""
    check = inspect_mf4(path)
    assert not check.needs_repair
    size = path.stat().st_size
    with path.open("r+b") as fh:
        fh.truncate(size - 300)


@pytest.mark.parametrize("damage", ["cut", "spoiled"])
def test_repair_cuts_a_damaged_chain_keeps_a_backup_and_readers_agree(
    tmp_path: Path, capsys, damage: str
) -> None:
    path = tmp_path / "power-cut.mf4"
    _killed_recording(path)
    if damage == "cut":
        _cut_inside_last_block(path)
    else:
        # Spoil the deflated bytes of a block half-way into the file: the chain ends before it.
        data = bytearray(path.read_bytes())
        at = data.index(b"##DZ", len(data) // 2) + 64
        data[at : at + 40] = b"\xff" * 40
        path.write_bytes(bytes(data))
    damaged = path.read_bytes()
    check = inspect_mf4(path, verify_data=True)
    assert check.needs_repair and check.problems

    # Readers get the good part, through a repaired copy; the damaged file stays as it is.
    read = read_log(path).frames if damage == "cut" else None
    assert path.read_bytes() == damaged

    assert main(["repair", str(path)]) == 0
    out = capsys.readouterr().out
    backup = tmp_path / "power-cut.before-repair.mf4"
    assert "damaged data chain(s) cut" in out and str(backup) in out
    assert backup.read_bytes() == damaged
    messages = _python_can(path)
    got = _as_tuples(messages)
    expected = _expected(FLUSHES)
    # What is left is whole frames of the recording, in order: the damaged tail is gone.
    assert 0 < len(got) < len(expected)
    assert set(got) <= set(expected)
    assert f"finished, {len(got)} frames" in out
    if read is not None:
        assert len(read) == len(got)
    assert sorted(m.timestamp for m in messages) == [m.timestamp for m in messages]


def test_repair_says_plainly_what_it_does_not_repair(tmp_path: Path, capsys) -> None:
    blf = tmp_path / "drive.blf"
    blf.write_bytes(b"")
    other = tmp_path / "theirs.mf4"
    writer = can.io.MF4Writer(other)
    writer.on_message_received(can.Message(arbitration_id=0x123, data=b"\x01\x02"))
    writer.stop()
    junk = tmp_path / "junk.mf4"
    junk.write_bytes(b"UnFinMF 4.10    workshop" + bytes(40))  # our mark, nothing behind it
    missing = tmp_path / "missing.mf4"
    text = tmp_path / "notes.mf4"
    text.write_text("not a measurement file\n")

    status = main(["repair", str(blf), str(other), str(junk), str(missing), str(text)])
    captured = capsys.readouterr()
    assert status == 1
    assert f"{other}: finished already, nothing to repair" in captured.out
    errors = captured.err.strip().splitlines()
    assert len(errors) == 4 and "Traceback" not in captured.err
    assert errors[0].startswith(f"workshop repair: error: {blf}: only MF4 recordings need repairing")
    assert str(junk) in errors[1] and "another program" in errors[1]
    assert str(missing) in errors[2]
    assert (
        errors[3]
        == f"workshop repair: error: {text}: not an MF4 file (it does not start with an MDF identification)"
    )
    assert other.read_bytes()[:3] == b"MDF"


def test_inspect_refuses_an_unreadable_header_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "short.mf4"
    path.write_bytes(b"UnFinMF 4.10    workshop" + bytes(38) + b"\x01\x00")
    with pytest.raises(LogFileError, match=r"short\.mf4: cannot recover this MF4 recording"):
        inspect_mf4(path)


def test_export_reads_an_unfinished_recording_without_touching_it(tmp_path: Path) -> None:
    path = tmp_path / "killed.mf4"
    _killed_recording(path, flushes=2)
    before = path.read_bytes()
    out = tmp_path / "copy.blf"
    assert main(["export", str(path), "-o", str(out)]) == 0
    assert _as_tuples(_python_can(out)) == _expected(2)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.blf", "killed.mf4"]
