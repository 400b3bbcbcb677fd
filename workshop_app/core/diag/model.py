"""What a vehicle scan produces: per ECU its identity, DTCs and any problem met on the way.

Plain data, shared by the scanner, the history store, the reports, the CLI (``--json``) and
the GUI.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from workshop_app.core.diag.dtc import Dtc, SnapshotValue
from workshop_app.core.diag.vin import vin_problems


class EcuState(enum.Enum):
    OK = "ok"  # answered, no DTC
    FAULTS = "faults"  # answered, DTCs stored
    MISSING = "missing"  # expected but did not answer
    UNEXPECTED = "unexpected"  # answered but not in the vehicle's configuration
    ERROR = "error"  # answered, but a step failed (negative response, malformed answer)


class ScanLabel(enum.Enum):
    NONE = ""
    PRE_REPAIR = "pre-repair"
    POST_REPAIR = "post-repair"


@dataclass
class EcuResult:
    """One ECU as a scan found it."""

    name: str
    address: str  # e.g. "0x7E0/0x7E8"
    description: str = ""
    responded: bool = False
    expected: bool = True
    identification: dict[str, str] = field(default_factory=dict)  # "VIN" → "WSA0..."
    live: list[SnapshotValue] = field(default_factory=list)
    dtcs: list[Dtc] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # plain-language notes of failed steps
    seconds: float = 0.0

    @property
    def state(self) -> EcuState:
        if not self.responded:
            return EcuState.MISSING
        if not self.expected:
            return EcuState.UNEXPECTED
        if self.dtcs:
            return EcuState.FAULTS
        if self.problems:
            return EcuState.ERROR
        return EcuState.OK


@dataclass
class ScanResult:
    """A whole-vehicle scan."""

    started: float  # unix time
    seconds: float = 0.0
    vin: str = ""
    vehicle: str = ""
    mileage_km: float | None = None
    label: ScanLabel = ScanLabel.NONE
    connection: str = ""
    ecus: list[EcuResult] = field(default_factory=list)
    obd_dtcs: list[Dtc] = field(default_factory=list)  # modes 03/07/0A, when read
    scan_id: int | None = None  # row id once stored in the history

    @property
    def dtc_count(self) -> int:
        return sum(len(e.dtcs) for e in self.ecus)

    @property
    def vin_warnings(self) -> tuple[str, ...]:
        """Why the VIN the car reported is not a valid VIN (empty: valid, or not read)."""
        return vin_problems(self.vin)

    def ecu(self, name: str) -> EcuResult | None:
        return next((e for e in self.ecus if e.name == name), None)

    def add_missing(self, names: list[str]) -> list[str]:
        """ECUs that answered in this vehicle's earlier scans but not now: listed as missing."""
        added = [n for n in names if self.ecu(n) is None]
        for name in added:
            self.ecus.append(
                EcuResult(name=name, address="?", description="answered in earlier scans", responded=False)
            )
        return added

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the CLI's ``--json`` output)."""
        return {
            "started": self.started,
            "seconds": round(self.seconds, 3),
            "vin": self.vin,
            "vin_warnings": list(self.vin_warnings),
            "vehicle": self.vehicle,
            "mileage_km": self.mileage_km,
            "label": self.label.value,
            "connection": self.connection,
            "scan_id": self.scan_id,
            "ecus": [
                {
                    "name": e.name,
                    "address": e.address,
                    "description": e.description,
                    "state": e.state.value,
                    "identification": e.identification,
                    "live": [_value_json(v) for v in e.live],
                    "problems": e.problems,
                    "seconds": round(e.seconds, 3),
                    "dtcs": [dtc_json(d) for d in e.dtcs],
                }
                for e in self.ecus
            ],
            "obd_dtcs": [dtc_json(d) for d in self.obd_dtcs],
        }


def _value_json(v: SnapshotValue) -> dict[str, Any]:
    return {"name": v.name, "value": v.value, "unit": v.unit, "did": v.did}


def dtc_json(d: Dtc) -> dict[str, Any]:
    return {
        "code": d.sae,
        "uds": d.hex,
        "status": d.status,
        "status_text": d.status_text(),
        "description": d.description,
        "source": d.source,
        "occurrences": d.occurrence_count(),
        "snapshots": {str(k): [_value_json(v) for v in vs] for k, vs in d.snapshots.items()},
        "extended": {str(k): [_value_json(v) for v in vs] for k, vs in d.extended.items()},
    }


@dataclass
class ScanComparison:
    """DTCs of a scan against an earlier one, per (ECU, code)."""

    new: list[tuple[str, Dtc]]
    gone: list[tuple[str, Dtc]]
    still: list[tuple[str, Dtc]]


def compare_scans(before: ScanResult, after: ScanResult) -> ScanComparison:
    old = {(e.name, d.code): d for e in before.ecus for d in e.dtcs}
    now = {(e.name, d.code): d for e in after.ecus for d in e.dtcs}
    return ScanComparison(
        new=[(k[0], d) for k, d in now.items() if k not in old],
        gone=[(k[0], d) for k, d in old.items() if k not in now],
        still=[(k[0], d) for k, d in now.items() if k in old],
    )
