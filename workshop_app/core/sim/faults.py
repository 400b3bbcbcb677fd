"""Faults the demo vehicle can be given, each with the DTCs a real car would store for it.

A fault is plain data. Its effects are of four kinds, read by different layers:

* ``overrides``: signal values the ECU reports instead of the measured ones
  (applied by :meth:`VehicleModel.signals_for`);
* ``lamps``: cluster warning lamps forced on;
* ``silenced`` / ``bad_checksum``: transport effects applied by :class:`DemoVehicle`
  (a message stops, or goes out with a wrong checksum);
* physical effects (weak battery, misfire, oil overheating) are looked up by name in the
  model, since they change the physics rather than a reported value.

``dtcs`` are ``(code, text)`` pairs in SAE J2012 style; ``ecu`` is the node that detects
the fault and would report the DTCs over UDS. ``monitor`` says when that ECU's monitor can
see the fault at all (its enable criteria): circuit and network faults whenever the ECU is
awake, combustion faults only with the engine running. A DTC is set, and its freeze frame
taken, only while the monitor runs, so the frame shows conditions under which the fault
could really have been detected.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the model imports this module: only for annotations
    from workshop_app.core.sim.vehicle_model import VehicleState

__all__ = ["ENGINE_SETTLED_S", "FAULTS", "Fault", "Monitor", "available_faults", "get_fault"]

# Misfire and similar monitors stay off through cranking and the start flare, when the
# crankshaft speed varies for reasons of its own (seconds since the engine fired).
ENGINE_SETTLED_S = 1.0


class Monitor(enum.Enum):
    """When an ECU's monitor for a fault runs."""

    ALWAYS = "always"  # circuit, voltage and network checks: whenever the ECU answers
    ENGINE_RUNNING = "engine running"  # combustion faults: the engine running past its start

    def enabled(self, state: VehicleState) -> bool:
        """Whether the monitor can run in this state of the car."""
        if self is Monitor.ENGINE_RUNNING:
            return state.engine_running and state.run_t >= ENGINE_SETTLED_S
        return True


SignalValue = float | str


@dataclass(frozen=True, slots=True)
class Fault:
    """One injectable fault of the demo vehicle."""

    name: str
    description: str
    ecu: str
    dtcs: tuple[tuple[str, str], ...]
    overrides: tuple[tuple[str, str, SignalValue], ...] = ()
    lamps: frozenset[str] = frozenset()
    silenced: frozenset[str] = frozenset()
    bad_checksum: frozenset[str] = frozenset()
    monitor: Monitor = Monitor.ALWAYS

    def override_for(self, message: str, signal: str) -> SignalValue | None:
        """The value this fault forces on ``message.signal``, or None."""
        for msg, sig, value in self.overrides:
            if msg == message and sig == signal:
                return value
        return None


_MIL = frozenset({"WarnCheckEngine"})

FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault(
            "coolant_sensor_open",
            "Coolant temperature sensor circuit open: the ECM reads -40 °C, idles as if cold "
            "and lights the MIL.",
            "ECM",
            (("P0118", "Engine coolant temperature sensor circuit high input"),),
            overrides=(("ENGINE_TEMPS", "CoolantTemp", -40.0),),
            lamps=_MIL,
        ),
        Fault(
            "coolant_sensor_short",
            "Coolant temperature sensor shorted to ground: the ECM reads 215 °C, the cluster "
            "shows overheating and the MIL is on.",
            "ECM",
            (("P0117", "Engine coolant temperature sensor circuit low input"),),
            overrides=(("ENGINE_TEMPS", "CoolantTemp", 215.0),),
            lamps=_MIL | {"WarnCoolantTemp"},
        ),
        Fault(
            "weak_battery",
            "Worn 12 V battery (high internal resistance, lost capacity): low rest voltage, deep "
            "sag and slow cranking at start.",
            "ECM",
            (("P0562", "System voltage low"),),
        ),
        Fault(
            "wheel_speed_fl_dropout",
            "Front left wheel speed sensor signal lost: WheelSpeedFL reports Invalid, its pulse "
            "counter stops, ABS/ESC are degraded and the ABS lamp is on.",
            "ABS",
            (("C0035", "Left front wheel speed sensor circuit"),),
            overrides=(
                ("WHEEL_SPEEDS", "WheelSpeedFL", "Invalid"),
                ("ABS_STATUS", "AbsFaultPresent", 1.0),
            ),
            lamps=frozenset({"WarnAbs"}),
        ),
        Fault(
            "misfire_cyl2",
            "Cylinder 2 misfires (worn spark plug): rough idle with engine speed dips, misfire "
            "counter on cylinder 2, lean lambda and the MIL on.",
            "ECM",
            (("P0302", "Cylinder 2 misfire detected"),),
            lamps=_MIL,
            monitor=Monitor.ENGINE_RUNNING,  # misfires show in crankshaft speed: it must turn
        ),
        Fault(
            "hvac_offline",
            "Climate control module offline: CLIMATE_STATUS is no longer sent.",
            "GW",
            (("U0164", "Lost communication with HVAC control module"),),
            silenced=frozenset({"CLIMATE_STATUS"}),
        ),
        Fault(
            "brake_status_checksum",
            "BRAKE_STATUS frames from the ABS module carry a wrong checksum.",
            "ECM",
            (("U0415", "Invalid data received from anti-lock brake system control module"),),
            bad_checksum=frozenset({"BRAKE_STATUS"}),
        ),
        Fault(
            "brake_light_switch",
            "Brake light switch stuck open: BrakeLightSwitch stays Released and the brake "
            "lights stay off while the brake pressure rises.",
            "ECM",
            (("P0571", "Brake switch A circuit"),),
            overrides=(
                ("BRAKE_STATUS", "BrakeLightSwitch", 0.0),
                ("LIGHT_STATUS", "BrakeLights", 0.0),
            ),
        ),
        Fault(
            "oil_overtemperature",
            "Engine oil overheating (low oil level, blocked oil cooler): oil temperature climbs "
            "past 120 °C and oil pressure falls.",
            "ECM",
            (("P0298", "Engine oil over temperature"),),
            lamps=_MIL,
            monitor=Monitor.ENGINE_RUNNING,  # only a running engine heats its oil
        ),
    )
}


def available_faults() -> dict[str, str]:
    """Name → description of every fault the demo vehicle can be given."""
    return {name: f.description for name, f in FAULTS.items()}


def get_fault(name: str) -> Fault:
    """The fault called ``name``; ``KeyError`` lists the valid names."""
    try:
        return FAULTS[name]
    except KeyError:
        raise KeyError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}") from None
