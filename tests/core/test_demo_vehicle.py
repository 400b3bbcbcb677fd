"""The demo DBC, the vehicle physics, its faults, and the vehicle on a virtual bus."""

from __future__ import annotations

import itertools
import math
import statistics
import threading
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator

import can
import cantools
import pytest

from workshop_app.core import bittiming
from workshop_app.core.sim import vehicle_model as vm
from workshop_app.core.sim.demo_vehicle import DemoVehicle, crc8_sae_j1850, xor8
from workshop_app.core.sim.faults import FAULTS, available_faults
from workshop_app.paths import demo_dbc_path

_channels = itertools.count()


@pytest.fixture(scope="module")
def db():
    return cantools.database.load_file(str(demo_dbc_path()))


@pytest.fixture
def buses(request) -> Iterator[tuple[can.BusABC, can.BusABC]]:
    """Two endpoints of one fresh virtual bus: (vehicle side, tester side)."""
    channel = f"demo-{request.node.name}-{next(_channels)}"
    car_bus = can.Bus(interface="virtual", channel=channel)
    tester = can.Bus(interface="virtual", channel=channel)
    yield car_bus, tester
    car_bus.shutdown()
    tester.shutdown()


def collect(bus: can.BusABC, seconds: float) -> list[can.Message]:
    out = []
    end = time.perf_counter() + seconds
    while (left := end - time.perf_counter()) > 0:
        msg = bus.recv(timeout=min(left, 0.05))
        if msg is not None:
            out.append(msg)
    return out


def wait_for(
    bus: can.BusABC, db, name: str, pred: Callable[[dict], bool], timeout: float = 1.0
) -> dict | None:
    msg_def = db.get_message_by_name(name)
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        msg = bus.recv(timeout=0.05)
        if msg is not None and msg.arbitration_id == msg_def.frame_id:
            decoded = msg_def.decode(msg.data)
            if pred(decoded):
                return decoded
    return None


# --- the database -------------------------------------------------------------------------


def test_dbc_loads_strictly_without_any_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = cantools.database.load_file(str(demo_dbc_path()), strict=True)
    assert len(loaded.messages) >= 14
    assert {n.name for n in loaded.nodes} >= {
        "ECM",
        "TCM",
        "ABS",
        "EPS",
        "BCM",
        "IBS",
        "HVAC",
        "IPC",
        "TESTER",
    }


def test_dbc_has_every_feature(db):
    signals = [s for m in db.messages for s in m.signals]
    assert any(s.byte_order == "little_endian" for s in signals)
    assert any(s.byte_order == "big_endian" for s in signals)
    assert any(s.is_signed and not s.is_float for s in signals)
    assert [s.name for s in signals if s.is_float] == ["BatteryCurrent"]
    assert any(s.scale != 1 and s.offset != 0 for s in signals)
    assert sum(1 for s in signals if s.choices) >= 20
    assert db.get_message_by_name("TRANSMISSION").get_signal_by_name("GearSelector").choices[3] == "D"
    assert [m.name for m in db.messages if m.is_multiplexed()] == ["ENGINE_STATUS_MUX"]
    assert len([m for m in db.messages if m.is_extended_frame]) >= 2
    fd = [m for m in db.messages if m.is_fd]
    assert [(m.name, m.length) for m in fd] == [("ESC_DYNAMICS_FD", 32)]
    assert fd[0].dbc.attributes["VFrameFormat"].value == 14
    periodic = [m for m in db.messages if m.cycle_time]
    assert len(periodic) == len(db.messages) - 1  # all but the received BODY_COMMAND
    assert all(m.comment for m in db.messages)
    assert all(m.senders for m in db.messages)
    assert sum(1 for s in signals if s.comment) >= 40
    assert sum(1 for s in signals if s.unit) >= 40
    assert all(s.minimum is not None and s.maximum is not None for s in signals)
    roles = {
        (m.name, s.name): s.dbc.attributes["SignalFunction"].value
        for m in db.messages
        for s in m.signals
        if "SignalFunction" in s.dbc.attributes
    }
    assert sorted(roles.values()).count(1) == 6  # rolling counters
    assert {2, 3} <= set(roles.values())  # XOR8 and CRC8 checksums
    # Which checksum is which is documented on the signals themselves.
    for (msg_name, sig_name), role in roles.items():
        comment = db.get_message_by_name(msg_name).get_signal_by_name(sig_name).comment
        assert {1: "Rolling counter", 2: "XOR8", 3: "CRC8 (SAE J1850)"}[role] in comment


