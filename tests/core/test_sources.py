"""AdapterSource and ReplaySource through the ring into the store, on python-can's virtual bus."""

from __future__ import annotations

import time
import uuid

import can
import pytest

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.errors import SourceError
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.adapter import AdapterSource
from workshop_app.core.sources.base import SourceState
from workshop_app.core.sources.replay import ReplaySource
from workshop_app.core.types import BusConfig, Frame


def _wait_for(cond, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def channel() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def test_adapter_source_captures_and_transmits(channel):
    source = AdapterSource(FrameRing(), BusConfig("virtual", channel))
    session = CaptureSession(source)
    with can.Bus(interface="virtual", channel=channel) as peer:
        session.start()
        try:
            for i in range(100):
                peer.send(can.Message(arbitration_id=0x123, is_extended_id=False, data=[i, 1, 2]))
            peer.send(can.Message(arbitration_id=0x18DAF110, is_extended_id=True, data=b"\x02\x10\x01"))
            assert _wait_for(lambda: session.tick() is not None and session.store.total_frames >= 101)
            s = session.store.get(channel, 0x123)
            assert s.count == 100 and s.data == bytes([99, 1, 2])
            assert session.store.get(channel, 0x18DAF110, True).data == b"\x02\x10\x01"

            source.send(Frame(0, 0x7DF, b"\x02\x01\x0c", channel))
            got = peer.recv(1.0)
            assert got is not None and got.arbitration_id == 0x7DF and bytes(got.data) == b"\x02\x01\x0c"
            session.tick()
            tx = session.store.get(channel, 0x7DF)
            assert tx is not None and tx.is_rx is False  # our own frame appears in the trace as tx
        finally:
            session.stop()
    assert source.state is SourceState.STOPPED


def test_unknown_interface_is_a_plain_error():
    source = AdapterSource(FrameRing(), BusConfig("no_such_adapter", "x"))
    with pytest.raises(SourceError, match="no_such_adapter"):
        source.start()
    assert source.state is SourceState.STOPPED


def test_unreachable_socketcand_server_is_a_plain_error():
    source = AdapterSource(FrameRing(), BusConfig("socketcand", "can0", host="127.0.0.1", port=1))
    with pytest.raises(SourceError, match=r"socketcand 127\.0\.0\.1:1\b"):
        source.start()


def test_send_requires_a_connection(channel):
    source = AdapterSource(FrameRing(), BusConfig("virtual", channel))
    with pytest.raises(SourceError, match="not connected"):
        source.send(Frame(0, 1, b""))


def _write_candump(path, n):
    lines = [f"({1000 + i * 0.001:.6f}) can1 {0x100 + i % 4:03X}#{i % 256:02X}00\n" for i in range(n)]
    path.write_text("".join(lines))


def test_replay_as_fast_as_possible_delivers_every_frame(tmp_path):
    path = tmp_path / "drive.log"
    _write_candump(path, 5000)
    source = ReplaySource(FrameRing(1000), path, speed=0)  # a ring smaller than the log
    session = CaptureSession(source)
    session.start()
    assert _wait_for(lambda: session.tick() is not None and source.finished.is_set(), 10)
    session.stop()
    assert session.store.total_frames == 5000
    assert source.ring.dropped == 0  # a replay waits instead of dropping
    assert source.state is SourceState.STOPPED
    assert session.store.get("can1", 0x100).count == 1250


def test_replay_keeps_original_timing(tmp_path):
    path = tmp_path / "slow.log"
    _write_candump(path, 201)  # 0.2 s of log
    source = ReplaySource(FrameRing(), path, speed=1.0)
    t0 = time.monotonic()
    source.start()
    assert source.finished.wait(5)
    elapsed = time.monotonic() - t0
    source.stop()
    assert elapsed >= 0.18  # paced by the log's 0.2 s, never one burst (how close: benchmarks/replay.py)
    assert len(source.ring.drain()) == 201


def test_replay_of_a_damaged_log_plays_every_sound_frame_and_names_the_damage(tmp_path):
    # As `workshop decode` does: the bad line is skipped, the frames after it still play.
    path = tmp_path / "bad.log"
    _write_candump(path, 10)
    with path.open("a") as f:
        f.write("(1000.5) can1 XYZ#GG\n(1000.6) can1 123#01\n")
    source = ReplaySource(FrameRing(), path, speed=0)
    source.start()
    assert source.finished.wait(5)
    assert source.state is SourceState.FINISHED and source.error is None
    assert source.warning is not None and "bad.log:11" in source.warning  # the line of the damage
    assert len(source.ring.drain()) == 11
    source.stop()
