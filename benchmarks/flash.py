"""Flash time of an image to the simulated ECM on a bus paced at a real bitrate (issue 11, item 9).

Run: .venv/bin/python benchmarks/flash.py [--size-kib 1024] [--skip-fd] [--skip-unpaced]

The tester and the demo ECM's bootloader each talk through a paced bus: every frame they send
takes its ISO 11898-1 length (stuff bits counted, ``core/bittiming.py``) on one shared timeline,
as on a single real bus. The erase is set to take no time (erase excluded, as the target says).

* classic 500 kbit/s: the real :class:`FlashJob` (journal and audit in SQLite, every step);
* CAN FD 500k/2M: the flash job speaks classic CAN only, so the programming sequence is driven
  with udsoncan over an FD ISO-TP stack (64-byte frames, bit-rate switch) to the same bootloader;
* unpaced: the flash job on a plain virtual bus (what the software alone can move).

Baseline in the same run: the floor, i.e. the bus time of the very frames a download of this
image needs (first/consecutive frames, flow control and the positive answer per TransferData)
with nothing between them. NOTES.md gives ≈34.4 s (classic) and ≈5.85 s (FD) for 1 MiB.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import can
import isotp
import udsoncan
from udsoncan.client import Client
from udsoncan.common.MemoryLocation import MemoryLocation
from udsoncan.connections import PythonIsoTpConnection

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workshop_app.core.bittiming import frame_duration  # noqa: E402
from workshop_app.core.diag.client import EcuAddress, isotp_params  # noqa: E402
from workshop_app.core.diag.ecu_spec import demo_vehicle_spec  # noqa: E402
from workshop_app.core.history.audit import AuditTrail  # noqa: E402
from workshop_app.core.sim.demo_vehicle import DemoVehicle  # noqa: E402
from workshop_app.core.sim.ecus import EcuNetwork  # noqa: E402
from workshop_app.core.sim.ecus.flash_memory import FLASH_LAYOUTS  # noqa: E402
from workshop_app.core.update import protocol as p  # noqa: E402
from workshop_app.core.update.flash import FlashJob, FlashOptions  # noqa: E402
from workshop_app.core.update.image import FlashImage, Segment  # noqa: E402
from workshop_app.core.update.journal import FlashJournal  # noqa: E402

SPEC = demo_vehicle_spec()
ECM = SPEC.ecu("ECM")
BLOCK_DATA = 4093  # bytes per TransferData: a 4095-byte ISO-TP message minus SID and counter
AHEAD_S = 0.002  # a sender may run this far ahead of the bus timeline before it sleeps


class Timeline:
    """One bus: the time it is next free. Shared by every paced connection to it."""

    def __init__(self, bitrate: int, data_bitrate: int | None) -> None:
        self.bitrate = bitrate
        self.data_bitrate = data_bitrate
        self.free_at = 0.0
        self.busy_s = 0.0
        self.lock = threading.Lock()

    def occupy(self, msg: can.Message) -> float:
        """Reserve the frame's time; returns how far the timeline is ahead of now."""
        duration = frame_duration(
            msg.arbitration_id,
            msg.is_extended_id,
            msg.data,
            is_fd=msg.is_fd,
            bitrate_switch=msg.bitrate_switch,
            bitrate=self.bitrate,
            data_bitrate=self.data_bitrate,
        )
        with self.lock:
            now = time.perf_counter()
            self.free_at = max(now, self.free_at) + duration
            self.busy_s += duration
            return self.free_at - now


class PacedBus(can.BusABC):
    """A virtual-bus connection whose sends take their bus time on a shared :class:`Timeline`.

    Sleeping per frame would overshoot (a frame lasts ~0.25 ms); the sender runs ahead by up to
    ``AHEAD_S`` and then sleeps, so the total follows the timeline.
    """

    def __init__(self, channel: str, timeline: Timeline) -> None:
        self._inner = can.Bus(interface="virtual", channel=channel, receive_own_messages=False)
        self._timeline = timeline
        super().__init__(channel=channel)

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        ahead = self._timeline.occupy(msg)
        if ahead > AHEAD_S:
            time.sleep(ahead - AHEAD_S / 2)
        self._inner.send(msg, timeout)

    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        return self._inner.recv(timeout), False

    def shutdown(self) -> None:
        super().shutdown()
        self._inner.shutdown()