def _sample_value(signal):
    if signal.choices:
        return str(next(iter(signal.choices.values())))
    lo, hi = signal.minimum, signal.maximum
    return lo + (hi - lo) * 0.37


def test_every_message_round_trips(db):
    for msg in db.messages:
        if msg.is_multiplexed():
            pages = msg.signal_tree[0]["EngStatusPage"]
            groups = [(page, names) for page, names in pages.items()]
        else:
            groups = [(None, [s.name for s in msg.signals])]
        for page, names in groups:
            values = {n: _sample_value(msg.get_signal_by_name(n)) for n in names}
            if page is not None:
                values["EngStatusPage"] = page
            data = msg.encode(values, strict=True)
            assert len(data) == msg.length
            decoded = msg.decode(data, decode_choices=True)
            for name, value in values.items():
                got = decoded[name]
                if isinstance(value, str):
                    assert str(got) == value, (msg.name, name)
                elif name == "EngStatusPage":
                    assert got == page or str(got) == str(msg.get_signal_by_name(name).choices[page])
                else:
                    sig = msg.get_signal_by_name(name)
                    tol = abs(sig.scale) if not sig.is_float else abs(value) * 1e-6
                    assert got == pytest.approx(value, abs=tol), (msg.name, name)


# --- the physics --------------------------------------------------------------------------


def run(
    model: vm.VehicleModel, seconds: float, dt: float = 0.05, each: Callable[[], None] | None = None
) -> None:
    for _ in range(round(seconds / dt)):
        model.step(dt)
        if each is not None:
            each()


def test_cold_start_warm_up_is_monotonic_to_about_90():
    m = vm.VehicleModel(seed=2)
    start = m.state.coolant_c
    temps: list[float] = []
    oil: list[float] = []
    run(m, 600.0, each=lambda: (temps.append(m.state.coolant_c), oil.append(m.state.oil_c)))
    reached = next(i for i, t in enumerate(temps) if t >= 88.0)
    assert 90.0 < reached * 0.05 < 300.0  # a few simulated minutes
    before = temps[: reached + 1]
    assert all(b >= a for a, b in itertools.pairwise(before)), "coolant dropped while warming up"
    assert before[0] < start + 1.0
    assert all(86.0 <= t <= 95.0 for t in temps[reached:])  # the thermostat holds ~90 °C
    # Oil lags behind the coolant.
    assert oil[reached] < temps[reached] - 10.0


def test_crank_sags_the_battery_then_the_alternator_charges():
    m = vm.VehicleModel(seed=0)
    rest = m.state.battery_v
    volts, crank_time = [], [0.0]

    def sample() -> None:
        if m.state.starter:
            volts.append(m.state.battery_v)
            crank_time[0] += 0.01

    run(m, 6.0, dt=0.01, each=sample)
    assert 12.4 < rest < 12.8
    assert min(volts) >= 9.4
    assert max(volts) <= 10.6
    assert 0.8 <= crank_time[0] <= 1.2
    assert m.state.engine_running
    run(m, 5.0)
    sig = m.signals_for("BATTERY_STATUS")
    assert 13.8 <= sig["BatteryVoltage"] <= 14.4
    assert sig["BatteryCurrent"] > 0  # charging
    assert sig["AlternatorState"] == "Charging"


