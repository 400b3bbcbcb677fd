"""The simulated ECUs answer like real ones: udsoncan + can-isotp as the tester, on the bus."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import can
import isotp
import pytest
import udsoncan
from helpers.waiting import wait_for
from udsoncan.client import Client
from udsoncan.connections import PythonIsoTpConnection
from udsoncan.exceptions import NegativeResponseException

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.diag.client import SpecCodec  # the scanner's own DID codec
from workshop_app.core.diag.dtc import (
    CONFIRMED,
    FAILED_SINCE_CLEAR,
    NOT_COMPLETED_SINCE_CLEAR,
    NOT_COMPLETED_THIS_CYCLE,
    PENDING,
    TEST_FAILED,
    TEST_FAILED_THIS_CYCLE,
    WARNING_INDICATOR,
    parse_sae,
)
from workshop_app.core.diag.ecu_spec import EcuSpec, demo_vehicle_spec
from workshop_app.core.sim.demo_vehicle import DemoVehicle
from workshop_app.core.sim.ecus import CONFIRM_SECONDS, DtcMemory, DtcRecord, EcuNetwork, security_key
from workshop_app.core.sources.simulator import SimulatorSource

SPEC = demo_vehicle_spec()
VIN = SPEC.vin
P0118 = parse_sae("P0118")
C0035 = parse_sae("C0035")
U0164 = parse_sae("U0164")
FAILED_NOW = TEST_FAILED | TEST_FAILED_THIS_CYCLE | PENDING | FAILED_SINCE_CLEAR  # 0x27
ACTIVE_MASK = TEST_FAILED | TEST_FAILED_THIS_CYCLE | PENDING | CONFIRMED | FAILED_SINCE_CLEAR
PADDING = {"tx_padding": 0xAA}


def client_config(ecu: EcuSpec) -> Any:
    config: dict[str, Any] = dict(udsoncan.configs.default_client_config)
    codecs: dict[int, udsoncan.DidCodec] = {did: SpecCodec(spec) for did, spec in ecu.dids.items()}
    codecs[0xF190] = udsoncan.AsciiCodec(17)
    config["data_identifiers"] = codecs
    config["extended_data_size"] = 1
    config["use_server_timing"] = False  # a loaded 2-core CI box; the P2 values are checked raw
    config["request_timeout"] = 10
    return config


@pytest.fixture
def sim() -> Iterator[SimulatorSource]:
    src = SimulatorSource(FrameRing(), pace_bitrate=None, time_scale=1.0)
    src.start()
    try:
        yield src
    finally:
        src.stop()


class Bench:
    """A tester's connection to the simulator bus: one bus, one notifier, stacks on demand."""

    def __init__(self, bus: can.BusABC) -> None:
        self.bus = bus
        self.raw = can.BufferedReader()
        self.notifier = can.Notifier(bus, [self.raw], timeout=0.05)
        self._stacks: list[isotp.NotifierBasedCanStack] = []

    def stack(self, address: isotp.Address) -> isotp.NotifierBasedCanStack:
        stack = isotp.NotifierBasedCanStack(self.bus, self.notifier, address=address, params=PADDING)
        stack.start()
        self._stacks.append(stack)
        return stack

    def physical(self, ecu: EcuSpec) -> isotp.NotifierBasedCanStack:
        return self.stack(
            isotp.Address(isotp.AddressingMode.Normal_11bits, txid=ecu.request_id, rxid=ecu.response_id)
        )

    @contextmanager
    def client(self, ecu: EcuSpec, stack: isotp.NotifierBasedCanStack | None = None) -> Iterator[Any]:
        stack = stack or self.physical(ecu)
        stack.stop()  # the connection starts and stops the stack it is given
        conn = PythonIsoTpConnection(stack)
        try:
            with Client(conn, config=client_config(ecu)) as client:
                yield client
        finally:
            stack.start()  # usable for raw requests again

    def request(
        self, stack: isotp.NotifierBasedCanStack, payload: bytes, timeout: float = 2.0
    ) -> bytes | None:
        stack.send(payload)
        data = stack.recv(block=True, timeout=timeout)
        return None if data is None else bytes(data)

    def functional(self, payload: bytes) -> None:
        data = bytes((len(payload),)) + payload
        self.bus.send(can.Message(arbitration_id=0x7DF, is_extended_id=False, data=data.ljust(8, b"\xaa")))

    def frames(self, duration: float) -> list[can.Message]:
        """Raw frames seen during the next ``duration`` seconds."""
        out: list[can.Message] = []
        deadline = time.monotonic() + duration
        while (left := deadline - time.monotonic()) > 0:
            msg = self.raw.get_message(timeout=left)
            if msg is not None:
                out.append(msg)
        return out

    def drain(self) -> None:
        while self.raw.get_message(timeout=0.0) is not None:
            pass

    def close(self) -> None:
        for stack in self._stacks:
            if stack.started:
                stack.stop()
        self.notifier.stop()
        self.bus.shutdown()


