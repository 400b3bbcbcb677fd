"""Damaged, wrong and impossible log input: what is kept, what is said, what is never written."""

from __future__ import annotations

import gc
import gzip
import random
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import can
import numpy as np
import pytest

from workshop_app.core.capture.recorder import Recorder
from workshop_app.core.errors import LogFileError
from workshop_app.core.logs.columns import EXTENDED, FD, FrameColumns
from workshop_app.core.logs.export import export_frames
from workshop_app.core.logs.notes import printable
from workshop_app.core.logs.playback import channel_labels, frames_of
from workshop_app.core.logs.reader import read_columns, read_log

sys.path.insert(0, str(Path(__file__).parent))
from test_fast_readers import assert_same, make_messages, reference, write_log


@pytest.fixture(scope="module")
def messages() -> list[can.Message]:
    return make_messages(20_000, seed=5)


def python_can_recovers(path: Path) -> int:
    """How many frames python-can's BLFReader gives before it stops on the damage."""
    count = 0
    try:
        for _ in can.BLFReader(path):
            count += 1
    except Exception:  # it raises on some damage: what it gave until then counts
        pass
    return count


def cut_in_half(path: Path) -> Path:
    data = path.read_bytes()
    cut = path.with_name("cut-" + path.name)
    cut.write_bytes(data[: len(data) // 2])
    return cut


# --- item 5: damaged BLF ------------------------------------------------------------------


def test_our_recording_cut_in_half_keeps_at_least_what_python_can_keeps(tmp_path, messages):
    columns = FrameColumns.from_messages(messages[:2000])
    recorder = Recorder(tmp_path / "drive.blf")
    recorder.write(frames_of(columns, channel_labels(columns), 0, len(columns)))
    stats = recorder.stop()
    assert stats.frames_written == 2000
    cut = cut_in_half(tmp_path / "drive.blf")
    theirs = python_can_recovers(cut)
    assert theirs > 0

    read = read_log(cut)
    assert len(read.frames) >= theirs
    assert_same(read.frames, reference(tmp_path / "drive.blf")[: len(read.frames)])
    assert read.damaged == 1 and read.rejected == 0
    note = read.notes[0]
    assert note.offset is not None and 0 < note.offset < cut.stat().st_size
    assert "file ends inside an object" in note.reason
    warning = read.warning()
    assert warning is not None and f"at byte {note.offset}" in warning and "\n" not in warning


def test_python_can_blf_cut_in_half_keeps_at_least_what_python_can_keeps(tmp_path, messages):
    path = write_log(tmp_path / "theirs.blf", messages)
    cut = cut_in_half(path)
    theirs = python_can_recovers(cut)
    read = read_log(cut)
    assert len(read.frames) >= theirs > 9000
    assert_same(read.frames, reference(path)[: len(read.frames)])


def test_corrupt_container_in_the_middle_reading_resumes_after_it(tmp_path, messages):
    path = write_log(tmp_path / "mid.blf", messages[:3000], max_container_size=8192)
    ref = reference(path)
    data = bytearray(path.read_bytes())
    pos, offsets = 144, []
    while pos < len(data):
        offsets.append(pos)
        size = struct.unpack_from("<L", data, pos + 8)[0]
        pos += size + size % 4
    bad = offsets[len(offsets) // 2]
    data[bad + 32 : bad + 64] = bytes(32)  # the zlib stream's start: not inflatable
    path.write_bytes(bytes(data))
    read = read_log(path)
    assert read.damaged >= 1 and read.notes[0].offset == bad
    assert "corrupt compressed container" in read.notes[0].reason
    ours = read.frames
    # The frames of the damaged container (and the one cut at its edges) are lost, no more.
    assert len(ref) - 200 < len(ours) < len(ref)
    theirs = FrameColumns.from_messages(ref)
    kept = np.isin(ours.timestamp, theirs.timestamp)
    assert kept.all()
    assert ours.timestamp[-1] == theirs.timestamp[-1]  # read to the end


@pytest.mark.parametrize("into", [3, 20, 40])  # in the object header, the container header, the data
def test_blf_cut_at_any_byte_of_a_container(tmp_path, messages, into):
    path = write_log(tmp_path / "c.blf", messages[:3000], max_container_size=8192)
    data = path.read_bytes()
    second = 144 + struct.unpack_from("<L", data, 144 + 8)[0]
    second += second % 4
    cut = tmp_path / "cut.blf"
    cut.write_bytes(data[: second + into])
    read = read_log(cut)
    assert read.damaged == 1 and read.notes[0].offset == second
    assert len(read.frames) >= python_can_recovers(cut) > 0


def test_strict_reading_raises_with_every_recovered_frame(tmp_path, messages):
    cut = cut_in_half(write_log(tmp_path / "s.blf", messages[:4000]))
    tolerant = read_log(cut).frames
    with pytest.raises(LogFileError, match=r"file ends inside an object .* at byte \d+") as info:
        read_columns(cut)
    assert len(info.value.partial) == len(tolerant) > 0  # type: ignore[attr-defined]


# --- item 5: damaged text logs and MF4 ---------------------------------------------------------


@pytest.mark.parametrize("suffix", [".log", ".asc", ".trc", ".log.gz"])
def test_text_log_cut_mid_line_keeps_every_whole_line(tmp_path, messages, suffix):
    classic = [m for m in messages if not (m.is_fd or m.is_error_frame or m.is_remote_frame)][:500]
    whole = write_log(tmp_path / f"whole{suffix}", classic)
    text = gzip.decompress(whole.read_bytes()) if suffix.endswith(".gz") else whole.read_bytes()
    if suffix == ".asc":
        text = text[: text.rindex(b"End TriggerBlock")]
    body = text.rstrip(b"\n")
    cut_text = body[: body.rindex(b"\n") + 12]  # the last line stops 11 bytes in
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(gzip.compress(cut_text) if suffix.endswith(".gz") else cut_text)
    read = read_log(cut)
    assert len(read.frames) == len(classic) - 1
    assert read.damaged == 1
    last_line = cut_text.count(b"\n") + 1
    assert read.notes[0].line == last_line
    assert str(read.notes[0]).startswith(f"{cut}:{last_line}: ")


def test_mf4_cut_in_half_says_incomplete_without_traceback(tmp_path, messages, capfd):
    columns = FrameColumns.from_messages(messages[:3000])
    recorder = Recorder(tmp_path / "drive.mf4")
    recorder.write(frames_of(columns, channel_labels(columns), 0, len(columns)))
    recorder.stop()
    cut = cut_in_half(tmp_path / "drive.mf4")
    with pytest.raises(LogFileError, match="MF4 file is incomplete") as info:
        read_log(cut)
    assert "\n" not in str(info.value)
    del info
    gc.collect()  # a half-built asammdf object complains when it is collected
    _, err = capfd.readouterr()
    assert "Exception ignored" not in err and "Traceback" not in err


def test_mf4_damaged_block_is_one_line_and_nothing_on_stderr(tmp_path, messages):
    columns = FrameColumns.from_messages(messages[:500])
    recorder = Recorder(tmp_path / "drive.mf4")
    recorder.write(frames_of(columns, channel_labels(columns), 0, len(columns)))
    recorder.stop()
    data = (tmp_path / "drive.mf4").read_bytes()
    paths = []
    for block in (b"##CN", b"##CG", b"##DG"):
        damaged = bytearray(data)
        damaged[damaged.index(block) + 3] ^= 0x10  # "##CN" becomes "##C^"
        paths.append(tmp_path / f"bad-{block[2:].decode()}.mf4")
        paths[-1].write_bytes(bytes(damaged))
    # A fresh interpreter: asammdf's log handler and its objects' __del__ write straight to the
    # process's stderr, which only a real process shows as a user would see it.
    script = (
        "import sys\n"
        "from workshop_app.core.errors import LogFileError\n"
        "from workshop_app.core.logs.reader import read_log\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        read = read_log(path)\n"
        "        print('read', len(read.notes))\n"
        "    except LogFileError as exc:\n"
        "        print('error', exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *map(str, paths)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3
    for line, path in zip(lines, paths, strict=True):
        # Read on with the damage named, or refused in one line naming the file.
        assert (line.startswith("read ") and line != "read 0") or line.startswith(f"error {path}: "), line


# --- item 6: wrong files ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "name"),
    [(".asc", "ASC"), (".log", "candump"), (".trc", "TRC"), (".blf", "BLF"), (".mf4", "MF4")],
)
def test_random_bytes_are_not_a_log(tmp_path, suffix, name):
    junk = tmp_path / f"junk{suffix}"
    junk.write_bytes(b"\x1b[2J\x1b]0;owned\x07" + random.Random(1).randbytes(4000))
    with pytest.raises(LogFileError) as info:
        read_log(junk)
    message = str(info.value)
    assert message.startswith(f"{junk} is not a{'n' if name[0] in 'AM' else ''} {name} log (")
    assert "\n" not in message and len(message) < len(str(junk)) + 160
    assert all(32 <= ord(ch) < 127 or ch == "…" for ch in message), message  # nothing raw


def test_text_that_is_no_candump_log(tmp_path):
    notes = tmp_path / "notes.log"
    notes.write_text("shopping list\nmilk\neggs\n")
    with pytest.raises(
        LogFileError, match=r"notes\.log is not a candump log \(first line: 'shopping list'\)"
    ):
        read_log(notes)


@pytest.mark.parametrize(("suffix", "name"), [(".asc", "an ASC"), (".trc", "a TRC")])
def test_text_that_is_no_asc_or_trc_log(tmp_path, suffix, name):
    # python-can's grammar skips unknown lines silently: without this check, "0 frames", exit 0.
    letter = tmp_path / f"letter{suffix}"
    letter.write_text("Dear customer,\nyour car is ready.\n")
    with pytest.raises(
        LogFileError, match=f"letter\\{suffix} is not {name} log \\(first line: 'Dear customer,'\\)"
    ):
        read_log(letter)
    header_only = tmp_path / f"header{suffix}"
    header_only.write_text(
        "date Mon Nov 13 10:00:00.000 2023\nbase hex\n" if suffix == ".asc" else ";$FILEVERSION=1.1\n"
    )
    assert len(read_log(header_only).frames) == 0  # a log with no frames is still a log


def test_files_python_can_reads_say_what_they_are_not(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(random.Random(2).randbytes(3000))
    with pytest.raises(LogFileError, match=r"junk\.db is not an SQLite log \(file is not a database\)$"):
        read_log(junk)
    table = tmp_path / "prices.csv"
    table.write_text("item,price\nbrake pads,40\n")
    with pytest.raises(LogFileError, match=r"prices\.csv is not a CSV log \("):
        read_log(table)


def test_directory_and_missing_file(tmp_path):
    folder = tmp_path / "logs.blf"
    folder.mkdir()
    with pytest.raises(LogFileError, match=r"logs\.blf is a directory, not a log$"):
        read_log(folder)
    with pytest.raises(LogFileError, match=r"nope\.asc: no such file$"):
        read_log(tmp_path / "nope.asc")


def test_printable_escapes_and_cuts():
    assert printable(b"ab\x00\x1b[\xff") == "'ab\\x00\\x1b[\\xff'"
    assert printable("x" * 50, 10) == "'" + "x" * 10 + "…'"


# --- item 7: impossible frames -----------------------------------------------------------------


def test_impossible_candump_frames_are_rejected_by_line(tmp_path):
    path = tmp_path / "bad.log"
    path.write_text(
        "(1.000000) can0 123#11\n"
        "(1.100000) can0 123#" + "00" * 20 + "\n"  # 20 bytes on classic CAN
        "(1.200000) can0 FFF#11\n"  # 11-bit id beyond 0x7FF
        "(1.300000) can0 40000123#00\n"  # SocketCAN flag bits in the id
        "(1.400000) can0 123##1" + "00" * 13 + "\n"  # 13 bytes: no CAN FD length
        "(1.500000) can0 123##1" + "00" * 12 + "\n"
        "(1.600000) can0 1FFFFFFF#00\n"
    )
    read = read_log(path)
    assert len(read.frames) == 3
    assert read.rejected == 4 and read.damaged == 0
    assert [(n.line, n.reason) for n in read.notes] == [
        (2, "classic CAN frame with 20 data bytes (at most 8)"),
        (3, "standard id 0xFFF is beyond 11 bits"),
        (4, "id 0x40000123 is beyond 29 bits"),
        (5, "CAN FD frame with 13 data bytes (not a CAN FD length)"),
    ]
    assert "4 impossible frames rejected, 3 frames kept" in (read.warning() or "")


def test_impossible_asc_frames_are_rejected_by_line(tmp_path):
    path = tmp_path / "bad.asc"
    path.write_text(
        "date Mon Nov 13 10:00:00.000 2023\n"
        "base hex  timestamps absolute\n"
        "Begin Triggerblock Mon Nov 13 10:00:00.000 2023\n"
        "   1.000000 1  123             Rx   d 2 01 02\n"
        "   1.100000 1  123             Rx   d 99 01 02\n"
        "   1.200000 1  3FFFFFFFx       Rx   d 2 01 02\n"
        "   1.300000 1  800             Rx   d 1 01\n"
        "   1.400000 CANFD   1 Rx        123  1 0 d 99 " + " ".join(["11"] * 40) + "\n"
        "   1.500000 1  1FFFFFFFx       Rx   d 1 01\n"
    )
    read = read_log(path)
    assert len(read.frames) == 2
    assert [n.line for n in read.notes] == [5, 6, 7, 8]
    assert read.rejected == 4
    assert "DLC 99 is beyond 15" in read.notes[0].reason
    assert read.notes[1].reason == "id 0x3FFFFFFF is beyond 29 bits"


def test_impossible_trc_frame_is_rejected(tmp_path):
    path = tmp_path / "bad.trc"
    path.write_text(
        ";$FILEVERSION=1.1\n;$STARTTIME=45000.5\n"
        "     1)         1.0  Rx         0123  2  01 02\n"
        "     2)         2.0  Rx         0123  12  " + " ".join(["01"] * 12) + "\n"
        "     3)         3.0  Rx         0124  1  01\n"
    )
    read = read_log(path)
    assert len(read.frames) == 2 and read.rejected == 1
    assert read.notes[0].line == 4


def test_export_never_writes_an_impossible_frame(tmp_path):
    columns = FrameColumns(
        timestamp=np.array([1.0, 2.0, 3.0, 4.0]),
        channel=np.zeros(4, np.uint8),
        arbitration_id=np.array([0x123, 0x123, 0x3FFFFFFF, 0x124], np.uint32),
        flags=np.array([0, 0, EXTENDED, FD], np.uint8),
        length=np.array([2, 20, 1, 13], np.uint8),
        payload=np.ones((4, 20), np.uint8),
        channels=("can0",),
    )
    for suffix in (".asc", ".log", ".blf", ".trc", ".mf4"):
        out = tmp_path / f"out{suffix}"
        result = export_frames(columns, out)
        assert result.frames_written == 1, suffix
        assert result.frames_rejected == 3
        assert "3 impossible frames not written" in (result.limitation or "")
        back = read_log(out)
        assert not back.notes, (suffix, back.notes)
        assert back.frames.arbitration_id.tolist() == [0x123] and back.frames.length.tolist() == [2]


def test_corrupt_zlib_stream_in_gzip_log_is_an_error_not_a_crash(tmp_path):
    path = tmp_path / "bad.log.gz"
    path.write_bytes(gzip.compress(b"(1.0) can0 123#11\n")[:-8] + zlib.compress(b"x"))
    with pytest.raises(LogFileError, match=r"bad\.log\.gz: cannot read"):
        read_log(path)


# --- any damage at all ---------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".blf", ".log", ".asc", ".trc"])
def test_random_damage_never_crashes_or_hangs(tmp_path, messages, suffix):
    """Cuts, flipped bytes and zeroed runs anywhere: frames or one LogFileError, nothing else."""
    whole = write_log(
        tmp_path / f"whole{suffix}",
        messages[:1500],
        **({"max_container_size": 4096} if suffix == ".blf" else {}),
    )
    data = whole.read_bytes()
    rng = random.Random(suffix)
    for case in range(60):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(damaged))
            kind = rng.random()
            if kind < 0.4:
                damaged[at] ^= 1 << rng.randrange(8)
            elif kind < 0.7:
                damaged[at : at + rng.randint(1, 64)] = bytes(min(64, len(damaged) - at))
            else:
                damaged[at : at + 8] = rng.randbytes(8)
        if rng.random() < 0.5:
            del damaged[rng.randrange(len(damaged)) :]
        path = tmp_path / f"case{case}{suffix}"
        path.write_bytes(bytes(damaged))
        try:
            read = read_log(path)
        except LogFileError as exc:
            assert "\n" not in str(exc)
            continue
        assert len(read.frames) <= len(messages[:1500]) + 5
        warning = read.warning()
        assert warning is None or "\n" not in warning


@pytest.mark.parametrize("suffix", [".csv", ".db"])
def test_fd_frames_in_formats_without_an_fd_flag_read_back_as_fd(tmp_path, suffix):
    # The demo car sends a 32-byte CAN FD frame; CSV and SQLite recordings keep only its bytes.
    path = tmp_path / f"fd{suffix}"
    writer = can.Logger(str(path))
    writer.on_message_received(
        can.Message(timestamp=1.0, arbitration_id=0x3C0, data=bytes(range(32)), is_fd=True)
    )
    writer.on_message_received(can.Message(timestamp=1.1, arbitration_id=0x100, data=b"\x01\x02"))
    writer.on_message_received(can.Message(timestamp=1.2, arbitration_id=0x101, data=bytes(30), is_fd=True))
    writer.stop()
    read = read_log(path)
    assert len(read.frames) == 2 and read.rejected == 1  # 30 bytes: no CAN FD frame has that length
    first = read.frames.to_messages(0, 1)[0]
    assert first.is_fd and bytes(first.data) == bytes(range(32))
