"""The vehicle scan, clear and watch against the simulated car's ECUs, and the failure paths."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator

import can
import pytest
from helpers.waiting import wait_for, wait_until

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.diag.client import DiagError, EcuAddress, EcuClient
from workshop_app.core.diag.discovery import obd_discover, sweep
from workshop_app.core.diag.dtc import CONFIRMED, PENDING, parse_sae
from workshop_app.core.diag.ecu_spec import EcuSpec, demo_vehicle_spec
from workshop_app.core.diag.model import EcuState, ScanLabel, compare_scans
from workshop_app.core.diag.nrc import nrc_info
from workshop_app.core.diag.scan import ScanOptions, VehicleScanner
from workshop_app.core.diag.session import DiagSession
from workshop_app.core.diag.watch import DtcWatcher
from workshop_app.core.sources.replay import ReplaySource
from workshop_app.core.sources.simulator import SimulatorSource

SPEC = demo_vehicle_spec()
P0118, C0035 = parse_sae("P0118"), parse_sae("C0035")


@pytest.fixture
def sim() -> Iterator[SimulatorSource]:
    src = SimulatorSource(FrameRing(), pace_bitrate=None)
    src.start()
    assert src.ecus is not None
    # Simulated fault timing shortened: confirmed after 0.3 s, monitors back 0.2 s after a clear.
    src.ecus.set_confirm_seconds(0.3)
    src.ecus.set_retest_seconds(0.2)
    try:
        yield src
    finally:
        src.stop()


def scanner(src: SimulatorSource, spec=SPEC, **options) -> VehicleScanner:
    return VehicleScanner(
        src.bus, src.notifier, spec, options=ScanOptions(**options), connection=src.describe()
    )


def with_faults(src: SimulatorSource, *names: str) -> None:
    for name in names:
        src.vehicle.inject_fault(name)
    src.ecus.evaluate()
    assert src.ecus.wait_confirmed(list(names), timeout=20), f"{names} never confirmed"


def test_scan_two_faults_lists_every_ecu_identity_and_both_dtcs(sim):
    with_faults(sim, "coolant_sensor_open", "wheel_speed_fl_dropout")
    result = scanner(sim, sweep=True).scan(label=ScanLabel.PRE_REPAIR)
    assert [e.name for e in result.ecus] == ["ECM", "TCM", "ABS", "BCM", "GW"]
    assert all(e.responded and e.expected for e in result.ecus)
    assert result.vin == SPEC.vin
    assert result.mileage_km is not None and result.mileage_km > 1000
    states = {e.name: e.state for e in result.ecus}
    assert states == {
        "ECM": EcuState.FAULTS,
        "TCM": EcuState.OK,
        "ABS": EcuState.FAULTS,
        "BCM": EcuState.OK,
        "GW": EcuState.OK,
    }
    for e in result.ecus:
        assert e.identification["VIN"] == SPEC.vin
        assert e.identification["Part number"] and e.identification["Supplier"]
        assert not e.problems
    ecm = result.ecu("ECM")
    (p0118,) = ecm.dtcs
    assert p0118.code == P0118 and p0118.sae == "P0118" and p0118.hex == "011800"
    assert p0118.status & CONFIRMED and p0118.mil
    assert "coolant temperature sensor" in p0118.description.lower()
    snap = {v.name: v for v in p0118.snapshots[1]}
    assert snap["Coolant temperature"].value == -40 and snap["Coolant temperature"].unit == "°C"
    assert snap["Battery voltage"].unit == "V" and 9 < snap["Battery voltage"].value < 16
    assert p0118.occurrence_count() == 1
    (c0035,) = result.ecu("ABS").dtcs
    assert c0035.sae == "C0035" and "wheel speed" in c0035.description.lower()
    assert any(d.sae == "P0118" for d in result.obd_dtcs)  # OBD mode 03/07/0A sees it too
    json_ready = result.to_json()
    assert [d["code"] for e in json_ready["ecus"] for d in e["dtcs"]] == ["P0118", "C0035"]


def test_clear_after_repair_leaves_no_codes_and_is_reported_done(sim):
    with_faults(sim, "coolant_sensor_open", "wheel_speed_fl_dropout")
    before = scanner(sim, sweep=False).scan(label=ScanLabel.PRE_REPAIR)
    sim.vehicle.clear_faults()  # the repair
    outcomes = scanner(sim, sweep=False).clear(["ECM", "ABS"])  # the ECM answers 0x78 first
    assert [(o.ecu, o.done) for o in outcomes] == [("ECM", True), ("ABS", True)]
    after = scanner(sim, sweep=False).scan(label=ScanLabel.POST_REPAIR)
    assert after.dtc_count == 0
    cmp = compare_scans(before, after)
    assert sorted(d.sae for _, d in cmp.gone) == ["C0035", "P0118"] and not cmp.new and not cmp.still


def test_clear_without_repair_shows_the_fault_coming_back_pending(sim):
    with_faults(sim, "coolant_sensor_open")
    assert scanner(sim, sweep=False).clear(["ECM"])[0].done
    memory = sim.ecus.ecu("ECM").memory
    wait_for(lambda: sim.ecus.evaluate() or memory.get(P0118).status & PENDING, what="re-detection")
    again = scanner(sim, sweep=False, obd=False).scan()
    (d,) = again.ecu("ECM").dtcs
    assert d.sae == "P0118" and d.status & PENDING


def test_clear_is_not_done_without_a_positive_response(sim, caplog):
    sim.ecus.behaviour("ABS").silent = True
    outcomes = scanner(sim, sweep=False, timeout=0.3).clear(["ABS"])
    assert outcomes[0].done is False and "no answer" in outcomes[0].detail
    # Said once, in the outcome: the diagnostics library's own error lines would reach the
    # terminal as raw "[TimeoutException] : ..." text beside it.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_silent_ecu_is_missing_and_unknown_one_is_unexpected(sim):
    # A vehicle description without the BCM but with a module nobody answers for.
    ghost = dataclasses.replace(SPEC.ecu("TCM"), name="HVAC", request_id=0x744, response_id=0x74C)
    spec = dataclasses.replace(SPEC, ecus=(*[e for e in SPEC.ecus if e.name != "BCM"], ghost))
    result = scanner(sim, spec, sweep=True, timeout=0.3, obd=False).scan()
    states = {e.name: e.state for e in result.ecus}
    assert states["HVAC"] is EcuState.MISSING
    unexpected = [e for e in result.ecus if e.state is EcuState.UNEXPECTED]
    assert [e.address for e in unexpected] == ["0x726/0x72E"]  # the BCM, found by the sweep
    assert unexpected[0].identification["VIN"] == SPEC.vin  # read with the standard identifiers


def test_slow_ecu_answers_after_response_pending(sim):
    sim.ecus.behaviour("ABS").slow = 3  # NRC 0x78 three times before each answer
    result = scanner(sim, sweep=False, obd=False).scan()
    abs_ = result.ecu("ABS")
    assert abs_.state is EcuState.OK and abs_.identification["VIN"] == SPEC.vin


def test_malformed_answer_is_a_problem_not_a_reading(sim):
    with_faults(sim, "wheel_speed_fl_dropout")
    sim.ecus.behaviour("ABS").malformed = True
    result = scanner(sim, sweep=False, obd=False).scan()
    abs_ = result.ecu("ABS")
    assert abs_.dtcs == []  # nothing stored from a truncated record
    assert any("malformed" in p for p in abs_.problems)
    assert abs_.state is EcuState.ERROR


def test_negative_responses_become_plain_messages(sim):
    ecm = SPEC.ecu("ECM")
    with EcuClient(sim.bus, sim.notifier, EcuAddress.of(ecm), spec=ecm) as client:
        with pytest.raises(DiagError) as info:
            client.read_did(0x7777)
        assert info.value.nrc == 0x31 and info.value.kind == "nrc"
        assert "does not know the requested item" in str(info.value)
        client.change_session(0x03)
        assert client.server_timing == (0.05, 5.0)  # what the ECU announced
        assert client.p2_timing[0] >= 0.25  # the tester's wait: ECU P2 plus margin
        # S3 shortened in the ECU and the keep-alive quickened to match: more TesterPresents
        # than fit in S3, and no other request, so only the keep-alive holds the session open.
        server = sim.ecus.ecu("ECM").uds
        server.s3_seconds = 1.0
        client.keepalive_seconds = 0.2
        with _counting(sim, _is_tester_present_to_ecm) as seen:
            wait_until(lambda: len(seen) >= 6, 30, "six TesterPresents to the ECM")
        client.read_did(0xF190)
        assert server.session == 0x03
    for code in (0x11, 0x12, 0x13, 0x22, 0x31, 0x33, 0x35, 0x36, 0x37, 0x78, 0x7E, 0x7F, 0x93, 0xA5, 0x02):
        info = nrc_info(code)
        assert info.meaning and info.next_step and f"0x{code:02X}" in info.text()


def _is_tester_present_to_ecm(msg: can.Message) -> bool:
    # A single frame 02 3E 80 (suppress the positive response) to the ECM's physical address.
    return msg.arbitration_id == 0x7E0 and bytes(msg.data[:3]) == b"\x02\x3e\x80"


@contextlib.contextmanager
def _counting(src: SimulatorSource, match: Callable[[can.Message], bool]) -> Iterator[list[float]]:
    """Frames on the simulator's bus that ``match``, as their timestamps, seen by a bus of our own."""
    seen: list[float] = []
    bus = can.Bus(interface="virtual", channel=src.virtual_channel)
    notifier = can.Notifier(bus, [lambda m: seen.append(m.timestamp) if match(m) else None], timeout=0.05)
    try:
        yield seen
    finally:
        notifier.stop()
        bus.shutdown()