@pytest.fixture
def tester(sim: SimulatorSource) -> Iterator[Bench]:
    t = Bench(can.Bus(interface="virtual", channel=sim.virtual_channel))
    try:
        yield t
    finally:
        t.close()


def network(sim: SimulatorSource) -> EcuNetwork:
    assert sim.ecus is not None
    return sim.ecus


def dtc_statuses(client: Any, mask: int = 0xFF) -> dict[int, int]:
    response = client.get_dtc_by_status_mask(mask)
    return {d.id: d.status.get_byte_as_int() for d in response.service_data.dtcs}


# --- UDS --------------------------------------------------------------------------------------


def test_session_control_timing_and_s3_fallback(sim: SimulatorSource, tester: Bench) -> None:
    ecm = SPEC.ecu("ECM")
    stack = tester.physical(ecm)
    # P2 = 50 ms (2 bytes ms), P2* = 5000 ms (2 bytes, 10 ms units)
    assert tester.request(stack, b"\x10\x03") == b"\x50\x03\x00\x32\x01\xf4"
    with tester.client(ecm, stack) as client:
        response = client.change_session(3)
        assert response.service_data.p2_server_max == pytest.approx(0.05)
        assert response.service_data.p2_star_server_max == pytest.approx(5.0)
        server = network(sim).ecu("ECM").uds
        assert server.session == 3
        client.change_session(2)  # programming, from extended
        assert server.session == 2
        client.tester_present()
        server.s3_seconds = 0.3  # S3 shortened so the fallback is seen quickly
        wait_for(lambda: server.session == 1, what="S3 fallback to the default session")
        # Programming is not entered straight from the default session.
        with pytest.raises(NegativeResponseException) as exc:
            client.change_session(2)
        assert exc.value.response.code == 0x7E
        client.change_session(3)
        assert client.ecu_reset(3).service_data.reset_type_echo == 3
        assert server.session == 1


def test_read_vin_and_several_dids_at_once(sim: SimulatorSource, tester: Bench) -> None:
    ecm = SPEC.ecu("ECM")
    with tester.client(ecm) as client:
        values = client.read_data_by_identifier([0xF190, 0xF187, 0xF18A, 0x1009, 0xF1A0]).service_data.values
    assert values[0xF190] == VIN
    assert values[0xF187] == "04E906027K"
    assert values[0xF18A] == "Demotronic"
    assert values[0x1009] in ("Off", "Cranking", "Running")
    assert sim.vehicle is not None
    assert values[0xF1A0] == pytest.approx(sim.vehicle.state_snapshot().odometer_km, abs=0.2)
    for name in ("TCM", "ABS", "BCM"):
        with tester.client(SPEC.ecu(name)) as client:
            ident = client.read_data_by_identifier([0xF190, 0xF18C]).service_data.values
        assert ident[0xF190] == VIN
        assert ident[0xF18C].startswith(name)


