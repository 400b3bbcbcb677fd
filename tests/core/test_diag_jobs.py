"""DiagJobs on the simulated vehicle: scan and store, clear with scans, watch, triggered capture."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import cantools
import pytest
from helpers.waiting import wait_until

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.capture.trigger import SignalTrigger, TriggerCapture
from workshop_app.core.diag.client import DiagError
from workshop_app.core.diag.ecu_spec import demo_vehicle_spec
from workshop_app.core.diag.jobs import DiagJobs
from workshop_app.core.diag.model import ScanLabel
from workshop_app.core.diag.scan import ScanOptions
from workshop_app.core.errors import WorkshopError
from workshop_app.core.history import HistoryStore
from workshop_app.core.jobs import CancelToken, JobCancelled, JobProgress
from workshop_app.core.logs.reader import read_columns
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.replay import ReplaySource
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.core.workshop import WorkshopSession
from workshop_app.paths import demo_dbc_path

SPEC = demo_vehicle_spec()
QUICK = ScanOptions(sweep=False, obd=False)


@pytest.fixture
def sim() -> Iterator[SimulatorSource]:
    src = SimulatorSource(FrameRing(), pace_bitrate=None)
    src.start()
    assert src.ecus is not None
    src.ecus.set_confirm_seconds(0.3)  # confirmed after 0.3 s instead of the car's seconds
    for ecu in src.ecus.ecus.values():
        ecu.memory.retest_seconds = 0.2
    try:
        yield src
    finally:
        src.stop()


@pytest.fixture
def history(tmp_path) -> Iterator[HistoryStore]:
    with HistoryStore(tmp_path / "history.db") as store:
        yield store


def _with_faults(src: SimulatorSource, *names: str) -> None:
    for name in names:
        src.vehicle.inject_fault(name)
    src.ecus.evaluate()
    assert src.ecus.wait_confirmed(list(names), timeout=20), f"{names} never confirmed"


def test_scan_and_store_reports_progress_on_the_diag_thread_and_stores(sim, history):
    _with_faults(sim, "coolant_sensor_open", "wheel_speed_fl_dropout")
    seen: list[tuple[JobProgress, str]] = []
    with DiagJobs(sim, SPEC, history) as jobs:
        result = jobs.scan_and_store(
            QUICK,
            ScanLabel.PRE_REPAIR,
            lambda p: seen.append((p, threading.current_thread().name)),
            CancelToken(),
        )
    assert result.scan_id is not None and jobs.vin == SPEC.vin
    codes = {e.name: [d.sae for d in e.dtcs] for e in result.ecus}
    assert codes == {"ECM": ["P0118"], "TCM": [], "ABS": ["C0035"], "BCM": [], "GW": []}
    stored = history.scans()
    assert [(r.id, r.label, r.dtc_count) for r in stored] == [(result.scan_id, ScanLabel.PRE_REPAIR, 2)]
    assert seen[-1][0] == JobProgress("done", 1000, 1000)
    assert all(thread.startswith("diag") for _, thread in seen)  # UDS calls on the one diag worker


def test_a_cancelled_scan_raises_and_stores_nothing(sim, history):
    cancel = CancelToken()

    def progress(p: JobProgress) -> None:
        if p.phase.startswith("reading"):
            cancel.cancel("stopped by the user")

    with DiagJobs(sim, SPEC, history) as jobs, pytest.raises(JobCancelled, match="stopped by the user"):
        jobs.scan_and_store(QUICK, ScanLabel.NONE, progress, cancel)
    assert history.scans() == []


def test_clear_with_scans_stores_before_clears_and_after(sim, history):
    _with_faults(sim, "coolant_sensor_open", "wheel_speed_fl_dropout")
    asked: list[list[str]] = []

    def before_clear(before, targets: list[str]) -> bool:
        assert before.dtc_count == 2
        asked.append(targets)
        sim.vehicle.clear_faults()  # the repair
        return True

    phases: list[str] = []
    with DiagJobs(sim, SPEC, history) as jobs:
        report = jobs.clear_with_scans(
            None, lambda p: phases.append(p.phase), CancelToken(), options=QUICK, before_clear=before_clear
        )
    assert asked == [["ECM", "TCM", "ABS", "BCM", "GW"]]
    assert report.all_cleared and report.history_problems == []
    assert sorted(d.sae for _, d in report.comparison.gone) == ["C0035", "P0118"]
    assert report.after.dtc_count == 0
    assert [r.label.value for r in history.scans()] == ["post-repair", "pre-repair"]
    kinds = [e.kind for e in history.timeline(report.before.vin)]
    assert kinds == ["scan", *["clear"] * 5, "scan"]
    assert any(p.startswith("before clearing: ") for p in phases)
    assert any(p.startswith("after clearing: ") for p in phases)


def test_clear_refused_before_the_clear_clears_nothing(sim, history):
    _with_faults(sim, "coolant_sensor_open")
    with DiagJobs(sim, SPEC, history) as jobs:
        with pytest.raises(JobCancelled, match="nothing cleared"):
            jobs.clear_with_scans(["ECM"], options=QUICK, before_clear=lambda _b, _t: False)
        with pytest.raises(WorkshopError, match="no ECU 'XYZ'"):
            jobs.clear_with_scans(["XYZ"], options=QUICK)
        assert jobs.scan_and_store(QUICK).dtc_count == 1  # still stored in the ECM
    assert [r.label.value for r in history.scans()] == ["", "pre-repair"]


def test_jobs_on_a_replayed_log_say_why_not(tmp_path):
    log = tmp_path / "x.log"
    log.write_text("(1.0) can0 123#00\n")
    with DiagJobs(ReplaySource(FrameRing(), log), SPEC) as jobs:
        with pytest.raises(DiagError, match="live connection"):
            jobs.scan_and_store(QUICK)
        with pytest.raises(DiagError, match="live connection"):
            jobs.watch(0.1, lambda _e: None, cancel=CancelToken())


def _run_in_thread(fn) -> tuple[threading.Thread, list]:
    out: list = []
    thread = threading.Thread(target=lambda: out.append(fn()), name="test-job")
    thread.start()
    return thread, out


def test_watch_reports_a_fault_as_it_appears_and_stops_on_cancel(sim, history):
    cancel = CancelToken()
    polls = threading.Event()
    appeared: list = []
    with DiagJobs(sim, SPEC, history) as jobs:
        jobs.vin = SPEC.vin
        thread, out = _run_in_thread(
            lambda: jobs.watch(0.1, appeared.append, lambda p: p.done >= 1 and polls.set(), cancel)
        )
        try:
            assert polls.wait(30), "the first poll never ended"
            sim.vehicle.inject_fault("misfire_cyl2")
            sim.ecus.evaluate()
            wait_until(lambda: appeared, 30, "the misfire code to appear")
        finally:
            cancel.cancel()
            thread.join(30)
    assert not thread.is_alive()
    assert [(e.ecu, e.dtc.sae, e.kind) for e in appeared] == [("ECM", "P0302", "appeared")]
    assert [(e.ecu, e.kind) for e in out[0]] == [("ECM", "appeared")]  # what the watch returns
    timeline = history.timeline(SPEC.vin)
    assert [e.kind for e in timeline] == ["dtc"] and "P0302" in timeline[0].text


class _Ticker:
    """Ticks a capture session like the CLI's loop does, feeding the jobs every batch."""

    def __init__(self, capture: CaptureSession, jobs: DiagJobs) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(capture, jobs), name="test-tick")
        self._thread.start()

    def _run(self, capture: CaptureSession, jobs: DiagJobs) -> None:
        while not self._stop.wait(0.02):
            jobs.feed(capture.tick())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def test_a_new_fault_fires_the_triggered_capture_and_the_recording_is_indexed(sim, history, tmp_path):
    capture = CaptureSession(sim)
    cancel = CancelToken()
    watching = threading.Event()
    target = tmp_path / "caught.blf"
    trigger = TriggerCapture(tmp_path, pre_seconds=1.0, post_seconds=0.5, path=target)
    with DiagJobs(capture, SPEC, history) as jobs:
        jobs.vin = SPEC.vin
        ticker = _Ticker(capture, jobs)
        try:
            thread, out = _run_in_thread(
                lambda: jobs.triggered_capture(
                    trigger,
                    lambda p: p.phase.startswith("watching") and watching.set(),
                    cancel,
                    watch_interval=0.1,
                )
            )
            try:
                assert watching.wait(30), "the watch never started"
                sim.vehicle.inject_fault("misfire_cyl2")
                sim.ecus.evaluate()
                thread.join(60)
            finally:
                cancel.cancel()
                thread.join(30)
        finally:
            ticker.stop()
        assert jobs.armed is None
    event = out[0]
    assert event is not None and event.path == target and "P0302 appeared on ECM" in event.reason
    cols = read_columns(target)
    assert len(cols) == event.summary.frames_written > 100  # the car's traffic around the fault
    rows = history.recordings()
    assert len(rows) == 1 and "trigger: fault code P0302" in (rows[0].notes or "")


