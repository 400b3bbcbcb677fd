"""A WorkshopSession on the simulated car with the demo DBC, and ticking it until something holds."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from helpers.waiting import wait_until

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.core.workshop import WorkshopSession
from workshop_app.paths import demo_dbc_path


@contextlib.contextmanager
def simulated_workshop() -> Iterator[WorkshopSession]:
    """Started on entry, closed on exit."""
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    session = WorkshopSession(CaptureSession(SimulatorSource(FrameRing()), dbs))
    session.start()
    try:
        yield session
    finally:
        session.close()


def tick_until(workshop: WorkshopSession, condition: Callable[[], object], what: str) -> None:
    """Tick ``workshop`` (as the window's timer does) until ``condition()`` holds."""

    def ticked() -> object:
        workshop.tick()
        return condition()

    wait_until(ticked, timeout=20, what=what)
