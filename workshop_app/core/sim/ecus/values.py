"""What the simulated ECUs report: identification strings and live values from the car.

Live values are what each ECU *measures*: an active fault's forced reading wins over the
physics (the coolant sensor open circuit reads -40 °C), exactly as on the CAN frames.
``None`` means "no valid value" and is encoded as all 0xFF bytes, the usual invalid marker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from workshop_app.core.sim.faults import Fault
from workshop_app.core.sim.vehicle_model import VehicleState

__all__ = ["IDENTIFICATION", "Reading", "live_value"]

Reading = float | int | str | None

# Plausible per-ECU identification data; F190 (VIN) comes from the vehicle description.
IDENTIFICATION: dict[str, dict[int, str]] = {
    "ECM": {
        0xF187: "04E906027K",
        0xF189: "SW 0412",
        0xF195: "S0412.07",
        0xF191: "HW H13",
        0xF18C: "ECM240511007",
        0xF18A: "Demotronic",
    },
    "TCM": {
        0xF187: "09G927750P",
        0xF189: "SW 2203",
        0xF195: "T2203.01",
        0xF191: "HW H07",
        0xF18C: "TCM231102044",
        0xF18A: "GearWorks",
    },
    "ABS": {
        0xF187: "5Q0907379F",
        0xF189: "SW 0101",
        0xF195: "A0101.12",
        0xF191: "HW H21",
        0xF18C: "ABS240104913",
        0xF18A: "Brakelab",
    },
    "BCM": {
        0xF187: "5Q0937084C",
        0xF189: "SW 0330",
        0xF195: "B0330.02",
        0xF191: "HW H05",
        0xF18C: "BCM230921388",
        0xF18A: "Bodytec",
    },
    "GW": {
        0xF187: "5Q0907530A",
        0xF189: "SW 1105",
        0xF195: "G1105.00",
        0xF191: "HW H02",
        0xF18C: "GWY240302561",
        0xF18A: "Netgate",
    },
}


def _forced(faults: Iterable[Fault], message: str, signal: str, actual: Reading) -> Reading:
    """The reading of ``message.signal`` under the active faults (str overrides = invalid)."""
    for f in faults:
        forced = f.override_for(message, signal)
        if forced is not None:
            return None if isinstance(forced, str) else float(forced)
    return actual


def _engine_state(s: VehicleState) -> str:
    return "Running" if s.engine_running else "Cranking" if s.starter else "Off"


_LIVE: dict[int, Callable[[VehicleState, tuple[Fault, ...], float], Reading]] = {
    # ECM
    0x1001: lambda s, f, _: max(0.0, s.rpm - s.misfire_dip),
    0x1002: lambda s, f, _: _forced(f, "ENGINE_TEMPS", "CoolantTemp", s.coolant_c),
    0x1003: lambda s, f, _: s.speed_kmh,
    0x1004: lambda s, f, _: s.load,
    0x1005: lambda s, f, _: s.intake_c,
    0x1006: lambda s, f, _: s.oil_c,
    0x1007: lambda s, f, _: s.oil_bar if s.engine_running else 0.0,
    0x1008: lambda s, f, _: round(s.misfire_counts[1]),
    0x1009: lambda s, f, _: _engine_state(s),
    0xF1A0: lambda s, f, _: s.odometer_km,
    0xF1A1: lambda s, f, _: s.battery_v,
    # TCM
    0x2001: lambda s, f, _: s.gear,
    0x2002: lambda s, f, _: s.trans_oil_c,
    0x2003: lambda s, f, _: s.turbine_rpm,
    0x2004: lambda s, f, _: s.selector,
    # ABS
    0x3001: lambda s, f, _: _forced(f, "WHEEL_SPEEDS", "WheelSpeedFL", s.wheel_kmh[0]),
    0x3002: lambda s, f, _: _forced(f, "WHEEL_SPEEDS", "WheelSpeedFR", s.wheel_kmh[1]),
    0x3003: lambda s, f, _: _forced(f, "WHEEL_SPEEDS", "WheelSpeedRL", s.wheel_kmh[2]),
    0x3004: lambda s, f, _: _forced(f, "WHEEL_SPEEDS", "WheelSpeedRR", s.wheel_kmh[3]),
    0x3005: lambda s, f, _: s.brake_bar,
    0x3006: lambda s, f, _: s.steering_deg,
    # BCM
    0x4001: lambda s, f, _: sum(s.doors) + int(s.trunk) + int(s.hood),
    0x4002: lambda s, f, _: "Locked" if s.locked else "Unlocked",
    0x4003: lambda s, f, _: s.ambient_lux,
    0x4004: lambda s, f, _: s.cabin_c,
    # GW
    0x5001: lambda s, f, load: 100.0 * min(load, 1.0),
    0x5002: lambda s, f, _: sum(1 for x in f if x.silenced),
}


def live_value(did: int, state: VehicleState, faults: tuple[Fault, ...], bus_load: float = 0.0) -> Reading:
    """Physical value of live DID ``did``; KeyError when the simulation has no source for it."""
    return _LIVE[did](state, faults, bus_load)
