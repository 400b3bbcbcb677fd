"""run_job: a core-shaped job on a worker thread, reported as Qt signals on the GUI thread."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtWidgets import QWidget

from workshop_app.core.errors import WorkshopError
from workshop_app.core.jobs import CancelToken, JobProgress, ProgressFn, phase_done_total
from workshop_app.gui.workers import JobHandle, run_job


@pytest.fixture
def parent(qtbot) -> QWidget:
    widget = QWidget()
    qtbot.addWidget(widget)
    return widget


def count_to(n: int, *, step: int = 1, progress: ProgressFn, cancel: CancelToken) -> dict[str, object]:
    seen = []
    for i in range(0, n, step):
        cancel.check()
        progress(JobProgress("counting", i + step, n))
        seen.append(threading.current_thread().name)
    return {"sum": sum(range(0, n, step)), "threads": set(seen)}


def test_result_progress_and_arguments_arrive_on_the_gui_thread(qtbot, parent):
    gui_thread = threading.current_thread()
    progress: list[JobProgress] = []
    where: list[threading.Thread] = []

    def on_progress(p: JobProgress) -> None:
        progress.append(p)
        where.append(threading.current_thread())

    handle = run_job(parent, count_to, 10, step=2)
    handle.progressed.connect(on_progress)
    with qtbot.waitSignal(handle.finished, timeout=10_000) as blocker:
        pass
    result = blocker.args[0]
    assert result["sum"] == 0 + 2 + 4 + 6 + 8
    assert result["threads"] == {"workshop-count-to"}  # ran on its own thread, named after the job
    assert not handle.running and handle.wait(0)  # joined before finished was emitted
    assert progress and progress[-1] == JobProgress("counting", 10, 10)  # the last step is never dropped
    assert set(where) == {gui_thread}


def test_cancel_stops_the_job_at_its_safe_point(qtbot, parent):
    started = threading.Event()

    def wait_for_cancel(*, progress: ProgressFn, cancel: CancelToken) -> None:
        progress(JobProgress("waiting"))
        started.set()
        cancel.wait(30)
        cancel.check()
        raise AssertionError("not reached")

    handle = run_job(parent, wait_for_cancel)
    assert started.wait(10)
    assert handle.running
    with qtbot.waitSignal(handle.failed, timeout=10_000) as blocker:
        handle.cancel("stopped by the user")
    assert blocker.args == ["stopped by the user"]
    assert handle.cancelled and not handle.running


class PartialError(WorkshopError):
    def __init__(self, message: str, partial: object) -> None:
        super().__init__(message)
        self.partial = partial


def test_failures_are_one_plain_line(qtbot, parent):
    def ours(*, progress: ProgressFn, cancel: CancelToken) -> None:
        raise PartialError("ECM did not answer", partial=[1, 2])

    def theirs(*, progress: ProgressFn, cancel: CancelToken) -> None:
        raise ValueError("boom")

    handle = run_job(parent, ours)
    with qtbot.waitSignal(handle.failed, timeout=10_000) as blocker:
        pass
    assert blocker.args == ["ECM did not answer"] and handle.partial == [1, 2]
    assert isinstance(handle.error, PartialError)

    handle = run_job(parent, theirs)
    with qtbot.waitSignal(handle.failed, timeout=10_000) as blocker:
        pass
    assert blocker.args == ["unexpected error: ValueError: boom"]


def test_the_handle_belongs_to_its_parent(qtbot, parent):
    handle = run_job(parent, count_to, 3)
    assert isinstance(handle, JobHandle) and handle.parent() is parent
    assert handle.wait(10)
    qtbot.waitUntil(lambda: not handle.running, timeout=10_000)


def test_a_core_call_of_the_older_shape_runs_wrapped_in_a_job(qtbot, parent):
    # The update campaign and the log loader still take progress(phase, done, total) and a
    # threading.Event: the GUI wraps them in a job function rather than in a second worker.
    def older(progress, cancel: threading.Event) -> None:
        progress("work", 1, 2)
        cancel.wait(30)
        raise WorkshopError("stopped")

    def _older_call(*, progress: ProgressFn, cancel: CancelToken) -> None:
        older(phase_done_total(progress), cancel.event)

    handle = run_job(parent, _older_call)
    phases: list[JobProgress] = []
    handle.progressed.connect(phases.append)
    qtbot.waitUntil(lambda: phases == [JobProgress("work", 1, 2)], timeout=10_000)
    assert handle.running
    assert any(t.name == "workshop-older-call" for t in threading.enumerate())
    with qtbot.waitSignal(handle.failed, timeout=10_000) as blocker:
        handle.cancel()
    assert blocker.args == ["stopped"] and handle.cancelled and not handle.running
    assert handle.partial is None
