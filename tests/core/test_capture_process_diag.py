"""Diagnostics through a capture process: the LinkBus, the tap, scans and clears of the simulated car."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import can
import isotp
import numpy as np
import pytest
import udsoncan
from helpers.processes import ENV, WORKSHOP
from helpers.waiting import wait_until
from udsoncan.client import Client
from udsoncan.common.MemoryLocation import MemoryLocation
from udsoncan.connections import PythonIsoTpConnection

from workshop_app.cli import main
from workshop_app.core.capture.columns import EXTENDED, RX, FrameColumns
from workshop_app.core.capture.link_bus import LinkBus, LinkNotifier
from workshop_app.core.capture.process_child import TapRing
from workshop_app.core.capture.process_session import ProcessCaptureSession
from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.diag.client import EcuAddress, EcuClient
from workshop_app.core.diag.ecu_spec import demo_vehicle_spec
from workshop_app.core.diag.model import ScanLabel, ScanResult
from workshop_app.core.diag.scan import ScanOptions
from workshop_app.core.history import HistoryStore
from workshop_app.core.sim.demo_vehicle import DemoVehicle
from workshop_app.core.sim.ecus import EcuNetwork
from workshop_app.core.sim.ecus.flash_memory import FLASH_LAYOUTS
from workshop_app.core.sim.socketcand_server import SocketcandServer
from workshop_app.core.sources.base import SourceState
from workshop_app.core.sources.factory import SourceSpec
from workshop_app.core.sources.reconnect import NO_RECONNECT
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.core.types import Frame
from workshop_app.core.update import protocol as proto
from workshop_app.core.workshop import WorkshopSession

SPEC = demo_vehicle_spec()
DID_VIN = 0xF190
FAULTS = ("coolant_sensor_open", "wheel_speed_fl_dropout")


def _codes(result: ScanResult) -> dict[str, list[str]]:
    return {e.name: [d.sae for d in e.dtcs] for e in result.ecus}


def _what_was_read(result: ScanResult) -> list[tuple[str, bool, dict[str, str], list[tuple[str, int]]]]:
    """Per ECU: answered, identification, codes with their status bytes."""
    return [(e.name, e.responded, e.identification, [(d.sae, d.status) for d in e.dtcs]) for e in result.ecus]


def _scan(session: WorkshopSession, options: ScanOptions | None = None) -> ScanResult:
    session.start()
    try:
        return session.diagnostics.scan_and_store(options or ScanOptions())
    finally:
        session.close()


@pytest.fixture
def car() -> Iterator[SimulatorSource]:
    """The simulated car with two confirmed faults, served over socketcand (as `workshop
    simulate --serve socketcand` serves it to a workshop on another process)."""
    src = SimulatorSource(FrameRing(), serve_socketcand=("127.0.0.1", 0))
    src.start()
    assert src.ecus is not None and src.vehicle is not None
    src.ecus.set_confirm_seconds(0.3)
    for name in FAULTS:
        src.vehicle.inject_fault(name)
    src.ecus.evaluate()
    assert src.ecus.wait_confirmed(list(FAULTS), timeout=20), "the faults were never confirmed"
    try:
        yield src
    finally:
        src.stop()


def _served(car: SimulatorSource) -> SourceSpec:
    assert car.server is not None
    host, port = car.server.address
    return SourceSpec(interface="socketcand", host=host, port=port, channel="can0", reconnect=NO_RECONNECT)


# -- the whole path, as a user runs it -----------------------------------------------------------


def test_a_scan_through_the_capture_process_reads_what_an_in_process_scan_reads(car: SimulatorSource) -> None:
    spec = _served(car)
    here = _scan(WorkshopSession(spec))
    there = _scan(WorkshopSession(replace(spec, capture_process=True)))
    assert _codes(there) == {"ECM": ["P0118"], "TCM": [], "ABS": ["C0035"], "BCM": [], "GW": []}
    assert _what_was_read(there) == _what_was_read(here)
    assert there.vin == here.vin == SPEC.vin
    assert all(e.responded and not e.problems for e in there.ecus)


def test_the_built_in_simulated_car_in_a_capture_process_scans_as_in_process() -> None:
    here = _scan(WorkshopSession(SourceSpec(sim_time_scale=10.0)))
    session = WorkshopSession(SourceSpec(sim_time_scale=10.0, capture_process=True))
    assert isinstance(session.capture, ProcessCaptureSession)
    there = _scan(session)
    assert [(e.name, e.responded, e.identification) for e in there.ecus] == [
        (e.name, e.responded, e.identification) for e in here.ecus
    ]
    assert there.vin == SPEC.vin and len(there.ecus) == 5
    assert session.capture.drops.link == session.capture.drops.receive == 0


def test_clear_with_scans_through_the_capture_process(car: SimulatorSource, tmp_path: Path) -> None:
    assert car.vehicle is not None

    def repair(before: ScanResult, targets: list[str]) -> bool:
        assert _codes(before)["ECM"] == ["P0118"] and _codes(before)["ABS"] == ["C0035"]
        car.vehicle.clear_faults()  # type: ignore[union-attr]  # the repair, on the car
        return True

    with HistoryStore(tmp_path / "history.db") as history:
        session = WorkshopSession(replace(_served(car), capture_process=True), history=history)
        session.start()
        try:
            report = session.diagnostics.clear_with_scans(
                None, options=ScanOptions(sweep=False), before_clear=repair
            )
        finally:
            session.close()
        assert report.all_cleared and report.history_problems == []
        assert sorted(d.sae for _, d in report.comparison.gone) == ["C0035", "P0118"]
        assert report.after.dtc_count == 0
        assert [r.label for r in history.scans()] == [ScanLabel.POST_REPAIR, ScanLabel.PRE_REPAIR]


def test_dtc_scan_on_the_command_line_with_a_capture_process(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["dtc", "scan", "--capture-process", "--no-history", "--no-sweep"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in err
    for name in ("ECM", "TCM", "ABS", "BCM", "GW"):
        assert name in out
    assert SPEC.vin in out


def test_faults_cannot_be_injected_into_a_car_in_a_capture_process(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["dtc", "scan", "--capture-process", "--no-history", "--fault", "misfire_cyl2"])
    _, err = capsys.readouterr()
    assert code != 0
    assert "--capture-process" in err and "Traceback" not in err


def _spawned_children(pid: int) -> list[str]:
    """Command lines of the processes ``pid`` started through multiprocessing's spawn."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue  # ended while we looked
        if ppid == pid and "spawn_main" in cmdline:
            found.append(cmdline)
    return found


