"""The bulk MF4, ASC and TRC readers give exactly the frames python-can's readers give."""

from __future__ import annotations

import gzip
import itertools
import sys
from pathlib import Path

import can
import numpy as np
import pytest
from can.io.trc import TRCFileVersion

from workshop_app.core.errors import LogFileError
from workshop_app.core.logs import FrameColumns, ReadCancelled
from workshop_app.core.logs.asc_reader import read_asc
from workshop_app.core.logs.columns import ERROR, FD, REMOTE
from workshop_app.core.logs.mf4_reader import read_mf4
from workshop_app.core.logs.notes import LogNotes
from workshop_app.core.logs.reader import read_columns
from workshop_app.core.logs.trc_reader import read_trc

sys.path.insert(0, str(Path(__file__).parent))
from test_fast_readers import assert_same, make_messages, write_log

TEST_DATA = Path(__file__).resolve().parents[1] / "data"
REAL_MF4 = sorted([*TEST_DATA.glob("logs/*.MF4"), *TEST_DATA.glob("uds/*.MF4")])
FRAMES = 6000


@pytest.fixture(scope="module")
def messages() -> list[can.Message]:
    return make_messages(FRAMES, seed=11)


def reference(path: Path) -> list[can.Message]:
    return list(can.LogReader(path))


# --- MF4 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", REAL_MF4, ids=lambda p: p.name)
def test_mf4_real_files_match_python_can(path):
    ours = read_mf4(path)
    assert len(ours) > 1000
    assert_same(ours, reference(path))


def test_mf4_python_can_writer_classic_and_fd(tmp_path, messages):
    path = write_log(tmp_path / "mixed.mf4", messages[:2000])
    ours = read_mf4(path)
    assert_same(ours, reference(path))
    assert (ours.flags & FD).any() and (ours.flags & REMOTE).any() and (ours.flags & ERROR).any()


def test_mf4_recorder_files(tmp_path):
    from test_recorder_mf4 import _mixed_frames, _record

    path = tmp_path / "rec.mf4"
    _record(path, _mixed_frames(3000))
    ours = read_columns(path)
    assert_same(ours, reference(path))
    assert (ours.flags & FD).any()


def test_mf4_progress_and_cancel(tmp_path, messages):
    path = write_log(tmp_path / "p.mf4", messages[:500])
    seen: list[tuple[int, int]] = []
    read_mf4(path, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1]
    with pytest.raises(ReadCancelled):
        read_mf4(path, cancel=lambda: True)


def test_mf4_empty_and_damaged(tmp_path):
    empty = tmp_path / "empty.mf4"
    empty.write_bytes(b"")
    assert len(read_mf4(empty)) == 0
    junk = tmp_path / "junk.mf4"
    junk.write_bytes(b"not an mdf file at all" * 10)
    with pytest.raises(LogFileError) as info:
        read_mf4(junk)
    assert len(info.value.partial) == 0  # type: ignore[attr-defined]


# --- ASC ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mixed.asc", "mixed.asc.gz"])
def test_asc_matches_python_can(tmp_path, messages, name):
    path = write_log(tmp_path / name, messages)
    ours = read_columns(path)
    assert_same(ours, reference(path))
    assert (ours.flags & FD).any() and (ours.flags & REMOTE).any() and (ours.flags & ERROR).any()
    assert ours.channels == ("0", "1", "2")