def test_faults_set_dtcs_with_status_snapshot_and_extended_data(sim: SimulatorSource, tester: Bench) -> None:
    assert sim.vehicle is not None
    ecm, abs_ = SPEC.ecu("ECM"), SPEC.ecu("ABS")
    with tester.client(ecm) as ecm_client, tester.client(abs_) as abs_client:
        before = dtc_statuses(ecm_client)
        assert before[P0118] == NOT_COMPLETED_SINCE_CLEAR | NOT_COMPLETED_THIS_CYCLE
        assert dtc_statuses(ecm_client, ACTIVE_MASK) == {}
        count = ecm_client.get_number_of_dtc_by_status_mask(ACTIVE_MASK).service_data
        assert count.dtc_count == 0 and count.dtc_format == 0x01

        sim.vehicle.inject_fault("coolant_sensor_open")
        sim.vehicle.inject_fault("wheel_speed_fl_dropout")
        assert dtc_statuses(ecm_client, ACTIVE_MASK) == {P0118: FAILED_NOW}
        assert dtc_statuses(abs_client, ACTIVE_MASK) == {C0035: FAILED_NOW}
        assert ecm_client.get_number_of_dtc_by_status_mask(PENDING).service_data.dtc_count == 1

        wait_for(
            lambda: dtc_statuses(ecm_client, CONFIRMED).get(P0118),
            timeout=CONFIRM_SECONDS * 4,
            what="confirmation",
        )
        assert dtc_statuses(ecm_client, ACTIVE_MASK) == {P0118: FAILED_NOW | CONFIRMED | WARNING_INDICATOR}
        assert wait_for(lambda: dtc_statuses(abs_client, CONFIRMED)) == {C0035: FAILED_NOW | CONFIRMED}

        snap = ecm_client.get_dtc_snapshot_by_dtc_number(P0118, 0xFF).service_data.dtcs[0]
        values = {s.did: s.data for s in snap.snapshots}
        assert {s.record_number for s in snap.snapshots} == {1}
        assert list(values) == list(ecm.snapshot_records[1])
        assert values[0x1002] == -40  # what the open-circuit sensor read at detection
        state = sim.vehicle.state_snapshot()
        assert 0 < values[0xF1A0] <= state.odometer_km + 0.1  # 0.1 km resolution
        abs_snap = abs_client.get_dtc_snapshot_by_dtc_number(C0035, 1).service_data.dtcs[0]
        assert {s.did: s.raw_data for s in abs_snap.snapshots}[0x3001] == b"\xff\xff"  # invalid

        ext = ecm_client.get_dtc_extended_data_by_dtc_number(P0118, 0xFF).service_data.dtcs[0]
        records = {e.record_number: e.raw_data for e in ext.extended_data}
        assert records == {1: b"\x01", 2: b"\x00", 3: b"\x01"}  # occurrence counter 1

        supported = ecm_client.get_supported_dtc().service_data.dtcs
        assert {d.id for d in supported} == {
            parse_sae(c) for c in ("P0118", "P0117", "P0562", "P0302", "U0415", "P0571", "P0298")
        }

        sim.vehicle.clear_faults()  # repaired: no longer failing, history stays
        stored = wait_for(
            lambda: (s := dtc_statuses(ecm_client, ACTIVE_MASK)) and not s[P0118] & TEST_FAILED and s
        )
        assert stored[P0118] == (FAILED_NOW & ~TEST_FAILED) | CONFIRMED | WARNING_INDICATOR


def test_clear_answers_pending_first_and_an_unrepaired_fault_returns(
    sim: SimulatorSource, tester: Bench
) -> None:
    assert sim.vehicle is not None
    sim.vehicle.inject_fault("coolant_sensor_open")
    sim.vehicle.inject_fault("wheel_speed_fl_dropout")
    with tester.client(SPEC.ecu("ECM")) as client, tester.client(SPEC.ecu("ABS")) as abs_client:
        assert dtc_statuses(client, ACTIVE_MASK) == {P0118: FAILED_NOW}
        tester.drain()
        client.clear_dtc(0xFFFFFF)  # udsoncan waits through the NRC 0x78
        # The frames seen since the drain: NRC 0x78 first, then the positive response.
        assert _single_frames(tester.frames(0.05), 0x7E8) == [b"\x7f\x14\x78", b"\x54"]
        assert dtc_statuses(client, ACTIVE_MASK) == {}
        assert dtc_statuses(client)[P0118] == NOT_COMPLETED_SINCE_CLEAR | NOT_COMPLETED_THIS_CYCLE
        assert dtc_statuses(abs_client, ACTIVE_MASK) == {C0035: FAILED_NOW}  # other ECUs keep theirs
        # Not repaired: the monitor runs again and the code is back as pending.
        assert wait_for(lambda: dtc_statuses(client, ACTIVE_MASK)) == {P0118: FAILED_NOW}
        with pytest.raises(NegativeResponseException) as exc:
            client.clear_dtc(0x123456)
        assert exc.value.response.code == 0x31
        abs_client.clear_dtc(C0035)  # one DTC; the ABS answers at once
        assert dtc_statuses(abs_client, ACTIVE_MASK) == {}