def test_rpm_matches_speed_gear_ratio_and_tyres():
    m = vm.VehicleModel(seed=4)
    checked = [0]
    gears = set()
    drops = []
    prev = {"gear": 0, "rpm": 0.0}

    def check() -> None:
        s = m.state
        if 1 <= s.gear <= 6 and s.gear > prev["gear"] >= 1:
            drops.append((prev["rpm"], s.gear))
        if s.converter == "Locked" and s.shift_timer == 0.0:
            wheel_rpm = s.speed_kmh / 3.6 / vm.TYRE_RADIUS_M * 60.0 / (2.0 * math.pi)
            expected = wheel_rpm * vm.FINAL_DRIVE * vm.GEAR_RATIOS[s.gear - 1]
            sig = m.signals_for("ENGINE_DATA")["EngineSpeed"]
            assert sig == pytest.approx(expected, rel=0.02)
            trans = m.signals_for("TRANSMISSION")
            assert trans["TurbineSpeed"] == pytest.approx(expected, rel=1e-6)
            assert trans["OutputShaftSpeed"] == pytest.approx(wheel_rpm * vm.FINAL_DRIVE, rel=1e-6)
            checked[0] += 1
            gears.add(s.gear)
        prev["gear"], prev["rpm"] = s.gear, s.rpm

    run(m, 200.0, dt=0.02, each=check)
    assert checked[0] > 2000
    assert gears >= {3, 4, 6}
    assert len(drops) >= 5  # upshifts happen...
    assert all(rpm > 1500 for rpm, _ in drops)  # ...from a raised engine speed


def test_engine_speed_drops_on_upshift():
    m = vm.VehicleModel(seed=4)
    run(m, 11.0)  # warm-up idle over, pulling away
    before, after = None, None
    for _ in range(2000):
        gear = m.state.gear
        m.step(0.01)
        if gear == 1 and m.state.gear == 2:
            before = m.state.rpm
            run(m, 0.4, dt=0.01)
            after = m.state.rpm
            break
    assert before is not None and after is not None
    assert after < before - 500


def test_wheel_speeds_follow_vehicle_speed():
    m = vm.VehicleModel(seed=6)
    counts = {"straight": 0, "turn": 0}

    def check() -> None:
        s = m.state
        if s.speed_kmh < 5.0:
            return
        fl, fr, rl, rr = s.wheel_kmh
        if abs(s.steering_deg) < 5.0:
            for w in s.wheel_kmh:
                assert w == pytest.approx(s.speed_kmh, rel=0.012, abs=0.3)
            counts["straight"] += 1
        else:
            # The rear axle centre runs at vehicle speed; the outer wheels run faster.
            assert (rl + rr) / 2 == pytest.approx(s.speed_kmh, rel=0.005, abs=0.2)
            if s.steering_deg > 30:
                assert rr > rl and fr > fl
            if s.steering_deg < -30:
                assert rl > rr and fl > fr
            counts["turn"] += 1
        abs_speed = m.signals_for("ABS_STATUS")["VehicleSpeed"]
        assert abs_speed == pytest.approx(s.speed_kmh, rel=0.03, abs=0.3)

    run(m, 160.0, dt=0.05, each=check)
    assert counts["straight"] > 500 and counts["turn"] > 100


def test_odometer_and_fuel_integrate():
    m = vm.VehicleModel(seed=8)
    odo0, fuel0, trip0 = m.state.odometer_km, m.state.fuel_l, m.state.trip_km
    dist = [0.0]
    fuel = [0.0]

    def integrate() -> None:
        dist[0] += m.state.speed_kmh * 0.02 / 3600.0
        fuel[0] += m.state.fuel_rate_lh * 0.02 / 3600.0

    run(m, 240.0, dt=0.02, each=integrate)
    assert dist[0] > 1.0
    assert m.state.odometer_km - odo0 == pytest.approx(dist[0], rel=0.01)
    assert m.state.trip_km - trip0 == pytest.approx(dist[0], rel=0.01)
    assert fuel0 - m.state.fuel_l == pytest.approx(fuel[0], rel=0.01)
    cluster = m.signals_for("CLUSTER_STATUS")
    assert cluster["Odometer"] == pytest.approx(m.state.odometer_km)
    assert cluster["FuelLevel"] == pytest.approx(m.state.fuel_l / vm.TANK_L * 100.0)