@pytest.mark.parametrize("option", [[], ["--capture-process"], ["--no-capture-process"]])
def test_the_window_opens_on_a_capture_process_unless_told_not_to(tmp_path: Path, option: list[str]) -> None:
    env = {**ENV, "WORKSHOP_HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    env["QT_QPA_PLATFORM"] = "offscreen"
    proc = subprocess.Popen(
        [*WORKSHOP, "gui", *option, "--quit-after", "6"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    spawned: list[str] = []
    try:
        # Until the history file exists the window is not up; then look for its capture process.
        wait_until(lambda: (tmp_path / "history.db").exists(), 60, "the window to start")
        if option != ["--no-capture-process"]:
            wait_until(lambda: _spawned_children(proc.pid), 60, "the window's capture process")
        else:

            def quit_without_spawning() -> bool:
                spawned.extend(_spawned_children(proc.pid))  # looked at while the window runs
                return proc.poll() is not None

            wait_until(quit_without_spawning, 120, "the window to quit")
        _, err = proc.communicate(timeout=120)  # a bound on the window's life, not a measurement
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert spawned == []  # --no-capture-process: nothing spawned while the window ran


@pytest.fixture
def parked_car(tmp_path: Path) -> Iterator[tuple[SourceSpec, EcuNetwork]]:
    """The car parked (engine off, time all but still) with its bootloaders, over socketcand."""
    channel = f"cp-flash-{os.getpid()}-{tmp_path.name}"
    buses = [can.Bus(interface="virtual", channel=channel) for _ in range(3)]
    car = DemoVehicle(buses[0], time_scale=1e-6)
    net = EcuNetwork(buses[1], car, flash_dir=tmp_path / "flash")
    server = SocketcandServer(buses[2], host="127.0.0.1", port=0, channel="can0")
    try:
        net.ecu("ECM").bootloader.timing.erase_seconds = 0.1  # type: ignore[union-attr]
        car.start()
        net.start()
        server.start()
        host, port = server.address
        yield (
            SourceSpec(interface="socketcand", host=host, port=port, channel="can0", capture_process=True),
            net,
        )
    finally:
        server.stop()
        net.stop()
        car.stop()
        for b in buses:
            b.shutdown()


def test_an_ecu_is_programmed_through_the_capture_process(parked_car: tuple[SourceSpec, EcuNetwork]) -> None:
    spec, net = parked_car
    ecm = SPEC.ecu("ECM")
    layout = FLASH_LAYOUTS["ECM"]
    image = bytes((i * 131 + (i >> 8)) & 0xFF for i in range(48 * 1024))
    session = ProcessCaptureSession(spec)
    session.start()
    try:
        source = session.capture_source
        assert source.bus is not None and source.notifier is not None
        address = isotp.Address(isotp.AddressingMode.Normal_11bits, txid=ecm.request_id, rxid=ecm.response_id)
        stack = isotp.NotifierBasedCanStack(
            source.bus, source.notifier, address=address, params={"tx_padding": 0xAA}
        )
        config = dict(udsoncan.configs.default_client_config)
        config.update({"use_server_timing": False, "request_timeout": 30, "p2_timeout": 2.0})
        with Client(PythonIsoTpConnection(stack), config=config) as client:  # type: ignore[arg-type]
            client.change_session(proto.EXTENDED_SESSION)
            client.control_dtc_setting(0x02)
            client.communication_control(0x03, 0x01)
            client.change_session(proto.PROGRAMMING_SESSION)
            seed = client.request_seed(proto.PROGRAMMING_SECURITY_LEVEL).service_data.seed
            client.send_key(proto.PROGRAMMING_SECURITY_LEVEL + 1, proto.demo_programming_key(seed))
            record = bytes((proto.ADDRESS_AND_LENGTH_FORMAT,)) + layout.start.to_bytes(4, "big")
            client.start_routine(proto.ROUTINE_ERASE_MEMORY, record + layout.size.to_bytes(4, "big"))
            location = MemoryLocation(layout.start, len(image), address_format=32, memorysize_format=32)
            block = int(client.request_download(location).service_data.max_length) - 2
            for n, offset in enumerate(range(0, len(image), block)):
                client.transfer_data((n + 1) & 0xFF, image[offset : offset + block])
            client.request_transfer_exit()
        flash = net.ecu("ECM").flash
        assert flash is not None and flash.read(layout.start, len(image)) == image
        # Every frame of the transfer passed the capture process, and none was lost on the way.
        assert session.drops.link == session.drops.receive == 0
    finally:
        session.stop()


# -- the LinkBus --------------------------------------------------------------------------------


@pytest.fixture
def session() -> Iterator[ProcessCaptureSession]:
    s = ProcessCaptureSession(SourceSpec(sim_time_scale=10.0))
    s.start()
    try:
        yield s
    finally:
        s.stop()


def test_a_filtered_link_bus_gets_only_its_frames_with_their_flags(session: ProcessCaptureSession) -> None:
    source = session.capture_source
    ecm = SPEC.ecu("ECM")
    address = EcuAddress.of(ecm)
    bus = source.open_bus(
        can_filters=[{"can_id": address.response_id, "can_mask": 0x7FF, "extended": address.extended}]
    )
    try:
        # ReadDataByIdentifier VIN as a single frame; the ECM answers with a first frame.
        bus.send(
            can.Message(
                arbitration_id=address.request_id,
                data=b"\x03\x22\xf1\x90".ljust(8, b"\xcc"),
                is_extended_id=False,
            )
        )
        first = bus.recv(timeout=10)
        assert first is not None
        assert first.arbitration_id == address.response_id and not first.is_extended_id
        assert first.is_rx and not first.is_error_frame and not first.is_remote_frame
        assert first.data[0] >> 4 == 1 and bytes(first.data[2:5]) == b"\x62\xf1\x90"  # FF of the VIN
        assert first.channel == source.bus.default_channel
        # Only the filtered id arrived, though the car sends hundreds of frames a second.
        wait_until(lambda: session.tick() is not None and session.store.total_frames > 500, 30, "traffic")
        while (msg := bus.recv(timeout=0)) is not None:
            assert msg.arbitration_id == address.response_id
        # The request's echo reached the trace, not the bus (python-can: no own messages).
        echo = session.store.get(source.bus.default_channel, address.request_id)
        assert echo is not None and not echo.is_rx
    finally:
        bus.shutdown()


def test_an_idle_notifier_copies_nothing_and_ecu_clients_share_it(session: ProcessCaptureSession) -> None:
    source = session.capture_source
    bus, notifier = source.bus, source.notifier
    assert isinstance(bus, LinkBus) and isinstance(notifier, LinkNotifier)
    wait_until(lambda: session.tick() is not None and session.store.total_frames > 300, 30, "traffic")
    assert bus.queued == 0  # no listener: the car's traffic is not copied for diagnostics
    assert bus.wanted() == frozenset()

    # Two clients on two threads at once (as a scan beside a TesterPresent thread), each on
    # its own ECU, on the one bus and notifier.
    errors: list[BaseException] = []
    vins: list[str] = []

    def read_vins(name: str) -> None:
        try:
            with EcuClient(bus, notifier, EcuAddress.of(SPEC.ecu(name)), spec=SPEC.ecu(name)) as client:
                for _ in range(10):
                    vins.append(client.read_did(DID_VIN))
                    client.tester_present()
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=read_vins, args=(n,)) for n in ("ECM", "ABS")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert vins == [SPEC.vin] * 20
    # What the clients' stacks listened to was tapped; with both gone, nothing is.
    assert bus.queued > 0
    assert bus.wanted() == frozenset()
    assert session.drops.window == 0


def test_diagnostics_work_again_after_the_capture_process_is_restarted(
    session: ProcessCaptureSession,
) -> None:
    source = session.capture_source
    ecm = SPEC.ecu("ECM")
    with EcuClient(source.bus, source.notifier, EcuAddress.of(ecm), spec=ecm) as client:
        assert client.read_did(DID_VIN) == SPEC.vin
        first = source.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        wait_until(
            lambda: source.reconnects and source.state is SourceState.RUNNING,
            30,
            "the restarted capture process",
        )
        assert source.pid not in (None, first)
        assert client.read_did(DID_VIN) == SPEC.vin


# -- the pieces ---------------------------------------------------------------------------------


def test_the_tap_ring_wakes_its_loop_only_for_tapped_ids() -> None:
    ring = TapRing(100)
    ring.push(Frame(0.0, 0x7E8, b"\x01"))
    assert not ring.wake.is_set()
    ring.set_tap(frozenset({(0x7E8, False)}))
    ring.push(Frame(0.0, 0x100, b"\x01"))
    assert not ring.wake.is_set() and not ring.tap_all
    ring.push(Frame(0.0, 0x7E8, b"\x02"))
    assert ring.wake.is_set()
    ring.wake.clear()
    ring.push_many([Frame(0.0, 0x101, b""), Frame(0.0, 0x7E8, b"")])
    assert ring.wake.is_set()
    ring.set_tap(None)
    assert ring.tap_all and ring.tap == frozenset()
    assert len(ring.drain()) == 5


class _End:
    """A LinkBus's far end that keeps what it is told (no capture process)."""

    def __init__(self) -> None:
        self.sent: list[Frame] = []
        self.buses: list[LinkBus] = []

    def send(self, frame: Frame) -> None:
        self.sent.append(frame)

    def attach(self, bus: LinkBus) -> None:
        self.buses.append(bus)

    def retap(self) -> None:
        pass

    def forget(self, bus: LinkBus) -> None:
        self.buses.remove(bus)


def test_link_bus_filters_follow_python_can_rules() -> None:
    frames = [
        Frame(1.0, 0x7E8, b"\x01", "can1"),
        Frame(2.0, 0x7E9, b"\x02", "can1"),
        Frame(3.0, 0x18DAF101, b"\x03" * 12, "can2", is_extended=True, is_fd=True, bitrate_switch=True),
        Frame(4.0, 0x7E8, b"\x04", "can1", is_rx=False),  # an echo of our own
    ]
    cols = FrameColumns.from_frames(frames)
    end = _End()
    bus = LinkBus(
        end,
        can_filters=[
            {"can_id": 0x7E8, "can_mask": 0x7FE},
            {"can_id": 0x18DAF101, "can_mask": 0x1FFFFFFF, "extended": True},
        ],
    )
    try:
        assert end.buses == [bus]
        assert bus.wanted() is None  # a mask over two ids: the capture process ticks fast instead
        assert bus.offer(cols) == 3
        got = [bus.recv(timeout=0) for _ in range(3)]
        assert [(m.arbitration_id, bytes(m.data), m.channel) for m in got if m] == [
            (0x7E8, b"\x01", "can1"),
            (0x7E9, b"\x02", "can1"),
            (0x18DAF101, b"\x03" * 12, "can2"),
        ]
        fd = got[2]
        assert fd is not None and fd.is_extended_id and fd.is_fd and fd.bitrate_switch and fd.dlc == 12
        bus.set_filters([{"can_id": 0x7E9, "can_mask": 0x7FF, "extended": False}])
        assert bus.wanted() == frozenset({(0x7E9, False)})
        assert bus.offer(cols) == 1
        bus.send(can.Message(arbitration_id=0x7E1, data=b"\x02\x3e\x00", is_extended_id=False))
        assert [(f.arbitration_id, f.data, f.is_rx) for f in end.sent] == [(0x7E1, b"\x02\x3e\x00", False)]
        assert np.count_nonzero(cols.flags & RX) == 3 and np.count_nonzero(cols.flags & EXTENDED) == 1
    finally:
        bus.shutdown()
    assert end.buses == []
    with pytest.raises(can.CanOperationError):
        bus.send(can.Message(arbitration_id=0x7E1, data=b""))


def test_a_notifier_narrows_the_bus_to_what_its_listeners_take() -> None:
    end = _End()
    bus = LinkBus(end)
    notifier = LinkNotifier(bus)
    try:
        assert bus.wanted() == frozenset()  # no listener: nothing is copied
        cols = FrameColumns.from_frames([Frame(1.0, 0x7E8, b"\x01"), Frame(1.0, 0x123, b"\x02")])
        assert bus.offer(cols) == 0
        client = EcuClient(bus, notifier, EcuAddress(0x7E0, 0x7E8, False))
        client.open()
        try:
            assert bus.wanted() == frozenset({(0x7E8, False)})
            everything = can.BufferedReader()
            notifier.add_listener(everything)  # a listener that takes every frame
            assert bus.wanted() is None
            notifier.remove_listener(everything)
            assert bus.wanted() == frozenset({(0x7E8, False)})
        finally:
            client.close()
        assert bus.wanted() == frozenset()
    finally:
        notifier.stop()
        bus.shutdown()
