"""Flash time of an image to the simulated ECM on a bus paced at a real bitrate (issue 11, item 9).

Run: .venv/bin/python benchmarks/flash.py [--size-kib 1024] [--runs 3] [--skip-classic]
     [--skip-fd] [--skip-unpaced]

The tester and the demo ECM's bootloader each talk through a paced bus: every frame takes its
ISO 11898-1 length (stuff bits counted, ``core/bittiming.py``) on one shared timeline, as on a
single real bus, and reaches the other side only when its last bit has passed. The erase is set
to take no time (erase excluded, as the target says).

* classic 500 kbit/s and CAN FD 500k/2M: the real :class:`FlashJob` (journal and audit in
  SQLite, the whole car quieted functionally, every step; ``FlashOptions(fd=True)`` for FD);
* unpaced: the flash job on a plain virtual bus (what the software alone can move), and the
  bare udsoncan sequence over a stock can-isotp stack beside it.

Baseline in the same run: the floor, i.e. the bus time of the very frames a download of this
image needs (first/consecutive frames, flow control and the positive answer per TransferData)
with nothing between them. NOTES.md gives ≈34.4 s (classic) and ≈5.85 s (FD) for 1 MiB. Each
paced row also says where the bus sat idle during the download, by the frames around each gap.
"""

from __future__ import annotations

import argparse
import copy
import queue
import statistics
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

from workshop_app.cli_values import positive_int  # noqa: E402
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
CLASSIC_MESSAGE = 4095  # the default TransferData message: the longest without an escaped first frame
# Bus time a sender may queue before it sleeps: ~1,100 classic frames, what a flashing setup's
# transmit queue holds (SocketCAN with txqueuelen 1000, a USB adapter's driver queue), so a whole
# 4 KiB block is handed over at once as real testers do with BS=0, STmin=0.
QUEUE_S = 0.25


class Timeline:
    """One bus: the time it is next free, and every connection to it.

    A frame sent starts when the bus is free (or at once) and reaches the other connections when
    its last bit has passed: never earlier, so no receiver can answer inside a frame's bus time.
    """

    def __init__(self, bitrate: int, data_bitrate: int | None) -> None:
        self.bitrate = bitrate
        self.data_bitrate = data_bitrate
        self.free_at = 0.0
        self.busy_s = 0.0
        # Bus idle between two frames (the time above the floor): (when, seconds, frame before, after).
        self.gaps: list[tuple[float, float, str, str]] = []
        self.last_kind = ""
        self.lock = threading.Lock()
        self.connections: list[PacedBus] = []

    def transmit(self, sender: PacedBus, msg: can.Message) -> float:
        """Queue ``msg`` on the bus; returns how far its end lies ahead of now."""
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
            kind = frame_kind(msg)
            if self.free_at and now > self.free_at:
                self.gaps.append((now, now - self.free_at, self.last_kind, kind))
            self.last_kind = kind
            self.free_at = max(now, self.free_at) + duration
            self.busy_s += duration
            end = self.free_at
            msg.timestamp = time.time() + (end - now)
            for bus in self.connections:  # under the lock: every connection sees one order
                if bus is not sender:
                    bus.arrivals.put((end, msg))
        return end - now


def frame_kind(msg: can.Message) -> str:
    """'tester FF', 'ECU FC', …: who sent which ISO-TP frame type (for the gap breakdown)."""
    who = {ECM.request_id: "tester", ECM.response_id: "ECU"}.get(msg.arbitration_id, "other")
    pci = msg.data[0] >> 4 if msg.data else 0xF
    return f"{who} {('SF', 'FF', 'CF', 'FC').__getitem__(pci) if pci < 4 else '?'}"


class PacedBus(can.BusABC):
    """A connection to a :class:`Timeline`: sends take their bus time, receives wait for it.

    ``send`` hands the frame to the bus like a CAN controller's transmit queue and returns; it
    sleeps only while more than ``QUEUE_S`` of bus time is queued, so a late wake-up of the
    sender does not leave the bus idle. Receivers get each frame at the end of its bus time,
    never earlier.
    """

    def __init__(self, channel: str, timeline: Timeline) -> None:
        self._timeline = timeline
        self.arrivals: queue.SimpleQueue[tuple[float, can.Message]] = queue.SimpleQueue()
        with timeline.lock:
            timeline.connections.append(self)
        super().__init__(channel=channel)

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        ahead = self._timeline.transmit(self, copy.copy(msg))
        if ahead > QUEUE_S:
            time.sleep(ahead - QUEUE_S / 2)

    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        try:
            end, msg = self.arrivals.get(timeout=timeout)
        except queue.Empty:
            return None, False
        wait = end - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        return msg, False

    def shutdown(self) -> None:
        with self._timeline.lock:
            if self in self._timeline.connections:
                self._timeline.connections.remove(self)
        super().shutdown()


