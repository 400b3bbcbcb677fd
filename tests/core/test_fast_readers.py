"""The bulk BLF and candump readers give exactly the frames python-can's readers give."""

from __future__ import annotations

import gzip
import random
import struct
from pathlib import Path

import can
import numpy as np
import pytest

from workshop_app.core.errors import LogFileError
from workshop_app.core.logs import FrameColumns, ReadCancelled, candump_reader, read_blf, read_candump
from workshop_app.core.logs.columns import ERROR, EXTENDED, FD, REMOTE
from workshop_app.core.logs.notes import LogNotes

TEST_DATA = Path(__file__).resolve().parents[1] / "data"
TESLA_LOG = TEST_DATA / "logs" / "savvycan_tesla_model_s_candump.log"
FRAMES = 20_000


def make_messages(count: int = FRAMES, seed: int = 7) -> list[can.Message]:
    """Classic std/ext 0-8 bytes, remote, error and CAN FD (with BRS/ESI) frames on 3 channels."""
    rng = random.Random(seed)
    t = 1_700_000_000.0
    out = []
    for _ in range(count):
        t += rng.random() * 0.001
        kind = rng.random()
        ext = rng.random() < 0.3
        ident = rng.getrandbits(29 if ext else 11)
        ch = rng.choice([0, 1, 2])
        if kind < 0.03:
            m = can.Message(
                timestamp=t, is_error_frame=True, channel=ch, is_extended_id=False, arbitration_id=0
            )
        elif kind < 0.08:
            m = can.Message(
                timestamp=t,
                arbitration_id=ident,
                is_extended_id=ext,
                is_remote_frame=True,
                dlc=rng.randint(0, 8),
                channel=ch,
            )
        elif kind < 0.2:
            m = can.Message(
                timestamp=t,
                arbitration_id=ident,
                is_extended_id=ext,
                is_fd=True,
                bitrate_switch=rng.random() < 0.5,
                error_state_indicator=rng.random() < 0.2,
                data=rng.randbytes(rng.choice([0, 1, 8, 12, 16, 20, 24, 32, 48, 64])),
                channel=ch,
            )
        else:
            m = can.Message(
                timestamp=t,
                arbitration_id=ident,
                is_extended_id=ext,
                data=rng.randbytes(rng.randint(0, 8)),
                channel=ch,
                is_rx=rng.random() < 0.8,
            )
        out.append(m)
    return out


@pytest.fixture(scope="module")
def messages() -> list[can.Message]:
    return make_messages()


def write_log(path: Path, msgs: list[can.Message], **kwargs: object) -> Path:
    with can.Logger(path, **kwargs) as writer:
        for m in msgs:
            writer.on_message_received(m)
    return path


def reference(path: Path) -> list[can.Message]:
    return list(can.LogReader(path))


def assert_same(ours: FrameColumns, ref: list[can.Message], *, candump: bool = False) -> None:
    """Field by field; candump error frames lose id and interface in python-can, so those are skipped."""
    assert len(ours) == len(ref)
    theirs = FrameColumns.from_messages(ref)
    assert np.abs(ours.timestamp - theirs.timestamp).max(initial=0) < 1e-6
    np.testing.assert_array_equal(ours.flags, theirs.flags)
    np.testing.assert_array_equal(ours.length, theirs.length)
    width = theirs.payload.shape[1]
    np.testing.assert_array_equal(ours.payload[:, :width], theirs.payload)
    assert not ours.payload[:, width:].any()
    check = (ours.flags & ERROR) == 0 if candump else np.ones(len(ours), bool)
    np.testing.assert_array_equal(ours.arbitration_id[check], theirs.arbitration_id[check])
    our_names = np.array(ours.channels or ("",), dtype=object)[ours.channel]
    their_names = np.array(theirs.channels or ("",), dtype=object)[theirs.channel]
    np.testing.assert_array_equal(our_names[check], their_names[check])
    # Back to python-can objects and columns again: nothing lost on the way.
    again = FrameColumns.from_messages(ours.to_messages())
    np.testing.assert_array_equal(again.timestamp, ours.timestamp)
    np.testing.assert_array_equal(again.flags, ours.flags)
    np.testing.assert_array_equal(again.payload[:, :width], ours.payload[:, :width])