def test_asc_hand_written_variants(tmp_path):
    text = (
        "date Mon Nov 13 10:00:00.000 2023\n"
        "base hex  timestamps absolute\n"
        "no internal events logged\n"
        "// comment\n"
        "Begin Triggerblock Mon Nov 13 10:00:00.000 2023\n"
        "   0.000000 Start of measurement\n"
        "   0.001000 1  1A0             Rx   d 8 01 02 03 04 05 06 07 08  Length = 228000 BitCount = 118\n"
        "   0.002000 2  1FFFFFFFx       Tx   d 3 AA BB CC\n"
        "   0.003000 1  Statistic: D 0 R 0 XD 0 XR 0 E 0 O 0 B 0.00%\n"
        "   0.004000 1  7DF             Rx   r\n"
        "   0.005000 1  7DF             rx   R 4\n"
        "   0.006000 CANFD   1 Rx        123  Name 1 1 9 12 " + " ".join(["11"] * 12) + " 0 0 0 0 0 0 0 0\n"
        "   0.007000 1  12              Rx   d f 01 02 03 04 05 06 07 08\n"
        "   0.008000 3  ErrorFrame\n"
        "  12.5 1  100 Rx d 1 FF\n"
        "End TriggerBlock\n"
    )
    path = tmp_path / "hand.asc"
    path.write_text(text)
    assert_same(read_asc(path), reference(path))
    dec = tmp_path / "dec.asc"
    dec.write_text(
        text.replace("base hex", "base dec")
        .replace(" 1FFFFFFFx ", " 536870911x ")
        .replace("1A0 ", "416 ")
        .replace(" AA BB CC", " 170 187 204")
        .replace("7DF ", "2015 ")
        .replace(" 123 ", " 291 ")
        .replace("d 8 01 02 03 04 05 06 07 08", "d 8 1 2 3 4 5 6 7 8")
        .replace("d f 01", "d 15 01")
        .replace(" FF", " 255")
        .replace("1 1 d 13", "1 1 13 13")
    )
    assert_same(read_asc(dec), reference(dec))


def test_asc_without_header_like_python_can(tmp_path):
    # python-can's header scan swallows the first line that is not a header line.
    path = tmp_path / "bare.asc"
    path.write_text("".join(f"{i / 100:.6f} 1  {0x100 + i:X}  Rx   d 1 {i:02X}\n" for i in range(20)))
    ours = read_asc(path)
    assert len(ours) == 19
    assert_same(ours, reference(path))


def test_asc_malformed_line(tmp_path, messages):
    path = write_log(tmp_path / "bad.asc", messages[:200])
    lines = path.read_text().splitlines(keepends=True)
    lines[100] = "   1.234500 1  12Z             Rx   d 2 01 02\n"
    path.write_text("".join(lines))
    # The bad line is skipped and named; every frame around it is kept.
    notes = LogNotes(path)
    ours = read_asc(path, notes=notes)
    assert [(n.line, n.rejected) for n in notes.notes] == [(101, False)]
    assert_same(ours, reference_without(path, 100))
    # Without a collector the bad line is an error, all the good frames on ``partial``.
    with pytest.raises(LogFileError) as info:
        read_asc(path)
    assert "bad.asc:101:" in str(info.value)
    assert_same(info.value.partial, reference_without(path, 100))  # type: ignore[attr-defined]


def reference_without(path: Path, index: int) -> list[can.Message]:
    """python-can's frames of ``path`` with line ``index`` (0-based) left out."""
    lines = path.read_text().splitlines(keepends=True)
    rest = path.with_name("without" + path.suffix)
    rest.write_text("".join(lines[:index] + lines[index + 1 :]))
    return reference(rest)


def test_asc_empty_and_progress(tmp_path, messages):
    empty = tmp_path / "empty.asc"
    empty.write_bytes(b"")
    assert len(read_columns(empty)) == 0
    path = write_log(tmp_path / "p.asc", messages[:300])
    seen: list[tuple[int, int]] = []
    read_asc(path, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1][0] == seen[-1][1]
    with pytest.raises(ReadCancelled):
        read_asc(path, cancel=lambda: True)


def test_asc_gz_damaged(tmp_path):
    path = tmp_path / "cut.asc.gz"
    path.write_bytes(gzip.compress(b"date x\n" * 100)[:20])
    with pytest.raises(LogFileError):
        read_asc(path)


# --- TRC ---------------------------------------------------------------------------------------


def write_trc(path: Path, msgs: list[can.Message], version: TRCFileVersion) -> Path:
    writer = can.TRCWriter(path)
    writer.file_version = version
    for m in msgs:
        writer.on_message_received(m)
    writer.stop()
    return path


@pytest.mark.parametrize("version", [TRCFileVersion.V1_0, TRCFileVersion.V2_1])
def test_trc_writer_versions_match_python_can(tmp_path, messages, version):
    # python-can's writer logs neither remote, error nor CAN FD frames (the hand-written
    # samples below cover those).
    msgs = [m for m in messages if not (m.is_remote_frame or m.is_error_frame or m.is_fd)]
    path = write_trc(tmp_path / f"v{version.name}.trc", msgs, version)
    ours = read_columns(path)
    assert len(ours) == len(msgs)
    assert_same(ours, reference(path))


