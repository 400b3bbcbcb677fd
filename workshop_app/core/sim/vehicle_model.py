"""Deterministic physics of the demo car (``dbc/demo_vehicle.dbc``).

The car is a 1.4 l turbo petrol hatchback with a six-speed torque-converter automatic. Its
story is scripted: ignition off, key on, crank (battery sag), idle while cold, then a driving
loop that repeats forever (pull away, shift up, cruise, indicate and turn, speed up, brake to
a stop, park with a door or the trunk opening). Everything else follows from physics that is
simple but consistent: engine speed from road speed, gear ratio, final drive and tyre radius;
fuel from air mass flow; coolant heat from fuel burnt; battery from its loads.

The model is pure: no clock, no threads, no I/O. :meth:`VehicleModel.step` advances it by a
simulated ``dt``; with the same seed and the same sequence of ``dt`` the states are identical.
All noise is drawn in :meth:`step`, so :meth:`VehicleModel.signals_for` can be called any
number of times without changing the future.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping

from workshop_app.core.sim.drive_script import DRIVE_LOOP, DriveScript
from workshop_app.core.sim.faults import Fault, SignalValue, get_fault
from workshop_app.core.sim.vehicle_signals import SignalMapping
from workshop_app.core.sim.vehicle_state import (
    AIR_DENSITY,
    AUTO_LOCK_KMH,
    BAROMETRIC_KPA,
    BATTERY_AH,
    CDA_M2,
    DISPLACEMENT_M3,
    DOWNSHIFT_KMH,
    DRIVELINE_EFFICIENCY,
    FINAL_DRIVE,
    FUEL_DENSITY_G_PER_L,
    FUEL_ENERGY_J_PER_G,
    GEAR_RATIOS,
    GRAVITY,
    IDLE_RPM_WARM,
    MASS_KG,
    MAX_STEP_S,
    MAX_TORQUE_NM,
    MESSAGES,
    ROLLING_RESISTANCE,
    SHIFT_TIME_S,
    STEERING_RATIO,
    TANK_L,
    TRACK_M,
    TYRE_RADIUS_M,
    UPSHIFT_KMH,
    WARMUP_IDLE_S,
    WHEEL_PULSES_PER_REV,
    WHEELBASE_M,
    VehicleState,
    clamp,
)

__all__ = ["MESSAGES", "VehicleModel", "VehicleState"]


class VehicleModel(DriveScript, SignalMapping):
    """The demo car's physics and scripted drive; see the module docstring.

    >>> m = VehicleModel(seed=1)
    >>> m.step(30.0)  # 30 simulated seconds: engine started, warming up
    >>> m.state.engine_running, 13.8 <= m.state.battery_v <= 14.4  # running, charging
    (True, True)
    >>> m.signals_for("ENGINE_DATA")["EngineRunning"]
    'Running'
    """

    def __init__(self, seed: int = 0, *, ambient_c: float | None = None) -> None:
        self.seed = seed
        self._rng = random.Random(seed)
        rng = self._rng
        ambient = rng.uniform(3.0, 9.0) if ambient_c is None else ambient_c
        # Parked for a workshop job (flashing needs engine off, speed 0): key on, engine stopped.
        self.parked = False
        self.state = VehicleState(
            coolant_c=ambient,
            oil_c=ambient,
            intake_c=ambient,
            trans_oil_c=ambient,
            outside_c=ambient,
            cabin_c=ambient + 1.0,
            odometer_km=round(40_000.0 + rng.uniform(0.0, 20_000.0), 1),
            fuel_l=TANK_L * rng.uniform(0.55, 0.70),
        )
        # Each tyre's rolling radius differs a little (wear, pressure): wheel speeds never
        # agree exactly, as on a real car.
        self._tyre_factor = tuple(1.0 + rng.uniform(-0.002, 0.002) for _ in range(4))
        self._faults: dict[str, Fault] = {}
        # Hand-over values between the parts of one step.
        self._engine_torque = 0.0
        self._fuel_power_w = 0.0
        self.state.battery_v = self._ocv()
        self._builders = self._signal_builders()

    # --- faults ---------------------------------------------------------------------------

    def inject_fault(self, fault: str | Fault) -> None:
        """Activate a fault (by name or object); injecting an active fault is a no-op."""
        f = get_fault(fault) if isinstance(fault, str) else fault
        self._faults[f.name] = f

    def clear_faults(self) -> None:
        """Repair the car: every fault disappears (stored misfire counts decay as on a car)."""
        self._faults.clear()

    @property
    def active_faults(self) -> tuple[str, ...]:
        """Names of the active faults, in injection order."""
        return tuple(self._faults)

    def active_dtcs(self) -> list[tuple[str, str, str]]:
        """``(ecu, code, text)`` of every DTC the active faults set."""
        return [(f.ecu, code, text) for f in self._faults.values() for code, text in f.dtcs]

    def _has(self, name: str) -> bool:
        return name in self._faults

    def _reading(self, message: str, signal: str, actual: float) -> float:
        """What an ECU measures for a signal: the actual value unless a fault forces one."""
        for f in self._faults.values():
            forced = f.override_for(message, signal)
            if isinstance(forced, (int, float)):
                return float(forced)
        return actual

    # --- commands from the bus ------------------------------------------------------------

    def apply_body_command(self, request: Mapping[str, SignalValue]) -> None:
        """Act on a decoded BODY_COMMAND (choice names or raw numbers both accepted)."""
        s = self.state
        lights = _choice(request.get("LightsRequest"), ("NoRequest", "Off", "LowBeam", "HighBeam"))
        if lights in ("Off", "LowBeam", "HighBeam"):
            s.lights_override = lights
            s.low_beam = lights != "Off"
            s.high_beam = lights == "HighBeam"
        lock = _choice(request.get("LockRequest"), ("NoRequest", "Lock", "Unlock"))
        if lock == "Lock":
            s.locked = True
        elif lock == "Unlock":
            s.locked = False
        hazard = _choice(request.get("HazardRequest"), ("NoRequest", "Off", "On"))
        if hazard in ("Off", "On"):
            s.hazard = hazard == "On"
        interior = _choice(request.get("InteriorLightRequest"), ("NoRequest", "Off", "On"))
        if interior in ("Off", "On"):
            s.interior_override = interior == "On"
            s.interior_light = s.interior_override
        trunk = _choice(request.get("TrunkReleaseRequest"), ("NoRequest", "Release"))
        if trunk == "Release" and not s.locked:
            s.trunk = True
            s.trunk_release_t = 5.0  # someone shuts it again after a while

    # --- simulation -----------------------------------------------------------------------

    def step(self, dt: float) -> None:
        """Advance the car by ``dt`` simulated seconds (split into steps of at most 50 ms)."""
        if dt <= 0:
            return
        n = max(1, math.ceil(dt / MAX_STEP_S - 1e-9))
        h = dt / n
        for _ in range(n):
            self._substep(h)

    def _substep(self, dt: float) -> None:
        s = self.state
        s.t += dt
        self._script(dt)
        self._longitudinal(dt)
        self._gearbox(dt)
        self._engine(dt)
        self._thermal(dt)
        self._electrical(dt)
        self._climate(dt)
        self._body(dt)
        self._chassis_sensors(dt)

    def _longitudinal(self, dt: float) -> None:
        s = self.state
        v = s.speed_kmh / 3.6
        driving = s.phase == "drive" and s.selector == "D" and not s.parking_brake and s.engine_running
        seg = DRIVE_LOOP[s.segment] if s.phase == "drive" else None
        if driving and seg is not None and seg.kind != "park":
            if seg.kind == "stop":
                a_des = -seg.accel if v > 1.5 else -max(0.6, 1.2 * v)
            else:
                a_des = clamp(0.8 * (seg.target_kmh / 3.6 - v), -seg.accel, seg.accel)
        else:
            a_des = -max(1.0, 1.2 * v) if v > 0 else 0.0
        # The driver and the car do not change acceleration instantly.
        s.accel += (a_des - s.accel) * min(1.0, dt / 0.35)
        v_before = v
        v += s.accel * dt
        if v <= 0.0:
            v = 0.0
            s.accel = max(s.accel, 0.0) if a_des > 0 else 0.0
        s.speed_kmh = v * 3.6
        km = (v_before + v) / 2.0 * dt / 1000.0
        s.odometer_km += km
        s.trip_km += km
        if not s.locked and v_before * 3.6 < AUTO_LOCK_KMH <= s.speed_kmh:
            s.locked = True  # auto-lock when passing 15 km/h

        resist = 0.5 * AIR_DENSITY * CDA_M2 * v * v + (
            ROLLING_RESISTANCE * MASS_KG * GRAVITY if v > 0.05 else 0.0
        )
        force = MASS_KG * s.accel + resist
        ratio = self._ratio()
        in_gear = s.engine_running and ratio > 0.0
        brake_force = 0.0
        engine_torque = 0.0
        s.fuel_cut = False
        if in_gear and force > 0:
            engine_torque = force * TYRE_RADIUS_M / (ratio * FINAL_DRIVE * DRIVELINE_EFFICIENCY)
        elif in_gear:
            drag = 0.0
            if s.rpm > 1100.0:  # overrun: injectors off, the engine drags
                s.fuel_cut = True
                drag = 25.0 * ratio * FINAL_DRIVE * DRIVELINE_EFFICIENCY / TYRE_RADIUS_M
            brake_force = max(0.0, -force - drag)
        else:
            brake_force = max(0.0, -force)
        hold = 0.0
        if v == 0.0 and s.selector in ("D", "R") and s.engine_running and a_des <= 0.0:
            hold = 12.0  # foot on the brake against creep
        if (s.phase == "warmup" and s.segment_t >= WARMUP_IDLE_S - 1.0) or (
            s.phase == "drive" and DRIVE_LOOP[s.segment].kind == "park" and s.selector != "P"
        ):
            hold = 25.0  # foot on the brake while moving the selector
        target_bar = clamp(brake_force / 130.0 + hold, 0.0, 250.0)
        s.brake_bar += (target_bar - s.brake_bar) * min(1.0, dt / 0.1)
        if s.brake_bar < 0.05:
            s.brake_bar = 0.0
        s.brake_pedal = clamp(s.brake_bar / 0.8, 0.0, 100.0)
        s.brake_switch = s.brake_pedal > 2.0
        self._engine_torque = engine_torque

    def _ratio(self) -> float:
        g = self.state.gear
        if 1 <= g <= 6:
            return GEAR_RATIOS[g - 1]
        if g == 7:
            return 3.9
        return 0.0

    def _gearbox(self, dt: float) -> None:
        s = self.state
        sel = s.selector
        if sel in ("P", "N"):
            s.gear = 0
        elif sel == "R":
            s.gear = 7
        else:
            if s.gear in (0, 7):
                s.gear = 1
            s.shift_timer = max(0.0, s.shift_timer - dt)
            if s.shift_timer == 0.0:
                g = s.gear
                if g < 6 and s.speed_kmh > UPSHIFT_KMH[g - 1]:
                    s.gear, s.shift_timer = g + 1, SHIFT_TIME_S
                elif g > 1 and s.speed_kmh < DOWNSHIFT_KMH[g - 2]:
                    s.gear, s.shift_timer = g - 1, SHIFT_TIME_S
        if s.gear == 0:
            s.shift_timer = 0.0
        wheel_rpm = s.speed_kmh / 3.6 / TYRE_RADIUS_M * 60.0 / (2.0 * math.pi)
        ratio = self._ratio()
        if ratio:
            s.turbine_rpm = wheel_rpm * FINAL_DRIVE * ratio
        else:
            s.turbine_rpm = 0.97 * s.rpm  # unloaded turbine follows the impeller
        shifting = s.shift_timer > 0.0
        if ratio and 3 <= s.gear <= 6 and not shifting and s.turbine_rpm > 1150.0 and not s.brake_switch:
            s.converter = "Locked"
        elif ratio and (shifting or s.gear >= 2) and s.turbine_rpm > 900.0:
            s.converter = "Slipping"
        else:
            s.converter = "Open"
        s.trans_oil_c += ((s.coolant_c - 4.0) - s.trans_oil_c) * dt / 240.0 if s.engine_running else 0.0

    def _engine(self, dt: float) -> None:
        s = self.state
        rng = self._rng
        coolant_seen = self._reading("ENGINE_TEMPS", "CoolantTemp", s.coolant_c)
        if s.starter:
            target = (150.0 if self._has("weak_battery") else 220.0) + rng.gauss(0.0, 12.0)
            s.rpm += (target - s.rpm) * min(1.0, dt / 0.1)
            s.load, s.throttle, s.accel_pedal = 0.0, 3.0, 0.0
            s.map_kpa, s.maf_gs, s.fuel_rate_lh = 92.0, 0.8, 0.0
            s.revolutions += s.rpm / 60.0 * dt
            return
        if not s.engine_running:
            s.rpm = max(0.0, s.rpm - 3000.0 * dt)
            s.load = s.throttle = s.accel_pedal = s.maf_gs = s.fuel_rate_lh = 0.0
            s.map_kpa = BAROMETRIC_KPA
            return
        s.run_t += dt
        # A cold engine (or one whose coolant sensor reads cold) idles faster.
        idle = IDLE_RPM_WARM + 450.0 * clamp((60.0 - coolant_seen) / 60.0, 0.0, 1.0)
        idle += 650.0 * math.exp(-s.run_t / 0.8)  # start flare
        torque = self._engine_torque
        cold = 4.0 if coolant_seen < 40.0 else 0.0
        load = 4.0 if s.fuel_cut else clamp(12.0 + cold + 88.0 * torque / MAX_TORQUE_NM, 0.0, 100.0)
        s.load += (load - s.load) * min(1.0, dt / 0.08)
        if s.converter == "Locked":
            target = s.turbine_rpm
            s.rpm = target
        else:
            if s.converter == "Slipping":
                target = max(idle, s.turbine_rpm * (1.02 + 0.0006 * s.load))
            elif self._ratio():
                target = max(s.turbine_rpm * (1.04 + 0.002 * s.load), idle + 14.0 * max(0.0, s.load - 12.0))
            else:
                target = idle
            s.rpm += (target - s.rpm) * min(1.0, dt / 0.12)
        # Combustion roughness; a misfiring cylinder kicks the crank speed down.
        s.rpm = max(0.0, s.rpm + rng.gauss(0.0, 2.0))
        cam = s.rpm / 120.0 * dt
        s.revolutions += 2.0 * cam
        s.cam_phase += cam
        misfires = 0
        while s.cam_phase >= 1.0:
            s.cam_phase -= 1.0
            if self._has("misfire_cyl2") and rng.random() < 0.5:
                misfires += 1
        coupling = 0.25 if s.converter == "Locked" else 1.0
        s.misfire_dip = s.misfire_dip * math.exp(-dt / 0.1) + misfires * 70.0 * coupling
        # Misfires counted over a sliding window of about 1000 revolutions.
        decay = math.exp(-2.0 * cam / 1000.0)
        c1, c2, c3, c4 = s.misfire_counts
        s.misfire_counts = (c1 * decay, c2 * decay + misfires, c3 * decay, c4 * decay)

        s.throttle = 0.0 if s.fuel_cut else clamp(2.5 + 0.92 * s.load, 0.0, 100.0)
        s.accel_pedal = (
            0.0 if s.fuel_cut or not self._ratio() else clamp((s.load - 12.0 - cold) * 1.14, 0.0, 100.0)
        )
        s.map_kpa = 15.0 + 1.4 * s.load
        s.maf_gs = (
            DISPLACEMENT_M3 * s.rpm / 120.0 * (s.map_kpa / BAROMETRIC_KPA) * AIR_DENSITY * 0.85 * 1000.0
        )
        if s.fuel_cut:
            lam = 5.0
        elif coolant_seen < 35.0:
            lam = 0.92  # open-loop cold enrichment
        else:
            lam = 1.0 + rng.gauss(0.0, 0.004)
        if self._has("misfire_cyl2") and not s.fuel_cut:
            lam += 0.04  # unburnt oxygen from the dead cylinder looks lean
        s.lambda_ = lam
        s.stft = (6.0 if self._has("misfire_cyl2") else 0.0) + rng.gauss(0.0, 0.8)
        s.ignition_advance = 8.0 + 22.0 * clamp(s.rpm / 3000.0, 0.0, 1.0) - 15.0 * s.load / 100.0
        s.knock_retard = max(0.0, (s.load - 75.0) * 0.08 + (s.oil_c - 110.0) * 0.05)
        fuel_gs = 0.0 if s.fuel_cut else s.maf_gs / (14.7 * lam)
        s.fuel_rate_lh = fuel_gs * 3600.0 / FUEL_DENSITY_G_PER_L
        self._fuel_power_w = fuel_gs * FUEL_ENERGY_J_PER_G
        used = s.fuel_rate_lh * dt / 3600.0
        s.fuel_used_l += used
        s.fuel_l = max(0.0, s.fuel_l - used)
        hot_oil = 1.0 - clamp((s.oil_c - 20.0) * 0.008, 0.0, 0.75)
        s.oil_bar = (0.8 + 2.2 * s.rpm / 3000.0) * (0.6 + hot_oil)

    def _thermal(self, dt: float) -> None:
        s = self.state
        amb = s.outside_c
        heat = 0.0
        if s.engine_running:
            # A share of the fuel's energy reaches the coolant; on overrun friction still heats.
            heat = max(0.30 * self._fuel_power_w, 1500.0 * s.rpm / 1000.0)
        s.thermostat = clamp((s.coolant_c - 89.0) / 10.0, 0.0, 1.0)
        radiator = s.thermostat * 900.0 * (s.coolant_c - amb) * (1.0 + s.speed_kmh / 60.0)
        # Only part of the heater's draw is charged to this small (thermostat-closed) circuit;
        # the engine block we do not model supplies the rest, which keeps warm-up monotonic.
        heater = min(500.0, 20.0 * max(0.0, s.coolant_c - 45.0)) if s.fan > 0 else 0.0
        loss = 12.0 * (s.coolant_c - amb) + heater + radiator
        s.coolant_c += (heat - loss) / 18_000.0 * dt
        oil_heat = 120.0 * s.rpm / 1000.0 * (1.0 + s.load / 40.0) if s.engine_running else 0.0
        exchange = 60.0
        if self._has("oil_overtemperature"):
            oil_heat += 1500.0
            exchange = 25.0
        s.oil_c += (exchange * (s.coolant_c - s.oil_c) + oil_heat - 4.0 * (s.oil_c - amb)) / 12_000.0 * dt
        intake_target = (
            amb + 4.0 + 10.0 * s.load / 100.0 + (8.0 if s.engine_running and s.speed_kmh < 5 else 0.0)
        )
        s.intake_c += (intake_target - s.intake_c) * dt / 20.0

    def _ocv(self) -> float:
        """Open-circuit voltage of the battery at its state of charge."""
        worn = 0.35 if self._has("weak_battery") else 0.0
        return 11.85 + 0.0085 * self.state.soc - worn

    def _electrical(self, dt: float) -> None:
        s = self.state
        weak = self._has("weak_battery")
        r_int = 0.022 if weak else 0.013
        ocv = self._ocv()
        loads = 0.03
        if s.key in ("Run", "Crank"):
            loads = 16.0 + 2.5 * s.fan + (9.0 if s.low_beam else 0.0) + (2.0 if s.high_beam else 0.0)
        if s.starter:
            current = -(loads + 150.0 + 60.0 * math.exp(-s.crank_t / 0.25))
            s.battery_v = ocv + current * r_int
            s.alternator = "Off"
        elif s.engine_running:
            s.alternator = "Limited" if s.load > 85.0 else "Charging"
            v_reg = clamp(14.4 - 0.006 * (s.coolant_c - 20.0), 13.8, 14.4)
            if s.alternator == "Limited":
                v_reg = 13.8  # regulator backs off to give the engine its torque
            # A battery takes less charge as it fills; a worn one also accepts less.
            current = clamp((v_reg - ocv) / (0.18 if weak else 0.10), 0.0, 60.0)
            s.battery_v = v_reg
        else:
            current = -loads
            s.battery_v = ocv + current * r_int
            s.alternator = "Off"
        s.battery_a = current
        capacity = 25.0 if weak else BATTERY_AH
        s.soc = clamp(s.soc + current * dt / 3600.0 / capacity * 100.0, 0.0, 100.0)

    def _climate(self, dt: float) -> None:
        s = self.state
        on = s.key == "Run"
        demand = s.setpoint_c - s.cabin_c
        heat = cool = 0.0
        if on:
            s.fan = int(clamp(1.0 + abs(demand) / 2.5, 1.0, 7.0))
            if demand > 0 and s.coolant_c < 45.0:
                s.fan = 1  # no point blowing cold air while the engine is cold
            capacity = clamp(120.0 * (s.coolant_c - s.cabin_c) * s.fan / 4.0, 0.0, 4000.0)
            # Blend door: heat to hold the set point against losses, limited by the heater core.
            heat = clamp(2000.0 * demand + 40.0 * (s.cabin_c - s.outside_c), 0.0, capacity)
            s.ac = demand < -0.5 and s.outside_c > 2.0
            cool = 1500.0 * -demand if s.ac else 0.0
            s.defrost = s.outside_c < 6.0 and s.phase == "drive" and s.loop == 0 and s.segment < 4
        else:
            s.fan, s.ac, s.defrost = 0, False, False
        loss = 40.0 * (s.cabin_c - s.outside_c)
        s.cabin_c += (heat - cool - loss + 60.0) / 60_000.0 * dt

    def _body(self, dt: float) -> None:
        s = self.state
        if s.trunk_release_t > 0.0:
            s.trunk_release_t -= dt
            if s.trunk_release_t <= 0.0:
                s.trunk = False
        if s.interior_override is None:
            s.interior_light = any(s.doors) or s.trunk or s.key == "Off"
        else:
            s.interior_light = s.interior_override
        if s.hazard or s.indicator:
            s.blink_t += dt
        else:
            s.blink_t = 0.0
        s.ambient_lux = 20.0 + 330.0 * math.exp(-s.t / 900.0)

    def _chassis_sensors(self, dt: float) -> None:
        s = self.state
        rng = self._rng
        seg = DRIVE_LOOP[s.segment] if s.phase == "drive" else None
        if seg is not None and seg.kind == "turn":
            x = math.pi * s.segment_t / seg.duration
            angle = seg.steer_deg * math.sin(x)
            rate = seg.steer_deg * math.cos(x) * math.pi / seg.duration
        elif s.speed_kmh > 1.0:
            # Small lane-keeping corrections.
            angle = 1.5 * math.sin(0.4 * s.t) + 0.8 * math.sin(1.3 * s.t)
            rate = 0.6 * math.cos(0.4 * s.t) + 1.04 * math.cos(1.3 * s.t)
        else:
            angle = rate = 0.0
        s.steering_deg, s.steering_rate = angle, rate
        s.driver_torque = clamp(0.012 * angle + 0.004 * rate + rng.gauss(0.0, 0.05), -12.0, 12.0)

        v = s.speed_kmh / 3.6
        kappa = math.tan(math.radians(angle / STEERING_RATIO)) / WHEELBASE_M  # 1/m, + = left
        half = TRACK_M / 2.0
        front = math.sqrt(1.0 + (WHEELBASE_M * kappa) ** 2)  # front wheels run on wider arcs
        slip = 1.0 + (0.003 * s.load / 50.0 if s.accel > 0.2 else 0.0)  # driven front wheels
        raw = (
            v * (1.0 - kappa * half) * front * slip,
            v * (1.0 + kappa * half) * front * slip,
            v * (1.0 - kappa * half),
            v * (1.0 + kappa * half),
        )
        wheels = []
        pulses = list(s.wheel_pulses)
        for i, w in enumerate(raw):
            kmh = w * 3.6 * self._tyre_factor[i]
            kmh = max(0.0, kmh + rng.gauss(0.0, 0.04)) if v > 0.0 else 0.0
            wheels.append(kmh)
            if not (i == 0 and self._has("wheel_speed_fl_dropout")):
                pulses[i] = (
                    pulses[i] + kmh / 3.6 * dt / (2.0 * math.pi * TYRE_RADIUS_M) * WHEEL_PULSES_PER_REV
                ) % 65536.0
        s.wheel_kmh = (wheels[0], wheels[1], wheels[2], wheels[3])
        s.wheel_pulses = (pulses[0], pulses[1], pulses[2], pulses[3])
        lat = v * v * kappa
        s.roll_rate = 0.5 * (lat - s.lat_accel) / dt if dt > 0 else 0.0
        s.lat_accel = lat
        s.yaw_rate = math.degrees(v * kappa) + rng.gauss(0.0, 0.05)
        s.vert_accel = rng.gauss(0.0, 0.05 + 0.004 * s.speed_kmh)


def _choice(value: SignalValue | None, names: tuple[str, ...]) -> str | None:
    """A value-table entry as its name, whether decoded with choices or as a raw number."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        index = int(value)
        return names[index] if 0 <= index < len(names) else None
    return str(value)  # a name, or cantools' NamedSignalValue (whose str() is the name)
