"""The demo car's state as DBC signal values, message by message (``signals_for``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from workshop_app.core.sim.faults import Fault, SignalValue
from workshop_app.core.sim.vehicle_state import (
    BAROMETRIC_KPA,
    BULB_CHECK_S,
    FINAL_DRIVE,
    TANK_L,
    TYRE_RADIUS_M,
    VehicleState,
)


class SignalMapping:
    """Mixin of VehicleModel: one builder per DBC message the car sends."""

    state: VehicleState
    _faults: dict[str, Fault]
    _builders: dict[str, Callable[[], dict[str, SignalValue]]]

    if TYPE_CHECKING:

        def _has(self, name: str) -> bool: ...

        def _reading(self, message: str, signal: str, actual: float) -> float: ...

    def _signal_builders(self) -> dict[str, Callable[[], dict[str, SignalValue]]]:
        return {
            "WHEEL_SPEEDS": self._wheel_speeds,
            "ABS_STATUS": self._abs_status,
            "ENGINE_DATA": self._engine_data,
            "BRAKE_STATUS": self._brake_status,
            "STEERING": self._steering,
            "ESC_DYNAMICS_FD": self._esc_dynamics,
            "TRANSMISSION": self._transmission,
            "BODY_STATUS": self._body_status,
            "LIGHT_STATUS": self._light_status,
            "ENGINE_STATUS_MUX": self._engine_status_mux,
            "ENGINE_TEMPS": self._engine_temps,
            "CLUSTER_STATUS": self._cluster_status,
            "BATTERY_STATUS": self._battery_status,
            "CLIMATE_STATUS": self._climate_status,
        }

    # --- signals --------------------------------------------------------------------------

    def signals_for(self, message_name: str) -> dict[str, SignalValue]:
        """Physical values (numbers, or value-table names) of a DBC message's data signals.

        Rolling counters and checksums are not included: they belong to the transmitter. For
        ENGINE_STATUS_MUX the signals of every page are returned with ``EngStatusPage`` 0;
        the transmitter picks the page. Active faults' overrides are applied.
        """
        try:
            builder = self._builders[message_name]
        except KeyError:
            raise KeyError(f"the demo vehicle does not send {message_name!r}") from None
        values = builder()
        for f in self._faults.values():
            for msg, sig, value in f.overrides:
                if msg == message_name:
                    values[sig] = value
        return values

    def _key_on(self) -> bool:
        return self.state.key in ("Run", "Crank")

    def _wheel_speeds(self) -> dict[str, SignalValue]:
        fl, fr, rl, rr = self.state.wheel_kmh
        return {"WheelSpeedFL": fl, "WheelSpeedFR": fr, "WheelSpeedRL": rl, "WheelSpeedRR": rr}

    def _abs_status(self) -> dict[str, SignalValue]:
        s = self.state
        valid = list(s.wheel_kmh[1:] if self._has("wheel_speed_fl_dropout") else s.wheel_kmh)
        return {
            "VehicleSpeed": sum(valid) / len(valid),
            "LongitudinalAccel": s.accel,
            "YawRate": s.yaw_rate,
            "AbsActive": 0,
            "EscActive": 0,
            "TractionControlActive": 0,
            "AbsFaultPresent": 0,
        }

    def _engine_data(self) -> dict[str, SignalValue]:
        s = self.state
        idle = s.engine_running and s.accel_pedal < 0.5 and not s.fuel_cut
        return {
            "EngineSpeed": max(0.0, s.rpm - s.misfire_dip),
            "AccelPedalPosition": s.accel_pedal,
            "ThrottlePosition": s.throttle,
            "EngineLoad": s.load,
            "EngineRunning": "Running" if s.engine_running else "Stopped",
            "StarterActive": "Engaged" if s.starter else "Off",
            "IdleActive": "Idle" if idle else "OffIdle",
        }

    def _brake_status(self) -> dict[str, SignalValue]:
        s = self.state
        return {
            "BrakePedalPosition": s.brake_pedal,
            "BrakePressure": s.brake_bar,
            "BrakeLightSwitch": "Pressed" if s.brake_switch else "Released",
            "ParkingBrake": "Applied" if s.parking_brake else "Released",
            "BrakeFluidLow": "OK",
        }

    def _steering(self) -> dict[str, SignalValue]:
        s = self.state
        return {
            "SteeringAngle": s.steering_deg,
            "SteeringRate": s.steering_rate,
            "DriverTorque": s.driver_torque,
            "SteeringAngleValid": "Valid" if self._key_on() else "Invalid",
        }

    def _esc_dynamics(self) -> dict[str, SignalValue]:
        s = self.state
        p = s.brake_bar
        fl, fr, rl, rr = s.wheel_pulses
        return {
            "EscLateralAccel": s.lat_accel,
            "EscLongAccel": s.accel,
            "EscVerticalAccel": s.vert_accel,
            "EscYawRate": s.yaw_rate,
            "EscRollRate": s.roll_rate,
            "BrakePressureFL": p,
            "BrakePressureFR": p,
            "BrakePressureRL": 0.8 * p,  # rear pressure limited by the proportioning valve
            "BrakePressureRR": 0.8 * p,
            "WheelPulsesFL": int(fl),
            "WheelPulsesFR": int(fr),
            "WheelPulsesRL": int(rl),
            "WheelPulsesRR": int(rr),
            "FrictionEstimate": 0.9,
            "Standstill": "Standstill" if s.speed_kmh == 0.0 else "Moving",
        }

    def _transmission(self) -> dict[str, SignalValue]:
        s = self.state
        wheel_rpm = s.speed_kmh / 3.6 / TYRE_RADIUS_M * 60.0 / (2.0 * math.pi)
        return {
            "GearActual": s.gear,
            "GearSelector": s.selector,
            "ShiftInProgress": "Shifting" if s.shift_timer > 0.0 else "Idle",
            "TorqueConverterState": s.converter,
            "TransOilTemp": s.trans_oil_c,
            "OutputShaftSpeed": wheel_rpm * FINAL_DRIVE,
            "TurbineSpeed": s.turbine_rpm,
        }

    def _body_status(self) -> dict[str, SignalValue]:
        s = self.state
        fl, fr, rl, rr = s.doors

        def door(is_open: bool) -> str:
            return "Open" if is_open else "Closed"

        return {
            "DoorFL": door(fl),
            "DoorFR": door(fr),
            "DoorRL": door(rl),
            "DoorRR": door(rr),
            "Trunk": door(s.trunk),
            "Hood": door(s.hood),
            "LockState": "Locked" if s.locked else "Unlocked",
            "KeyPosition": s.key,
            "InteriorLight": "On" if s.interior_light else "Off",
            "SeatbeltDriver": "Buckled" if s.seatbelt else "Unbuckled",
        }

    def _light_status(self) -> dict[str, SignalValue]:
        s = self.state
        lamp = (s.blink_t % (2.0 / 3.0)) < (1.0 / 3.0) if s.blink_t > 0.0 else False
        left = lamp and (s.hazard or s.indicator == "left")
        right = lamp and (s.hazard or s.indicator == "right")

        def on(x: bool) -> str:
            return "On" if x else "Off"

        return {
            "LowBeam": on(s.low_beam),
            "HighBeam": on(s.high_beam),
            "IndicatorLeft": on(left),
            "IndicatorRight": on(right),
            "HazardActive": on(s.hazard),
            "BrakeLights": on(s.brake_switch),
            "ReverseLight": on(s.gear == 7),
            "RearFogLight": "Off",
            "ParkingLights": on(s.low_beam),
            "DaytimeRunningLights": on(s.engine_running and not s.low_beam),
            "AmbientLight": s.ambient_lux,
        }

    def _engine_status_mux(self) -> dict[str, SignalValue]:
        s = self.state
        c1, c2, c3, c4 = s.misfire_counts
        return {
            "EngStatusPage": 0,
            "ManifoldPressure": s.map_kpa,
            "BarometricPressure": BAROMETRIC_KPA,
            "MassAirFlow": s.maf_gs,
            "MisfireCountCyl1": round(c1),
            "MisfireCountCyl2": round(c2),
            "MisfireCountCyl3": round(c3),
            "MisfireCountCyl4": round(c4),
            "Lambda": s.lambda_ if s.engine_running else 0.0,
            "ShortTermFuelTrim": s.stft if s.engine_running else 0.0,
            "LongTermFuelTrim": s.ltft,
            "IgnitionAdvance": s.ignition_advance if s.engine_running else 0.0,
            "KnockRetard": s.knock_retard if s.engine_running else 0.0,
        }

    def _engine_temps(self) -> dict[str, SignalValue]:
        s = self.state
        return {
            "CoolantTemp": s.coolant_c,
            "OilTemp": s.oil_c,
            "IntakeAirTemp": s.intake_c,
            "FuelRate": s.fuel_rate_lh,
            "OilPressure": s.oil_bar if s.engine_running else 0.0,
            "FuelUsed": s.fuel_used_l,
        }

    def _cluster_status(self) -> dict[str, SignalValue]:
        s = self.state
        key_on = self._key_on()
        bulb_check = key_on and s.t - s.key_on_t < BULB_CHECK_S
        lamps = {name for f in self._faults.values() for name in f.lamps} if key_on else set()
        coolant_seen = self._reading("ENGINE_TEMPS", "CoolantTemp", s.coolant_c)
        oil_bar = s.oil_bar if s.engine_running else 0.0
        flags = {
            "WarnCheckEngine": key_on and (not s.engine_running or bulb_check),
            "WarnBattery": key_on and s.alternator == "Off",
            "WarnOilPressure": key_on and oil_bar < 0.4,
            "WarnAbs": bulb_check,
            "WarnBrake": key_on and (s.parking_brake or bulb_check),
            "WarnCoolantTemp": key_on and coolant_seen > 118.0,
            "WarnDoorOpen": any(s.doors) or s.trunk or s.hood,
            "WarnLowFuel": key_on and s.fuel_l < 0.12 * TANK_L,
        }
        values: dict[str, SignalValue] = {k: "On" if (v or k in lamps) else "Off" for k, v in flags.items()}
        values["Odometer"] = s.odometer_km
        values["FuelLevel"] = s.fuel_l / TANK_L * 100.0
        values["TripDistance"] = s.trip_km
        # Speedometers are allowed to read high, never low.
        values["DisplayedSpeed"] = float(round(s.speed_kmh * 1.03 + 1.0)) if s.speed_kmh > 1.0 else 0.0
        return values

    def _battery_status(self) -> dict[str, SignalValue]:
        s = self.state
        return {
            "BatteryVoltage": s.battery_v,
            "BatteryCurrent": s.battery_a,
            "BatterySoC": s.soc,
            "AlternatorState": s.alternator,
            "BatteryLowVoltage": "Low" if s.battery_v < 11.8 else "Normal",
        }

    def _climate_status(self) -> dict[str, SignalValue]:
        s = self.state
        if s.defrost:
            distribution = "Windscreen"
        elif s.ac:
            distribution = "Face"
        else:
            distribution = "Feet"
        return {
            "CabinTemp": s.cabin_c,
            "OutsideTemp": s.outside_c,
            "TempSetpoint": s.setpoint_c,
            "FanLevel": s.fan,
            "Defrost": "On" if s.defrost else "Off",
            "Recirculation": "On" if s.recirculation else "Off",
            "AcCompressor": "On" if s.ac else "Off",
            "AirDistribution": distribution,
        }