def test_same_seed_same_car_other_seed_other_car():
    a, b, c = vm.VehicleModel(seed=3), vm.VehicleModel(seed=3), vm.VehicleModel(seed=4)
    for model in (a, b, c):
        run(model, 60.0, dt=0.03)
    assert a.state == b.state
    assert all(a.signals_for(n) == b.signals_for(n) for n in vm.MESSAGES)
    assert a.state != c.state
    # One big step is split into the same sub-steps as many small ones.
    d, e = vm.VehicleModel(seed=5), vm.VehicleModel(seed=5)
    d.step(10.0)
    run(e, 10.0, dt=0.05)
    assert d.state.t == pytest.approx(e.state.t)
    assert d.state.phase == e.state.phase and d.state.engine_running == e.state.engine_running


def test_story_events_climate_and_body():
    m = vm.VehicleModel(seed=1)
    seen: dict[str, bool] = defaultdict(bool)

    def watch() -> None:
        s = m.state
        seen["door_opened"] |= s.doors[1]
        seen["trunk_opened"] |= s.trunk
        seen["low_beam"] |= s.low_beam
        seen["high_beam"] |= s.high_beam
        seen["left"] |= m.signals_for("LIGHT_STATUS")["IndicatorLeft"] == "On"
        seen["right"] |= m.signals_for("LIGHT_STATUS")["IndicatorRight"] == "On"
        seen["brake_lights"] |= s.brake_switch and s.speed_kmh > 10
        seen["locked"] |= s.locked
        seen["reverse"] |= s.selector == "R"
        seen["stopped_in_p"] |= s.phase == "drive" and s.selector == "P"

    run(m, 220.0, each=watch)
    assert all(seen[k] for k in ("door_opened", "trunk_opened", "low_beam", "high_beam", "left", "right")), (
        seen
    )
    assert all(seen[k] for k in ("brake_lights", "locked", "reverse", "stopped_in_p")), seen
    run(m, 400.0)
    # Climate converges to the set point once the engine is warm.
    assert m.state.cabin_c == pytest.approx(m.state.setpoint_c, abs=1.0)


def test_body_command_changes_model_state():
    m = vm.VehicleModel(seed=1)
    m.apply_body_command({"LightsRequest": "HighBeam", "LockRequest": 1, "HazardRequest": "On"})
    assert m.state.low_beam and m.state.high_beam and m.state.locked and m.state.hazard
    m.apply_body_command({"LightsRequest": 1, "LockRequest": "Unlock", "TrunkReleaseRequest": 1})
    assert not m.state.low_beam and not m.state.locked and m.state.trunk
    run(m, 20.0)  # the scenario does not override a commanded light state
    assert not m.state.low_beam
    assert m.signals_for("LIGHT_STATUS")["LowBeam"] == "Off"


# --- faults on the model ------------------------------------------------------------------


def _warm(seed: int = 1, seconds: float = 30.0) -> vm.VehicleModel:
    m = vm.VehicleModel(seed=seed)
    m.step(seconds)
    return m


def test_fault_catalogue():
    faults = available_faults()
    assert len(faults) >= 8
    assert faults == {n: f.description for n, f in FAULTS.items()}
    for f in FAULTS.values():
        assert f.dtcs and all(len(code) == 5 and code[0] in "PCBU" for code, _ in f.dtcs)
        assert f.ecu in {"ECM", "TCM", "ABS", "EPS", "BCM", "IBS", "HVAC", "IPC", "GW"}
    m = vm.VehicleModel()
    with pytest.raises(KeyError, match="unknown fault"):
        m.inject_fault("flux_capacitor")
    m.inject_fault("misfire_cyl2")
    m.inject_fault("misfire_cyl2")
    assert m.active_faults == ("misfire_cyl2",)
    assert m.active_dtcs() == [("ECM", "P0302", "Cylinder 2 misfire detected")]
    m.clear_faults()
    assert m.active_faults == () and m.active_dtcs() == []