def test_discovery_finds_obd_ecus_and_physical_addresses(sim):
    obd = obd_discover(sim.bus, sim.notifier)
    assert [(a.request_id, a.response_id) for a in obd] == [(0x7E0, 0x7E8), (0x7E1, 0x7E9)]
    found = sweep(sim.bus, sim.notifier)
    pairs = {(a.request_id, a.response_id, a.extended) for a in found}
    assert pairs == {
        (0x7E0, 0x7E8, False),
        (0x7E1, 0x7E9, False),
        (0x760, 0x768, False),
        (0x726, 0x72E, False),
        (0x18DA10F1, 0x18DAF110, True),
    }


class _BrokenEcu(can.Listener):
    """Answers any request with a first frame then a consecutive frame with a wrong sequence number."""

    def __init__(self, bus: can.BusABC) -> None:
        self.bus = bus

    def on_message_received(self, msg: can.Message) -> None:
        if msg.arbitration_id == 0x7A0 and msg.data[0] >> 4 == 0:
            self.bus.send(
                can.Message(arbitration_id=0x7A8, data=b"\x10\x14\x62\xf1\x90WSA", is_extended_id=False)
            )
        elif msg.arbitration_id == 0x7A0 and msg.data[0] >> 4 == 3:  # flow control from the tester
            self.bus.send(can.Message(arbitration_id=0x7A8, data=b"\x23DEMO5T0", is_extended_id=False))