TRC_SAMPLES = {
    "1.1": (
        ";$FILEVERSION=1.1\n;$STARTTIME=45000.5\n;\n"
        "     1)        17.7  Rx         0300  8  00 00 00 00 04 00 00 00\n"
        "     2)        20.1  Tx     18EFC034  3  01 02 03\n"
        "     3)        21.0  Rx         0100  4  RTR\n"
        "     4)        22.0  Warng  FFFFFFFF  4  00 00 00 08 BUSHEAVY\n"
    ),
    "1.3": (
        ";$FILEVERSION=1.3\n;$STARTTIME=45000.25\n"
        "     1)        17.7 1  Rx         0300 -  8    00 00 00 00 04 00 00 00\n"
        "     2)        20.1 2  Tx     18EFC034 -  2    AB CD\n"
        "     3)        21.0 1  Rx         0100 -  2    RTR\n"
    ),
    "2.0": (
        ";$FILEVERSION=2.0\n;$STARTTIME=45000.125\n;$COLUMNS=N,O,T,I,d,l,D\n"
        "      1        17.700 DT     0300 Rx 8  00 00 00 00 04 00 00 00\n"
        "      2        20.100 FB 18EFC034 Tx 12 01 02 03 04 05 06 07 08 09 0A 0B 0C\n"
        "      3        21.000 RR     0100 Rx 2\n"
        "      4        22.000 ST Rx 00 00 00 08\n"
    ),
    "2.1": (
        ";$FILEVERSION=2.1\n;$STARTTIME=45000.0\n;$COLUMNS=N,O,T,B,I,d,R,L,D\n"
        "      1        17.700 DT 1     0300 Rx -  8    00 00 00 00 04 00 00 00\n"
        "      2        20.100 FE 2 18EFC034 Tx -  9    01 02 03 04 05 06 07 08 09 0A 0B 0C\n"
        "      3        21.000 RR 1     0100 Rx -  2\n"
        "      4        22.000 BI 3     0101 Rx -  1    7F\n"
    ),
    "1.0": (
        ";##########\n"
        "   1)      1841  0001  8  00 00 00 00 00 00 00 00\n"
        "   2)      1842  18EFC034  2  01 02\n"
        "   3)      1843  0100  2  RTR\n"
        "   4)      1844  FFFFFFFF  4  00 00 00 08\n"
    ),
}


@pytest.mark.parametrize("version", sorted(TRC_SAMPLES))
def test_trc_hand_written_versions(tmp_path, version):
    path = tmp_path / "sample.trc"
    path.write_text(TRC_SAMPLES[version])
    ours = read_trc(path)
    ref = reference(path)
    assert len(ref) >= 3
    assert_same(ours, ref)


def test_trc_malformed_line_and_empty(tmp_path):
    path = tmp_path / "bad.trc"
    path.write_text(TRC_SAMPLES["2.1"].replace("0100 Rx", "01G0 Rx"))
    with pytest.raises(LogFileError) as info:
        read_trc(path)
    assert "bad.trc:6:" in str(info.value)
    notes = LogNotes(path)
    kept = read_trc(path, notes=notes)
    assert [n.line for n in notes.notes] == [6]
    good = tmp_path / "good.trc"
    good.write_text(TRC_SAMPLES["2.1"])
    assert len(info.value.partial) == len(kept) == len(reference(good)) - 1  # type: ignore[attr-defined]
    empty = tmp_path / "empty.trc"
    empty.write_bytes(b"")
    assert len(read_columns(empty)) == 0


def test_trc_gz_progress_and_cancel(tmp_path, messages):
    msgs = [m for m in messages if not (m.is_remote_frame or m.is_error_frame or m.is_fd)]
    plain = write_trc(tmp_path / "g.trc", msgs, TRCFileVersion.V2_1)
    packed = tmp_path / "g.trc.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert_same(read_columns(packed), reference(packed))
    seen: list[tuple[int, int]] = []
    read_trc(plain, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1][0] == seen[-1][1]
    with pytest.raises(ReadCancelled):
        read_trc(plain, cancel=lambda: True)


