"""Watching for fault codes that appear while the car runs (intermittent faults).

``DtcWatcher.poll`` reads the stored codes of each watched ECU (one ReadDTCInformation each)
and returns those not seen at the previous poll. The first poll only learns what is already
stored. Run it on the diagnostic worker thread, every few seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import can

from workshop_app.core.diag.client import DiagError, EcuAddress, EcuClient
from workshop_app.core.diag.descriptions import DtcDescriptions
from workshop_app.core.diag.dtc import Dtc
from workshop_app.core.diag.ecu_spec import EcuSpec
from workshop_app.core.diag.scan import STORED_MASK


@dataclass
class DtcEvent:
    time: float
    ecu: str
    dtc: Dtc
    kind: str  # "appeared" or "cleared"


class DtcWatcher:
    def __init__(
        self,
        bus: can.BusABC,
        notifier: can.Notifier,
        ecus: list[EcuSpec],
        *,
        descriptions: DtcDescriptions | None = None,
        manufacturer: str = "",
        timeout: float = 0.5,
    ) -> None:
        self.bus = bus
        self.notifier = notifier
        self.ecus = ecus
        self.descriptions = descriptions if descriptions is not None else DtcDescriptions()
        self.manufacturer = manufacturer
        self.timeout = timeout
        self._known: dict[str, dict[int, Dtc]] | None = None
        self.problems: list[str] = []

    def poll(self) -> list[DtcEvent]:
        """Codes that appeared (or disappeared) since the last poll."""
        now: dict[str, dict[int, Dtc]] = {}
        for ecu in self.ecus:
            try:
                with EcuClient(
                    self.bus, self.notifier, EcuAddress.of(ecu), spec=ecu, timeout=self.timeout
                ) as c:
                    found = c.dtcs_by_status(STORED_MASK)
            except DiagError as exc:
                self.problems.append(str(exc))
                if self._known is not None and ecu.name in self._known:
                    now[ecu.name] = self._known[ecu.name]  # no answer is not "cleared"
                continue
            now[ecu.name] = {
                d.id: Dtc(
                    d.id, d.status.get_byte_as_int(), self.descriptions.describe(d.id, self.manufacturer)
                )
                for d in found
            }
        before, self._known = self._known, now
        if before is None:
            return []
        t = time.time()
        events = []
        for name, codes in now.items():
            old = before.get(name, {})
            events += [DtcEvent(t, name, d, "appeared") for code, d in codes.items() if code not in old]
            events += [DtcEvent(t, name, d, "cleared") for code, d in old.items() if code not in codes]
        return events
