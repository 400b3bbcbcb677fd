"""What the fleet overview shows of one vehicle, and how it is read from the cloud's messages.

Pure functions and frozen values, no network: :func:`parse_presence` and :func:`parse_health`
turn a vehicle's retained presence and health payloads into values (``FleetMessageError`` for
anything that is not ours), and :func:`assess` weighs a :class:`VehicleStatus` for attention so
:func:`sort_key` puts the vehicles that need a look first. ``fleet.py``'s ``FleetWatcher``
listens to the broker and calls these on paho's thread; tests and the CLI call them directly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from workshop_app.core.cloud.errors import CloudError

LOW_BATTERY_V = 12.0
SILENCE_INTERVALS = 3  # health intervals without a word before a vehicle counts as offline
DEFAULT_HEALTH_INTERVAL = 60.0  # seconds, when neither presence nor health says
MAX_SUMMARY = 64 * 1024
# UDS DTC status bit 7: warningIndicatorRequested (the MIL is on for this code).
_WARNING_INDICATOR = 0x80

# Attention weights: larger first. Offline with faults beats everything (the car may be stuck
# somewhere with a fault); a lit MIL beats a stored code; a weak battery strands cars.
_W_OFFLINE_FAULTS = 1000
_W_MIL = 400
_W_DTC = 200
_W_LOW_BATTERY = 150
_W_OFFLINE = 50
_W_DROPPED = 10


class FleetMessageError(CloudError):
    """A presence or health message that is not one of ours, in plain words."""


@dataclass(frozen=True, slots=True)
class HealthSummary:
    """One health summary as the agent published it (fields it left out are None/empty)."""

    vin: str
    time: float  # unix time of the summary (agent clock)
    interval: float | None
    dtc_count: int | None
    dtcs: tuple[str, ...]
    mil: bool
    battery_v: float | None
    odometer_km: float | None
    software: tuple[tuple[str, str], ...]  # (ECU, version), sorted by ECU
    frames_dropped: int
    raw: Mapping[str, Any] = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class VehicleStatus:
    """What the fleet table shows of one vehicle; ``attention`` sorts it, ``reasons`` say why."""

    vin: str
    online: bool
    last_seen: float | None  # unix time we last heard of it (None: only a stale retained message)
    presence: str  # 'online', 'offline', 'silent' (no word for 3 health intervals) or 'unknown'
    dtc_count: int | None = None
    dtcs: tuple[str, ...] = ()
    mil: bool = False
    battery_v: float | None = None
    odometer_km: float | None = None
    software: tuple[tuple[str, str], ...] = ()
    frames_dropped: int = 0
    health_time: float | None = None  # time of the summary the health columns come from
    health_from_history: bool = False  # columns from the stored summary, none heard this session
    health_interval: float | None = None
    attention: int = 0
    reasons: tuple[str, ...] = ()

    @property
    def state_text(self) -> str:
        """``online``, ``offline`` or ``not heard from since 14:02`` (local time)."""
        if self.presence == "silent":
            return f"not heard from since {_clock(self.last_seen)}"
        return self.presence

    def software_text(self) -> str:
        return ", ".join(f"{ecu} {version}" for ecu, version in self.software)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for ``workshop cloud vehicles --json``."""
        return {
            "vin": self.vin,
            "online": self.online,
            "presence": self.presence,
            "state": self.state_text,
            "last_seen": self.last_seen,
            "dtc_count": self.dtc_count,
            "dtcs": list(self.dtcs),
            "mil": self.mil,
            "battery_v": self.battery_v,
            "odometer_km": self.odometer_km,
            "software": dict(self.software),
            "frames_dropped": self.frames_dropped,
            "health_time": self.health_time,
            "health_from_history": self.health_from_history,
            "attention": self.attention,
            "reasons": list(self.reasons),
        }


def _clock(epoch: float | None) -> str:
    if epoch is None:
        return "an unknown time"
    when = datetime.fromtimestamp(epoch).astimezone()
    now = datetime.now().astimezone()
    return when.strftime("%H:%M:%S" if when.date() == now.date() else "%Y-%m-%d %H:%M")


# -- parsing ------------------------------------------------------------------------------------


def _number(doc: Mapping[str, Any], *names: str) -> float | None:
    for name in names:
        value = doc.get(name)
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float) and math.isfinite(value):
            return float(value)
    return None