def test_a_signal_trigger_cancelled_before_it_fires_saves_nothing(sim, tmp_path):
    capture = CaptureSession(sim)
    temps = cantools.database.load_file(str(demo_dbc_path())).get_message_by_name("ENGINE_TEMPS")
    trigger = TriggerCapture(tmp_path, pre_seconds=1.0, post_seconds=0.5)
    trigger.add_signal_trigger(SignalTrigger(temps, "CoolantTemp", ">", 500.0))  # never that hot
    cancel = CancelToken()
    armed = threading.Event()
    with DiagJobs(capture, SPEC) as jobs:
        ticker = _Ticker(capture, jobs)
        try:
            thread, out = _run_in_thread(
                lambda: jobs.triggered_capture(trigger, lambda p: armed.set(), cancel)
            )
            assert armed.wait(10)
            assert jobs.armed is trigger
            with pytest.raises(WorkshopError, match="already armed"):
                jobs.arm(TriggerCapture(tmp_path))
            wait_until(lambda: trigger._buffer, 10, "frames to reach the trigger's buffer")
            cancel.cancel()
            thread.join(30)
        finally:
            ticker.stop()
    assert out == [None] and jobs.armed is None
    assert list(tmp_path.glob("trigger-*")) == []


def test_the_workshop_session_feeds_the_trigger_itself(sim, tmp_path):
    session = WorkshopSession(CaptureSession(sim), vehicle_spec=SPEC)
    jobs = session.diagnostics
    temps = cantools.database.load_file(str(demo_dbc_path())).get_message_by_name("ENGINE_TEMPS")
    trigger = TriggerCapture(tmp_path, pre_seconds=0.5, post_seconds=0.5, path=tmp_path / "t.blf")
    trigger.add_signal_trigger(SignalTrigger(temps, "CoolantTemp", ">", -100.0))  # true at once
    stop = threading.Event()

    def ticking() -> None:  # as the window's timer does: only tick, never feed
        while not stop.wait(0.02):
            session.tick()

    ticker = threading.Thread(target=ticking, name="test-tick")
    ticker.start()
    try:
        event = jobs.triggered_capture(trigger, cancel=CancelToken())
    finally:
        stop.set()
        ticker.join(10)
        session.close()
    assert event is not None and "CoolantTemp > -100" in event.reason
    assert read_columns(event.path).timestamp.size == event.summary.frames_written > 0
    assert jobs.armed is None
