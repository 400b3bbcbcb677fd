"""Record frames with the Recorder and read them back with python-can's readers."""

from __future__ import annotations

import random
from pathlib import Path

import can
import pytest

from workshop_app.core.capture.recorder import Recorder
from workshop_app.core.errors import LogFileError
from workshop_app.core.logfiles import iter_log
from workshop_app.core.types import Frame

T0 = 1_700_000_000.0


def _frames(n: int = 500, fd: bool = False, seed: int = 1) -> list[Frame]:
    rng = random.Random(seed)
    out = []
    t = T0
    for i in range(n):
        t += rng.choice((0.000_250, 0.001, 0.0105))
        ext = i % 3 == 0
        ident = rng.randrange(0x2000_0000) if ext else rng.randrange(0x800)
        if fd and i % 4 == 0:
            size = rng.choice((12, 16, 20, 24, 32, 48, 64))
            out.append(Frame(t, ident, rng.randbytes(size), "can0", ext, True, bitrate_switch=True))
        else:
            out.append(Frame(t, ident, rng.randbytes(rng.randrange(9)), "can0", ext))
    return out


# (suffix, timestamp resolution of the format in seconds)
FORMATS = [
    (".asc", 1e-6),
    (".blf", 1e-6),
    (".csv", 1e-6),
    (".db", 1e-6),
    (".log", 1e-6),
    (".mf4", 1e-6),
    (".trc", 1e-6),
    (".asc.gz", 1e-6),
    (".log.gz", 1e-6),
]
FD_FORMATS = [".asc", ".blf", ".log", ".mf4"]


def _record(path: Path, frames: list[Frame]) -> None:
    rec = Recorder(path)
    for i in range(0, len(frames), 64):  # batches, as the capture tick hands them over
        rec.write(frames[i : i + 64])
    summary = rec.stop()
    assert summary.frames_written == len(frames)
    assert summary.frames_dropped == 0
    assert rec.error is None


def _assert_same(read: list[can.Message], frames: list[Frame], resolution: float, relative: bool) -> None:
    assert len(read) == len(frames)
    offset = read[0].timestamp - frames[0].timestamp if relative else 0.0
    for got, want in zip(read, frames, strict=True):
        assert got.arbitration_id == want.arbitration_id
        assert got.is_extended_id == want.is_extended
        assert bytes(got.data) == want.data
        assert got.is_fd == want.is_fd
        assert abs(got.timestamp - offset - want.timestamp) <= resolution * 1.5


@pytest.mark.parametrize(("suffix", "resolution"), FORMATS)
def test_round_trip_classic(tmp_path, suffix, resolution):
    frames = _frames()
    path = tmp_path / f"rec{suffix}"
    _record(path, frames)
    read = list(iter_log(path))
    # ASC and TRC store time relative to the start of the measurement.
    _assert_same(read, frames, resolution, relative=suffix.startswith((".asc", ".trc")))


@pytest.mark.parametrize("suffix", FD_FORMATS)
def test_round_trip_can_fd(tmp_path, suffix):
    frames = _frames(200, fd=True)
    path = tmp_path / f"fd{suffix}"
    _record(path, frames)
    read = list(iter_log(path))
    _assert_same(read, frames, 1e-6, relative=suffix == ".asc")
    fd_read = [m for m in read if m.is_fd]
    assert fd_read and all(m.bitrate_switch for m in fd_read)


def test_unknown_format_is_a_clear_error(tmp_path):
    with pytest.raises(LogFileError, match=r"rec\.xyz.*unknown log format"):
        Recorder(tmp_path / "rec.xyz")


def test_unwritable_path_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LogFileError, match="cannot"):
        Recorder(blocker / "sub" / "rec.blf")


def test_queue_limit_drops_and_counts(tmp_path):
    rec = Recorder(tmp_path / "small.log", max_queued_frames=10)
    frames = _frames(50)
    rec.write(frames)  # one batch larger than the queue may hold
    summary = rec.stop()
    assert summary.frames_dropped == 50
    assert summary.frames_written == 0
    rec.write(frames)  # after stop: ignored, nothing raised
    assert rec.stop().frames_written == 0


def test_empty_and_missing_logs(tmp_path):
    empty = tmp_path / "empty.blf"
    empty.write_bytes(b"")
    assert list(iter_log(empty)) == []
    with pytest.raises(LogFileError, match="no such file"):
        list(iter_log(tmp_path / "nope.asc"))


def test_truncated_text_log_keeps_frames_before_the_error(tmp_path):
    path = tmp_path / "bad.log"
    path.write_text("(1.000000) can0 123#1122\n(1.001000) can0 124#33\n(1.002000) can0 12G#zz\n")
    got = []
    with pytest.raises(LogFileError, match=r"bad\.log.*after frame 2"):
        for msg in iter_log(path):
            got.append(msg)
    assert [m.arbitration_id for m in got] == [0x123, 0x124]


@pytest.mark.parametrize("suffix", [".blf", ".mf4", ".asc", ".trc", ".db"])
def test_channels_named_by_a_vin_or_a_generated_name_still_record(tmp_path, suffix):
    # A cloud vehicle's channel is its VIN; a test bus may be "ws-1a2b". Their digits taken
    # together made channel numbers past the 16-bit field of these formats.
    names = ["WSADEM5T2T0000421", "ws-1a2b", "can1"]
    frames = [Frame(1.0 + i * 0.001, 0x100 + i, bytes([i]), names[i % 3]) for i in range(30)]
    path = tmp_path / f"rec{suffix}"
    _record(path, frames)
    read = list(iter_log(path))
    assert [m.arbitration_id for m in read] == [f.arbitration_id for f in frames]