def test_blf_matches_python_can(tmp_path, messages):
    path = write_log(tmp_path / "mixed.blf", messages)
    ours = read_blf(path)
    assert_same(ours, reference(path))
    assert ours.channels == ("0", "1", "2")
    assert ours.payload.shape == (FRAMES, 64)
    assert (ours.flags & FD).any() and (ours.flags & REMOTE).any() and (ours.flags & ERROR).any()


def test_blf_uncompressed_and_small_containers(tmp_path, messages):
    # Objects straddle container boundaries at odd offsets.
    path = write_log(tmp_path / "raw.blf", messages[:3000], compression_level=0, max_container_size=1000)
    assert_same(read_blf(path), reference(path))


def test_blf_classic_only_is_eight_wide_and_compact(tmp_path, messages):
    classic = [m for m in messages if not m.is_fd][:5000]
    path = write_log(tmp_path / "classic.blf", classic)
    ours = read_blf(path)
    assert_same(ours, reference(path))
    assert ours.payload.shape[1] == 8
    assert ours.nbytes / len(ours) <= 40


def test_blf_signature_inside_payload(tmp_path, messages):
    # "LOBJ" in frame data must not be taken for an object header.
    tricky = [
        can.Message(
            timestamp=1.0 + i / 1000, arbitration_id=i, data=b"LOBJ" + bytes([i % 256]) * 4, channel=0
        )
        for i in range(300)
    ]
    path = write_log(tmp_path / "tricky.blf", [*messages[:500], *tricky], max_container_size=2000)
    assert_same(read_blf(path), reference(path))


def test_blf_fd64_object(tmp_path):
    # python-can cannot write CAN_FD_MESSAGE_64, so build one: 16-byte base + 16-byte v1 header + body.
    ident = 0x18DAF110 | 0x80000000
    data = bytes(range(20))
    body = struct.pack(
        "<BBBBLLLLLLLHBBL", 2, 11, len(data), 0, ident, 0, 0x1000 | 0x2000, 0, 0, 0, 0, 0, 1, 0, 0
    )
    body += data + bytes(4)
    obj = struct.pack("<4sHHLL", b"LOBJ", 32, 1, 32 + len(body), 101) + struct.pack(
        "<LHHQ", 2, 0, 0, 1_500_000_000
    )
    obj += body
    container = (
        struct.pack("<4sHHLL", b"LOBJ", 16, 1, 32 + len(obj), 10) + struct.pack("<H6xL4x", 0, len(obj)) + obj
    )
    start = struct.pack("<8H", 2024, 1, 1, 1, 0, 0, 0, 0)
    header = struct.pack("<4sLBBBBBBBBQQLL", b"LOGG", 144, 5, 0, 0, 0, 2, 6, 8, 1, 0, 0, 1, 0) + start + start
    path = tmp_path / "fd64.blf"
    path.write_bytes(header.ljust(144, b"\0") + container)
    ours = read_blf(path)
    assert_same(ours, reference(path))
    assert ours.to_messages()[0].data == data and ours.flags[0] & EXTENDED


def test_candump_matches_python_can(tmp_path, messages):
    path = write_log(tmp_path / "mixed.log", messages)
    ours = read_candump(path)
    ref = reference(path)
    assert_same(ours, ref, candump=True)
    # Fixed-point text is converted exactly, not just within the 1 µs tolerance.
    np.testing.assert_array_equal(ours.timestamp, [m.timestamp for m in ref])
    assert ours.channels == ("can0", "can1", "can2")
    errors = ours.select((ours.flags & ERROR) != 0)
    assert len(errors) and (errors.arbitration_id == 0x80).all()  # SocketCAN bus-error class kept


