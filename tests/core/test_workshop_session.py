"""WorkshopSession over the real simulated vehicle, a python-can virtual bus and real files."""

from __future__ import annotations

import time
import uuid

import can
import pytest
from helpers.waiting import wait_until

from workshop_app.core.capture.recorder import Recorder, RecordingSummary
from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.session import CaptureSession, CaptureStats
from workshop_app.core.sources.adapter import AdapterSource
from workshop_app.core.sources.factory import SourceSpec
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.core.types import BusConfig, Frame
from workshop_app.core.workshop import TickResult, WorkshopSession
from workshop_app.paths import dbc_dir


@pytest.fixture
def channel() -> str:
    return f"ws-{uuid.uuid4().hex[:8]}"


def _frame(ident: int, data: bytes, channel: str, ts: float = 0.0) -> Frame:
    return Frame(ts, ident, data, channel)


def test_tick_returns_the_streams_the_batch_changed(channel):
    session = WorkshopSession(AdapterSource(FrameRing(), BusConfig("virtual", channel)))
    ring = session.capture.ring
    ring.push_many([_frame(0x100, b"\x01", channel, 1.0), _frame(0x200, b"\x02", channel, 1.1)])
    first = session.tick()
    assert isinstance(first, TickResult) and len(first) == 2
    assert first.changed == {(channel, 0x100, False), (channel, 0x200, False)}
    ring.push(_frame(0x200, b"\x03", channel, 1.2))
    second = session.tick()
    assert second.changed == {(channel, 0x200, False)}  # 0x100 had no frame: not repainted
    assert session.tick().changed == frozenset()


def test_a_burst_is_taken_over_several_ticks(channel):
    session = WorkshopSession(AdapterSource(FrameRing(), BusConfig("virtual", channel)), max_frames=1000)
    session.capture.ring.push_many(_frame(0x100 + i % 7, bytes([i % 256]), channel, i) for i in range(2500))
    sizes = [len(session.tick()) for _ in range(4)]
    assert sizes == [1000, 1000, 500, 0]
    assert session.capture.store.total_frames == 2500
    with pytest.raises(ValueError, match="max_frames"):
        WorkshopSession(AdapterSource(FrameRing(), BusConfig("virtual", channel)), max_frames=0)


def test_subscribers_hear_each_kind_and_can_leave(channel):
    session = WorkshopSession(AdapterSource(FrameRing(), BusConfig("virtual", channel)))
    heard: dict[str, list[object]] = {k: [] for k in ("frames", "changed", "stats")}
    for kind, got in heard.items():
        session.subscribe(kind, got.append)
    session.tick()  # nothing arrived: stats only
    assert heard["frames"] == [] and heard["changed"] == [] and len(heard["stats"]) == 1
    session.capture.ring.push(_frame(0x123, b"\xaa", channel))
    session.tick()
    assert [len(b) for b in heard["frames"]] == [1]  # type: ignore[arg-type]
    assert heard["changed"] == [frozenset({(channel, 0x123, False)})]
    assert isinstance(heard["stats"][-1], CaptureStats) and heard["stats"][-1].frames == 1

    session.unsubscribe("frames", heard["frames"].append)
    session.capture.ring.push(_frame(0x123, b"\xbb", channel))
    session.tick()
    assert len(heard["frames"]) == 1 and len(heard["changed"]) == 2
    session.unsubscribe("frames", heard["frames"].append)  # twice: ignored
    with pytest.raises(ValueError, match="no event kind 'frame'"):
        session.subscribe("frame", print)


