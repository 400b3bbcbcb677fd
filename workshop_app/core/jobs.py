"""One shape of progress and one cancel token for every long job of the core.

Scans, clears, fault watches, triggered captures, transmit schedules, log loading and
flashing all report ``JobProgress`` to a ``ProgressFn`` and stop at their next safe point
once their ``CancelToken`` is cancelled. The CLI prints the progress; the window turns it
into Qt signals in one place (``gui/workers.py``). Older call shapes are adapted here while
the modules that use them move over.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from workshop_app.core.errors import WorkshopError


@dataclass(frozen=True, slots=True)
class JobProgress:
    """Where a job is: ``phase`` in plain words, ``done`` of ``total`` units (0 = unknown)."""

    phase: str
    done: int = 0
    total: int = 0

    @property
    def fraction(self) -> float | None:
        return min(1.0, self.done / self.total) if self.total > 0 else None

    def text(self) -> str:
        fraction = self.fraction
        return self.phase if fraction is None else f"{self.phase} {fraction:6.1%}"


ProgressFn = Callable[[JobProgress], None]


def no_progress(_progress: JobProgress) -> None:
    """For callers that do not watch."""


class JobCancelled(WorkshopError):
    """A job stopped at a safe point because its token was cancelled."""


class CancelToken:
    """Set once by whoever wants the job to stop; the job checks it at its safe points."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "cancelled") -> None:
        self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Sleep up to ``timeout`` seconds, waking at once on cancel; True if cancelled."""
        return self._event.wait(timeout)

    def check(self) -> None:
        """Raise JobCancelled at a safe point once cancelled."""
        if self._event.is_set():
            raise JobCancelled(self.reason or "cancelled")

    @property
    def event(self) -> threading.Event:
        """The underlying event, for APIs that take a ``threading.Event``."""
        return self._event


# -- adapters for the shapes still in use ---------------------------------------------------------


def phase_done_total(fn: ProgressFn) -> Callable[[str, int, int], None]:
    """For callbacks called as ``(phase, done, total)`` (flash and update jobs)."""
    return lambda phase, done, total: fn(JobProgress(phase, done, total))


def phase_fraction(fn: ProgressFn, scale: int = 1000) -> Callable[[str, float], None]:
    """For callbacks called as ``(phase, fraction)`` (vehicle scans)."""
    return lambda phase, fraction: fn(JobProgress(phase, round(fraction * scale), scale))


def done_total(fn: ProgressFn, phase: str) -> Callable[[int, int], None]:
    """For callbacks called as ``(done, total)`` (log readers), under one ``phase``."""
    return lambda done, total: fn(JobProgress(phase, done, total))