def test_candump_gzip_and_small_chunks(tmp_path, messages, monkeypatch):
    path = write_log(tmp_path / "mixed.log.gz", messages[:4000])
    ref = reference(path)
    assert_same(read_candump(path), ref, candump=True)
    monkeypatch.setattr(candump_reader, "CHUNK_BYTES", 1000)
    assert_same(read_candump(path), ref, candump=True)


def test_candump_real_savvycan_log():
    assert TESLA_LOG.is_file(), f"test data missing: {TESLA_LOG}"
    ours = read_candump(TESLA_LOG)
    assert len(ours) > 10_000
    assert_same(ours, reference(TESLA_LOG), candump=True)


def test_candump_irregular_lines_follow_python_can(tmp_path):
    text = (
        "(1.000000) can0 123#11\n"
        "\n"
        "  (1.5)\tcan0   1ABCDEF0#  \r\n"
        "(2.000000) 3 7FF#R12 T\n"
        "(2.500000) can1 001##3AABB R\n"
        "(-3.25) can0 0#R\n"
        "(1e1) can0 12345678#0011223344556677\n"
    )
    path = tmp_path / "odd.log"
    path.write_text(text)
    ours = read_candump(path)
    assert len(ours) == 6
    assert_same(ours, reference(path), candump=True)


def test_candump_corrupt_line_is_named_and_earlier_frames_kept(tmp_path, messages, monkeypatch):
    path = write_log(tmp_path / "bad.log", messages[:2000])
    lines = path.read_text().splitlines(keepends=True)
    lines[1234] = "(12.5) can0 12G#00\n"
    path.write_text("".join(lines))
    monkeypatch.setattr(candump_reader, "CHUNK_BYTES", 4096)  # the bad line sits in a later chunk
    notes = LogNotes(path)
    ours = read_candump(path, notes=notes)
    assert [str(n) for n in notes.notes] == [f"{path}:1235: bad frame '12G#00'"]
    good = tmp_path / "good.log"
    good.write_text("".join(lines[:1234] + lines[1235:]))
    assert_same(ours, reference(good), candump=True)
    with pytest.raises(LogFileError, match=r"bad\.log:1235: bad frame") as info:
        read_candump(path)
    assert info.value.line == 1235
    assert len(info.value.partial) == 1999


def test_empty_files(tmp_path):
    for name in ("empty.log", "empty.blf"):
        (tmp_path / name).write_bytes(b"")
    with gzip.open(tmp_path / "empty.log.gz", "wb"):
        pass
    assert len(read_candump(tmp_path / "empty.log")) == 0
    assert len(read_candump(tmp_path / "empty.log.gz")) == 0
    assert len(read_blf(tmp_path / "empty.blf")) == 0
    (tmp_path / "blank.log").write_text("\n\n  \n")
    assert len(read_candump(tmp_path / "blank.log")) == 0


def container_offsets(data: bytes) -> list[int]:
    pos, out = 144, []
    while pos < len(data):
        size = struct.unpack_from("<L", data, pos + 8)[0]
        out.append(pos)
        pos += size + size % 4
    return out


def assert_head_and_tail(ours: FrameColumns, ref: list[can.Message]) -> tuple[int, int]:
    """``ours`` is ``ref`` with one run of frames missing: (frames kept before, after it)."""
    theirs = FrameColumns.from_messages(ref)
    n = min(len(ours), len(theirs))
    same = np.isclose(ours.timestamp[:n], theirs.timestamp[:n], atol=1e-6, rtol=0)
    head = n if same.all() else int(np.argmin(same))
    tail = len(ours) - head
    assert_same(ours.slice(0, head), ref[:head])
    if tail:
        assert_same(ours.slice(head, len(ours)), ref[len(ref) - tail :])
    return head, tail


