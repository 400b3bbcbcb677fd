"""Freeze frames hold the conditions when the fault was set, read back over UDS 0x19 04.

A misfire can only be seen with the engine turning: the simulated ECM's misfire monitor
runs once the engine has run past its start flare, and the freeze frame it stores then
shows the running engine (speed, load, temperatures) from the vehicle model, not zeros.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from helpers.waiting import wait_for

from workshop_app.cli import main
from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.diag.dtc import CONFIRMED, parse_sae
from workshop_app.core.diag.ecu_spec import demo_vehicle_spec
from workshop_app.core.diag.scan import ScanOptions, VehicleScanner
from workshop_app.core.sources.simulator import SimulatorSource

SPEC = demo_vehicle_spec()
P0302 = parse_sae("P0302")


@pytest.fixture
def sim() -> Iterator[SimulatorSource]:
    src = SimulatorSource(FrameRing(), pace_bitrate=None, time_scale=2.0)
    src.start()
    assert src.ecus is not None
    src.ecus.set_confirm_seconds(0.5)
    try:
        yield src
    finally:
        src.stop()


def _stored_misfire_frame(src: SimulatorSource) -> dict[str, float]:
    """The ECM's P0302 freeze frame as a tester reads it (UDS 0x19 04 through the scanner)."""
    ecm = src.ecus.ecu("ECM")
    wait_for(
        lambda: (r := ecm.memory.get(P0302)) is not None and r.status & CONFIRMED, timeout=20, what="P0302"
    )
    result = VehicleScanner(
        src.bus, src.notifier, SPEC, options=ScanOptions(sweep=False, obd=False), connection=src.describe()
    ).scan()
    (dtc,) = [d for d in result.ecu("ECM").dtcs if d.code == P0302]
    return {v.name: v.value for v in dtc.snapshots[1]}


def _assert_running_engine(frame: dict[str, float]) -> None:
    assert 500 <= frame["Engine speed"] <= 3000, frame  # idle or driving, never a stopped engine
    assert frame["Engine load"] > 5, frame
    assert frame["Coolant temperature"] > -40, frame
    assert frame["Odometer"] > 0, frame


def test_misfire_injected_while_the_engine_runs_freezes_the_running_engine(sim):
    wait_for(lambda: sim.vehicle.state_snapshot().run_t > 2.0, timeout=20, what="a running engine")
    sim.vehicle.inject_fault("misfire_cyl2")
    frame = _stored_misfire_frame(sim)
    _assert_running_engine(frame)
    state = sim.vehicle.state_snapshot()
    assert abs(frame["Coolant temperature"] - state.coolant_c) < 15  # the same warm-up, moments ago


def test_misfire_injected_before_the_engine_starts_is_set_once_it_runs(sim):
    assert not sim.vehicle.state_snapshot().engine_running
    sim.vehicle.inject_fault("misfire_cyl2")
    sim.ecus.evaluate()
    # key off: no crankshaft to watch, so no misfire can be detected yet
    assert sim.ecus.ecu("ECM").memory.get(P0302).snapshot is None
    _assert_running_engine(_stored_misfire_frame(sim))


def test_dtc_scan_with_an_injected_misfire_shows_a_running_engine_in_the_freeze_frame(capsys):
    argv = ["dtc", "scan", "--fault", "misfire_cyl2", "--no-sweep", "--no-history", "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    ecm = next(e for e in result["ecus"] if e["name"] == "ECM")
    (p0302,) = [d for d in ecm["dtcs"] if d["code"] == "P0302"]
    assert p0302["status"] & CONFIRMED
    _assert_running_engine({v["name"]: v["value"] for v in p0302["snapshots"]["1"]})
