"""The demo car's fixed facts (dimensions, ratios, the timing of its story), the messages it
sends, and its state at one instant: what the physics, the driving script and the signal
mapping all share."""

from __future__ import annotations

from dataclasses import dataclass

# --- the car ------------------------------------------------------------------------------
MASS_KG = 1350.0
CDA_M2 = 0.62  # drag coefficient x frontal area
AIR_DENSITY = 1.2
ROLLING_RESISTANCE = 0.011
GRAVITY = 9.81
TYRE_RADIUS_M = 0.315  # 205/55 R16
WHEELBASE_M = 2.60
TRACK_M = 1.55
STEERING_RATIO = 15.0
GEAR_RATIOS = (4.46, 2.51, 1.56, 1.14, 0.85, 0.67)
FINAL_DRIVE = 3.74
DRIVELINE_EFFICIENCY = 0.92
MAX_TORQUE_NM = 250.0
DISPLACEMENT_M3 = 1.4e-3
TANK_L = 50.0
BATTERY_AH = 60.0
WHEEL_PULSES_PER_REV = 96
FUEL_DENSITY_G_PER_L = 745.0
FUEL_ENERGY_J_PER_G = 43_000.0
BAROMETRIC_KPA = 101.3
# Shift schedule of the D position, road speed in km/h: up from gear i+1 at UP[i], down
# from gear i+2 at DOWN[i]. The gap is the hysteresis that stops hunting between gears.
UPSHIFT_KMH = (15.0, 28.0, 42.0, 56.0, 68.0)
DOWNSHIFT_KMH = (8.0, 22.0, 36.0, 48.0, 60.0)
SHIFT_TIME_S = 0.35
IDLE_RPM_WARM = 750.0
MAX_STEP_S = 0.05  # larger steps are split, so any time_scale gives the same physics

# --- the story ----------------------------------------------------------------------------
KEY_ON_AT_S = 1.0
CRANK_AT_S = 2.0
WARMUP_IDLE_S = 8.0
BULB_CHECK_S = 2.0
AUTO_LOCK_KMH = 15.0

MESSAGES = (
    "WHEEL_SPEEDS",
    "ABS_STATUS",
    "ENGINE_DATA",
    "BRAKE_STATUS",
    "STEERING",
    "ESC_DYNAMICS_FD",
    "TRANSMISSION",
    "BODY_STATUS",
    "LIGHT_STATUS",
    "ENGINE_STATUS_MUX",
    "ENGINE_TEMPS",
    "CLUSTER_STATUS",
    "BATTERY_STATUS",
    "CLIMATE_STATUS",
)


@dataclass(slots=True)
class VehicleState:
    """Everything the car is at one instant (SI units except where the name says)."""

    t: float = 0.0
    phase: str = "off"  # off, ignition, crank, warmup, drive
    loop: int = 0
    segment: int = 0
    segment_t: float = 0.0
    key: str = "Off"  # Off, Accessory, Run, Crank
    key_on_t: float = -1.0
    # engine
    engine_running: bool = False
    starter: bool = False
    crank_t: float = 0.0
    run_t: float = 0.0
    rpm: float = 0.0
    misfire_dip: float = 0.0
    cam_phase: float = 0.0
    revolutions: float = 0.0
    misfire_counts: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    accel_pedal: float = 0.0
    throttle: float = 0.0
    load: float = 0.0
    fuel_cut: bool = False
    map_kpa: float = BAROMETRIC_KPA
    maf_gs: float = 0.0
    lambda_: float = 1.0
    stft: float = 0.0
    ltft: float = 1.6
    ignition_advance: float = 0.0
    knock_retard: float = 0.0
    fuel_rate_lh: float = 0.0
    fuel_used_l: float = 0.0
    coolant_c: float = 10.0
    oil_c: float = 10.0
    intake_c: float = 10.0
    oil_bar: float = 0.0
    thermostat: float = 0.0
    # gearbox
    selector: str = "P"
    gear: int = 0  # 0 = neutral/park, 1..6, 7 = reverse
    shift_timer: float = 0.0
    converter: str = "Open"  # Open, Slipping, Locked
    turbine_rpm: float = 0.0
    trans_oil_c: float = 10.0
    # chassis
    speed_kmh: float = 0.0
    accel: float = 0.0
    target_kmh: float = 0.0
    wheel_kmh: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # FL FR RL RR
    wheel_pulses: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    yaw_rate: float = 0.0  # deg/s, + = left
    lat_accel: float = 0.0
    roll_rate: float = 0.0
    vert_accel: float = 0.0
    brake_bar: float = 0.0
    brake_pedal: float = 0.0
    brake_switch: bool = False
    parking_brake: bool = True
    steering_deg: float = 0.0
    steering_rate: float = 0.0
    driver_torque: float = 0.0
    # body
    doors: tuple[bool, bool, bool, bool] = (True, False, False, False)  # FL FR RL RR
    trunk: bool = False
    hood: bool = False
    trunk_release_t: float = 0.0
    locked: bool = False
    seatbelt: bool = False
    interior_light: bool = True
    interior_override: bool | None = None
    low_beam: bool = False
    high_beam: bool = False
    lights_override: str | None = None  # "Off", "LowBeam", "HighBeam" once commanded
    indicator: str | None = None  # scenario request: "left" / "right"
    hazard: bool = False
    blink_t: float = 0.0
    ambient_lux: float = 350.0
    # electrical
    battery_v: float = 12.6
    battery_a: float = 0.0
    soc: float = 85.0
    alternator: str = "Off"  # Off, Charging, Limited, Fault
    # climate
    outside_c: float = 10.0
    cabin_c: float = 10.0
    setpoint_c: float = 21.5
    fan: int = 0
    ac: bool = False
    defrost: bool = False
    recirculation: bool = False
    # cluster
    odometer_km: float = 48_213.4
    trip_km: float = 0.0
    fuel_l: float = 30.0


def clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x