def test_ecm_clear_sends_response_pending_before_the_positive_response(
    sim: SimulatorSource, tester: Bench
) -> None:
    stack = tester.physical(SPEC.ecu("ECM"))
    tester.drain()
    assert tester.request(stack, b"\x14\xff\xff\xff") == b"\x7f\x14\x78"
    assert stack.recv(block=True, timeout=2.0) == b"\x54"


def test_security_access(sim: SimulatorSource, tester: Bench) -> None:
    with tester.client(SPEC.ecu("ECM")) as client:
        with pytest.raises(NegativeResponseException) as exc:
            client.request_seed(1)
        assert exc.value.response.code == 0x7F  # not in the default session
        client.change_session(3)
        seed = client.request_seed(1).service_data.seed
        assert len(seed) == 4 and seed != bytes(4)
        client.send_key(2, security_key(seed))
        assert network(sim).ecu("ECM").uds.unlocked
        assert client.request_seed(1).service_data.seed == bytes(4)  # already unlocked

        client.change_session(3)  # relocks
        assert not network(sim).ecu("ECM").uds.unlocked
        codes = []
        for _ in range(3):
            seed = client.request_seed(1).service_data.seed
            wrong = bytes(b ^ 0xFF for b in security_key(seed))
            with pytest.raises(NegativeResponseException) as exc:
                client.send_key(2, wrong)
            codes.append(exc.value.response.code)
        assert codes == [0x35, 0x35, 0x36]
        with pytest.raises(NegativeResponseException) as exc:
            client.request_seed(1)
        assert exc.value.response.code == 0x37  # delay not expired


def test_security_key_is_a_fixed_function_of_the_seed() -> None:
    assert security_key(b"\x00\x00\x00\x00") != security_key(b"\x00\x00\x00\x01")
    assert security_key(b"\x12\x34\x56\x78") == security_key(b"\x12\x34\x56\x78")
    x = 0x12345678 ^ 0x5EC0DE42
    expected = ((((x << 7) | (x >> 25)) & 0xFFFFFFFF) + 0x1234) & 0xFFFFFFFF
    assert security_key(b"\x12\x34\x56\x78") == expected.to_bytes(4, "big")
    with pytest.raises(ValueError):
        security_key(b"\x01")


def test_negative_responses(sim: SimulatorSource, tester: Bench) -> None:
    stack = tester.physical(SPEC.ecu("BCM"))
    assert tester.request(stack, b"\x22\x12\x34") == b"\x7f\x22\x31"  # unknown DID
    answer = tester.request(stack, b"\x22\xf1\x90\x12\x34")
    assert answer is not None and answer[:3] == b"\x62\xf1\x90"  # the unknown DID is left out
    assert tester.request(stack, b"\x22\xf1") == b"\x7f\x22\x13"
    assert tester.request(stack, b"\x2f\x40\x01\x00") == b"\x7f\x2f\x11"  # service not supported
    assert tester.request(stack, b"\x85\x02") == b"\x7f\x85\x7f"  # DTC setting: not in default
    assert tester.request(stack, b"\x10\x05") == b"\x7f\x10\x12"
    assert tester.request(stack, b"\x10") == b"\x7f\x10\x13"
    assert tester.request(stack, b"\x19\x42\xff") == b"\x7f\x19\x12"
    assert tester.request(stack, b"\x19\x04\x01\x02\x03\x01") == b"\x7f\x19\x31"  # DTC unknown here
    assert tester.request(stack, b"\x3e\x80", timeout=0.3) is None  # suppressed positive response
    assert tester.request(stack, b"\x3e\x00") == b"\x7e\x00"
    with tester.client(SPEC.ecu("ECM"), stack) as client:  # the ECM's codecs, the BCM's address
        with pytest.raises(NegativeResponseException) as exc:
            client.read_data_by_identifier([0x1001])  # an ECM DID: the BCM has none
        assert exc.value.response.code == 0x31