def image(size: int) -> FlashImage:
    data = bytes((i * 131 + 17 + (i >> 8)) & 0xFF for i in range(size))
    start = FLASH_LAYOUTS["ECM"].start
    return FlashImage("ECM", "bench.bin", "0" * 64, (Segment(start, data),), "SW 0900", 9)


def floor_seconds(img: FlashImage, bitrate: int, data_bitrate: int | None, fd: bool) -> float:
    """Bus time of the frames of every TransferData exchange, back to back."""
    payload = 64 if fd else 8
    ecu_tx, tester_tx = ECM.response_id, ECM.request_id

    def frame(ident: int, data: bytes) -> float:
        if len(data) < payload:
            data = data + b"\xcc" * (payload - len(data))
        return frame_duration(
            ident, False, data, is_fd=fd, bitrate_switch=fd, bitrate=bitrate, data_bitrate=data_bitrate
        )

    total = 0.0
    data = img.segments[0].data
    for n, offset in enumerate(range(0, len(data), BLOCK_DATA)):
        message = bytes((0x36, (n + 1) & 0xFF)) + data[offset : offset + BLOCK_DATA]
        first = payload - 2  # first frame: 2 bytes of header (12-bit length)
        total += frame(tester_tx, bytes((0x10 | len(message) >> 8, len(message) & 0xFF)) + message[:first])
        for cf, pos in enumerate(range(first, len(message), payload - 1)):
            total += frame(tester_tx, bytes((0x20 | (cf + 1) & 0x0F,)) + message[pos : pos + payload - 1])
        total += frame(ecu_tx, b"\x30\x00\x00")  # flow control: BS 0, STmin 0
        total += frame(ecu_tx, bytes((0x02, 0x76, (n + 1) & 0xFF)))  # positive answer
    return total


class Car:
    """The demo car's ECUs on ``bus_factory()`` connections; the car's own model on a side channel."""

    def __init__(self, bus_factory: Any, flash_dir: Path) -> None:
        self.side = can.Bus(interface="virtual", channel=f"bench-car-{uuid.uuid4().hex[:8]}")
        self.vehicle = DemoVehicle(self.side, time_scale=1e-6)  # engine off, standing still
        self.ecu_bus = bus_factory()
        self.net = EcuNetwork(self.ecu_bus, self.vehicle, flash_dir=flash_dir)
        timing = self.net.ecu("ECM").bootloader.timing  # type: ignore[union-attr]
        timing.erase_seconds = 0.0
        timing.write_bytes_per_s = 0.0
        self.tester = bus_factory()
        self.notifier = can.Notifier(self.tester, [], timeout=0.05)

    def __enter__(self) -> Car:
        self.vehicle.start()
        self.net.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.notifier.stop()
        self.net.stop()
        self.vehicle.stop()
        for bus in (self.tester, self.ecu_bus, self.side):
            bus.shutdown()


