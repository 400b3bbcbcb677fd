"""What this process is doing with the car: a flash and a fault-code scan or clear never overlap.

A scan's requests (session changes, 0x19, 0x14) in the middle of a flash would meet an ECU in
its programming session, and a clear could reach an ECU whose DTC setting the flash switched off.
The window's Fault codes dock, the update wizard and the update workflow all ask this one guard
before they start, so whichever comes second is refused with a plain message.

::

    with CAR_ACTIVITY.hold("flash", "the flash of ECM"):   # raises CarBusyError if a scan runs
        ...

One guard per process on purpose: every connection of this process reaches the same car.
Another process (a second `workshop` command) is not seen here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from workshop_app.core.errors import WorkshopError

KINDS = ("flash", "scan")


class CarBusyError(WorkshopError):
    """The car is busy with something that must not be mixed with what was asked."""


class CarActivity:
    """Flashes and scans in progress; a flash excludes everything, scans exclude a flash."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[int, tuple[str, str]] = {}  # token -> (kind, what)
        self._next = 0

    def begin(self, kind: str, what: str) -> int:
        """Start ``kind`` ('flash' or 'scan'); a token for :meth:`end`, or CarBusyError saying why not.

        ``what`` names it for the other side's refusal: "the flash of ECM", "a fault-code scan".
        """
        if kind not in KINDS:
            raise ValueError(f"unknown car activity {kind!r}")
        with self._lock:
            for other_kind, other_what in self._running.values():
                if kind == "flash" or other_kind == "flash":
                    raise CarBusyError(_refusal(kind, what, other_kind, other_what))
            self._next += 1
            self._running[self._next] = (kind, what)
            return self._next

    def end(self, token: int) -> None:
        with self._lock:
            self._running.pop(token, None)

    @contextmanager
    def hold(self, kind: str, what: str) -> Iterator[int]:
        token = self.begin(kind, what)
        try:
            yield token
        finally:
            self.end(token)

    def current(self) -> list[tuple[str, str]]:
        """(kind, what) of everything running now."""
        with self._lock:
            return list(self._running.values())

    def flashing(self) -> bool:
        return any(kind == "flash" for kind, _ in self.current())


def _refusal(kind: str, what: str, other_kind: str, other_what: str) -> str:
    if other_kind == "flash":
        return (
            f"Not now: {other_what} is running; {what} would disturb the programming. "
            "Wait for the update to finish."
        )
    return f"Not now: {other_what} is running; {what} must wait for it to finish."


CAR_ACTIVITY = CarActivity()