def test_gateway_over_29bit_normal_fixed_addressing(sim: SimulatorSource, tester: Bench) -> None:
    assert sim.vehicle is not None
    gw = SPEC.ecu("GW")
    stack = tester.stack(
        isotp.Address(isotp.AddressingMode.NormalFixed_29bits, source_address=0xF1, target_address=0x10)
    )
    tester.drain()
    with tester.client(gw, stack) as client:
        assert client.read_data_by_identifier([0xF190]).service_data.values[0xF190] == VIN
        sim.vehicle.inject_fault("hvac_offline")
        assert dtc_statuses(client, ACTIVE_MASK) == {U0164: FAILED_NOW}
        assert client.read_data_by_identifier([0x5002]).service_data.values[0x5002] == 1
    ids = {(m.arbitration_id, m.is_extended_id) for m in tester.frames(0.05)}
    assert (0x18DAF110, True) in ids


# --- OBD-II -----------------------------------------------------------------------------------


def _single_frames(frames: list[can.Message], ident: int) -> list[bytes]:
    return [bytes(m.data[1 : 1 + m.data[0]]) for m in frames if m.arbitration_id == ident and m.data[0] < 8]


def _supported(bitmap: bytes, base: int) -> set[int]:
    bits = int.from_bytes(bitmap, "big")
    return {base + i for i in range(1, 33) if bits & (1 << (32 - i))}


def test_obd_functional_requests_answered_by_ecm_and_tcm_only(sim: SimulatorSource, tester: Bench) -> None:
    tester.drain()
    tester.functional(b"\x01\x00")
    frames = tester.frames(0.5)
    ecm_answers = _single_frames(frames, 0x7E8)
    tcm_answers = _single_frames(frames, 0x7E9)
    assert len(ecm_answers) == 1 and len(tcm_answers) == 1
    assert not [m for m in frames if m.arbitration_id in (0x768, 0x72E)]
    ecm_pids = _supported(ecm_answers[0][2:6], 0)
    assert {0x01, 0x04, 0x05, 0x0C, 0x0D, 0x0F, 0x11, 0x1C, 0x20} <= ecm_pids
    assert _supported(tcm_answers[0][2:6], 0) == {0x01, 0x0D, 0x1C}

    tester.functional(b"\x01\x01")
    frames = tester.frames(0.5)
    assert [a[:2] for a in _single_frames(frames, 0x7E8)] == [b"\x41\x01"]
    assert [a[:3] for a in _single_frames(frames, 0x7E9)] == [b"\x41\x01\x00"]

    tester.functional(b"\x01\x0a")  # fuel pressure: supported by nobody, so nobody answers
    tester.functional(b"\x85\x02")  # UDS service nobody has: NRC 0x11 is never sent functionally
    frames = tester.frames(0.5)
    assert not [m for m in frames if m.arbitration_id in (0x7E8, 0x7E9)]


def test_obd_pids_are_consistent_with_the_bitmaps_and_the_car(sim: SimulatorSource, tester: Bench) -> None:
    assert sim.vehicle is not None
    stack = tester.physical(SPEC.ecu("ECM"))
    supported: set[int] = set()
    for base in (0x00, 0x20, 0x40):
        answer = tester.request(stack, bytes((0x01, base)))
        assert answer is not None and answer[:2] == bytes((0x41, base))
        supported |= _supported(answer[2:6], base)
    assert supported == {0x01, 0x04, 0x05, 0x0C, 0x0D, 0x0F, 0x11, 0x1C, 0x20, 0x21, 0x31, 0x40, 0x42, 0x46}
    for pid in sorted(supported - {0x20, 0x40}):
        answer = tester.request(stack, bytes((0x01, pid)))
        assert answer is not None and answer[:2] == bytes((0x41, pid)), hex(pid)
    sim.vehicle.inject_fault("coolant_sensor_open")
    answer = tester.request(stack, b"\x01\x05\x42\x1c")  # several PIDs in one request
    assert answer is not None
    assert answer[:3] == b"\x41\x05\x00"  # -40 °C: the faulty sensor's reading
    assert answer[3] == 0x42 and 10.0 < int.from_bytes(answer[4:6], "big") / 1000 < 15.5
    assert answer[6:] == b"\x1c\x06"
    assert tester.request(stack, b"\x01\x0a") == b"\x7f\x01\x31"  # physical: refused


