"""Capture in its own process: columns on the wire, the session interface, and crash safety."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import can
import pytest
from helpers.processes import ENV
from helpers.waiting import wait_for

from workshop_app.core.capture.columns import FrameColumns
from workshop_app.core.capture.link_bus import LinkBus
from workshop_app.core.capture.process_session import ProcessCaptureSession
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.errors import LogFileError, SourceError, WorkshopError
from workshop_app.core.sim.socketcand_server import SocketcandServer
from workshop_app.core.sources.base import SourceState
from workshop_app.core.sources.factory import SourceSpec
from workshop_app.core.sources.reconnect import NO_RECONNECT
from workshop_app.core.types import Frame
from workshop_app.paths import demo_dbc_path

HELPER = Path(__file__).resolve().parents[1] / "helpers" / "capture_window.py"

MIXED = [
    Frame(1.5, 0x123, b"\x01\x02\x03", "can0"),
    Frame(1.6, 0x1ABCDEF0, bytes(range(8)), "can1", is_extended=True),
    Frame(1.7, 0x7FF, bytes(range(64)), "can1", is_fd=True, bitrate_switch=True, error_state_indicator=True),
    Frame(1.8, 0x55, b"", "can0", is_remote=True),
    Frame(1.9, 0, b"", "can2", is_error=True),
    Frame(2.0, 0x200, b"\xff" * 12, "can0", is_fd=True, is_rx=False),
]


def test_columns_round_trip_every_kind_of_frame() -> None:
    packed = FrameColumns.from_frames(MIXED).pack()
    columns = FrameColumns.unpack(packed)
    assert columns.channels == ("can0", "can1", "can2")
    assert columns.data.shape == (6, 64)
    assert columns.to_frames() == MIXED


def test_columns_of_an_empty_batch_and_of_classic_frames_only() -> None:
    assert FrameColumns.unpack(FrameColumns.from_frames([]).pack()).to_frames() == []
    classic = [f for f in MIXED if len(f.data) <= 8]
    columns = FrameColumns.unpack(FrameColumns.from_frames(classic).pack())
    assert columns.data.shape[1] == 8  # rows as wide as the longest payload, not 64
    assert columns.to_frames() == classic


def test_malformed_batches_are_refused() -> None:
    packed = FrameColumns.from_frames(MIXED).pack()
    with pytest.raises(ValueError, match="expected"):
        FrameColumns.unpack(packed[:-1])
    with pytest.raises(ValueError, match="not a frame batch"):
        FrameColumns.unpack(b"XXXX" + packed[4:])
    with pytest.raises(ValueError, match="shorter"):
        FrameColumns.unpack(b"WS")


@pytest.fixture
def session() -> Iterator[ProcessCaptureSession]:
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    s = ProcessCaptureSession(SourceSpec(sim_bitrate=500_000), dbs)
    yield s
    s.stop()


def test_frames_arrive_decoded_and_recorded(session: ProcessCaptureSession, tmp_path: Path) -> None:
    session.start()
    assert session.source.state is SourceState.RUNNING
    assert "simulated vehicle" in session.source.describe()
    # The bus lives in the capture process; diagnostics get a LinkBus that goes through it.
    assert isinstance(session.source.bus, LinkBus)
    blf = tmp_path / "drive.blf"
    session.start_recording(blf)
    series = session.decoder.subscribe("ENGINE_DATA", "EngineSpeed")
    wait_for(lambda: session.tick() is not None and session.store.total_frames > 1500, 30, "frames")
    wait_for(lambda: session.tick() is not None and session.stats.recorded > 500, 30, "recorded frames")
    summary = session.stop()
    assert session.source.bus is None  # stopped: its LinkBus is shut down
    assert summary is not None and summary.error is None
    assert summary.frames_written > 500
    assert sum(1 for _ in can.BLFReader(blf)) == summary.frames_written
    # Nothing lost on any hop: every frame the capture process took arrived here.
    assert session.drops.receive == session.drops.link == session.drops.window == 0
    assert session.store.total_frames == session.capture_source.received
    assert len(session.store.messages) > 5
    assert len(series) > 0


def test_a_recording_asked_for_before_start_holds_every_frame(
    session: ProcessCaptureSession, tmp_path: Path
) -> None:
    with pytest.raises(LogFileError, match="unknown log format"):
        session.start_recording(tmp_path / "drive.xyz")
    blf = tmp_path / "whole.blf"
    session.start_recording(blf)
    session.start()
    wait_for(lambda: session.tick() is not None and session.store.total_frames > 1000, 30, "frames")
    summary = session.stop()
    assert summary is not None and summary.error is None
    assert summary.frames_written == session.store.total_frames == session.capture_source.received
    assert sum(1 for _ in can.BLFReader(blf)) == summary.frames_written


def test_the_pipe_is_read_without_ticks_and_a_full_window_ring_counts_its_drops() -> None:
    session = ProcessCaptureSession(SourceSpec(sim_time_scale=10.0), ring_capacity=200)
    session.start()
    try:
        # Nobody ticks: the reader thread fills the window's ring by itself, then counts.
        wait_for(lambda: session.drops.window > 0, 30, "frames dropped at the full window ring")
        assert len(session.link_ring) == 200
    finally:
        session.stop()
    drops = session.drops
    assert session.store.total_frames == 200
    assert (
        session.store.total_frames + drops.window + drops.link + drops.receive
        == session.capture_source.received
    )


def test_a_sent_frame_goes_out_and_its_echo_comes_back(session: ProcessCaptureSession) -> None:
    session.start()
    channel = session.store.sorted_messages()[0].channel if session.store.messages else "can0"
    session.source.send(Frame(0.0, 0x6F1, b"\xde\xad", channel))

    def echoed() -> bool:
        session.tick()
        stats = session.store.get(channel, 0x6F1)
        return stats is not None and not stats.is_rx and stats.data == b"\xde\xad"

    wait_for(echoed, 30, "the sent frame's echo")
    assert session.source.frames_sent == 1


def test_a_source_that_cannot_open_is_one_plain_error() -> None:
    spec = SourceSpec(interface="socketcand", host="127.0.0.1", port=_closed_port(), reconnect=NO_RECONNECT)
    session = ProcessCaptureSession(spec)
    with pytest.raises(SourceError) as err:
        session.start()
    assert "\n" not in str(err.value) and str(err.value)
    assert session.capture_source.pid is None  # the capture process has ended


def test_a_killed_capture_process_is_a_lost_link_and_comes_back(
    session: ProcessCaptureSession, tmp_path: Path
) -> None:
    session.start()
    recorder = session.start_recording(tmp_path / "cut.blf")
    cut = tmp_path / "cut.blf"
    # Frames on disk: the recorder has flushed at least once (a BLF container is written).
    wait_for(lambda: session.tick() is not None and cut.stat().st_size > 4096, 30, "a flushed recording")
    first = session.capture_source.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: session.tick() is not None and session.source.gaps, 30, "the lost link")
    assert "capture process ended" in session.source.gaps[0].reason
    assert recorder.error is not None and "capture process ended" in recorder.error
    wait_for(
        lambda: (
            session.tick() is not None
            and session.source.state is SourceState.RUNNING
            and session.source.reconnects
        ),
        30,
        "the restarted capture process",
    )
    assert session.capture_source.pid not in (None, first)
    assert not session.source.gaps[0].open
    before = session.store.total_frames
    wait_for(
        lambda: session.tick() is not None and session.store.total_frames > before + 100, 30, "frames again"
    )
    summary = session.stop_recording()
    assert summary is not None and summary.error is not None
    # What the dead process flushed is a readable file.
    assert sum(1 for _ in can.BLFReader(cut)) > 0


def test_a_killed_window_process_leaves_a_finished_recording(tmp_path: Path) -> None:
    blf = tmp_path / "kept.blf"
    proc = subprocess.run(
        [sys.executable, str(HELPER), str(blf)], capture_output=True, text=True, env=ENV, timeout=120
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    pid, seen = (int(x) for x in proc.stdout.split())
    assert seen >= 2000
    # The capture process sees the pipe end, stops its source, closes the file and exits.
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), 30, "the capture process to exit")
    recorded = sum(1 for _ in can.BLFReader(blf))
    assert recorded >= seen  # every frame the window saw was recorded before it was sent


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_switching_to_another_spec_starts_a_new_capture_process(session: ProcessCaptureSession) -> None:
    session.start()
    wait_for(lambda: session.tick() is not None and session.store.total_frames > 200, 30, "frames")
    first = session.capture_source.pid
    with pytest.raises(WorkshopError, match="set_source_spec"):
        session.set_source(session.source)
    session.set_source_spec(SourceSpec(sim_bitrate=250_000))
    assert session.capture_source.pid not in (None, first)
    assert "250 kbit/s" in session.source.describe()
    assert session.store.total_frames == 0  # the store starts afresh
    wait_for(lambda: session.tick() is not None and session.store.total_frames > 200, 30, "frames again")


def test_a_restart_that_cannot_reopen_the_bus_fails_once(tmp_path: Path) -> None:
    bus = can.Bus(interface="virtual", channel=f"cp-{os.getpid()}-{tmp_path.name}")
    server = SocketcandServer(bus, host="127.0.0.1", port=0, channel="can0")
    server.start()
    spec = SourceSpec(interface="socketcand", port=server.address[1], reconnect=NO_RECONNECT)
    session = ProcessCaptureSession(spec)
    try:
        session.start()
        server.stop()
        pid = session.capture_source.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_for(
            lambda: (
                session.tick() is not None
                and session.capture_source.restarts == 1
                and session.capture_source.pid is None
                # the pipe reader thread sets the state just after it lets the process go
                and session.source.state is not SourceState.RECONNECTING
            ),
            30,
            "the restarted capture process to give up",
        )
        assert session.source.state is SourceState.FAILED
        assert session.source.error and "\n" not in session.source.error
    finally:
        session.stop()
        server.stop()
        bus.shutdown()
