"""The demo vehicle's bootloaders (ECM, BCM), programmed as a third-party tester would:
udsoncan over can-isotp on a python-can virtual bus, against the real simulated ECU network."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import can
import isotp
import pytest
import udsoncan
from helpers.waiting import wait_for
from udsoncan.client import Client
from udsoncan.common.MemoryLocation import MemoryLocation
from udsoncan.connections import PythonIsoTpConnection
from udsoncan.exceptions import NegativeResponseException

from workshop_app.core.diag.client import SpecCodec
from workshop_app.core.diag.ecu_spec import EcuSpec, demo_vehicle_spec
from workshop_app.core.diag.scan import ScanOptions, VehicleScanner
from workshop_app.core.sim.demo_vehicle import DemoVehicle
from workshop_app.core.sim.ecus import EcuNetwork
from workshop_app.core.sim.ecus.flash_memory import FLASH_LAYOUTS, FlashLayout, FlashMemory, FlashMemoryError
from workshop_app.core.update import protocol as p
from workshop_app.core.update.image import FlashImage, Segment

SPEC = demo_vehicle_spec()
ENGINE_DATA, BODY_STATUS = 0x0C0, 0x2A0  # periodic frames the ECM and the BCM send
_channels = itertools.count()


@dataclass
class Rig:
    """The car, its ECU network and a tester connection on one virtual bus."""

    channel: str
    car: DemoVehicle
    net: EcuNetwork
    bus: can.BusABC
    notifier: can.Notifier
    frames: can.BufferedReader


@contextmanager
def rig(flash_dir: Path, channel: str | None = None, *, start_at: float = 0.0) -> Iterator[Rig]:
    channel = channel or f"sim-boot-{os.getpid()}-{next(_channels)}"
    car_bus = can.Bus(interface="virtual", channel=channel)
    ecu_bus = can.Bus(interface="virtual", channel=channel)
    bus = can.Bus(interface="virtual", channel=channel)
    # Time almost stands still: the engine stays as it was (off at 0 s, running at 15 s).
    car = DemoVehicle(car_bus, time_scale=1e-6, start_at=start_at)
    net = EcuNetwork(ecu_bus, car, flash_dir=flash_dir)
    frames = can.BufferedReader()
    notifier = can.Notifier(bus, [frames], timeout=0.05)
    try:
        for ecu in FLASH_LAYOUTS:
            net.ecu(ecu).bootloader.timing.erase_seconds = 0.1  # type: ignore[union-attr]
        car.start()
        net.start()
        yield Rig(channel, car, net, bus, notifier, frames)
    finally:
        net.stop()
        car.stop()
        notifier.stop()
        for b in (bus, ecu_bus, car_bus):
            b.shutdown()


def config(ecu: EcuSpec) -> dict[str, Any]:
    cfg: dict[str, Any] = dict(udsoncan.configs.default_client_config)
    codecs: dict[int, Any] = {did: SpecCodec(spec) for did, spec in ecu.dids.items()}
    codecs[p.DID_APP_SOFTWARE] = udsoncan.AsciiCodec(8)
    cfg["data_identifiers"] = codecs
    cfg["use_server_timing"] = False
    cfg["request_timeout"] = 30  # an erase keeps answering 0x78 for seconds
    cfg["p2_timeout"] = 2.0
    return cfg


@contextmanager
def connect(r: Rig, name: str) -> Iterator[Client]:
    ecu = SPEC.ecu(name)
    address = isotp.Address(isotp.AddressingMode.Normal_11bits, txid=ecu.request_id, rxid=ecu.response_id)
    stack = isotp.NotifierBasedCanStack(r.bus, r.notifier, address=address, params={"tx_padding": 0xAA})
    with Client(PythonIsoTpConnection(stack), config=config(ecu)) as client:  # type: ignore[arg-type]
        yield client


def image(name: str, size: int, version: str = "SW 0500", counter: int = 7, seed: int = 1) -> FlashImage:
    layout = FLASH_LAYOUTS[name]
    data = bytes((i * 131 + seed * 17 + (i >> 8)) & 0xFF for i in range(size))
    return FlashImage(name, f"{name}.bin", "0" * 64, (Segment(layout.start, data),), version, counter)


def nrc(exc: pytest.ExceptionInfo[NegativeResponseException]) -> int:
    return int(exc.value.response.code)


def unlock(client: Client) -> None:
    """Extended, DTC setting off, communication off, programming session, level 0x11 unlocked."""
    client.change_session(p.EXTENDED_SESSION)
    client.control_dtc_setting(0x02)
    client.communication_control(0x03, 0x01)
    client.change_session(p.PROGRAMMING_SESSION)
    seed = client.request_seed(p.PROGRAMMING_SECURITY_LEVEL).service_data.seed
    client.send_key(p.PROGRAMMING_SECURITY_LEVEL + 1, p.demo_programming_key(seed))


def erase(client: Client, layout: FlashLayout, size: int | None = None) -> bytes:
    record = bytes((p.ADDRESS_AND_LENGTH_FORMAT,)) + layout.start.to_bytes(4, "big")
    record += (size or layout.size).to_bytes(4, "big")
    return bytes(client.start_routine(p.ROUTINE_ERASE_MEMORY, record).service_data.routine_status_record)


def download(client: Client, address: int, size: int) -> int:
    """RequestDownload; the largest TransferData payload the ECU takes."""
    location = MemoryLocation(address, size, address_format=32, memorysize_format=32)
    return int(client.request_download(location).service_data.max_length) - 2


def transfer(client: Client, data: bytes, block: int) -> int:
    """Every block in order, the counter wrapping 0xFF -> 0x00; returns the blocks sent."""
    counter, sent = 1, 0
    for offset in range(0, len(data), block):
        client.transfer_data(counter, data[offset : offset + block])
        counter, sent = (counter + 1) & 0xFF, sent + 1
    return sent


def check_memory(client: Client, crc: int) -> int:
    answer = client.start_routine(p.ROUTINE_CHECK_MEMORY, crc.to_bytes(4, "big"))
    return int(answer.service_data.routine_status_record[0])


def program(client: Client, img: FlashImage, *, block: int | None = None) -> int:
    """The whole sequence after unlocking; returns the number of TransferData blocks."""
    layout = FLASH_LAYOUTS[img.ecu]
    assert erase(client, layout) == b"\x00"
    (segment,) = img.segments
    most = download(client, segment.address, len(segment.data))
    blocks = transfer(client, segment.data, min(most, block or most))
    client.request_transfer_exit()
    assert check_memory(client, img.crc32()) == p.ROUTINE_OK
    status = client.start_routine(p.ROUTINE_CHECK_DEPENDENCIES).service_data.routine_status_record
    assert status == b"\x00"
    client.write_data_by_identifier(p.DID_APP_SOFTWARE, img.software_version.ljust(8))
    client.write_data_by_identifier(p.DID_RELEASE_COUNTER, img.release_counter)
    client.ecu_reset(0x01)
    return blocks


def app_valid(client: Client) -> int:
    """0xF1B1 as the ECU sends it (the description shows it as "Yes"/"No")."""
    value = client.read_data_by_identifier(p.DID_APP_VALID).service_data.values[p.DID_APP_VALID]
    return {"No": 0, "Yes": 1}[value]


def seen(r: Rig, ident: int, seconds: float = 0.4) -> int:
    """Frames with ``ident`` the tester receives in the next ``seconds``."""
    while r.frames.get_message(timeout=0.0) is not None:
        pass
    count, deadline = 0, time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        msg = r.frames.get_message(timeout=left)
        if msg is not None and msg.arbitration_id == ident:
            count += 1
    return count


# --- the whole sequence -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ECM", "BCM"])
def test_programming_64_kib_changes_version_and_counter_for_the_next_scan(tmp_path: Path, name: str) -> None:
    img = image(name, 64 * 1024, version="SW 0777", counter=42)
    with rig(tmp_path) as r:
        with connect(r, name) as client:
            unlock(client)
            blocks = program(client, img)
            assert blocks == 17  # 16 blocks of 4095 bytes and the rest: the ECU's 0x0FFF + 2
            flash = r.net.ecu(name).flash
            assert (
                flash is not None
                and flash.app_valid
                and flash.read(img.segments[0].address, 65536) == (img.segments[0].data)
            )
            assert r.net.ecu(name).uds.session == p.DEFAULT_SESSION
        scan = VehicleScanner(r.bus, r.notifier, SPEC, options=ScanOptions(obd=False)).scan()
        ident = scan.ecu(name).identification  # type: ignore[union-attr]
        assert ident["Software version"] == "SW 0777"
        assert ident["Release counter"] == "42"
        assert ident["Application valid"] == "Yes"
        assert ident["Boot software version"] == FLASH_LAYOUTS[name].boot_version
    # The flash survives a simulator restart.
    with rig(tmp_path) as r, connect(r, name) as client:
        values = client.read_data_by_identifier(
            [p.DID_APP_SOFTWARE, p.DID_RELEASE_COUNTER]
        ).service_data.values
        assert values == {p.DID_APP_SOFTWARE: "SW 0777 ", p.DID_RELEASE_COUNTER: 42}


def test_block_counter_wraps_past_0xff_in_a_300_block_transfer(tmp_path: Path) -> None:
    img = image("BCM", 300 * 64)
    with rig(tmp_path) as r, connect(r, "BCM") as client:
        unlock(client)
        assert program(client, img, block=64) == 300
        assert r.net.ecu("BCM").bootloader.blocks_written == 300  # type: ignore[union-attr]
        assert app_valid(client) == 1


def test_a_repeated_block_is_accepted_once_and_a_wrong_counter_is_refused(tmp_path: Path) -> None:
    layout = FLASH_LAYOUTS["ECM"]
    data = os.urandom(3000)
    with rig(tmp_path) as r, connect(r, "ECM") as client:
        unlock(client)
        erase(client, layout)
        download(client, layout.start, len(data))
        flash = r.net.ecu("ECM").flash
        assert flash is not None
        client.transfer_data(1, data[:1000])
        client.transfer_data(1, data[:1000])  # the answer was lost: the same block again
        assert flash.written == 1000
        with pytest.raises(NegativeResponseException) as exc:
            client.transfer_data(3, data[1000:2000])
        assert nrc(exc) == 0x73  # wrongBlockSequenceCounter
        client.transfer_data(2, data[1000:2000])
        client.transfer_data(3, data[2000:])
        client.request_transfer_exit()
        assert flash.written == 3000
        assert (
            check_memory(client, FlashImage("ECM", "", "", (Segment(layout.start, data),), "", 0).crc32())
            == 0
        )


def test_erase_answers_response_pending_until_done(tmp_path: Path) -> None:
    layout = FLASH_LAYOUTS["ECM"]
    ecu = SPEC.ecu("ECM")
    with rig(tmp_path) as r:
        r.net.ecu("ECM").bootloader.timing.erase_seconds = 2.5  # type: ignore[union-attr]
        with connect(r, "ECM") as client:
            unlock(client)
        address = isotp.Address(isotp.AddressingMode.Normal_11bits, txid=ecu.request_id, rxid=ecu.response_id)
        stack = isotp.NotifierBasedCanStack(r.bus, r.notifier, address=address, params={"tx_padding": 0xAA})
        stack.start()
        try:
            request = (
                b"\x31\x01\xff\x00\x44" + layout.start.to_bytes(4, "big") + layout.size.to_bytes(4, "big")
            )
            t0 = time.monotonic()
            stack.send(request)
            answers: list[tuple[float, bytes]] = []
            while not answers or answers[-1][1] == b"\x7f\x31\x78":
                data = stack.recv(block=True, timeout=3.0)
                assert data is not None, f"no answer after {answers}"
                answers.append((time.monotonic() - t0, bytes(data)))
        finally:
            stack.stop()
        pending = [t for t, a in answers if a == b"\x7f\x31\x78"]
        assert len(pending) == 3  # at 0, 1 and 2 s: always inside P2* (5 s)
        assert max(b - a for a, b in itertools.pairwise([0.0, *pending])) < 1.5
        assert answers[-1][1] == b"\x71\x01\xff\x00\x00" and answers[-1][0] >= 2.4
        assert r.net.ecu("ECM").uds.session == p.PROGRAMMING_SESSION  # S3 did not end it meanwhile


def test_check_memory_fails_on_a_corrupted_write_and_the_ecu_stays_in_its_bootloader(tmp_path: Path) -> None:
    img = image("ECM", 20000)
    (segment,) = img.segments
    damaged = bytearray(segment.data)
    damaged[12345] ^= 0x40  # one bit flipped on its way
    with rig(tmp_path) as r, connect(r, "ECM") as client:
        unlock(client)
        erase(client, FLASH_LAYOUTS["ECM"])
        most = download(client, segment.address, len(damaged))
        transfer(client, bytes(damaged), most)
        client.request_transfer_exit()
        assert check_memory(client, img.crc32()) == p.ROUTINE_FAILED
        status = client.start_routine(p.ROUTINE_CHECK_DEPENDENCIES).service_data.routine_status_record
        assert status == b"\x01"
        client.ecu_reset(0x01)
        assert app_valid(client) == 0
        # The ECU's own bad flash cell: the tester's data is right, the check still fails.
        unlock(client)
        r.net.ecu("ECM").bootloader.corrupt_writes = True  # type: ignore[union-attr]
        erase(client, FLASH_LAYOUTS["ECM"])
        transfer(client, segment.data, download(client, segment.address, len(segment.data)))
        client.request_transfer_exit()
        assert check_memory(client, img.crc32()) == p.ROUTINE_FAILED


def test_reset_mid_transfer_leaves_a_bootloader_that_survives_a_restart_and_a_reflash_recovers(
    tmp_path: Path,
) -> None:
    img = image("ECM", 40000, version="SW 0901", counter=9)
    (segment,) = img.segments
    with rig(tmp_path) as r, connect(r, "ECM") as client:
        assert seen(r, ENGINE_DATA) > 0
        unlock(client)
        erase(client, FLASH_LAYOUTS["ECM"])
        most = download(client, segment.address, len(segment.data))
        transfer(client, segment.data[: 3 * most], most)
        client.ecu_reset(0x01)  # the tester gives up mid-transfer
        assert app_valid(client) == 0
    assert (tmp_path / "ECM.flash").exists()

    with rig(tmp_path) as r, connect(r, "ECM") as client:  # the simulator restarted
        assert r.net.ecu("ECM").uds.in_bootloader
        assert app_valid(client) == 0
        ident = client.read_data_by_identifier([p.DID_BOOT_SOFTWARE, p.DID_APP_SOFTWARE]).service_data.values
        assert ident[p.DID_BOOT_SOFTWARE].strip() == "BL-02.01" and ident[p.DID_APP_SOFTWARE] == "SW 0412 "
        with pytest.raises(NegativeResponseException) as exc:
            client.get_dtc_by_status_mask(0xFF)
        assert nrc(exc) == 0x7F
        with pytest.raises(NegativeResponseException) as exc:
            client.read_data_by_identifier(0x1001)  # engine speed: no application measures it
        assert nrc(exc) == 0x7F
        volts = client.read_data_by_identifier(0xF1A1).service_data.values[0xF1A1]
        assert 11.0 < volts < 15.0  # the bootloader measures its supply for the preconditions
        with pytest.raises(NegativeResponseException) as exc:
            client.control_dtc_setting(0x02)
        assert nrc(exc) == 0x7F
        client.tester_present()
        assert seen(r, ENGINE_DATA) == 0 and seen(r, BODY_STATUS) > 0  # only the ECM is quiet

        unlock(client)
        program(client, img)
        assert app_valid(client) == 1
        values = client.read_data_by_identifier(
            [p.DID_APP_SOFTWARE, p.DID_RELEASE_COUNTER]
        ).service_data.values
        assert values == {p.DID_APP_SOFTWARE: "SW 0901 ", p.DID_RELEASE_COUNTER: 9}
        wait_for(lambda: seen(r, ENGINE_DATA, 0.2) > 0, what="the ECM's frames after the re-flash")


def test_programming_security_lock_out(tmp_path: Path) -> None:
    with rig(tmp_path) as r, connect(r, "BCM") as client:
        server = r.net.ecu("BCM").uds
        server.lockout_seconds = 1.0
        client.change_session(p.EXTENDED_SESSION)
        with pytest.raises(NegativeResponseException) as exc:
            client.request_seed(p.PROGRAMMING_SECURITY_LEVEL)
        assert nrc(exc) == 0x7E  # the programming level exists in the programming session only
        client.change_session(p.PROGRAMMING_SESSION)
        first = client.request_seed(p.PROGRAMMING_SECURITY_LEVEL).service_data.seed
        codes = []
        for _ in range(3):
            seed = client.request_seed(p.PROGRAMMING_SECURITY_LEVEL).service_data.seed
            wrong = bytes(b ^ 0x5A for b in p.demo_programming_key(seed))
            with pytest.raises(NegativeResponseException) as exc:
                client.send_key(p.PROGRAMMING_SECURITY_LEVEL + 1, wrong)
            codes.append(nrc(exc))
        assert codes == [0x35, 0x35, 0x36]
        assert len(first) == 4 and first != seed  # a new random seed per request
        with pytest.raises(NegativeResponseException) as exc:
            client.request_seed(p.PROGRAMMING_SECURITY_LEVEL)
        assert nrc(exc) == 0x37  # delay not expired
        with pytest.raises(NegativeResponseException) as exc:
            erase(client, FLASH_LAYOUTS["BCM"])
        assert nrc(exc) == 0x33  # still locked: no erase

        def seed_after_the_delay() -> bytes | None:
            try:
                return client.request_seed(p.PROGRAMMING_SECURITY_LEVEL).service_data.seed
            except NegativeResponseException as refused:
                assert refused.response.code == 0x37  # only the delay may refuse it
                return None

        seed = wait_for(seed_after_the_delay, 30, "a seed once the lock-out delay expired")
        client.send_key(p.PROGRAMMING_SECURITY_LEVEL + 1, p.demo_programming_key(seed))
        assert server.unlocked_level == p.PROGRAMMING_SECURITY_LEVEL
        assert r.net.ecu("BCM").flash.app_valid  # type: ignore[union-attr]


def test_download_refused_outside_the_region_or_before_an_erase(tmp_path: Path) -> None:
    layout = FLASH_LAYOUTS["BCM"]
    with rig(tmp_path) as r, connect(r, "BCM") as client:
        unlock(client)
        with pytest.raises(NegativeResponseException) as exc:
            download(client, layout.start, 1024)
        assert nrc(exc) == 0x70  # not erased
        with pytest.raises(NegativeResponseException) as exc:
            erase(client, layout, layout.size + 1)
        assert nrc(exc) == 0x31  # past the end of the region
        assert r.net.ecu("BCM").flash.app_valid  # type: ignore[union-attr]
        erase(client, layout, 0x1000)
        with pytest.raises(NegativeResponseException) as exc:
            download(client, layout.start, 0x2000)  # more than was erased
        assert nrc(exc) == 0x70
        with pytest.raises(NegativeResponseException) as exc:
            client.transfer_data(1, b"\x00")
        assert nrc(exc) == 0x24  # no download requested


def test_preconditions_communication_control_and_dtc_setting(tmp_path: Path) -> None:
    with rig(tmp_path) as r, connect(r, "ECM") as client:
        client.change_session(p.EXTENDED_SESSION)
        status = client.start_routine(p.ROUTINE_CHECK_PROGRAMMING_PRECONDITIONS).service_data
        assert status.routine_status_record == b"\x00"  # engine off, standing
        assert seen(r, ENGINE_DATA) > 0
        client.communication_control(0x03, 0x01)
        assert seen(r, ENGINE_DATA) == 0 and seen(r, BODY_STATUS) > 0
        client.communication_control(0x00, 0x01)
        assert seen(r, ENGINE_DATA) > 0

        client.control_dtc_setting(0x02)
        r.car.inject_fault("coolant_sensor_open")
        r.net.evaluate()
        assert not any(rec.status & 0x01 for rec in r.net.ecu("ECM").memory.records())
        client.control_dtc_setting(0x01)
        r.net.evaluate()
        assert any(rec.status & 0x01 for rec in r.net.ecu("ECM").memory.records())

    with rig(tmp_path, start_at=15.0) as r, connect(r, "ECM") as client:
        client.change_session(p.EXTENDED_SESSION)
        status = client.start_routine(p.ROUTINE_CHECK_PROGRAMMING_PRECONDITIONS).service_data
        assert status.routine_status_record != b"\x00"  # the engine runs


def test_write_speed_and_identification_writes_need_the_unlocked_programming_session(tmp_path: Path) -> None:
    img = image("ECM", 8190)  # two blocks of 4095 bytes
    with rig(tmp_path) as r, connect(r, "ECM") as client:
        client.change_session(p.EXTENDED_SESSION)
        with pytest.raises(NegativeResponseException) as exc:
            client.write_data_by_identifier(p.DID_APP_SOFTWARE, "SW 0999 ")
        assert nrc(exc) == 0x7F
        client.change_session(p.PROGRAMMING_SESSION)
        with pytest.raises(NegativeResponseException) as exc:
            client.write_data_by_identifier(p.DID_APP_SOFTWARE, "SW 0999 ")
        assert nrc(exc) == 0x33  # security access denied
        seed = client.request_seed(p.PROGRAMMING_SECURITY_LEVEL).service_data.seed
        client.send_key(p.PROGRAMMING_SECURITY_LEVEL + 1, p.demo_programming_key(seed))
        bootloader = r.net.ecu("ECM").bootloader
        assert bootloader is not None
        bootloader.timing.write_bytes_per_s = 40_000  # ~0.1 s per block: answered after NRC 0x78
        t0 = time.monotonic()
        assert program(client, img) == 2
        assert time.monotonic() - t0 >= 8190 / 40_000
        assert app_valid(client) == 1


def test_an_unreadable_flash_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "BCM.flash").write_bytes(b'{"format": "workshop-sim-flash/1"}\n')
    bus = can.Bus(interface="virtual", channel=f"sim-boot-bad-{os.getpid()}")
    try:
        car = DemoVehicle(bus, listen=False)
        with pytest.raises(FlashMemoryError, match=r"BCM\.flash"):
            EcuNetwork(bus, car, flash_dir=tmp_path)
    finally:
        bus.shutdown()


def test_flash_memory_keeps_several_erased_ranges_and_reloads_them(tmp_path: Path) -> None:
    layout = FLASH_LAYOUTS["BCM"]
    first, second = Segment(layout.start, os.urandom(5000)), Segment(layout.start + 0x10000, os.urandom(3000))
    flash = FlashMemory(layout, tmp_path / "BCM.flash")
    for segment in (first, second):
        flash.erase(segment.address, len(segment.data))
    assert (
        not flash.app_valid and flash.is_erased(first.address, 5000) and flash.is_erased(second.address, 3000)
    )
    flash.write(first.address, first.data[:4000])
    flash.write(first.address + 3000, first.data[3000:])  # a resumed download repeats 1000 bytes
    flash.write(second.address, second.data)
    expected = FlashImage("BCM", "", "", (second, first), "", 0).crc32()
    assert flash.crc32() == expected and flash.written == 8000
    flash.mark_checked(True)
    again = FlashMemory(layout, tmp_path / "BCM.flash")
    assert again.crc32() == expected and again.checked and not again.app_valid
    assert again.read(first.address + 4990, 20) == first.data[4990:] + b"\xff" * 10
    assert again.activate("SW 0102", 12) and again.erased == []
    assert FlashMemory(layout, tmp_path / "BCM.flash").release_counter == 12


def test_a_tester_that_goes_silent_mid_download_leaves_the_ecu_in_its_bootloader(tmp_path: Path) -> None:
    img = image("BCM", 12000)
    (segment,) = img.segments
    with rig(tmp_path) as r:
        server = r.net.ecu("BCM").uds
        with connect(r, "BCM") as client:
            unlock(client)
            erase(client, FLASH_LAYOUTS["BCM"])
            most = download(client, segment.address, len(segment.data))
            client.transfer_data(1, segment.data[:most])
            server.s3_seconds = 0.3  # no TesterPresent from here on
            wait_for(lambda: server.session == p.DEFAULT_SESSION, what="S3 ending the programming session")
            assert server.in_bootloader and not r.net.ecu("BCM").bootloader.downloading  # type: ignore[union-attr]
            with pytest.raises(NegativeResponseException) as exc:
                client.transfer_data(2, segment.data[most : 2 * most])
            assert nrc(exc) == 0x7F  # the bootloader in the default session: programming first
            server.s3_seconds = 5.0
            unlock(client)
            program(client, img)  # the whole download again, from the erase
            assert app_valid(client) == 1