def test_obd_dtc_modes_and_clear(sim: SimulatorSource, tester: Bench) -> None:
    assert sim.vehicle is not None
    network(sim).set_confirm_seconds(0.5)
    ecm = tester.physical(SPEC.ecu("ECM"))
    tcm = tester.physical(SPEC.ecu("TCM"))
    assert tester.request(ecm, b"\x03") == b"\x43\x00"
    sim.vehicle.inject_fault("coolant_sensor_open")
    sim.vehicle.inject_fault("brake_status_checksum")  # U0415: not emission related
    assert tester.request(ecm, b"\x07") == b"\x47\x01\x01\x18"
    wait_for(lambda: tester.request(ecm, b"\x03") == b"\x43\x01\x01\x18", what="confirmed P0118")
    assert tester.request(ecm, b"\x0a") == b"\x4a\x01\x01\x18"
    status = tester.request(ecm, b"\x01\x01")
    assert status is not None and status[2] == 0x81  # MIL on, one emission DTC
    assert tester.request(tcm, b"\x03") == b"\x43\x00"
    assert tester.request(ecm, b"\x04") == b"\x44"
    assert tester.request(ecm, b"\x03") == b"\x43\x00"
    with tester.client(SPEC.ecu("ECM"), ecm) as client:
        assert parse_sae("U0415") in dtc_statuses(client, ACTIVE_MASK)  # mode 04: emission DTCs only


def test_obd_vehicle_information(sim: SimulatorSource, tester: Bench) -> None:
    ecm = tester.physical(SPEC.ecu("ECM"))
    tcm = tester.physical(SPEC.ecu("TCM"))
    answer = tester.request(ecm, b"\x09\x00")
    assert answer is not None and _supported(answer[2:6], 0) == {0x02, 0x0A}
    assert tester.request(ecm, b"\x09\x02") == b"\x49\x02\x01" + VIN.encode()
    assert tester.request(tcm, b"\x09\x0a") == b"\x49\x0a\x01TCM\x00-TransmissionCtl"
    # Functional: single frame on 0x7DF, multi-frame answers with flow control on the
    # physical request ids (ISO 15765-4).
    tester.functional(b"\x09\x02")
    assert ecm.recv(block=True, timeout=2.0) == b"\x49\x02\x01" + VIN.encode()
    assert tcm.recv(block=True, timeout=2.0) == b"\x49\x02\x01" + VIN.encode()


# --- transport, behaviours, lifecycle -------------------------------------------------------


def test_vin_over_socketcand(tmp_path: Any) -> None:
    src = SimulatorSource(FrameRing(), pace_bitrate=None, serve_socketcand=("127.0.0.1", 0))
    src.start()
    try:
        assert src.server is not None
        host, port = src.server.address
        t = Bench(can.Bus(interface="socketcand", host=host, port=port, channel="can0"))
        try:
            with t.client(SPEC.ecu("ECM")) as client:
                assert client.read_data_by_identifier([0xF190]).service_data.values[0xF190] == VIN
        finally:
            t.close()
    finally:
        src.stop()


def test_behaviour_switches(sim: SimulatorSource, tester: Bench) -> None:
    assert sim.vehicle is not None
    net = network(sim)
    abs_stack = tester.physical(SPEC.ecu("ABS"))
    net.behaviour("ABS").silent = True
    assert tester.request(abs_stack, b"\x22\xf1\x90", timeout=0.5) is None
    net.behaviour("ABS").silent = False
    assert tester.request(abs_stack, b"\x22\xf1\x90") == b"\x62\xf1\x90" + VIN.encode()

    sim.vehicle.inject_fault("wheel_speed_fl_dropout")
    net.behaviour("ABS").malformed = True
    answer = tester.request(abs_stack, b"\x19\x02\xff")
    assert answer is not None and answer[:3] == b"\x59\x02\xff" and (len(answer) - 3) % 4 != 0
    net.behaviour("ABS").malformed = False

    net.behaviour("ABS").slow = 2
    tester.drain()
    assert tester.request(abs_stack, b"\x22\xf1\x90") == b"\x7f\x22\x78"
    assert abs_stack.recv(block=True, timeout=2.0) == b"\x7f\x22\x78"
    assert abs_stack.recv(block=True, timeout=2.0) == b"\x62\xf1\x90" + VIN.encode()
    with tester.client(SPEC.ecu("ABS"), abs_stack) as client:  # udsoncan waits through them
        assert client.read_data_by_identifier([0xF190]).service_data.values[0xF190] == VIN
    net.reset_behaviours()
    assert net.behaviour("ABS").slow == 0


