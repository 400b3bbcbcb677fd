"""RemoteVehicle: the simulated car's controls when the car runs in a capture process.

The window's fault-code panel injects and repairs simulated faults and parks the car through
``source.vehicle``. With the simulated car received in a capture process the DemoVehicle lives
there, so the source offers this stand-in: each call becomes one command on the pipe, run by
the capture process's command thread in order with the frames sent (a fault injected before a
scan is in place when the scan's first request goes out).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# The DemoVehicle methods a window may call from another process.
REMOTE_CALLS = frozenset({"inject_fault", "park", "clear_faults"})


class RemoteVehicle:
    """Sends the simulated car's control calls to the process the car runs in."""

    def __init__(self, send: Callable[[tuple[Any, ...]], None]) -> None:
        self._send = send
        self._parked = False  # the car drives off when it starts; park() is the one way to change it

    @property
    def parked(self) -> bool:
        return self._parked

    def inject_fault(self, name: str) -> None:
        self._send(("vehicle", "inject_fault", (name,)))

    def park(self, parked: bool = True) -> None:
        self._send(("vehicle", "park", (parked,)))
        self._parked = parked

    def clear_faults(self) -> None:
        self._send(("vehicle", "clear_faults", ()))


def call_vehicle(source: object, method: str, args: tuple[Any, ...]) -> str | None:
    """Run one remote call on the capture process's source; returns why it could not run."""
    vehicle = getattr(source, "vehicle", None)
    if method not in REMOTE_CALLS:
        return f"no such control of the simulated car: {method}"
    if vehicle is None:
        return "this connection has no simulated car"
    try:
        getattr(vehicle, method)(*args)
    except (KeyError, ValueError) as exc:
        return str(exc)
    return None