def test_switch_source_stops_recording_and_moves_transmit(channel, tmp_path):
    dbs = DatabaseSet()
    dbs.add(dbc_dir() / "demo_vehicle.dbc")
    first = AdapterSource(FrameRing(), BusConfig("virtual", channel))
    session = WorkshopSession(first, dbs)
    events: list[object] = []
    session.subscribe("recording", events.append)
    session.subscribe("source", events.append)
    session.start()
    try:
        recorder = session.start_recording(tmp_path / "before.csv")
        assert events == [recorder] and isinstance(recorder, Recorder)
        session.capture.ring.push(_frame(0x123, b"\x01\x02", channel, time.time()))
        session.tick()

        other = f"{channel}-b"
        with can.Bus(interface="virtual", channel=other) as peer:
            new = session.switch_source(SourceSpec(interface="virtual", channel=other))
            summary = events[1]
            assert isinstance(summary, RecordingSummary) and summary.frames_written == 1
            assert events[2] is new and session.source is new and first.state.name == "STOPPED"
            assert session.transmit.source is new and session.recorder is None
            assert session.scheduler is session.transmit  # the older name
            assert session.capture.store.total_frames == 0  # the trace starts afresh
            session.scheduler.send_once(Frame(0, 0x7DF, b"\x02\x01\x0c", other))
            got = peer.recv(2.0)
            assert got is not None and got.arbitration_id == 0x7DF
    finally:
        session.close()
    assert (tmp_path / "before.csv").stat().st_size > 0


def test_close_takes_in_what_the_simulator_sent_and_files_the_recording(tmp_path):
    dbs = DatabaseSet()
    dbs.add(dbc_dir() / "demo_vehicle.dbc")
    session = WorkshopSession(CaptureSession(SimulatorSource(FrameRing()), dbs))
    session.start()
    session.start_recording(tmp_path / "sim.asc")
    try:
        wait_until(
            lambda: session.tick() is not None and session.capture.store.total_frames > 50, 20, "frames"
        )
    finally:
        summary = session.close()
    assert summary is not None
    assert summary.frames_written == session.capture.store.total_frames
    assert session.capture.ring.backlog == 0


def test_a_spec_builds_its_own_source_and_the_diagnostics_are_built_once():
    session = WorkshopSession(SourceSpec(sim_time_scale=10.0), None)
    assert isinstance(session.source, SimulatorSource)
    assert session.databases is session.capture.databases
    assert session.diagnostics is session.diagnostics
    session.close()


def test_columns_subscribers_get_the_batch_as_columns_built_only_when_asked(channel):
    session = WorkshopSession(AdapterSource(FrameRing(), BusConfig("virtual", channel)))
    sent = [_frame(0x123, b"\x01\x02", channel, 1.0), _frame(0x1ABCDEF, bytes(12), channel, 1.5)]
    sent[1] = Frame(1.5, 0x1ABCDEF, bytes(range(12)), channel, is_extended=True, is_fd=True)
    session.capture.ring.push_many(sent)
    quiet = session.tick()  # nobody listens: the in-process batch stays Frame objects
    assert quiet.batch.has_frames and quiet.batch._columns is None

    got: list[object] = []
    session.subscribe("columns", got.append)
    session.capture.ring.push_many(sent)
    result = session.tick()
    (cols,) = got
    assert cols is result.columns and cols.to_frames() == sent  # type: ignore[attr-defined]
    assert result.frames == sent and len(result) == 2


def test_a_columnar_ring_is_taken_in_without_frames(channel):
    from workshop_app.core.capture.column_ring import ColumnRing
    from workshop_app.core.capture.columns import FrameColumns

    frames = [_frame(0x100 + i % 3, bytes([i % 256, 7]), channel, 0.01 * i) for i in range(300)]
    session = WorkshopSession(AdapterSource(ColumnRing(), BusConfig("virtual", channel)), max_frames=200)
    session.capture.ring.push_columns(FrameColumns.from_frames(frames))
    first, second = session.tick(), session.tick()
    assert (len(first), len(second)) == (200, 100)
    assert not first.batch.has_frames  # the store and decoder took the columns as they are
    assert first.changed == {(channel, 0x100 + i, False) for i in range(3)}
    stats = session.capture.store.get(channel, 0x101)
    assert stats is not None and stats.count == 100 and stats.last_ts == pytest.approx(0.01 * 298)
    assert first.frames + second.frames == frames
