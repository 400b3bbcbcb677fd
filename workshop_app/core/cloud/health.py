"""The agent's periodic health summary: what a garage wants to know before the car arrives.

Published on ``wsp/v1/<VIN>/health`` at QoS 1 every ``interval`` seconds; the workshop reads it
with ``fleet.parse_health``. It also carries the agent's clock (``time``), so a workshop knows
when the car was last seen even where the broker keeps no retained presence message::

    {"v": 1, "vin": "WSADEM5T2T0000421", "time": 1733500000.1, "interval": 60.0,
     "vehicle_time": 1733500000.0, "dtc_count": 1, "mil": true,
     "dtcs": [{"ecu": "ECM", "sae": "P0302", "status": 175, "description": "..."}],
     "battery_v": 12.41, "odometer_km": 48211.3, "software": {"ECM": "SW 0412", ...},
     "ecus_missing": [], "problems": [], "scan_seconds": 1.9,
     "frames": {"sent": 123456, "buffered": 0, "dropped": 0}}

Values the agent could not read are ``null`` (battery, odometer) or absent from ``software``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from workshop_app.core.diag.model import ScanResult

VERSION = 1


@dataclass(frozen=True, slots=True)
class HealthDtc:
    ecu: str
    code: str  # SAE form, e.g. "P0302"
    status: int
    description: str = ""


@dataclass(frozen=True, slots=True)
class FrameCounters:
    sent: int = 0  # frames published since the agent started
    buffered: int = 0  # frames waiting (an outage, or the rate limit)
    dropped: int = 0  # frames thrown away because the outage buffer was full


@dataclass(frozen=True, slots=True)
class AgentHealth:
    vin: str
    time: float  # the agent's clock when the summary was made (last seen)
    interval: float = 60.0  # seconds between summaries (the fleet's silence is three of them)
    vehicle_time: float | None = None  # the newest frame's timestamp on the car's bus
    dtcs: tuple[HealthDtc, ...] = ()
    battery_v: float | None = None
    odometer_km: float | None = None
    software: dict[str, str] = field(default_factory=dict)  # ECU → software version
    ecus_missing: tuple[str, ...] = ()  # expected ECUs that did not answer the scan
    problems: tuple[str, ...] = ()
    scan_seconds: float = 0.0
    frames: FrameCounters = FrameCounters()

    @property
    def dtc_count(self) -> int:
        return len(self.dtcs)

    @property
    def mil(self) -> bool:
        """A fault code asks for the warning lamp (status bit 7)."""
        return any(d.status & 0x80 for d in self.dtcs)

    def to_json(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "vin": self.vin,
            "time": self.time,
            "interval": self.interval,
            "vehicle_time": self.vehicle_time,
            "dtc_count": self.dtc_count,
            "mil": self.mil,
            "dtcs": [
                {"ecu": d.ecu, "sae": d.code, "status": d.status, "description": d.description}
                for d in self.dtcs
            ],
            "battery_v": self.battery_v,
            "odometer_km": self.odometer_km,
            "software": dict(self.software),
            "ecus_missing": list(self.ecus_missing),
            "problems": list(self.problems),
            "scan_seconds": round(self.scan_seconds, 3),
            "frames": {
                "sent": self.frames.sent,
                "buffered": self.frames.buffered,
                "dropped": self.frames.dropped,
            },
        }

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()


def summary_from_scan(
    vin: str,
    now: float,
    interval: float,
    scan: ScanResult | None,
    *,
    vehicle_time: float | None,
    battery_v: float | None,
    odometer_km: float | None,
    frames: FrameCounters,
    problems: tuple[str, ...] = (),
) -> AgentHealth:
    """The summary of one quick scan plus the values read from the car's own frames."""
    if scan is None:
        return AgentHealth(
            vin,
            now,
            interval,
            vehicle_time,
            battery_v=battery_v,
            odometer_km=odometer_km,
            frames=frames,
            problems=problems,
        )
    dtcs = tuple(HealthDtc(e.name, d.sae, d.status, d.description) for e in scan.ecus for d in e.dtcs)
    software = {
        e.name: e.identification[k]
        for e in scan.ecus
        for k in ("Software version", "Application software")
        if k in e.identification
    }
    missing = tuple(e.name for e in scan.ecus if e.expected and not e.responded)
    found_problems = tuple(f"{e.name}: {p}" for e in scan.ecus if e.responded for p in e.problems)
    return AgentHealth(
        vin,
        now,
        interval,
        vehicle_time,
        dtcs,
        battery_v,
        odometer_km if odometer_km is not None else scan.mileage_km,
        software,
        missing,
        problems + found_problems,
        scan.seconds,
        frames,
    )