def image(size: int) -> FlashImage:
    data = bytes((i * 131 + 17 + (i >> 8)) & 0xFF for i in range(size))
    start = FLASH_LAYOUTS["ECM"].start
    return FlashImage("ECM", "bench.bin", "0" * 64, (Segment(start, data),), "SW 0900", 9)


def floor_seconds(
    img: FlashImage, bitrate: int, data_bitrate: int | None, fd: bool, message: int = CLASSIC_MESSAGE
) -> float:
    """Bus time of the frames of every TransferData exchange (``message`` bytes long), back to back."""
    payload = 64 if fd else 8
    ecu_tx, tester_tx = ECM.response_id, ECM.request_id

    def frame(ident: int, data: bytes) -> float:
        # Padded as can-isotp pads: classic frames to 8 bytes, CAN FD to the next FD length.
        size = 8 if not fd else next(n for n in (8, 12, 16, 20, 24, 32, 48, 64) if n >= len(data))
        if len(data) < size:
            data = data + b"\xcc" * (size - len(data))
        return frame_duration(
            ident, False, data, is_fd=fd, bitrate_switch=fd, bitrate=bitrate, data_bitrate=data_bitrate
        )

    total = 0.0
    data = img.segments[0].data
    block = message - 2
    for n, offset in enumerate(range(0, len(data), block)):
        request = bytes((0x36, (n + 1) & 0xFF)) + data[offset : offset + block]
        if len(request) <= 0xFFF:  # first frame: 12-bit length in 2 bytes of header
            head = bytes((0x10 | len(request) >> 8, len(request) & 0xFF))
        else:  # ISO 15765-2:2016 escape: 0x10 0x00, then a 32-bit length
            head = b"\x10\x00" + len(request).to_bytes(4, "big")
        first = payload - len(head)
        total += frame(tester_tx, head + request[:first])
        for cf, pos in enumerate(range(first, len(request), payload - 1)):
            total += frame(tester_tx, bytes((0x20 | (cf + 1) & 0x0F,)) + request[pos : pos + payload - 1])
        total += frame(ecu_tx, b"\x30\x00\x00")  # flow control: BS 0, STmin 0
        total += frame(ecu_tx, bytes((0x02, 0x76, (n + 1) & 0xFF)))  # positive answer
    return total


class Car:
    """The demo car's ECUs on ``bus_factory()`` connections; the car's own model on a side channel."""

    def __init__(self, bus_factory: Any, flash_dir: Path, message: int = CLASSIC_MESSAGE) -> None:
        self.side = can.Bus(interface="virtual", channel=f"bench-car-{uuid.uuid4().hex[:8]}")
        self.vehicle = DemoVehicle(self.side, time_scale=1e-6)  # engine off, standing still
        self.ecu_bus = bus_factory()
        self.net = EcuNetwork(self.ecu_bus, self.vehicle, flash_dir=flash_dir)
        timing = self.net.ecu("ECM").bootloader.timing  # type: ignore[union-attr]
        timing.erase_seconds = 0.0
        timing.write_bytes_per_s = 0.0
        if message > CLASSIC_MESSAGE:  # an ECU that takes long TransferData messages offers them
            timing.max_block_length = message
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


