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
the fault and would report the DTCs over UDS.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FAULTS", "Fault", "available_faults", "get_fault"]

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