def test_isotp_fault_is_reported_and_nothing_read(sim):
    ecu_bus = can.Bus(interface="virtual", channel=sim.virtual_channel)
    listener = _BrokenEcu(ecu_bus)
    notifier = can.Notifier(ecu_bus, [listener], timeout=0.05)
    try:
        spec = EcuSpec("BROKEN", "", 0x7A0, 0x7A8)
        with EcuClient(sim.bus, sim.notifier, EcuAddress(0x7A0, 0x7A8), spec=spec, timeout=0.5) as client:
            with pytest.raises(DiagError) as info:
                client.read_did(0xF190)
            assert info.value.kind == "timeout"
            assert any("sequence" in p.lower() for p in client.problems)
    finally:
        notifier.stop()
        ecu_bus.shutdown()


def test_diag_session_needs_a_live_connection(tmp_path):
    log = tmp_path / "x.log"
    log.write_text("(1.0) can0 123#00\n")
    with (
        DiagSession(ReplaySource(FrameRing(), log), SPEC) as diag,
        pytest.raises(DiagError, match="live connection"),
    ):
        diag.link()


def test_diag_session_runs_every_call_on_its_one_worker_thread(sim):
    with DiagSession(sim, SPEC) as diag:
        bus, notifier = diag.link()
        calls = [
            diag.submit(lambda: (threading.current_thread().name, scanner(sim).scan_ecu(*_ecm())))
            for _ in range(2)
        ]
        done = [call.result(timeout=60) for call in calls]
    assert {name for name, _ in done} == {"diag_0"}  # one thread: two calls never meet on an ECU
    assert all(result.responded for _, result in done)
    assert (bus, notifier) == (sim.bus, sim.notifier)  # capture's own bus: no second reader