def run_flash_job(
    bus_factory: Any, img: FlashImage, work: Path, *, fd: bool = False, message: int = CLASSIC_MESSAGE
) -> tuple[float, float, tuple[float, float]]:
    """(whole job seconds, download seconds: from the erase request to the last block's answer,
    that window in perf_counter time)."""
    marks: dict[str, float] = {}

    def progress(phase: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if phase == "erase":
            marks.setdefault("erase", now)
        if phase == "download":
            marks["download"] = now

    db = work / f"history-{uuid.uuid4().hex[:6]}.db"
    flash_dir = work / f"flash-{uuid.uuid4().hex[:6]}"
    with Car(bus_factory, flash_dir, message) as car, FlashJournal(db) as journal, AuditTrail(db) as audit:
        job = FlashJob(
            car.tester,
            car.notifier,
            EcuAddress.of(ECM),
            img,
            journal=journal,
            audit=audit,
            options=FlashOptions(vin=SPEC.vin, fd=fd, max_message=message),
        )
        t0 = time.perf_counter()
        result = job.run(progress, threading.Event())
        whole = time.perf_counter() - t0
    if not result.ok:
        raise SystemExit(f"flash failed: {result.error}")
    return whole, marks["download"] - marks["erase"], (marks["erase"], marks["download"])


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


def gaps_text(timeline: Timeline, start: float, end: float) -> str:
    """Where the time above the floor went: the bus idle between frames of the download."""
    gaps = [g for g in timeline.gaps if start <= g[0] <= end]
    if not gaps:
        return "bus never idle"
    by: dict[tuple[str, str], list[float]] = {}
    for _, seconds, before, after in gaps:
        by.setdefault((before, after), []).append(seconds)
    parts = sorted(by.items(), key=lambda kv: -sum(kv[1]))[:4]
    where = ", ".join(
        f"{a} -> {b} {sum(g):.2f} s ({len(g)}x, median {statistics.median(g) * 1e3:.2f} ms)"
        for (a, b), g in parts
    )
    return f"bus idle {sum(g[1] for g in gaps):.2f} s in {len(gaps)} gaps: after {where}"


def paced_row(
    label: str, img: FlashImage, work: Path, data_bitrate: int | None, notes_floor: float, message: int
) -> None:
    fd = data_bitrate is not None
    factory, timeline = paced(500_000, data_bitrate)
    whole, download, window = run_flash_job(factory, img, work, fd=fd, message=message)
    floor = floor_seconds(img, 500_000, data_bitrate, fd=fd, message=message)
    scale = (1024 * 1024) / img.size
    print(
        f"{label}, flash job: download {download:.2f} s (whole job {whole:.2f} s), floor {floor:.2f} s "
        f"-> {download / floor:.3f} x floor ({'within' if download <= floor * 1.05 else 'NOT within'} 5 %); "
        f"{gaps_text(timeline, *window)}; 1 MiB floor in NOTES.md "
        f"≈{notes_floor} s (here x{scale:.2f} = {floor * scale:.2f} s)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--size-kib", type=positive_int, default=1024, help="image size (default 1024 = 1 MiB)"
    )
    parser.add_argument("--runs", type=positive_int, default=1, help="paced runs per bus (default 1)")
    parser.add_argument(
        "--message",
        type=positive_int,
        default=CLASSIC_MESSAGE,
        help="TransferData message length the simulated ECM offers and the job uses, 4095 (default) .. 65535",
    )
    parser.add_argument("--skip-classic", action="store_true")
    parser.add_argument("--skip-fd", action="store_true")
    parser.add_argument("--skip-unpaced", action="store_true")
    args = parser.parse_args()
    size = args.size_kib * 1024
    if size > FLASH_LAYOUTS["ECM"].size:
        raise SystemExit(f"--size-kib: 1 .. {FLASH_LAYOUTS['ECM'].size // 1024}")
    if not 3 <= args.message <= 0xFFFF:
        raise SystemExit("--message: 3 .. 65535 (the simulated ECM's ISO-TP takes up to 65535 bytes)")
    img = image(size)
    print(
        f"image: {size:,} bytes to the simulated ECM; erase set to 0 s; "
        f"{args.message - 2}-byte TransferData blocks"
    )
    with tempfile.TemporaryDirectory(prefix="bench-flash-") as tmp:
        work = Path(tmp)
        for _ in range(args.runs if not args.skip_classic else 0):
            paced_row("classic 500 kbit/s", img, work, None, 34.4, args.message)
        for _ in range(args.runs if not args.skip_fd else 0):
            paced_row("CAN FD 500k/2M", img, work, 2_000_000, 5.85, args.message)
        if not args.skip_unpaced:
            raw = f"bench-raw-{uuid.uuid4().hex[:8]}"
            cpu = time.process_time()
            whole, download, _ = run_flash_job(
                lambda: can.Bus(interface="virtual", channel=raw), img, work, message=args.message
            )
            cpu = time.process_time() - cpu  # the whole process: tester, simulated car and bus
            bare = run_sequence(lambda: can.Bus(interface="virtual", channel=raw), img, work, fd=False)
            print(
                f"unpaced virtual bus, classic frames: flash job download {download:.2f} s = "
                f"{size / download / 1024:.0f} KiB/s (whole job {whole:.2f} s, CPU {cpu:.2f} s); bare udsoncan sequence "
                f"(stock can-isotp stack on the tester side) {bare:.2f} s = {size / bare / 1024:.0f} KiB/s"
            )


if __name__ == "__main__":
    main()
