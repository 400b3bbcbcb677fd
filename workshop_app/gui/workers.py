"""Run a core job off the GUI thread and report it as Qt signals.

Core jobs stay Qt-free: they take a plain ``progress(phase, done, total)`` callable and a
``threading.Event`` to cancel. ``JobWorker`` is the only place where those become signals.

Threads: the job runs on its own Python thread. Signals emitted there reach receivers in the
GUI thread through queued connections (Qt picks them because the emitting thread differs).
The worker joins its thread before it emits ``finished`` or ``failed``, so a receiver never
sees a result while the thread still exists.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, Signal

from workshop_app.core.errors import WorkshopError

# job(progress, cancel) -> result; progress(phase, done, total).
Job = Callable[[Callable[[str, int, int], None], threading.Event], object]

_PROGRESS_INTERVAL = 0.05  # seconds: ~20 progress updates a second keep a bar smooth, not busy


class JobWorker(QObject):
    """Runs one job once; create a new worker per job."""

    progressed = Signal(str, int, int)  # phase, done, total
    finished = Signal(object)  # the job's result
    failed = Signal(str, object)  # message fit for a user, partial result (or None)
    _ended = Signal(object, object)  # (result, exception) from the job thread: internal

    def __init__(self, job: Job, name: str = "job", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._job = job
        self._name = name
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_progress = 0.0
        self._last_phase = ""
        # Queued explicitly: the slot must run in the GUI thread, where it can join the job thread.
        self._ended.connect(self._on_ended, Qt.ConnectionType.QueuedConnection)

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("job already started")
        self._thread = threading.Thread(target=self._run, name=f"workshop-{self._name}", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        """Ask the job to stop; ``failed`` follows with what it had done."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job thread has ended (closing a window); True if it has."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _progress(self, phase: str, done: int, total: int) -> None:
        # Job thread. Throttled, but phase changes and the last step always get through.
        now = time.monotonic()
        if phase == self._last_phase and done < total and now - self._last_progress < _PROGRESS_INTERVAL:
            return
        self._last_phase = phase
        self._last_progress = now
        with contextlib.suppress(RuntimeError):
            self.progressed.emit(phase, int(done), int(total))

    def _run(self) -> None:
        # Job thread: never touches widgets; everything leaves through signals.
        try:
            result: object = self._job(self._progress, self._cancel)
            error: BaseException | None = None
        except BaseException as exc:  # every failure must reach the GUI
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the worker was deleted with its window: nobody listens
            self._ended.emit(result, error)

    def _on_ended(self, result: object, error: BaseException | None) -> None:
        if self._thread is not None:
            self._thread.join()  # it emitted _ended as its last act: this returns at once
            self._thread = None
        if error is None:
            self.finished.emit(result)
        elif isinstance(error, WorkshopError):
            self.failed.emit(str(error), getattr(error, "partial", None))
        else:
            self.failed.emit(
                f"unexpected error: {type(error).__name__}: {error}", getattr(error, "partial", None)
            )