def test_read_columns_routes_to_fast_readers(tmp_path, messages, monkeypatch):
    import workshop_app.core.logs.reader as reader

    def no_python_can(_path: object) -> FrameColumns:
        raise AssertionError("went through python-can")

    monkeypatch.setattr(reader, "iter_log", no_python_can)
    for name in ("r.asc", "r.asc.gz", "r.mf4"):
        path = write_log(tmp_path / name, messages[:50])
        assert len(reader.read_columns(path)) == 50
    trc = write_trc(
        tmp_path / "r.trc",
        [m for m in messages[:50] if not (m.is_remote_frame or m.is_fd)],
        TRCFileVersion.V2_1,
    )
    assert len(reader.read_columns(trc)) > 0
    assert np.all(np.diff(read_columns(tmp_path / "r.mf4").timestamp) >= 0)


def test_text_chunks_parsed_in_parallel_keep_order_and_line_numbers(tmp_path, messages, monkeypatch):
    from workshop_app.core.logs import text_tokens

    path = write_log(tmp_path / "many.asc", messages[:3000])
    whole = read_asc(path)
    monkeypatch.setattr(text_tokens, "CHUNK_BYTES", 2048)  # dozens of chunks on the worker threads
    assert_same(read_asc(path), reference(path))
    np.testing.assert_array_equal(read_asc(path).timestamp, whole.timestamp)
    lines = path.read_text().splitlines(keepends=True)
    lines[2500] = "   1.234500 1  12Z             Rx   d 2 01 02\n"
    path.write_text("".join(lines))
    notes = LogNotes(path)
    assert_same(read_asc(path, notes=notes), reference_without(path, 2500))
    assert [n.line for n in notes.notes] == [2501]


def test_text_cancel_between_parallel_chunks(tmp_path, messages, monkeypatch):
    from workshop_app.core.logs import text_tokens

    msgs = [m for m in messages if not (m.is_remote_frame or m.is_error_frame or m.is_fd)]
    path = write_trc(tmp_path / "c.trc", msgs, TRCFileVersion.V2_1)
    monkeypatch.setattr(text_tokens, "CHUNK_BYTES", 4096)
    calls = iter(range(10**6))
    with pytest.raises(ReadCancelled) as info:
        read_trc(path, cancel=lambda: next(calls) >= 5)
    partial = info.value.partial  # type: ignore[attr-defined]
    assert 0 < len(partial) < len(msgs)
    ref = reference(path)[: len(partial)]
    assert_same(partial, ref)


def test_mf4_read_in_fragments_matches_python_can(tmp_path, messages, monkeypatch):
    from workshop_app.core.logs import mf4_reader

    path = write_log(tmp_path / "frag.mf4", messages[:5000])
    monkeypatch.setattr(mf4_reader, "FRAGMENT_BYTES", 16 << 10)  # many fragments per group
    seen: list[tuple[int, int]] = []
    ours = read_mf4(path, progress=lambda done, total: seen.append((done, total)))
    assert_same(ours, reference(path))
    assert len(seen) > 5 and seen[-1][0] == seen[-1][1]
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(seen))


def test_mf4_plain_layout_read_from_blocks_equals_asammdf_path(tmp_path, messages, monkeypatch):
    from asammdf import MDF
    from test_recorder_mf4 import _mixed_frames, _record

    from workshop_app.core.logs import mf4_reader
    from workshop_app.core.logs.mf4_blocks import record_fragments

    written = write_log(tmp_path / "pc.mf4", messages[:5000])
    recorded = tmp_path / "rec.mf4"
    _record(recorded, _mixed_frames(4000))
    for path in (written, recorded):
        mdf = MDF(path, process_bus_logging=False)
        try:
            groups = mdf._mdf.groups
            fast = [
                record_fragments(path, g, sorted(c.name for c in g.channels if c.name.startswith("CAN_")))
                for g in groups
                if any(c.name == "CAN_DataFrame" for c in g.channels)
            ]
            assert fast and all(f is not None for f in fast)  # these files take the block path
            for f in fast:
                f.close()
        finally:
            mdf.close()
        ours = read_mf4(path)
        monkeypatch.setattr(mf4_reader, "FAST_BLOCKS", False)
        slow = read_mf4(path)
        monkeypatch.setattr(mf4_reader, "FAST_BLOCKS", True)
        for name in ("timestamp", "channel", "arbitration_id", "flags", "length", "payload"):
            np.testing.assert_array_equal(getattr(ours, name), getattr(slow, name), err_msg=name)
        assert ours.channels == slow.channels
        assert_same(ours, reference(path))