def test_fault_coolant_sensor_open_and_short():
    m = _warm(seconds=400.0)
    assert m.signals_for("ENGINE_TEMPS")["CoolantTemp"] > 80
    m.inject_fault("coolant_sensor_open")
    assert m.signals_for("ENGINE_TEMPS")["CoolantTemp"] == -40.0
    assert m.state.coolant_c > 80  # the engine itself is warm
    assert m.signals_for("CLUSTER_STATUS")["WarnCheckEngine"] == "On"
    m.clear_faults()
    m.inject_fault("coolant_sensor_short")
    assert m.signals_for("ENGINE_TEMPS")["CoolantTemp"] == 215.0
    assert m.signals_for("CLUSTER_STATUS")["WarnCoolantTemp"] == "On"


def test_fault_weak_battery_sags_deeper_and_cranks_longer():
    def crank(weak: bool) -> tuple[float, float, float]:
        m = vm.VehicleModel(seed=1)
        if weak:
            m.inject_fault("weak_battery")
        m.step(0.5)
        rest = m.state.battery_v  # key off
        low, cranking = 99.0, 0.0
        for _ in range(550):
            m.step(0.01)
            if m.state.starter:
                low = min(low, m.state.battery_v)
                cranking += 0.01
        return rest, low, cranking

    rest_ok, low_ok, t_ok = crank(False)
    rest_weak, low_weak, t_weak = crank(True)
    assert low_ok > 9.4 and low_weak < 9.0
    assert rest_weak < rest_ok - 0.2
    assert t_weak > t_ok + 0.5


def test_fault_wheel_speed_sensor_dropout():
    m = _warm(seconds=25.0)
    assert m.state.speed_kmh > 10
    m.inject_fault("wheel_speed_fl_dropout")
    pulses_before = m.signals_for("ESC_DYNAMICS_FD")
    m.step(1.0)
    pulses_after = m.signals_for("ESC_DYNAMICS_FD")
    assert m.signals_for("WHEEL_SPEEDS")["WheelSpeedFL"] == "Invalid"
    assert pulses_after["WheelPulsesFL"] == pulses_before["WheelPulsesFL"]
    assert pulses_after["WheelPulsesFR"] != pulses_before["WheelPulsesFR"]
    assert m.signals_for("ABS_STATUS")["AbsFaultPresent"] == 1.0
    assert m.signals_for("CLUSTER_STATUS")["WarnAbs"] == "On"


def test_fault_misfire_cylinder_2():
    def idle_rpm(fault: bool) -> tuple[list[float], dict]:
        m = vm.VehicleModel(seed=2)
        if fault:
            m.inject_fault("misfire_cyl2")
        m.step(7.0)  # idling in P, start flare over
        rpms = []
        for _ in range(250):
            m.step(0.01)
            rpms.append(float(m.signals_for("ENGINE_DATA")["EngineSpeed"]))
        return rpms, m.signals_for("ENGINE_STATUS_MUX")

    healthy, mux_ok = idle_rpm(False)
    rough, mux_bad = idle_rpm(True)
    assert statistics.pstdev(rough) > 3 * statistics.pstdev(healthy)
    assert min(rough) < min(healthy) - 30  # crank speed dips
    assert mux_bad["MisfireCountCyl2"] >= 5 and mux_ok["MisfireCountCyl2"] == 0
    assert mux_bad["MisfireCountCyl1"] == mux_bad["MisfireCountCyl3"] == mux_bad["MisfireCountCyl4"] == 0


def test_fault_brake_light_switch_stuck_open():
    m = _warm(seconds=20.0)
    m.inject_fault("brake_light_switch")
    for _ in range(6000):
        m.step(0.05)
        if m.state.brake_bar > 5.0 and m.state.speed_kmh > 10.0:
            break
    assert m.state.brake_bar > 5.0
    assert m.signals_for("BRAKE_STATUS")["BrakeLightSwitch"] == 0.0
    assert m.signals_for("LIGHT_STATUS")["BrakeLights"] == 0.0


def test_fault_oil_overtemperature():
    healthy, hot = vm.VehicleModel(seed=1), vm.VehicleModel(seed=1)
    hot.inject_fault("oil_overtemperature")
    healthy.step(900.0)
    hot.step(900.0)
    assert healthy.state.oil_c < 105.0
    assert hot.state.oil_c > 120.0
    assert hot.signals_for("ENGINE_TEMPS")["OilPressure"] < healthy.signals_for("ENGINE_TEMPS")["OilPressure"]
    assert hot.signals_for("CLUSTER_STATUS")["WarnCheckEngine"] == "On"


