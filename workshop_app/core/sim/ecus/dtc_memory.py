"""Per-ECU fault memory: DTC status bits, freeze frames and counters as a real ECU keeps them.

Status evolution (ISO 14229-1 Annex D; bit constants from :mod:`workshop_app.core.diag.dtc`):

* after power-up or a clear every DTC is ``testNotCompletedSinceLastClear`` and
  ``testNotCompletedThisOperationCycle`` (0x50): no monitor has run yet;
* a monitor that sees its fault sets ``testFailed``, ``testFailedThisOperationCycle``,
  ``pendingDTC`` and ``testFailedSinceLastClear`` at once, clears the two not-completed bits,
  counts an occurrence and captures the freeze frame (first detection since the last clear);
* still failing after :data:`CONFIRM_SECONDS` of simulated time: ``confirmedDTC``, plus
  ``warningIndicatorRequested`` for DTCs that light the MIL;
* the fault gone: ``testFailed`` drops, the rest stays stored until a clear;
* a clear resets everything; the monitors need :data:`RETEST_SECONDS` before they can fail
  again, so a technician clearing without repairing sees the code come back as pending.

Times are simulated seconds (the vehicle's clock), so ``time_scale`` speeds all of this up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from workshop_app.core.diag.dtc import (
    CONFIRMED,
    FAILED_SINCE_CLEAR,
    NOT_COMPLETED_SINCE_CLEAR,
    NOT_COMPLETED_THIS_CYCLE,
    PENDING,
    TEST_FAILED,
    TEST_FAILED_THIS_CYCLE,
    WARNING_INDICATOR,
)

__all__ = ["CONFIRM_SECONDS", "INITIAL_STATUS", "RETEST_SECONDS", "DtcMemory", "DtcRecord", "Snapshot"]

CONFIRM_SECONDS = 2.0  # simulated seconds a failure must persist to become confirmed
RETEST_SECONDS = 1.0  # simulated seconds the monitors need after a clear before failing again
INITIAL_STATUS = NOT_COMPLETED_SINCE_CLEAR | NOT_COMPLETED_THIS_CYCLE
ALL_GROUPS = 0xFFFFFF

# record number -> [(DID, encoded data)]: a freeze frame as ISO 14229 lays it out.
Snapshot = dict[int, list[tuple[int, bytes]]]


@dataclass
class DtcRecord:
    """What the ECU remembers about one DTC."""

    code: int  # 3-byte UDS DTC
    text: str
    mil: bool = False  # a confirmed failure requests the warning indicator
    status: int = INITIAL_STATUS
    failing_since: float | None = None  # simulated time the current failure began
    snapshot: Snapshot | None = None
    occurrences: int = 0
    aging: int = 0  # no operation cycles end in the simulation, so nothing ages yet
    failed_cycles: int = 0  # operation cycles since first failure (one cycle: the current one)


class DtcMemory:
    """The DTCs one ECU can set and their current state (thread-safe)."""

    def __init__(
        self,
        codes: Iterable[tuple[int, str, bool]],
        *,
        confirm_seconds: float = CONFIRM_SECONDS,
        retest_seconds: float = RETEST_SECONDS,
    ) -> None:
        self._lock = threading.Lock()
        self._records: dict[int, DtcRecord] = {}
        for code, text, mil in codes:
            self._records.setdefault(code, DtcRecord(code, text, mil))
        self.confirm_seconds = confirm_seconds
        self.retest_seconds = retest_seconds
        self._retest_at = 0.0

    @property
    def codes(self) -> tuple[int, ...]:
        """Every DTC this ECU supports, in a stable order."""
        return tuple(self._records)

    def records(self) -> list[DtcRecord]:
        """Copies of every record (a consistent view for one response)."""
        with self._lock:
            return [replace(r) for r in self._records.values()]

    def get(self, code: int) -> DtcRecord | None:
        with self._lock:
            r = self._records.get(code)
            return replace(r) if r is not None else None

    def update(
        self,
        failing: set[int],
        now: float,
        capture: Callable[[], Snapshot],
        untested: set[int] | None = None,
    ) -> None:
        """Run the monitors once: ``failing`` are the DTCs whose fault is present at ``now``.

        ``untested`` are DTCs whose monitor cannot run now (enable criteria not met): they
        neither fail nor pass, so their status stays as it is.
        """
        with self._lock:
            monitors_ready = now >= self._retest_at
            for rec in self._records.values():
                if untested and rec.code in untested:
                    continue
                if rec.code in failing and monitors_ready:
                    if not rec.status & TEST_FAILED:
                        rec.status |= TEST_FAILED | TEST_FAILED_THIS_CYCLE | PENDING | FAILED_SINCE_CLEAR
                        rec.status &= ~(NOT_COMPLETED_SINCE_CLEAR | NOT_COMPLETED_THIS_CYCLE)
                        rec.failing_since = now
                        rec.occurrences = min(rec.occurrences + 1, 0xFF)
                        rec.failed_cycles = 1
                        if rec.snapshot is None:
                            rec.snapshot = capture()
                    since = rec.failing_since if rec.failing_since is not None else now
                    if now - since >= self.confirm_seconds:
                        rec.status |= CONFIRMED | (WARNING_INDICATOR if rec.mil else 0)
                elif rec.status & TEST_FAILED and rec.code not in failing:
                    # Monitor passed: failing stops, the stored history stays.
                    rec.status &= ~TEST_FAILED
                    rec.failing_since = None

    def clear(self, group: int, now: float, only: Callable[[int], bool] | None = None) -> bool:
        """Erase ``group`` (0xFFFFFF = all, else one DTC); False when the group is unknown.

        ``only`` narrows an erase of all DTCs (OBD-II mode 04 erases emission DTCs only).
        """
        with self._lock:
            if group == ALL_GROUPS:
                targets = [r for r in self._records.values() if only is None or only(r.code)]
            elif group in self._records:
                targets = [self._records[group]]
            else:
                return False
            for rec in targets:
                self._records[rec.code] = DtcRecord(rec.code, rec.text, rec.mil)
            self._retest_at = now + self.retest_seconds
            return True
