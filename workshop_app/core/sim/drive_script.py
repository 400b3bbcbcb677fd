"""The demo car's scripted story: key on, crank, warm-up idle, then an endless driving loop
(pull away, cruise, turn, speed up, brake, park with a door or the trunk opening)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from workshop_app.core.sim.vehicle_state import CRANK_AT_S, KEY_ON_AT_S, WARMUP_IDLE_S, VehicleState


@dataclass(frozen=True, slots=True)
class Segment:
    """One piece of the driving loop."""

    kind: str  # "drive" (reach target), "cruise", "turn", "stop", "park"
    target_kmh: float = 0.0
    accel: float = 1.5  # m/s^2 the driver allows towards the target
    duration: float = 0.0  # s; minimum time for "drive", exact time otherwise
    indicator: str | None = None  # "left" / "right"
    indicator_s: float = 0.0  # indicator on for the first seconds of the segment
    steer_deg: float = 0.0  # peak steering wheel angle of a turn, + = left
    high_beam: bool = False


DRIVE_LOOP: tuple[Segment, ...] = (
    Segment("drive", 50.0, accel=1.8),
    Segment("cruise", 50.0, duration=8.0),
    Segment("drive", 25.0, accel=1.5, duration=3.0, indicator="left", indicator_s=99.0),
    Segment("turn", 25.0, duration=6.0, indicator="left", indicator_s=2.5, steer_deg=220.0),
    Segment("drive", 80.0, accel=1.5),
    Segment("cruise", 80.0, duration=12.0, high_beam=True),
    Segment("drive", 30.0, accel=1.5, duration=3.0, indicator="right", indicator_s=99.0),
    Segment("turn", 30.0, duration=5.0, indicator="right", indicator_s=2.0, steer_deg=-180.0),
    Segment("drive", 50.0, accel=1.6),
    Segment("cruise", 50.0, duration=5.0),
    Segment("stop", 0.0, accel=2.5),
    Segment("park", 0.0, duration=8.0),
)

STOP_SEGMENT = next(i for i, seg in enumerate(DRIVE_LOOP) if seg.kind == "stop")


class DriveScript:
    """Mixin of VehicleModel: the driver's part of each step."""

    state: VehicleState
    parked: bool

    if TYPE_CHECKING:

        def _has(self, name: str) -> bool: ...

    # The scripted story: key, crank, warm-up idle, then the endless driving loop.
    def _script(self, dt: float) -> None:
        s = self.state
        if self.parked:
            self._park_script()
            return
        if s.phase == "off":
            if s.t >= 0.8:
                s.doors = (False, *s.doors[1:])  # the driver got in
            if s.t >= KEY_ON_AT_S:
                s.phase, s.key, s.key_on_t = "ignition", "Run", s.t
        elif s.phase == "ignition":
            if s.t >= KEY_ON_AT_S + 0.5:
                s.seatbelt = True
            if s.t >= CRANK_AT_S:
                s.phase, s.key, s.starter, s.crank_t = "crank", "Crank", True, 0.0
        elif s.phase == "crank":
            s.crank_t += dt
            # A worn battery turns the engine slowly: it takes longer to fire.
            needed = 0.9 + (0.9 if self._has("weak_battery") else 0.0) + (0.3 if s.coolant_c < 0 else 0.0)
            if s.crank_t >= needed:
                s.phase, s.key, s.starter = "warmup", "Run", False
                s.engine_running, s.run_t, s.segment_t = True, 0.0, 0.0
        elif s.phase == "warmup":
            s.seatbelt = True
            s.segment_t += dt
            self._leave_park(s.segment_t, WARMUP_IDLE_S)
            if s.segment_t >= WARMUP_IDLE_S:
                self._start_segment(0)
        else:
            self._drive_loop(dt)

    def _park_script(self) -> None:
        """Brake to a stop, select P, switch the engine off; the key stays on (ECUs awake)."""
        s = self.state
        if s.phase == "off" and s.t >= KEY_ON_AT_S:
            s.phase, s.key, s.key_on_t = "ignition", "Run", s.t
        elif s.phase == "crank":
            s.phase, s.key, s.starter = "ignition", "Run", False
        elif s.phase in ("warmup", "drive"):
            s.target_kmh, s.indicator = 0.0, None
            if s.phase == "drive" and DRIVE_LOOP[s.segment].kind != "stop":
                s.segment = STOP_SEGMENT  # the driver brakes as at the end of the loop
            if s.speed_kmh == 0.0:
                s.selector, s.parking_brake = "P", True
                s.phase, s.key, s.engine_running = "ignition", "Run", False

    def _leave_park(self, seg_t: float, duration: float) -> None:
        """Foot on the brake, lever through R and N into D during the last second."""
        s = self.state
        left = duration - seg_t
        if left <= 1.0:
            s.target_kmh = 0.0
            s.selector = "D" if left <= 0.25 else "N" if left <= 0.5 else "R" if left <= 0.75 else "P"
        if left <= 0.1:
            s.parking_brake = False

    def _start_segment(self, index: int) -> None:
        s = self.state
        if index >= len(DRIVE_LOOP):
            index = 0
            s.loop += 1
        s.phase, s.segment, s.segment_t = "drive", index, 0.0
        seg = DRIVE_LOOP[index]
        if index == 0 and s.lights_override is None:
            s.low_beam = True  # dusk: the driver switches the headlights on when pulling away
        s.indicator = seg.indicator if seg.indicator_s > 0 else None
        s.target_kmh = seg.target_kmh

    def _drive_loop(self, dt: float) -> None:
        s = self.state
        s.segment_t += dt
        seg = DRIVE_LOOP[s.segment]
        st = s.segment_t
        s.indicator = seg.indicator if seg.indicator and st < seg.indicator_s else None
        if s.lights_override is None and s.low_beam:
            s.high_beam = seg.high_beam and 1.0 < st < seg.duration - 1.0
        done = False
        if seg.kind == "drive":
            done = abs(s.speed_kmh - seg.target_kmh) < 0.3 and st >= seg.duration
        elif seg.kind in ("cruise", "turn"):
            done = st >= seg.duration
        elif seg.kind == "stop":
            done = s.speed_kmh == 0.0 and st > 1.0
        elif seg.kind == "park":
            self._park(st, dt, seg.duration)
            done = st >= seg.duration
        if done:
            self._start_segment(s.segment + 1)

    def _park(self, st: float, dt: float, duration: float) -> None:
        s = self.state
        if 0.5 <= st < duration - 1.0:
            s.selector, s.parking_brake = "P", True
        if st - dt < 0.8 <= st:
            s.locked = False  # central locking opens for the passenger
        # Odd loops a passenger gets out, even loops the trunk is opened and closed.
        opening = 1.0 <= st < 3.5
        if s.loop % 2 == 0:
            s.doors = (s.doors[0], opening, s.doors[2], s.doors[3])
        elif s.trunk_release_t <= 0:
            s.trunk = opening
        self._leave_park(st, duration)
