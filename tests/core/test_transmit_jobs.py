"""TransmitJobs as the CLI and the window use them: counted and cancelled periodic runs with
JobProgress, one-shot sends of DBC values, candump-style frame text, and the simulated car
acting on what was sent."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import can
import pytest
from helpers.waiting import wait_for

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.decode.live import decode_payload
from workshop_app.core.errors import WorkshopError
from workshop_app.core.jobs import CancelToken, JobProgress
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.adapter import AdapterSource
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.core.transmit_encode import parse_frame_text, parse_signal_values
from workshop_app.core.transmit_jobs import JobStatus, TransmitJob, TransmitJobs
from workshop_app.core.types import BusConfig, Frame
from workshop_app.paths import demo_dbc_path


@pytest.fixture
def databases() -> DatabaseSet:
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    return dbs


@pytest.fixture
def channel() -> str:
    return f"txjobs-{uuid.uuid4().hex}"


@pytest.fixture
def source(channel: str) -> Iterator[AdapterSource]:
    src = AdapterSource(FrameRing(), BusConfig("virtual", channel, fd=True))
    src.start()
    yield src
    src.stop()


@pytest.fixture
def car(channel: str) -> Iterator[can.BusABC]:
    bus = can.Bus(interface="virtual", channel=channel)
    yield bus
    bus.shutdown()


@pytest.fixture
def jobs(source: AdapterSource, databases: DatabaseSet) -> Iterator[TransmitJobs]:
    tx = TransmitJobs(source, databases)
    yield tx
    tx.close()


def _drain(bus: can.BusABC, arbitration_id: int) -> list[can.Message]:
    """Every frame of ``arbitration_id`` already queued on ``bus`` (virtual buses queue at once)."""
    got = []
    while (msg := bus.recv(0)) is not None:
        if msg.arbitration_id == arbitration_id:
            got.append(msg)
    return got


def test_counted_run_sends_exactly_n_frames_and_reports_progress(jobs, car):
    seen: list[JobProgress] = []
    ended = jobs.run_periodic(
        TransmitJob(frame=Frame(0, 0x321, b"\x01\x02"), period=0.002, limit=25), progress=seen.append
    )
    assert ended.status is JobStatus.FINISHED and ended.count == 25
    assert len(_drain(car, 0x321)) == 25
    assert seen[-1] == JobProgress("sending 0x321", 25, 25)
    assert all(p.total == 25 for p in seen)
    assert [p.done for p in seen] == sorted(p.done for p in seen)
    assert jobs.job(ended.job_id).status is JobStatus.FINISHED  # the job stays listed


def test_cancel_stops_an_open_run_between_two_frames(jobs, car):
    cancel = CancelToken()
    out: list[TransmitJob] = []
    runner = threading.Thread(
        target=lambda: out.append(
            jobs.run_periodic(
                TransmitJob(message="BODY_COMMAND", values={"LockRequest": "Lock"}, period=0.005),
                cancel=cancel,
            )
        )
    )
    runner.start()
    try:
        wait_for(lambda: jobs.jobs() and jobs.jobs()[0].count >= 5, what="five frames sent")
    finally:
        cancel.cancel()
        runner.join(10)
    assert not runner.is_alive()
    ended = out[0]
    assert ended.status is JobStatus.STOPPED and ended.count >= 5
    frames = _drain(car, 0x2B0)
    assert len(frames) == ended.count  # nothing left after the run returned
    assert car.recv(0.05) is None


def test_run_ends_after_its_duration(jobs, car):
    ended = jobs.run_periodic(TransmitJob(frame=Frame(0, 0x10, b""), period=0.01), duration=0.1)
    assert ended.status is JobStatus.STOPPED and ended.count >= 1
    assert len(_drain(car, 0x10)) == ended.count


def test_a_disconnect_ends_a_run_with_the_reason(jobs, source):
    cancel = CancelToken()
    stopper = threading.Thread(
        target=lambda: (
            wait_for(lambda: jobs.jobs() and jobs.jobs()[0].count > 0, what="first frame"),
            source.stop(),
        )
    )
    stopper.start()
    ended = jobs.run_periodic(TransmitJob(frame=Frame(0, 0x10, b"\x00"), period=0.005), cancel=cancel)
    stopper.join(10)
    assert ended.status is JobStatus.DISCONNECTED and "stopped" in (ended.last_error or "")


def test_one_shot_of_dbc_values_and_a_bad_count(jobs, car):
    job_id = jobs.send_once(message="BODY_COMMAND", values={"LockRequest": "Unlock"})
    assert jobs.job(job_id).status is JobStatus.SENT
    got = car.recv(1.0)
    assert got is not None and got.arbitration_id == 0x2B0
    message = jobs.find_message("BODY_COMMAND")
    assert str(message.decode(got.data)["LockRequest"]) == "Unlock"
    with pytest.raises(WorkshopError, match="at least 1, not 0"):
        jobs.start_periodic(TransmitJob(frame=Frame(0, 0x10, b""), period=0.1, limit=0))
    with pytest.raises(WorkshopError, match="either a frame or a message"):
        jobs.send_once()


def test_frame_text_as_cansend_writes_it():
    frame = parse_frame_text("2B0#0100", "can1")
    assert (frame.arbitration_id, frame.data, frame.channel, frame.is_extended) == (
        0x2B0,
        b"\x01\x00",
        "can1",
        False,
    )
    frame = parse_frame_text("18DAF110#02.10.03")
    assert frame.is_extended and frame.arbitration_id == 0x18DAF110 and frame.data == b"\x02\x10\x03"
    frame = parse_frame_text("123##1" + "AA" * 12)
    assert frame.is_fd and frame.bitrate_switch and not frame.error_state_indicator and len(frame.data) == 12
    frame = parse_frame_text("123##3")
    assert frame.is_fd and frame.bitrate_switch and frame.error_state_indicator and frame.data == b""
    assert parse_frame_text("7DF#").data == b""
    for bad, words in (
        ("2B0", "ID#DATA"),
        ("12345#00", "3 hex digits"),
        ("XYZ#00", "3 hex digits"),
        ("800#00", "11-bit"),
        ("123#0", "two hex digits"),
        ("123#R", "remote"),
        ("123##", "flags"),
        ("123#" + "00" * 9, "at most 8 bytes"),
        ("123##0" + "00" * 9, "not 9"),
    ):
        with pytest.raises(WorkshopError, match=words):
            parse_frame_text(bad)


def test_signal_values_from_the_command_line():
    assert parse_signal_values(["LockRequest=Lock", "Speed=12.5", "Raw=0x10", " A = 3 "]) == {
        "LockRequest": "Lock",
        "Speed": 12.5,
        "Raw": 16,
        "A": 3,
    }
    for bad in ("LockRequest", "=1", "A="):
        with pytest.raises(WorkshopError, match="NAME=VALUE"):
            parse_signal_values([bad])


class _BodyStatus:
    """BODY_STATUS frames as the capture takes them in."""

    def __init__(self, session: CaptureSession) -> None:
        self.session = session
        self.message = session.databases.databases[0].db.get_message_by_name("BODY_STATUS")
        self.frames: list[Frame] = []

    def lock_state_after(self, mark: int) -> str | None:
        """LockState of the second frame after frame number ``mark`` (the first may have been
        built before the car acted on the command)."""
        self.frames += [
            f for f in self.session.tick() if f.is_rx and f.arbitration_id == self.message.frame_id
        ]
        later = self.frames[mark:]
        if len(later) < 2:
            return None
        return {v.name: v.text() for v in decode_payload(self.message, later[1].data)}["LockState"]


def test_the_simulated_body_ecu_obeys_body_command(databases):
    source = SimulatorSource(FrameRing(), pace_bitrate=None)
    session = CaptureSession(source, databases)
    session.start()
    jobs = TransmitJobs(source, databases)
    try:
        assert source.vehicle is not None
        source.vehicle.park()  # no drive script: only our commands move the locks
        status = _BodyStatus(session)
        for request, expected in (
            ("Unlock", "Unlocked (0)"),
            ("Lock", "Locked (1)"),
            ("Unlock", "Unlocked (0)"),
        ):
            jobs.send_once(message="BODY_COMMAND", values={"LockRequest": request})
            status.lock_state_after(0)  # take in what came before the frame left
            mark = len(status.frames)
            state = wait_for(lambda mark=mark: status.lock_state_after(mark), what="two BODY_STATUS frames")
            assert state == expected, request
    finally:
        jobs.close()
        session.stop()
