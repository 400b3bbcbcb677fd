"""One ProcessCaptureSession for every connection the window makes: live sources in a capture
process, a log played here, and back — with the real simulated car and a real log file."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.waiting import wait_until

from workshop_app.core.capture.process import RemoteRecorder
from workshop_app.core.capture.process_session import ProcessCaptureSession, make_capture_session
from workshop_app.core.capture.recorder import Recorder
from workshop_app.core.diag.scan import ScanOptions
from workshop_app.core.errors import SourceError
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.base import SourceState
from workshop_app.core.sources.factory import SourceSpec
from workshop_app.core.workshop import WorkshopSession

LOG = Path(__file__).resolve().parents[1] / "data" / "logs" / "savvycan_tesla_model_s_candump.log"


def _frames_arrive(workshop: WorkshopSession, what: str) -> None:
    start = workshop.capture.store.total_frames
    wait_until(
        lambda: workshop.tick() is not None and workshop.capture.store.total_frames > start + 50, 30, what
    )


def test_a_log_is_played_here_and_the_next_live_source_gets_a_capture_process(tmp_path: Path) -> None:
    capture = make_capture_session(SourceSpec(sim_time_scale=10.0, capture_process=True))
    assert isinstance(capture, ProcessCaptureSession)
    workshop = WorkshopSession(capture)
    workshop.start()
    try:
        _frames_arrive(workshop, "frames from the simulated car in the capture process")
        first = capture.capture_source.pid
        assert capture.in_capture_process and first is not None and capture.source.bus is not None

        workshop.switch_source(SourceSpec(replay=LOG, speed=0.0))
        assert not capture.in_capture_process and capture.capture_source.state is SourceState.STOPPED
        recorder = workshop.start_recording(tmp_path / "from-log.csv")
        assert type(recorder) is Recorder  # recorded here: the log plays in this process
        _frames_arrive(workshop, "frames of the log played here")
        channels = {key[0] for key in capture.store.messages}
        assert channels == {"vcan0"} and capture.store.get("vcan0", 0x21A) is not None  # the log's
        assert capture.drops.receive == capture.drops.link == 0
        summary = workshop.stop_recording()
        assert summary is not None and summary.frames_written > 50
        assert summary.path.read_text().count("\n") > summary.frames_written  # header + rows

        workshop.switch_source(SourceSpec(sim_time_scale=10.0))
        assert capture.in_capture_process and capture.capture_source.pid not in (None, first)
        remote = workshop.start_recording(tmp_path / "from-car.blf")
        assert isinstance(remote, RemoteRecorder)
        _frames_arrive(workshop, "frames from the new capture process")
        assert capture.store.get("can0", 0x0C0) is not None  # ENGINE_DATA of the simulated car
        ended = workshop.stop_recording()
        assert ended is not None and ended.frames_written > 0
    finally:
        workshop.close()
    assert capture.capture_source.state is SourceState.STOPPED


def test_without_the_option_the_session_is_in_process() -> None:
    assert type(make_capture_session(SourceSpec(sim_time_scale=10.0))) is CaptureSession
    # A log file is local whatever the option says: the window drives its playback.
    replay = make_capture_session(SourceSpec(replay=LOG, capture_process=True))
    assert type(replay) is CaptureSession


def test_the_simulated_car_in_a_capture_process_takes_faults_and_parks() -> None:
    capture = make_capture_session(SourceSpec(sim_time_scale=20.0, capture_process=True))
    workshop = WorkshopSession(capture)
    workshop.start()
    try:
        _frames_arrive(workshop, "frames from the simulated car in the capture process")
        vehicle = workshop.source.vehicle  # type: ignore[attr-defined]
        assert vehicle is not None and not vehicle.parked
        vehicle.inject_fault("misfire_cyl2")

        def misfire_reported() -> bool:
            workshop.tick()
            result = workshop.diagnostics.scan_and_store(ScanOptions())
            ecm = next(e for e in result.ecus if e.name == "ECM")
            return any(d.sae == "P0302" for d in ecm.dtcs)

        wait_until(misfire_reported, 60, "the ECM in the capture process to report the injected misfire")
        vehicle.inject_fault("no_such_fault")
        wait_until(lambda: capture.capture_source.vehicle_error is not None, 30, "the refusal to come back")
        assert "no_such_fault" in str(capture.capture_source.vehicle_error)
        vehicle.park(True)
        assert vehicle.parked
    finally:
        workshop.close()
    with pytest.raises(SourceError, match="not running"):
        vehicle.clear_faults()  # the car went with its capture process