# --- the vehicle on a bus -----------------------------------------------------------------


def test_every_message_at_its_cycle_time(buses, db):
    car_bus, tester = buses
    car = DemoVehicle(car_bus, start_at=20.0, channel="sim", data_bitrate=2_000_000)
    car.start()
    try:
        frames = collect(tester, 2.0)
    finally:
        car.stop()
    assert car.last_error is None
    by_id: dict[int, list[can.Message]] = defaultdict(list)
    for f in frames:
        by_id[f.arbitration_id].append(f)
    sent = {m.frame_id: m for m in db.messages if m.cycle_time}
    assert set(by_id) == set(sent)
    for fid, msgs in by_id.items():
        msg_def = sent[fid]
        cycle = msg_def.cycle_time / 1000.0
        stamps = [m.timestamp for m in msgs]
        period = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
        assert period == pytest.approx(cycle, rel=0.05), msg_def.name
        assert len(msgs) == pytest.approx(2.0 / cycle, rel=0.15, abs=1), msg_def.name
        for m in msgs:
            assert m.is_extended_id == msg_def.is_extended_frame
            assert m.is_fd == msg_def.is_fd
            assert len(m.data) == msg_def.length
            msg_def.decode(m.data)  # every frame decodes
        if msg_def.is_fd:
            assert len(msgs[0].data) == 32 and msgs[0].bitrate_switch
    extended = [sent[f].name for f in by_id if sent[f].is_extended_frame]
    assert sorted(extended) == ["BATTERY_STATUS", "CLIMATE_STATUS"]

    last = {sent[fid].name: sent[fid].decode(msgs[-1].data) for fid, msgs in by_id.items()}
    assert str(last["ENGINE_DATA"]["EngineRunning"]) == "Running"
    assert 600 < last["ENGINE_DATA"]["EngineSpeed"] < 4000
    assert 0 < last["ABS_STATUS"]["VehicleSpeed"] < 120
    assert 13.5 < last["BATTERY_STATUS"]["BatteryVoltage"] < 14.5
    assert -40 <= last["ENGINE_TEMPS"]["CoolantTemp"] < 60
    assert str(last["TRANSMISSION"]["GearSelector"]) == "D"
    assert 40_000 < last["CLUSTER_STATUS"]["Odometer"] < 60_100
    assert str(last["BODY_STATUS"]["KeyPosition"]) == "Run"


def test_counters_and_checksums(buses, db):
    car_bus, tester = buses
    car = DemoVehicle(car_bus, start_at=15.0)
    car.start()
    try:
        frames = collect(tester, 0.5)
    finally:
        car.stop()
    checked = defaultdict(int)
    for name, counter, checksum, algo in (
        ("ENGINE_DATA", "EngineData_Counter", 7, "xor"),
        ("TRANSMISSION", "Transmission_Counter", 7, "xor"),
        ("STEERING", "Steering_Counter", 7, "crc"),
        ("ESC_DYNAMICS_FD", "EscFd_Counter", 0, "crc"),
    ):
        msg_def = db.get_message_by_name(name)
        counts = []
        for f in (f for f in frames if f.arbitration_id == msg_def.frame_id):
            expected = xor8(f.data, checksum) if algo == "xor" else crc8_sae_j1850(f.data, checksum)
            assert f.data[checksum] == expected, name
            counts.append(msg_def.decode(f.data)[counter])
            checked[name] += 1
        assert all((b - a) % 16 == 1 for a, b in itertools.pairwise(counts)), name
    assert min(checked.values()) >= 20