def _ecm():
    ecm = SPEC.ecu("ECM")
    return EcuAddress.of(ecm), ecm


def test_watcher_reports_a_code_appearing(sim):
    watcher = DtcWatcher(sim.bus, sim.notifier, [SPEC.ecu("ECM")])
    assert watcher.poll() == []  # the first poll learns what is stored
    # A circuit fault: its monitor runs at once (a misfire would wait for the engine to start).
    sim.vehicle.inject_fault("coolant_sensor_open")
    sim.ecus.evaluate()
    events = wait_for(watcher.poll, what="the new code")
    assert [(e.ecu, e.dtc.sae, e.kind) for e in events] == [("ECM", "P0118", "appeared")]


def test_scan_over_can_fd_isotp(sim):
    result = scanner(sim, sweep=False, obd=False, fd=True).scan()
    assert all(e.responded and e.identification["VIN"] == SPEC.vin for e in result.ecus)


def test_ecus_of_earlier_scans_that_stay_silent_are_missing(sim):
    sim.ecus.behaviour("BCM").silent = True
    spec = dataclasses.replace(SPEC, ecus=tuple(e for e in SPEC.ecus if e.name != "BCM"))
    result = scanner(sim, spec, sweep=False, obd=False, timeout=0.3).scan()
    assert result.add_missing(["ECM", "BCM"]) == ["BCM"]  # names from the vehicle's history
    assert result.ecu("BCM").state is EcuState.MISSING and result.ecu("ECM").state is EcuState.OK


class _FlowControlEcu(can.Listener):
    """Answers a multi-frame request's first frame with a chosen flow control (or none)."""

    def __init__(self, bus: can.BusABC, status: int | None) -> None:
        self.bus = bus
        self.status = status

    def on_message_received(self, msg: can.Message) -> None:
        if msg.arbitration_id == 0x7B0 and msg.data[0] >> 4 == 1 and self.status is not None:
            self.bus.send(
                can.Message(
                    arbitration_id=0x7B8, data=bytes([0x30 | self.status, 0, 0]), is_extended_id=False
                )
            )


@pytest.mark.parametrize(("status", "words"), [(None, "flow"), (0x2, "overflow")])
def test_missing_flow_control_and_overflow_fail_plainly(sim, status, words):
    ecu_bus = can.Bus(interface="virtual", channel=sim.virtual_channel)
    notifier = can.Notifier(ecu_bus, [_FlowControlEcu(ecu_bus, status)], timeout=0.05)
    try:
        with EcuClient(
            sim.bus, sim.notifier, EcuAddress(0x7B0, 0x7B8), spec=SPEC.ecu("ECM"), timeout=0.5
        ) as client:
            with pytest.raises(DiagError) as info:
                # Four DIDs: a 9-byte request, so a first frame that needs the ECU's flow control.
                client.call(
                    "read four DIDs", client.client.read_data_by_identifier, [0xF190, 0xF187, 0xF189, 0xF18C]
                )
            assert info.value.kind in ("timeout", "transport")
            assert any(words in p.lower() for p in client.problems), client.problems
    finally:
        notifier.stop()
        ecu_bus.shutdown()


def test_an_ecu_left_in_its_bootloader_is_named_so(sim):
    # An interrupted flash (erased, then reset): the ECU runs only its bootloader.
    bootloader = sim.ecus.ecu("ECM").bootloader
    region = bootloader.flash.layout
    bootloader.flash.erase(region.start, region.size)
    bootloader.on_reset()
    result = scanner(sim, sweep=False, obd=False).scan()
    ecm = result.ecu("ECM")
    assert ecm.identification["Application valid"] == "No"
    assert len(ecm.problems) == 1 and "in its bootloader" in ecm.problems[0], ecm.problems
    assert "session" not in ecm.problems[0]  # not the misleading "switch session" hint
    assert result.ecu("BCM").problems == []  # the others are read as usual
