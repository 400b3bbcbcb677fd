"""All simulated ECUs of the demo vehicle on one bus.

One python-can bus connection and one :class:`can.Notifier` carry every ECU: each ECU has an
``isotp.NotifierBasedCanStack`` for its physical address pair and a thread that serves the
requests the stack reassembles. Functional requests (0x7DF, 0x18DB33F1) are single frames;
a raw listener on the same notifier hands them to the ECUs of the matching identifier width
(OBD ones to the OBD ECUs only), whose physical stack sends any answer (and so receives the
tester's flow control on the physical request id, as ISO 15765-4 asks). A timer thread runs the fault
monitors and the S3 session timeouts every ``evaluate_period`` seconds; DTC services also
run the monitors first, so a read right after a fault injection already sees it.

ISO-TP: padding 0xAA, the server's flow control says BS=0, STmin=0. An ECU answers in the
frame format of the tester's last request: classic CAN by default, CAN FD (64-byte frames,
bit-rate switch as requested) after a CAN FD request. can-isotp reads ``can_fd`` and
``tx_data_length`` at send time, so the raw listener flips them on the ECU's stack when it
sees the request frame (it runs before the stacks' listeners on the shared notifier).

Programmable ECUs (:data:`FLASH_LAYOUTS`: ECM, BCM) have a bootloader whose flash is kept in
``flash_dir`` (default ``$WORKSHOP_HOME/sim``), one ``<ECU>.flash`` file each. While an ECU
runs its bootloader, or a tester disabled its communication (0x28), the vehicle stops every
periodic frame the DBC lists that ECU as sender of; ControlDTCSetting off freezes its fault
memory.
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import can
import isotp

from workshop_app.core.diag.addressed_stack import AddressedCanStack
from workshop_app.core.diag.dtc import CONFIRMED, parse_sae
from workshop_app.core.diag.ecu_spec import EcuSpec, VehicleSpec, demo_vehicle_spec
from workshop_app.core.history.location import workshop_home
from workshop_app.core.sim.demo_vehicle import DemoVehicle
from workshop_app.core.sim.ecus.bootloader import Bootloader
from workshop_app.core.sim.ecus.dtc_memory import CONFIRM_SECONDS, DtcMemory, Snapshot
from workshop_app.core.sim.ecus.flash_memory import FLASH_LAYOUTS, FlashMemory
from workshop_app.core.sim.ecus.obd_server import OBD_MODES, ObdData, ObdServer
from workshop_app.core.sim.ecus.uds_server import RESPONSE_PENDING, EcuBehaviour, UdsServer, negative
from workshop_app.core.sim.ecus.values import IDENTIFICATION, Reading, live_value
from workshop_app.core.sim.faults import FAULTS, Fault, get_fault
from workshop_app.core.sim.vehicle_model import VehicleState
from workshop_app.core.update import protocol as p

__all__ = ["FUNCTIONAL_ID_11BIT", "FUNCTIONAL_ID_29BIT", "EcuNetwork", "SimulatedEcu"]

FUNCTIONAL_ID_11BIT = 0x7DF
FUNCTIONAL_ID_29BIT = 0x18DB33F1
ECM_CLEAR_PENDING_S = 0.3  # the ECM "erases its EEPROM" behind an NRC 0x78
_POLL_S = 0.01  # how long an ECU thread waits on its stack before checking functional requests
_ISOTP_PARAMS = {
    "tx_padding": 0xAA,
    "blocksize": 0,
    "stmin": 0,
    "tx_data_length": 8,
    "can_fd": False,
    "rx_flowcontrol_timeout": 1000,
    "rx_consecutive_frame_timeout": 1000,
    # A TransferData of 0x0FFF + 2 bytes needs the ISO 15765-2:2016 escaped first frame.
    "max_frame_size": 0xFFFF,
}
_OBD_PIDS = {
    "ECM": frozenset({0x04, 0x05, 0x0C, 0x0D, 0x0F, 0x11, 0x1C, 0x21, 0x31, 0x42, 0x46}),
    "TCM": frozenset({0x0D, 0x1C}),
}
_OBD_NAMES = {"ECM": "EngineControl", "TCM": "TransmissionCtl"}


def _address(spec: EcuSpec) -> isotp.Address:
    if spec.addressing == "normal_fixed_29bit":
        return isotp.Address(
            isotp.AddressingMode.NormalFixed_29bits,
            target_address=spec.source_address,  # the ECU answers the tester
            source_address=spec.target_address,
        )
    mode = isotp.AddressingMode.Normal_29bits if spec.extended_ids else isotp.AddressingMode.Normal_11bits
    return isotp.Address(mode, txid=spec.response_id, rxid=spec.request_id)


class SimulatedEcu:
    """One ECU: fault memory, UDS and (ECM/TCM) OBD-II servers, its ISO-TP stack and thread."""

    def __init__(self, network: EcuNetwork, spec: EcuSpec, vin: str) -> None:
        self.spec = spec
        self.name = spec.name
        self.vin = vin
        self.behaviour = EcuBehaviour()
        self._network = network
        # The ECM's P-codes are the emission faults that request the MIL once confirmed.
        codes = [
            (parse_sae(code), text, spec.name == "ECM" and code.startswith("P"))
            for f in FAULTS.values()
            if f.ecu == spec.name
            for code, text in f.dtcs
        ]
        self.memory = DtcMemory(codes, confirm_seconds=network.confirm_seconds)
        self.flash: FlashMemory | None = None
        self.bootloader: Bootloader | None = None
        layout = FLASH_LAYOUTS.get(spec.name)
        if layout is not None:
            folder = network.flash_dir
            self.flash = FlashMemory(layout, None if folder is None else folder / f"{spec.name}.flash")
            self.bootloader = Bootloader(self.flash, self._driving)
        self._quiet = False
        self.uds = UdsServer(
            spec,
            self.memory,
            self.read_did,
            network.sim_time,
            self.behaviour,
            clear_pending_s=ECM_CLEAR_PENDING_S if spec.name == "ECM" else 0.0,
            before_dtc_read=network.evaluate,
            bootloader=self.bootloader,
        )
        self.obd: ObdServer | None = None
        self._odo_at_clear = 0.0
        self._odo_at_mil: float | None = None
        if spec.obd:
            self.obd = ObdServer(
                spec.name,
                _OBD_NAMES.get(spec.name, spec.description),
                vin,
                self.memory,
                self._obd_data,
                _OBD_PIDS.get(spec.name, frozenset()),
                network.sim_time,
                on_clear=self._reset_distance,
                before_dtc_read=network.evaluate,
                monitors=(0x07, 0x65, 0x00) if spec.name == "ECM" else (0x00, 0x00, 0x00),
            )
        self.stack: isotp.NotifierBasedCanStack | None = None
        self._functional: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.requests_served = 0

    # --- values ---------------------------------------------------------------------------

    def read_did(self, did: int) -> bytes:
        """Encoded current value of one of this ECU's DIDs."""
        spec = self.spec.did(did)
        if did == 0xF190:
            return spec.encode(self.vin)
        flash = self.flash
        if flash is not None:
            programmed: dict[int, str | int] = {
                p.DID_BOOT_SOFTWARE: flash.boot_version,
                p.DID_APP_SOFTWARE: flash.software_version,
                p.DID_HARDWARE: flash.hardware,
                p.DID_RELEASE_COUNTER: flash.release_counter,
                p.DID_APP_VALID: int(flash.app_valid),
            }
            if did in programmed:
                return spec.encode(programmed[did])
        ident = IDENTIFICATION.get(self.name, {})
        if did in ident:
            return spec.encode(ident[did])
        state, faults = self._network.snapshot()
        return self._encode(did, live_value(did, state, faults, self._network.bus_load()))

    def _encode(self, did: int, value: Reading) -> bytes:
        spec = self.spec.did(did)
        if value is None:
            return b"\xff" * spec.length
        return spec.encode(value)

    def capture(self, state: VehicleState, faults: tuple[Fault, ...]) -> Snapshot:
        """The freeze frame records of this ECU from one view of the car."""
        load = self._network.bus_load()
        return {
            rec: [(did, self._encode(did, live_value(did, state, faults, load))) for did in dids]
            for rec, dids in self.spec.snapshot_records.items()
        }

    def _driving(self) -> tuple[float, float]:
        """Engine speed (rpm) and vehicle speed (km/h) now: the programming preconditions."""
        state, _ = self._network.snapshot()
        return state.rpm, state.speed_kmh  # a cranking engine turns too

    def sync_transmission(self) -> None:
        """Stop or resume this ECU's periodic frames on the vehicle (0x28, bootloader)."""
        quiet = self.uds.in_bootloader or not self.uds.transmitting
        if quiet != self._quiet:
            self._quiet = quiet
            self._network.vehicle.set_node_quiet(self.name, quiet)

    def _obd_data(self) -> ObdData:
        state, faults = self._network.snapshot()
        coolant = live_value(0x1002, state, faults)
        mil_km = 0.0 if self._odo_at_mil is None else state.odometer_km - self._odo_at_mil
        return ObdData(
            state=state,
            coolant_c=float(coolant) if isinstance(coolant, int | float) else state.coolant_c,
            km_since_mil=mil_km,
            km_since_clear=state.odometer_km - self._odo_at_clear,
        )

    def _reset_distance(self) -> None:
        state, _ = self._network.snapshot()
        self._odo_at_clear = state.odometer_km
        self._odo_at_mil = None

    def evaluate(
        self,
        failing: set[int],
        state: VehicleState,
        faults: tuple[Fault, ...],
        untested: set[int] | None = None,
    ) -> None:
        """Run this ECU's monitors against one view of the car (``untested``: cannot run now)."""
        if not self.uds.dtc_setting_on or self.uds.in_bootloader:
            return  # DTC setting off (0x85 02), or no application to monitor anything
        self.memory.update(failing, state.t, lambda: self.capture(state, faults), untested)
        if self.obd is not None:
            mil = any(r.mil and r.status & 0x80 for r in self.memory.records())
            if mil and self._odo_at_mil is None:
                self._odo_at_mil = state.odometer_km
            elif not mil:
                self._odo_at_mil = None

    # --- transport ------------------------------------------------------------------------

    def start(self, bus: can.BusABC, notifier: can.Notifier) -> None:
        state, _ = self._network.snapshot()
        self._odo_at_clear = state.odometer_km
        # Filtered in the notifier's thread: five ECUs share one notifier.
        self.stack = AddressedCanStack(bus, notifier, address=_address(self.spec), params=_ISOTP_PARAMS)
        self.stack.start()
        self.sync_transmission()  # an ECU restarting in its bootloader stays quiet
        self._thread = threading.Thread(target=self._serve, name=f"SimEcu[{self.name}]", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(5.0)
        if self.stack is not None:
            self.stack.stop()
            self.stack = None

    def follow_format(self, fd: bool, brs: bool) -> None:
        """Answer in CAN FD (or classic CAN) from now on, like the tester's request."""
        stack = self.stack
        if stack is None or (stack.params.can_fd, stack.params.bitrate_switch) == (fd, fd and brs):
            return
        stack.params.can_fd = fd
        stack.params.bitrate_switch = fd and brs
        stack.params.tx_data_length = 64 if fd else 8

    def push_functional(self, data: bytes) -> None:
        self._functional.put(data)

    def _serve(self) -> None:
        stack = self.stack
        assert stack is not None
        stopping = self._network.stopping
        while not stopping.is_set():
            data = stack.recv(block=True, timeout=_POLL_S)
            if data is not None:
                self._answer(bytes(data), functional=False)
            while True:
                try:
                    request = self._functional.get_nowait()
                except queue.Empty:
                    break
                self._answer(request, functional=True)

    def respond(self, request: bytes, functional: bool = False) -> list[tuple[bytes, float]]:
        """The frames-to-be of one answer: ``(payload, delay before it)``, in order.

        Transport-free, so unit tests and other tools can drive an ECU directly.
        """
        if self.behaviour.silent or not request:
            return []
        sid = request[0]
        if sid in OBD_MODES:
            if self.uds.in_bootloader:
                # The OBD application does not run in the bootloader.
                return [] if functional else [(negative(sid, 0x22), 0.0)]
            if self.obd is None:
                return [] if functional else [(negative(sid, 0x11), 0.0)]
            answer = self.obd.handle(request, functional)
            out = [] if answer is None else [(answer, 0.0)]
        else:
            reply = self.uds.handle(request, functional)
            if reply is None:
                return []
            out = [(reply.data, reply.delay_s)]
            if reply.pending_s > 0:
                # NRC 0x78 at once, repeated inside P2*, then the answer when the job is done.
                every = max(reply.pending_every_s, 0.01)
                repeats = max(int((reply.pending_s - 1e-9) // every), 0)
                out = [(negative(sid, RESPONSE_PENDING), 0.0)]
                out += [(negative(sid, RESPONSE_PENDING), every)] * repeats
                out.append((reply.data, reply.pending_s - repeats * every))
        if out and self.behaviour.slow > 0:
            gap = self.behaviour.slow_interval_s
            first, first_delay = out[0]
            pending = [
                (negative(sid, RESPONSE_PENDING), gap if i else 0.0) for i in range(self.behaviour.slow)
            ]
            out = [*pending, (first, gap + first_delay), *out[1:]]
        return out

    def _answer(self, request: bytes, functional: bool) -> None:
        self.requests_served += 1
        stack = self.stack
        self.uds.busy = True  # an erase answered over seconds must not time the session out
        try:
            for payload, delay in self.respond(request, functional):
                if delay > 0 and self._network.stopping.wait(delay):
                    return
                if stack is not None:
                    stack.send(payload)
        finally:
            self.uds.busy = False
            self.uds.touch()
            self.sync_transmission()


class EcuNetwork:
    """Every ECU of a vehicle description, served on ``bus`` for ``vehicle``.

    >>> net = EcuNetwork(bus, vehicle)      # doctest: +SKIP
    >>> net.start(); net.behaviour("ABS").silent = True; net.stop()  # doctest: +SKIP

    The caller owns ``bus`` (a connection of its own: the network attaches a Notifier to it)
    and shuts it down after :meth:`stop`.
    """

    def __init__(
        self,
        bus: can.BusABC,
        vehicle: DemoVehicle,
        spec: VehicleSpec | None = None,
        *,
        confirm_seconds: float = CONFIRM_SECONDS,
        evaluate_period: float = 0.1,
        flash_dir: Path | None = None,
        persist_flash: bool = True,
    ) -> None:
        self.bus = bus
        # The programmable ECUs' flash files (None with persist_flash=False: memory only).
        self.flash_dir: Path | None = None
        if persist_flash:
            self.flash_dir = Path(flash_dir) if flash_dir is not None else workshop_home() / "sim"
        self.vehicle = vehicle
        self.spec = spec or demo_vehicle_spec()
        self.confirm_seconds = confirm_seconds
        self.evaluate_period = evaluate_period
        self.stopping = threading.Event()
        self._eval_lock = threading.Lock()
        self.ecus: dict[str, SimulatedEcu] = {
            e.name: SimulatedEcu(self, e, self.spec.vin) for e in self.spec.ecus
        }
        self._notifier: can.Notifier | None = None
        self._timer: threading.Thread | None = None

    # --- public API -----------------------------------------------------------------------

    def ecu(self, name: str) -> SimulatedEcu:
        try:
            return self.ecus[name]
        except KeyError:
            raise KeyError(f"no simulated ECU {name!r}; known: {', '.join(self.ecus)}") from None

    def behaviour(self, name: str) -> EcuBehaviour:
        """The misbehaviour switches of ECU ``name`` (mutable, effective at once)."""
        return self.ecu(name).behaviour

    def reset_behaviours(self) -> None:
        for e in self.ecus.values():
            e.behaviour.silent = e.behaviour.malformed = False
            e.behaviour.slow = 0
            if e.bootloader is not None:
                e.bootloader.corrupt_writes = False

    def wait_confirmed(self, fault_names: list[str], timeout: float) -> bool:
        """Block until the DTCs of these faults are confirmed in their ECUs; False on timeout.

        How long that takes depends on the car: a misfire is only detected once the engine
        runs, so after a cold start it takes longer than a sensor circuit fault.
        """
        wanted = [(f.ecu, parse_sae(code)) for f in map(get_fault, fault_names) for code, _ in f.dtcs]
        deadline = time.monotonic() + timeout
        while True:
            records = [self.ecus[ecu].memory.get(code) for ecu, code in wanted if ecu in self.ecus]
            if all(r is not None and r.status & CONFIRMED for r in records):
                return True
            if time.monotonic() >= deadline or self.stopping.is_set():
                return False
            time.sleep(0.05)

    def set_confirm_seconds(self, seconds: float) -> None:
        """Simulated seconds a failure needs to become confirmed, for every ECU."""
        self.confirm_seconds = seconds
        for e in self.ecus.values():
            e.memory.confirm_seconds = seconds

    def set_retest_seconds(self, seconds: float) -> None:
        """Simulated seconds the monitors need after a clear before they can fail again, for every ECU."""
        for e in self.ecus.values():
            e.memory.retest_seconds = seconds

    @property
    def running(self) -> bool:
        return self._notifier is not None

    def sim_time(self) -> float:
        return self.vehicle.sim_time

    def bus_load(self) -> float:
        return self.vehicle.bus_load

    def snapshot(self) -> tuple[VehicleState, tuple[Fault, ...]]:
        """A copy of the car's state and its active faults."""
        faults = tuple(get_fault(n) for n in self.vehicle.active_faults)
        return self.vehicle.state_snapshot(), faults

    def evaluate(self) -> None:
        """Run every ECU's fault monitors now (the timer does this periodically)."""
        with self._eval_lock:
            state, faults = self.snapshot()
            failing: dict[str, set[int]] = {}
            untested: dict[str, set[int]] = {}  # monitors that cannot run now: status kept
            for f in faults:
                for code, _ in f.dtcs:
                    into = failing if f.monitor.enabled(state) else untested
                    into.setdefault(f.ecu, set()).add(parse_sae(code))
            for e in self.ecus.values():
                e.evaluate(failing.get(e.name, set()), state, faults, untested.get(e.name, set()))

    def start(self) -> None:
        if self.running:
            return
        self.stopping.clear()
        self.evaluate()
        self._notifier = can.Notifier(self.bus, [self._on_frame], timeout=0.05)
        try:
            for e in self.ecus.values():
                e.start(self.bus, self._notifier)
            self._timer = threading.Thread(target=self._tick, name="SimEcuMonitors", daemon=True)
            self._timer.start()
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every thread and stack (idempotent); the bus stays open."""
        self.stopping.set()
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.join(5.0)
        for e in self.ecus.values():
            e.stop()
        notifier, self._notifier = self._notifier, None
        if notifier is not None:
            notifier.stop()

    def __enter__(self) -> EcuNetwork:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- internals ------------------------------------------------------------------------

    def _tick(self) -> None:
        while not self.stopping.wait(self.evaluate_period):
            try:
                self.evaluate()
                for e in self.ecus.values():
                    e.uds.check_s3()  # outside the evaluation lock: no lock-order cycle
                    e.sync_transmission()  # S3 back to default: communication resumes
            except Exception:  # a monitor hiccup must not end the simulation
                time.sleep(self.evaluate_period)

    def _on_frame(self, msg: can.Message) -> None:
        if msg.is_error_frame or msg.is_remote_frame:
            return
        for e in self.ecus.values():
            if msg.arbitration_id == e.spec.request_id and msg.is_extended_id == e.spec.extended_ids:
                e.follow_format(msg.is_fd, msg.bitrate_switch)
                return
        if msg.is_extended_id:
            if msg.arbitration_id != FUNCTIONAL_ID_29BIT:
                return
        elif msg.arbitration_id != FUNCTIONAL_ID_11BIT:
            return
        payload = _single_frame(bytes(msg.data))
        if payload is None:
            return  # functional requests are single frames only
        for e in self.ecus.values():
            # OBD requests reach the OBD ECUs; UDS ones (0x10, 0x28, 0x3E, 0x85 …) every ECU.
            if e.spec.extended_ids == msg.is_extended_id and (
                e.obd is not None or payload[0] not in OBD_MODES
            ):
                e.follow_format(msg.is_fd, msg.bitrate_switch)
                e.push_functional(payload)


def _single_frame(data: bytes) -> bytes | None:
    """Payload of an ISO 15765-2 single frame (classic or CAN FD escape), else None."""
    if not data or data[0] >> 4 != 0:
        return None
    length = data[0] & 0x0F
    if length == 0 and len(data) > 2:  # CAN FD: length in the second byte
        length, start = data[1], 2
    else:
        start = 1
    if length == 0 or start + length > len(data):
        return None
    return data[start : start + length]