def test_body_command_changes_the_next_status_frame(buses, db):
    car_bus, tester = buses
    car = DemoVehicle(car_bus)  # key off, lights off, unlocked
    car.start()
    try:
        assert wait_for(tester, db, "LIGHT_STATUS", lambda d: d["LowBeam"] == "Off") is not None
        assert wait_for(tester, db, "BODY_STATUS", lambda d: d["LockState"] == "Unlocked") is not None
        cmd = db.get_message_by_name("BODY_COMMAND")
        request = {
            "LightsRequest": "LowBeam",
            "LockRequest": "Lock",
            "HazardRequest": "On",
            "InteriorLightRequest": "NoRequest",
            "TrunkReleaseRequest": "NoRequest",
        }
        sent_at = time.time()
        tester.send(can.Message(arbitration_id=cmd.frame_id, data=cmd.encode(request), is_extended_id=False))
        after = [f for f in collect(tester, 0.25) if f.timestamp > sent_at + 0.002]
        # Hand-typed bytes work too: LockRequest=Unlock is 2 << 2.
        sent_at2 = time.time()
        tester.send(can.Message(arbitration_id=cmd.frame_id, data=bytes([0x08, 0x00]), is_extended_id=False))
        after2 = [f for f in collect(tester, 0.25) if f.timestamp > sent_at2 + 0.002]
    finally:
        car.stop()

    def first(frames: list[can.Message], name: str) -> dict:
        msg_def = db.get_message_by_name(name)
        return next(msg_def.decode(f.data) for f in frames if f.arbitration_id == msg_def.frame_id)

    lights = first(after, "LIGHT_STATUS")
    assert lights["LowBeam"] == "On" and lights["ParkingLights"] == "On" and lights["HazardActive"] == "On"
    assert first(after, "BODY_STATUS")["LockState"] == "Locked"
    assert first(after2, "BODY_STATUS")["LockState"] == "Unlocked"
    assert car.commands_received == 2


def test_handle_message_without_own_listener(buses, db):
    car_bus, _ = buses
    car = DemoVehicle(car_bus, listen=False)
    cmd = db.get_message_by_name("BODY_COMMAND")
    car.handle_message(
        can.Message(arbitration_id=cmd.frame_id, data=bytes([0x03, 0x00]), is_extended_id=False)
    )
    assert car.model.state.high_beam
    car.handle_message(can.Message(arbitration_id=0x123, data=bytes(8), is_extended_id=False))  # ignored
    car.handle_message(can.Message(arbitration_id=cmd.frame_id, data=b"", is_extended_id=False))  # ignored
    assert car.commands_received == 1


def test_faults_visible_on_the_bus(buses, db):
    car_bus, tester = buses
    car = DemoVehicle(car_bus, start_at=20.0)
    climate = db.get_message_by_name("CLIMATE_STATUS").frame_id
    brake = db.get_message_by_name("BRAKE_STATUS").frame_id
    temps = db.get_message_by_name("ENGINE_TEMPS")
    wheels = db.get_message_by_name("WHEEL_SPEEDS")
    car.start()
    try:
        before = collect(tester, 0.6)
        for name in (
            "hvac_offline",
            "brake_status_checksum",
            "coolant_sensor_open",
            "wheel_speed_fl_dropout",
        ):
            car.inject_fault(name)
        assert set(car.active_faults) == {
            "hvac_offline",
            "brake_status_checksum",
            "coolant_sensor_open",
            "wheel_speed_fl_dropout",
        }
        collect(tester, 0.05)  # frames already in flight
        after = collect(tester, 1.1)
        car.clear_faults()
        collect(tester, 0.05)
        healed = collect(tester, 0.6)
    finally:
        car.stop()
    assert any(f.arbitration_id == climate for f in before)
    assert not any(f.arbitration_id == climate for f in after)  # ECU offline
    assert any(f.arbitration_id == climate for f in healed)
    bad = [f for f in after if f.arbitration_id == brake]
    assert bad and all(f.data[7] != xor8(f.data, 7) for f in bad)
    good = [f for f in before + healed if f.arbitration_id == brake]
    assert good and all(f.data[7] == xor8(f.data, 7) for f in good)
    coolant = [temps.decode(f.data)["CoolantTemp"] for f in after if f.arbitration_id == temps.frame_id]
    assert coolant and all(c == -40 for c in coolant)
    fl = [wheels.decode(f.data)["WheelSpeedFL"] for f in after if f.arbitration_id == wheels.frame_id]
    assert fl and all(str(v) == "Invalid" for v in fl)


