"""PlaybackSource (ring playback with controls) and replay_to_bus (onto a python-can bus)."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import can
import numpy as np
import pytest

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.jobs import CancelToken
from workshop_app.core.logs.columns import FrameColumns
from workshop_app.core.logs.playback import PlaybackSource, replay_to_bus, time_range
from workshop_app.core.logs.reader import read_columns
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.base import SourceState
from workshop_app.core.types import Frame

DATA = Path(__file__).resolve().parents[1] / "data"
TESLA_LOG = DATA / "logs" / "savvycan_tesla_model_s_candump.log"


def _wait_for(cond, timeout=5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.005)
    return cond()


def _columns(n: int, gap: float, t0: float = 100.0) -> FrameColumns:
    """``n`` frames ``gap`` seconds apart; the id is the row number, so order is visible."""
    return FrameColumns.from_messages(
        can.Message(timestamp=t0 + i * gap, arbitration_id=i, data=bytes([i & 0xFF, 1, 2]), channel="can0")
        for i in range(n)
    )


def _drain_until_finished(source: PlaybackSource, ring: FrameRing) -> list[Frame]:
    out: list[Frame] = []
    assert _wait_for(lambda: (out.extend(ring.drain()), source.finished.is_set())[1], timeout=30)
    out.extend(ring.drain())
    return out


@pytest.fixture(scope="module")
def tesla() -> FrameColumns:
    assert TESLA_LOG.is_file(), f"test data missing: {TESLA_LOG}"
    return read_columns(TESLA_LOG)


def test_speed_zero_pushes_every_frame_once_in_order(tesla):
    ring = FrameRing(capacity=500)  # far smaller than the log: playback must wait, not drop
    source = PlaybackSource(ring, tesla, speed=0)
    assert source.caps.seekable and not source.caps.live
    with source:
        frames = _drain_until_finished(source, ring)
        assert source.state is SourceState.FINISHED
    assert ring.dropped == 0
    assert len(frames) == len(tesla)
    assert [f.timestamp for f in frames] == tesla.timestamp.tolist()
    assert [f.arbitration_id for f in frames] == tesla.arbitration_id.tolist()
    assert all(f.data == bytes(tesla.payload[i, : tesla.length[i]]) for i, f in enumerate(frames[:500]))
    assert {f.channel for f in frames} == {"vcan0"}


@pytest.mark.parametrize(("speed", "low"), [(1.0, 0.25), (10.0, 0.02)])
def test_pacing_follows_timestamps_and_speed(speed, low):
    columns = _columns(31, 0.01)  # 0.3 s of log
    ring = FrameRing()
    source = PlaybackSource(ring, columns, speed=speed)
    t0 = time.perf_counter()
    with source:
        assert source.finished.wait(5)
        elapsed = time.perf_counter() - t0
    # Never ahead of the log's clock at this speed; how close it keeps to it is measured by
    # benchmarks/replay.py, not asserted here (a loaded machine only makes it later).
    assert elapsed >= low
    assert [f.arbitration_id for f in ring.drain()] == list(range(31))


def test_pause_seek_and_step():
    columns = _columns(200, 0.01)  # 2 s
    ring = FrameRing()
    source = PlaybackSource(ring, columns, speed=1.0)
    with source:
        assert _wait_for(lambda: ring.pushed >= 5)
        source.pause()
        assert not source.playing
        paused_at = ring.pushed
        time.sleep(0.15)
        assert ring.pushed == paused_at  # pause stops delivery
        ring.drain()

        source.seek(101.234)  # between rows 123 (101.23) and 124 (101.24)
        assert ring.pushed == paused_at  # seeking while paused delivers nothing by itself
        source.step(3)
        assert _wait_for(lambda: ring.pushed == paused_at + 3)
        time.sleep(0.05)
        frames = ring.drain()
        assert [f.arbitration_id for f in frames] == [124, 125, 126]

        source.seek(columns.timestamp[50])  # exactly on a frame: that frame is next
        source.play()
        assert _wait_for(lambda: len(ring) > 0)
        source.pause()
        assert ring.drain()[0].arbitration_id == 50
        assert source.start_time == 100.0
        assert source.duration == pytest.approx(1.99)
        assert 100.5 <= source.position <= 101.0


def test_step_delivers_exactly_n_frames_while_paused():
    columns = _columns(50, 0.5)
    ring = FrameRing()
    source = PlaybackSource(ring, columns, paused=True)
    with source:
        time.sleep(0.05)
        assert ring.pushed == 0
        source.step(4)
        assert _wait_for(lambda: ring.pushed == 4)
        time.sleep(0.1)
        assert [f.arbitration_id for f in ring.drain()] == [0, 1, 2, 3]
        source.step()
        assert _wait_for(lambda: ring.pushed == 5)
        assert ring.drain()[0].arbitration_id == 4


def test_loop_range_repeats():
    columns = _columns(100, 0.01)
    ring = FrameRing(capacity=100)
    source = PlaybackSource(ring, columns, speed=0, paused=True)
    source.set_loop(100.20, 100.24)  # rows 20..24
    with source:
        source.play()
        assert _wait_for(lambda: ring.backlog >= 60)
        assert not source.finished.is_set()
    ids = [f.arbitration_id for f in ring.drain()]
    assert len(ids) >= 60
    assert ids[:15] == [20, 21, 22, 23, 24] * 3
    assert set(ids) == {20, 21, 22, 23, 24}


def test_speed_change_and_finish_then_seek_back():
    columns = _columns(20, 0.05)  # 0.95 s at speed 1
    ring = FrameRing()
    source = PlaybackSource(ring, columns, speed=0.1)
    for bad in (-1.0, 0.0001, float("inf"), float("nan")):
        with pytest.raises(ValueError):
            source.set_speed(bad)
    with source:
        source.set_speed(100)
        assert source.finished.wait(3)
        assert len(ring.drain()) == 20
        assert not source.playing  # a finished playback rests paused at its end
        source.seek(columns.timestamp[15])
        assert not source.finished.is_set()
        source.play()
        assert source.finished.wait(3)
        assert [f.arbitration_id for f in ring.drain()] == [15, 16, 17, 18, 19]


def test_playback_feeds_a_capture_session(tesla):
    source = PlaybackSource(FrameRing(), tesla.slice(0, 2000), speed=0)
    session = CaptureSession(source)
    session.start()
    try:
        assert source.finished.wait(10)
        session.tick()
    finally:
        session.stop()
    assert source.frames_replayed == 2000


# -- replay_to_bus -----------------------------------------------------------------------------
def _mixed_columns() -> FrameColumns:
    t0 = 1000.0
    messages = [
        can.Message(timestamp=t0, arbitration_id=0x123, data=b"\x01\x02"),
        can.Message(timestamp=t0 + 0.02, arbitration_id=0x18DAF110, is_extended_id=True, data=b"\xaa" * 8),
        can.Message(timestamp=t0 + 0.03, arbitration_id=0x7DF, is_remote_frame=True, dlc=8),
        can.Message(timestamp=t0 + 0.035, is_error_frame=True),
        can.Message(
            timestamp=t0 + 0.06, arbitration_id=0x456, is_fd=True, bitrate_switch=True, data=bytes(range(12))
        ),
        can.Message(timestamp=t0 + 0.1, arbitration_id=0x124, data=b""),
        can.Message(timestamp=t0 + 0.15, arbitration_id=0x125, data=b"\xff" * 8),
    ]
    for m in messages:
        m.channel = "can0"
    return FrameColumns.from_messages(messages)


def _receive(bus: can.BusABC, n: int, timeout: float = 3.0) -> list[can.Message]:
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        msg = bus.recv(0.1)
        if msg is not None:
            out.append(msg)
    return out


def test_replay_to_bus_sends_identical_frames_with_their_timing():
    columns = _mixed_columns()
    channel = f"replay-{uuid.uuid4().hex[:8]}"
    with (
        can.Bus(interface="virtual", channel=channel) as tx,
        can.Bus(interface="virtual", channel=channel) as rx,
    ):
        progress: list[tuple[int, int]] = []
        stats = replay_to_bus(columns, tx, speed=1.0, progress=lambda p: progress.append((p.done, p.total)))
        got = _receive(rx, 6)
    expected = [m for m in columns.to_messages() if not m.is_error_frame]
    assert stats.frames_sent == 6 and stats.error_frames_skipped == 1 and stats.send_errors == 0
    assert progress[-1] == (7, 7)
    assert len(got) == len(expected)
    for sent, original in zip(got, expected, strict=True):
        assert sent.arbitration_id == original.arbitration_id
        assert sent.data == original.data
        assert sent.is_extended_id == original.is_extended_id
        assert sent.is_remote_frame == original.is_remote_frame
        assert sent.is_fd == original.is_fd and sent.bitrate_switch == original.bitrate_switch
        if original.is_remote_frame:
            assert sent.dlc == original.dlc
    gaps = np.diff([m.timestamp for m in got])
    original_gaps = np.diff([m.timestamp for m in expected])
    assert np.allclose(gaps, original_gaps, atol=0.03)
    assert stats.max_lateness >= 0 and stats.passes == 1 and not stats.cancelled


def test_replay_to_bus_range_speed_channel_map_and_cancel():
    columns = _columns(40, 0.01)
    channel = f"replay-{uuid.uuid4().hex[:8]}"
    with (
        can.Bus(interface="virtual", channel=channel) as tx,
        can.Bus(interface="virtual", channel=channel) as rx,
    ):
        stats = replay_to_bus(columns, {"can0": tx}, speed=0, start=100.1, end=100.195)
        got = _receive(rx, 10)
        assert [m.arbitration_id for m in got] == list(range(10, 20))
        assert stats.frames_sent == 10
        assert len(time_range(columns, 100.1, 100.195)) == 10

        skipped = replay_to_bus(columns, {"can9": tx}, speed=0)
        assert skipped.frames_sent == 0 and skipped.unmapped_frames == 40

        cancel = CancelToken()
        timer = threading.Timer(0.2, cancel.cancel)
        timer.start()
        try:
            looped = replay_to_bus(columns, tx, speed=0, loop=True, cancel=cancel)
        finally:
            timer.cancel()
            timer.join()
        assert looped.cancelled and looped.passes >= 2 and looped.frames_sent >= 80


def test_play_after_finish_starts_over_with_its_timing():
    columns = _columns(31, 0.01)
    ring = FrameRing()
    source = PlaybackSource(ring, columns, speed=10)
    with source:
        assert source.finished.wait(3)
        ring.drain()
        source.set_speed(1)
        t0 = time.perf_counter()
        source.play()
        assert _wait_for(lambda: ring.pushed >= 35)
        assert time.perf_counter() - t0 >= 0.02  # paced from the start, not one burst
        assert source.finished.wait(3)
        assert source.state is SourceState.FINISHED
    assert [f.arbitration_id for f in ring.drain()] == list(range(31))


def test_seek_on_a_log_whose_timestamps_are_not_sorted():
    stamps = [1.0, 1.2, 1.1, 1.3, 1.25, 1.4]  # two channels merged with small clock skew
    columns = FrameColumns.from_messages(
        can.Message(timestamp=t, arbitration_id=i, data=b"") for i, t in enumerate(stamps)
    )
    ring = FrameRing()
    source = PlaybackSource(ring, columns, paused=True)
    with source:
        source.seek(1.15)  # first row at or after 1.15 is row 1 (1.2)
        source.step(2)
        assert _wait_for(lambda: ring.pushed == 2)
        assert [f.arbitration_id for f in ring.drain()] == [1, 2]
        source.set_speed(0)
        source.play()
        assert source.finished.wait(3)
    assert [f.arbitration_id for f in ring.drain()] == [3, 4, 5]


# -- one engine behind every entry point --------------------------------------------------------
def _write_candump(path: Path, n: int, gap: float = 0.001) -> None:
    path.write_text("".join(f"({1000 + i * gap:.6f}) can1 {i % 256:03X}#{i % 256:02X}\n" for i in range(n)))


def test_replay_source_is_the_playback_engine_over_a_file(tmp_path):
    from workshop_app.core.sources.replay import ReplaySource

    path = tmp_path / "drive.log"
    _write_candump(path, 100, gap=0.5)  # 50 s of log: only controls get it done quickly
    ring = FrameRing()
    source = ReplaySource(ring, path, speed=1.0)
    assert isinstance(source, PlaybackSource) and source.caps.seekable
    with source:
        assert _wait_for(lambda: ring.pushed >= 1)
        source.pause()
        source.seek(1000 + 40 * 0.5)
        source.step(2)
        assert _wait_for(lambda: ring.pushed >= 3)
        source.set_speed(0)
        source.play()
        assert source.finished.wait(5)
        assert source.state is SourceState.FINISHED
    ids = [f.arbitration_id for f in ring.drain()]
    head = len(ids) - 60  # what played before the pause: the first rows, in order
    assert ids[:head] == list(range(head)) and ids[head:] == list(range(40, 100))
    assert source.describe() == "replay drive.log" and source.duration == pytest.approx(49.5)


def test_replay_source_loop_repeats_the_whole_file_without_rereading_it(tmp_path):
    from workshop_app.core.sources.replay import ReplaySource

    path = tmp_path / "short.log"
    _write_candump(path, 7)
    ring = FrameRing(capacity=100)
    source = ReplaySource(ring, path, speed=0, loop=True)
    with source:
        assert _wait_for(lambda: ring.backlog >= 70)
        path.unlink()  # read once: later passes come from memory
        ring.drain()
        assert _wait_for(lambda: ring.backlog >= 21)
        assert not source.finished.is_set() and source.error is None
    ids = [f.arbitration_id for f in ring.drain()]
    assert set(ids) == set(range(7))


def test_replay_source_of_a_missing_file_is_a_plain_error(tmp_path):
    from workshop_app.core.errors import WorkshopError
    from workshop_app.core.sources.replay import ReplaySource

    source = ReplaySource(FrameRing(), tmp_path / "gone.blf")
    with pytest.raises(WorkshopError, match=r"gone\.blf: no such file"):
        source.start()
    assert source.state is SourceState.STOPPED


def test_replay_to_bus_loop_counts_passes_and_progress_per_pass():
    columns = _columns(5, 0.001)
    channel = f"replay-{uuid.uuid4().hex[:8]}"
    cancel = CancelToken()
    seen: list[tuple[str, int, int]] = []

    def progress(p):
        seen.append((p.phase, p.done, p.total))
        if sum(1 for s in seen if s[1] == s[2]) >= 3:
            cancel.cancel()  # three whole passes

    with (
        can.Bus(interface="virtual", channel=channel) as tx,
        can.Bus(interface="virtual", channel=channel) as rx,
    ):
        stats = replay_to_bus(columns, tx, speed=0, loop=True, cancel=cancel, progress=progress)
        got = _receive(rx, 15)
    assert stats.cancelled and stats.passes == 3 and stats.frames_sent == 15
    assert [m.arbitration_id for m in got] == [0, 1, 2, 3, 4] * 3
    assert all(phase == "replay" and total == 5 for phase, _, total in seen)


def test_replay_to_bus_refuses_a_bad_speed():
    with pytest.raises(ValueError, match="speed"):
        replay_to_bus(_columns(3, 0.01), {}, speed=-1)