def test_blf_zero_size_container_header(tmp_path, messages):
    path = write_log(tmp_path / "zero.blf", messages[:3000], max_container_size=8192)
    data = bytearray(path.read_bytes())
    offsets = container_offsets(bytes(data))
    ref = reference(path)
    bad = offsets[3]
    struct.pack_into("<L", data, bad + 8, 0)  # python-can's BLFReader never returns on this
    path.write_bytes(bytes(data))
    notes = LogNotes(path)
    ours = read_blf(path, notes=notes)
    assert [(n.offset, n.reason) for n in notes.notes] == [(bad, "object header with size 0")]
    # Reading went on at the next container: frames before and after the damage are kept.
    head, tail = assert_head_and_tail(ours, ref)
    assert head > 0 and tail > 0 and head + tail < len(ref)
    with pytest.raises(LogFileError, match=f"size 0 at byte {bad}") as info:
        read_blf(path)
    assert info.value.offset == bad
    assert len(info.value.partial) == len(ours)


def test_blf_zero_size_inner_object(tmp_path, messages):
    classic = [m for m in messages if not (m.is_fd or m.is_error_frame)][:500]
    path = write_log(tmp_path / "inner.blf", classic, compression_level=0)
    ref = reference(path)
    data = bytearray(path.read_bytes())
    first = data.index(b"LOBJ", 144 + 32)  # first object inside the (uncompressed) container
    struct.pack_into("<L", data, first + 100 * 48 + 8, 0)  # CAN_MESSAGE objects are 48 bytes
    path.write_bytes(bytes(data))
    notes = LogNotes(path)
    ours = read_blf(path, notes=notes)
    assert len(notes.notes) == 1 and "size 0 at byte 4800" in notes.notes[0].reason
    assert notes.notes[0].offset == 144
    # Only the damaged object is lost: the next object signature is found again.
    head, tail = assert_head_and_tail(ours, ref)
    assert (head, tail) == (100, len(ref) - 101)


def test_blf_truncated_file(tmp_path, messages):
    path = write_log(tmp_path / "cut.blf", messages[:3000], max_container_size=8192)
    ref = reference(path)
    data = path.read_bytes()
    offsets = container_offsets(data)
    path.write_bytes(data[: offsets[4] + 50])
    notes = LogNotes(path)
    ours = read_blf(path, notes=notes)
    assert [n.offset for n in notes.notes] == [offsets[4]]
    assert "file ends inside an object" in notes.notes[0].reason
    assert 0 < len(ours) < len(ref)
    assert_same(ours, ref[: len(ours)])
    assert len(ours) >= len(list(can.BLFReader(path)))
    path.write_bytes(data[:100])
    with pytest.raises(LogFileError, match="truncated BLF file header"):
        read_blf(path)
    path.write_bytes(data[:40])
    with pytest.raises(LogFileError, match=r"truncated BLF file header \(40 bytes\)"):
        read_blf(path)
    path.write_bytes(b"\x1b[2J" + data[4:100])
    with pytest.raises(LogFileError, match=r"is not a BLF log \(no LOGG signature; starts with '\\x1b\[2J"):
        read_blf(path)


def test_cancel_and_progress(tmp_path, messages):
    path = write_log(tmp_path / "p.log", messages[:3000])
    seen: list[tuple[int, int]] = []
    read_candump(path, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1]
    with pytest.raises(ReadCancelled):
        read_candump(path, cancel=lambda: True)
    blf = write_log(tmp_path / "p.blf", messages[:3000])
    seen.clear()
    read_blf(blf, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1][0] == seen[-1][1]
    with pytest.raises(ReadCancelled):
        read_blf(blf, cancel=lambda: True)


def test_columns_helpers(messages):
    cols = FrameColumns.from_messages(messages[:100])
    assert len(cols) == 100
    assert len(cols.slice(10, 20)) == 10
    both = FrameColumns.concat([cols.slice(0, 50), FrameColumns.from_messages(messages[50:100])])
    np.testing.assert_array_equal(both.timestamp, cols.timestamp)
    np.testing.assert_array_equal(
        np.array(both.channels)[both.channel], np.array(cols.channels)[cols.channel]
    )
    fd = cols.select((cols.flags & FD) != 0)
    assert all(m.is_fd for m in fd.to_messages())
    assert len(FrameColumns.concat([])) == 0