def run_flash_job(bus_factory: Any, img: FlashImage, work: Path) -> tuple[float, float]:
    """(whole job seconds, download seconds: from the erase request to the last block's answer)."""
    marks: dict[str, float] = {}

    def progress(phase: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if phase == "erase":
            marks.setdefault("erase", now)
        if phase == "download":
            marks["download"] = now

    db = work / f"history-{uuid.uuid4().hex[:6]}.db"
    flash_dir = work / f"flash-{uuid.uuid4().hex[:6]}"
    with Car(bus_factory, flash_dir) as car, FlashJournal(db) as journal, AuditTrail(db) as audit:
        job = FlashJob(
            car.tester,
            car.notifier,
            EcuAddress.of(ECM),
            img,
            journal=journal,
            audit=audit,
            options=FlashOptions(vin=SPEC.vin),
        )
        t0 = time.perf_counter()
        result = job.run(progress, threading.Event())
        whole = time.perf_counter() - t0
    if not result.ok:
        raise SystemExit(f"flash failed: {result.error}")
    return whole, marks["download"] - marks["erase"]


def run_sequence(bus_factory: Any, img: FlashImage, work: Path, *, fd: bool) -> float:
    """The bare programming sequence (udsoncan, no journal); seconds from the erase to the last answer."""
    with Car(bus_factory, work / f"flash-seq-{uuid.uuid4().hex[:6]}") as car:
        stack = isotp.NotifierBasedCanStack(
            car.tester, car.notifier, address=EcuAddress.of(ECM).isotp_address(), params=isotp_params(fd=fd)
        )
        config = dict(udsoncan.configs.default_client_config)
        config.update({"request_timeout": 30, "p2_timeout": 2.0, "use_server_timing": False})
        with Client(PythonIsoTpConnection(stack), config=config) as client:  # type: ignore[arg-type]
            client.change_session(p.EXTENDED_SESSION)
            client.change_session(p.PROGRAMMING_SESSION)
            seed = client.request_seed(p.PROGRAMMING_SECURITY_LEVEL).service_data.seed
            client.send_key(p.PROGRAMMING_SECURITY_LEVEL + 1, p.demo_programming_key(seed))
            (segment,) = img.segments
            t0 = time.perf_counter()
            record = bytes([p.ADDRESS_AND_LENGTH_FORMAT]) + segment.address.to_bytes(4, "big")
            client.start_routine(p.ROUTINE_ERASE_MEMORY, record + len(segment.data).to_bytes(4, "big"))
            location = MemoryLocation(
                segment.address, len(segment.data), address_format=32, memorysize_format=32
            )
            block = min(int(client.request_download(location).service_data.max_length), 4095) - 2
            counter = 1
            for offset in range(0, len(segment.data), block):
                client.transfer_data(counter, segment.data[offset : offset + block])
                counter = (counter + 1) & 0xFF
            seconds = time.perf_counter() - t0
            client.request_transfer_exit()
            answer = client.start_routine(p.ROUTINE_CHECK_MEMORY, img.crc32().to_bytes(4, "big"))
            if answer.service_data.routine_status_record[:1] != b"\x00":
                raise SystemExit("FD sequence: the ECU's memory check failed")
    return seconds


def paced(bitrate: int, data_bitrate: int | None) -> tuple[Any, Timeline]:
    channel = f"bench-paced-{uuid.uuid4().hex[:8]}"
    timeline = Timeline(bitrate, data_bitrate)
    return (lambda: PacedBus(channel, timeline)), timeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-kib", type=int, default=1024, help="image size (default 1024 = 1 MiB)")
    parser.add_argument("--skip-fd", action="store_true")
    parser.add_argument("--skip-unpaced", action="store_true")
    args = parser.parse_args()
    size = args.size_kib * 1024
    if not 0 < size <= FLASH_LAYOUTS["ECM"].size:
        raise SystemExit(f"--size-kib: 1 .. {FLASH_LAYOUTS['ECM'].size // 1024}")
    img = image(size)
    scale = (1024 * 1024) / size
    print(f"image: {size:,} bytes to the simulated ECM; erase set to 0 s; 4093-byte TransferData blocks")
    with tempfile.TemporaryDirectory(prefix="bench-flash-") as tmp:
        work = Path(tmp)

        factory, timeline = paced(500_000, None)
        whole, download = run_flash_job(factory, img, work)
        floor = floor_seconds(img, 500_000, None, fd=False)
        print(
            f"classic 500 kbit/s, flash job: download {download:.2f} s (whole job {whole:.2f} s), "
            f"floor {floor:.2f} s -> {download / floor:.3f} x floor "
            f"({'within' if download <= floor * 1.05 else 'NOT within'} 5 %); "
            f"bus busy {timeline.busy_s:.2f} s; 1 MiB floor in NOTES.md ≈34.4 s (here x{scale:.2f} = "
            f"{floor * scale:.2f} s)"
        )
        if not args.skip_fd:
            factory, timeline = paced(500_000, 2_000_000)
            download = run_sequence(factory, img, work, fd=True)
            floor = floor_seconds(img, 500_000, 2_000_000, fd=True)
            print(
                f"CAN FD 500k/2M, udsoncan sequence: download {download:.2f} s, floor {floor:.2f} s -> "
                f"{download / floor:.3f} x floor ({'within' if download <= floor * 1.05 else 'NOT within'} 5 %); "
                f"1 MiB floor in NOTES.md ≈5.85 s (here x{scale:.2f} = {floor * scale:.2f} s)"
            )
        if not args.skip_unpaced:
            raw = f"bench-raw-{uuid.uuid4().hex[:8]}"
            whole, download = run_flash_job(lambda: can.Bus(interface="virtual", channel=raw), img, work)
            bare = run_sequence(lambda: can.Bus(interface="virtual", channel=raw), img, work, fd=False)
            print(
                f"unpaced virtual bus, classic frames: flash job download {download:.2f} s = "
                f"{size / download / 1024:.0f} KiB/s (whole job {whole:.2f} s); bare udsoncan sequence "
                f"{bare:.2f} s = {size / bare / 1024:.0f} KiB/s"
            )


if __name__ == "__main__":
    main()