def test_time_scale_speeds_physics_not_cycles(buses, db):
    car_bus, tester = buses
    car = DemoVehicle(car_bus, time_scale=40.0)
    car.start()
    try:
        frames = collect(tester, 1.0)
    finally:
        car.stop()
    assert 25.0 < car.sim_time < 50.0
    engine = db.get_message_by_name("ENGINE_DATA").frame_id
    assert sum(1 for f in frames if f.arbitration_id == engine) == pytest.approx(100, abs=8)


def test_pacing_with_extra_load_respects_the_bus(buses):
    car_bus, tester = buses
    car = DemoVehicle(car_bus, start_at=20.0, pace_bitrate=500_000, data_bitrate=2_000_000, extra_load=1.0)
    t0 = time.perf_counter()
    car.start()
    try:
        frames = collect(tester, 1.5)
        load = car.bus_load
    finally:
        car.stop()
    elapsed = time.perf_counter() - t0
    busy = sum(
        bittiming.frame_duration(
            f.arbitration_id,
            f.is_extended_id,
            f.data,
            is_fd=f.is_fd,
            bitrate_switch=f.bitrate_switch,
            bitrate=500_000,
            data_bitrate=2_000_000,
        )
        for f in frames
    )
    assert busy <= elapsed  # never more bus time than wall time
    assert load is not None and 0.9 <= load <= 1.0
    rate = len(frames) / elapsed
    assert rate <= 4374 * 1.02  # the physical limit of 8-byte frames at 500 kbit/s (typical)
    assert rate > 3000  # and the bus really is full
    assert car.frames_sent == pytest.approx(len(frames), abs=50)


def test_extra_load_needs_a_bitrate(buses):
    car_bus, _ = buses
    with pytest.raises(ValueError, match="pace_bitrate"):
        DemoVehicle(car_bus, extra_load=0.5)
    car = DemoVehicle(car_bus, pace_bitrate=500_000)
    with pytest.raises(ValueError):
        car.set_extra_load(1.5)


def test_unpaced_filler_rate(buses):
    car_bus, tester = buses
    car = DemoVehicle(car_bus)
    car.set_filler_rate(5000)
    car.start()
    try:
        frames = collect(tester, 1.0)
    finally:
        car.stop()
    filler = [f for f in frames if 0x580 <= f.arbitration_id < 0x5C0]
    # Rate over the frames' own time span: a loaded machine delays the whole run, not the rate.
    span = filler[-1].timestamp - filler[0].timestamp
    assert len(filler) > 1000
    assert (len(filler) - 1) / span == pytest.approx(5000, rel=0.1)


def test_stop_is_idempotent_and_leaves_nothing(buses):
    car_bus, _ = buses
    car = DemoVehicle(car_bus)
    car.stop()  # never started
    car.start()
    car.start()  # already running: no second thread
    assert sum(t.name.startswith("DemoVehicle") for t in threading.enumerate()) == 1
    assert car.running
    car.stop()
    car.stop()
    assert not car.running
    with DemoVehicle(car_bus) as again:
        assert again.running
    assert not again.running
    assert not [t for t in threading.enumerate() if t.name.startswith("DemoVehicle")]


def test_parked_car_stops_and_switches_the_engine_off_then_drives_on():
    # A workshop job (flashing) needs speed 0 and the engine off with the ECUs awake.
    m = vm.VehicleModel(seed=3)
    run(m, 60.0)
    assert m.state.engine_running and m.state.speed_kmh > 5.0  # driving
    m.parked = True
    run(m, 30.0)
    s = m.state
    assert (s.speed_kmh, s.engine_running, s.selector, s.key) == (0.0, False, "P", "Run")
    assert m.signals_for("ENGINE_DATA")["EngineSpeed"] == 0.0
    m.parked = False
    run(m, 40.0)
    assert m.state.engine_running and m.state.speed_kmh > 1.0  # cranked again and drove off


def test_parked_from_the_start_never_cranks():
    m = vm.VehicleModel(seed=3)
    m.parked = True
    run(m, 20.0)
    assert m.state.key == "Run" and not m.state.engine_running and m.state.rpm == 0.0