def test_dtc_memory_status_evolution_without_a_bus() -> None:
    mem = DtcMemory(
        [(P0118, "coolant", True), (C0035, "wheel", False)], confirm_seconds=2.0, retest_seconds=1.0
    )
    captures: list[float] = []

    def capture_at(t: float) -> Callable[[], dict[int, list[tuple[int, bytes]]]]:
        def capture() -> dict[int, list[tuple[int, bytes]]]:
            captures.append(t)
            return {1: [(0x1002, bytes((int(t),)))]}

        return capture

    def rec(code: int) -> DtcRecord:
        record = mem.get(code)
        assert record is not None
        return record

    assert {r.code: r.status for r in mem.records()} == {P0118: 0x50, C0035: 0x50}
    mem.update({P0118}, 10.0, capture_at(10.0))
    assert rec(P0118).status == FAILED_NOW and rec(C0035).status == 0x50
    mem.update({P0118}, 11.9, capture_at(11.9))
    assert not rec(P0118).status & CONFIRMED
    mem.update({P0118}, 12.0, capture_at(12.0))
    assert rec(P0118).status == FAILED_NOW | CONFIRMED | WARNING_INDICATOR
    mem.update(set(), 13.0, capture_at(13.0))
    assert rec(P0118).status == (FAILED_NOW & ~TEST_FAILED) | CONFIRMED | WARNING_INDICATOR
    mem.update({P0118}, 14.0, capture_at(14.0))
    record = rec(P0118)
    assert record.occurrences == 2 and record.snapshot == {1: [(0x1002, b"\x0a")]}  # first capture kept
    assert captures == [10.0]
    assert not mem.clear(0x999999, 15.0)
    assert mem.clear(0xFFFFFF, 15.0)
    mem.update({P0118}, 15.5, capture_at(15.5))  # monitors not yet re-run after the clear
    assert rec(P0118).status == 0x50
    mem.update({P0118}, 16.0, capture_at(16.0))
    assert rec(P0118).status == FAILED_NOW and rec(P0118).occurrences == 1


def test_network_starts_and_stops_cleanly_twice() -> None:
    channel = "sim-ecus-lifecycle"
    car_bus = can.Bus(interface="virtual", channel=channel)
    ecu_bus = can.Bus(interface="virtual", channel=channel)
    car = DemoVehicle(car_bus, listen=False)
    net = EcuNetwork(ecu_bus, car)
    try:
        for _ in range(2):
            net.start()
            assert net.running and len(net.ecus) == 5
            assert net.ecu("ECM").respond(b"\x22\xf1\x90") == [(b"\x62\xf1\x90" + VIN.encode(), 0.0)]
            # Functional requests never get NRC 0x11/0x12/0x31.
            assert net.ecu("ECM").respond(b"\x85\x02", functional=True) == []
            assert net.ecu("ECM").respond(b"\x22\x12\x34", functional=True) == []
            net.stop()
            assert not net.running
    finally:
        net.stop()
        car_bus.shutdown()
        ecu_bus.shutdown()


def test_can_fd_request_gets_a_can_fd_answer(sim: SimulatorSource, tester: Bench) -> None:
    fd = isotp.NotifierBasedCanStack(
        tester.bus,
        tester.notifier,
        address=isotp.Address(isotp.AddressingMode.Normal_11bits, txid=0x7E0, rxid=0x7E8),
        params={"can_fd": True, "tx_data_length": 64, "tx_padding": 0xAA},
    )
    fd.start()
    try:
        tester.drain()
        request = b"\x22" + b"".join(d.to_bytes(2, "big") for d in SPEC.ecu("ECM").identification)
        answer = tester.request(fd, request)
        assert answer is not None and answer[:3] == b"\x62\xf1\x90" and VIN.encode() in answer
        ecm_frames = [m for m in tester.frames(0.05) if m.arbitration_id == 0x7E8]
        assert ecm_frames and all(m.is_fd for m in ecm_frames)
        assert max(len(m.data) for m in ecm_frames) == 64
    finally:
        fd.stop()
    classic = tester.physical(SPEC.ecu("ECM"))
    tester.drain()
    assert tester.request(classic, b"\x22\xf1\x90") == b"\x62\xf1\x90" + VIN.encode()
    assert not [m for m in tester.frames(0.05) if m.arbitration_id == 0x7E8 and m.is_fd]