def _json_object(payload: bytes, what: str) -> dict[str, Any]:
    if len(payload) > MAX_SUMMARY:
        raise FleetMessageError(f"{what} of {len(payload)} bytes is over the {MAX_SUMMARY}-byte limit")
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FleetMessageError(f"{what} is not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise FleetMessageError(f"{what} is not a JSON object")
    return doc


def _dtc_text(item: Any) -> tuple[str, bool] | None:
    """(code as people read it, warning lamp requested) of one listed DTC."""
    if isinstance(item, str):
        return (item, False) if item else None
    if not isinstance(item, Mapping):
        return None
    code = item.get("sae") or item.get("code") or item.get("dtc")
    if isinstance(code, int) and not isinstance(code, bool):
        code = f"{code:06X}"
    if not isinstance(code, str) or not code:
        return None
    status = item.get("status")
    mil = bool(item.get("mil")) or (
        isinstance(status, int) and not isinstance(status, bool) and bool(status & _WARNING_INDICATOR)
    )
    ecu = item.get("ecu")
    return (f"{ecu}:{code}" if isinstance(ecu, str) and ecu else code), mil


def _software(value: Any) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    if isinstance(value, Mapping):
        pairs = [(str(k), str(v)) for k, v in value.items() if v is not None]
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, Mapping) and item.get("ecu") is not None:
                version = item.get("version", item.get("software"))
                if version is not None:
                    pairs.append((str(item["ecu"]), str(version)))
    return tuple(sorted(pairs))


def parse_health(vin: str, payload: bytes, received: float) -> HealthSummary:
    """A health summary from its JSON (see docs/cloud.md, "Fleet overview"); FleetMessageError if unusable."""
    doc = _json_object(payload, f"health summary of {vin}")
    claimed = doc.get("vin")
    if claimed is not None and claimed != vin:
        raise FleetMessageError(f"health summary on {vin}'s topic names another vehicle ({claimed!r})")
    dtcs: list[str] = []
    mil = bool(doc.get("mil"))
    listed = doc.get("dtcs", [])
    if not isinstance(listed, list):
        raise FleetMessageError(f"health summary of {vin}: 'dtcs' must be a list")
    for item in listed:
        parsed = _dtc_text(item)
        if parsed is not None:
            dtcs.append(parsed[0])
            mil = mil or parsed[1]
    count = _number(doc, "dtc_count")
    frames = doc.get("frames")
    dropped = _number(frames, "dropped") if isinstance(frames, Mapping) else None
    if dropped is None:
        dropped = _number(doc, "frames_dropped", "dropped")
    return HealthSummary(
        vin=vin,
        time=_number(doc, "time", "vehicle_time", "sent") or received,
        interval=_number(doc, "interval", "health_interval"),
        dtc_count=int(count) if count is not None else len(dtcs) if "dtcs" in doc else None,
        dtcs=tuple(dtcs),
        mil=mil,
        battery_v=_number(doc, "battery_v", "battery_voltage", "battery"),
        odometer_km=_number(doc, "odometer_km", "odometer"),
        software=_software(doc.get("software", doc.get("software_versions", doc.get("versions")))),
        frames_dropped=int(dropped or 0),
        raw=doc,
    )


def parse_presence(vin: str, payload: bytes) -> tuple[bool, float | None, float | None]:
    """(online, time it says, health interval it says) of a ``state`` message."""
    text = payload.strip()
    if text in (b"online", b"offline"):
        return text == b"online", None, None
    doc = _json_object(payload, f"presence message of {vin}")
    state = doc.get("state", doc.get("status"))
    if isinstance(doc.get("online"), bool):
        online = bool(doc["online"])
    elif state in ("online", "offline"):
        online = state == "online"
    else:
        raise FleetMessageError(f"presence message of {vin} says neither online nor offline")
    return online, _number(doc, "time", "since"), _number(doc, "health_interval", "interval")


# -- attention ----------------------------------------------------------------------------------


def assess(status: VehicleStatus) -> VehicleStatus:
    """The status with its attention score and reasons filled in."""
    score = 0
    reasons: list[str] = []
    count = status.dtc_count or 0
    codes = f"{count} fault code{'s' if count != 1 else ''}"
    if not status.online and count:
        score += _W_OFFLINE_FAULTS
        reasons.append(f"{status.state_text} with {codes}")
    if status.mil:
        score += _W_MIL
        reasons.append("warning lamp (MIL) on")
    if count:
        score += _W_DTC + min(count, 50)
        if status.online:
            reasons.append(codes)
    if status.battery_v is not None and status.battery_v < LOW_BATTERY_V:
        score += _W_LOW_BATTERY
        reasons.append(f"battery low: {status.battery_v:.1f} V")
    if not status.online and not count:
        score += _W_OFFLINE
        reasons.append(status.state_text)
    if status.frames_dropped:
        score += _W_DROPPED
        reasons.append(f"agent dropped {status.frames_dropped:,} frames (link outage)")
    return replace(status, attention=score, reasons=tuple(reasons))


def sort_key(status: VehicleStatus) -> tuple[int, float, str]:
    """Most attention first; among equals the most recently heard first, then by VIN."""
    return (-status.attention, -(status.last_seen or 0.0), status.vin)
