"""The one way GUI code moves work off the GUI thread: :func:`run_job`.

Core jobs stay Qt-free: they take ``progress: ProgressFn`` and ``cancel: CancelToken``
(``core/jobs.py``). ``run_job`` calls such a job on a worker thread and turns what it reports
into Qt signals on a :class:`JobHandle`::

    handle = run_job(self, scan_and_store, options, label)
    handle.progressed.connect(self._on_progress)   # JobProgress
    handle.finished.connect(self._on_scanned)      # the job's return value
    handle.failed.connect(self._on_failed)         # one plain line
    ...
    handle.cancel()                                # the job stops at its next safe point

Threads: the job runs on its own Python thread and never touches widgets. Its signals reach
receivers on the GUI thread through queued connections. The handle joins the thread before
it emits ``finished`` or ``failed``, so a receiver never sees a result while the thread lives.
The thread is named after the job function (``_log_load`` runs on ``workshop-log-load``).

This is the only GUI module that may start threads (``tests/test_layering.py`` checks it): a
core call in the older ``(phase, done, total)`` / ``threading.Event`` shape is wrapped in a job
function with ``core.jobs.phase_done_total`` and ``CancelToken.event``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal

from workshop_app.core.errors import WorkshopError
from workshop_app.core.jobs import CancelToken, JobCancelled, JobProgress

_PROGRESS_INTERVAL = 0.05  # seconds: ~20 progress updates a second keep a bar smooth, not busy


def failure_text(error: BaseException) -> str:
    """One line for the user: our errors as they are, anything else with its type."""
    if isinstance(error, WorkshopError):
        return str(error)
    return f"unexpected error: {type(error).__name__}: {error}"


class JobHandle(QObject):
    """One job on one worker thread; made by :func:`run_job`."""

    progressed = Signal(object)  # JobProgress
    finished = Signal(object)  # the job's result
    failed = Signal(str)  # plain words; JobCancelled gives its reason
    # From the job thread, queued to the GUI thread: connected before the thread starts, so
    # nothing is lost while the caller connects to the public signals after run_job returns.
    _progress_sent = Signal(object)
    _ended = Signal(object, object)  # (result, exception)

    def __init__(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], parent: QObject | None
    ) -> None:
        super().__init__(parent)
        self.token = CancelToken()
        self.error: BaseException | None = None  # what ended the job, once failed
        self.partial: object = None  # a failed job's partial result (``error.partial``), if any
        self._fn, self._args, self._kwargs = fn, args, kwargs
        self._last_progress = 0.0
        self._last_phase = ""
        name = getattr(fn, "__name__", "job").replace("<lambda>", "job").replace("_", "-").strip("-")
        self._thread: threading.Thread | None = threading.Thread(
            target=self._run, name=f"workshop-{name}", daemon=True
        )
        # Queued explicitly: the slot must run on the GUI thread, where it joins the job thread.
        self._ended.connect(self._on_ended, Qt.ConnectionType.QueuedConnection)
        self._progress_sent.connect(self.progressed.emit, Qt.ConnectionType.QueuedConnection)

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def cancelled(self) -> bool:
        return self.token.cancelled

    def cancel(self, reason: str = "cancelled") -> None:
        """Ask the job to stop at its next safe point; ``failed`` follows."""
        self.token.cancel(reason)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job thread has ended (closing a window, tests); True if it has."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _progress(self, progress: JobProgress) -> None:
        # Job thread. Throttled; phase changes and the last step always get through.
        now = time.monotonic()
        last = progress.total > 0 and progress.done >= progress.total
        if progress.phase == self._last_phase and not last and now - self._last_progress < _PROGRESS_INTERVAL:
            return
        self._last_phase = progress.phase
        self._last_progress = now
        with contextlib.suppress(RuntimeError):  # the handle went with its window
            self._progress_sent.emit(progress)

    def _run(self) -> None:
        # Job thread: everything leaves through signals.
        try:
            result: object = self._fn(*self._args, progress=self._progress, cancel=self.token, **self._kwargs)
            error: BaseException | None = None
        except BaseException as exc:  # every failure must reach the GUI
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the handle was deleted with its window: nobody listens
            self._ended.emit(result, error)

    def _on_ended(self, result: object, error: BaseException | None) -> None:
        if self._thread is not None:
            self._thread.join()  # it emitted _ended as its last act: this returns at once
            self._thread = None
        if error is None:
            self.finished.emit(result)
            return
        self.error = error
        self.partial = getattr(error, "partial", None)
        if isinstance(error, JobCancelled):
            self.failed.emit(str(error) or "cancelled")
        else:
            self.failed.emit(failure_text(error))


def run_job(parent: QObject | None, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> JobHandle:
    """Start ``fn(*args, progress=..., cancel=..., **kwargs)`` on a worker thread.

    ``parent`` keeps the handle alive (the widget that shows the job); connect to the handle's
    signals right after this returns — nothing is emitted before the event loop runs again.
    """
    handle = JobHandle(fn, args, kwargs, parent)
    assert handle._thread is not None
    handle._thread.start()
    return handle
