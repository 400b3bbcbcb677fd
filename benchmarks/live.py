"""Live capture under load: the window with the trace, 16 plotted signals and a BLF recording.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/live.py [--seconds 60] [--buses 1 4]

Each simulated bus is saturated at 1 Mbit/s (the demo car plus filler frames, paced with
ISO 11898-1 frame lengths: ~8,700 frames/s). Printed per configuration: frames sent by the
simulators vs received by capture vs written to the BLF file, GUI tick time percentiles, CPU
and memory growth. Named baselines measured in the same run: the physical capacity of the
buses, and bare python-can plumbing (Notifier + BufferedReader, no window) under the same load.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import can
from PySide6.QtCore import QEventLoop, QSettings, QTimer

from workshop_app.core.bittiming import frame_bits
from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.session import CaptureSession
from workshop_app.core.sim.demo_vehicle import DemoVehicle
from workshop_app.core.sim.socketcand_server import SocketcandServer
from workshop_app.core.sources.adapter import AdapterSource
from workshop_app.core.sources.multi import MultiSource
from workshop_app.core.types import BusConfig
from workshop_app.gui.app import make_app
from workshop_app.gui.main_window import MainWindow
from workshop_app.paths import demo_dbc_path

BITRATE = 1_000_000
PLOTTED = [
    ("ENGINE_DATA", "EngineSpeed"),
    ("ENGINE_DATA", "AccelPedalPosition"),
    ("ENGINE_DATA", "ThrottlePosition"),
    ("ENGINE_DATA", "EngineLoad"),
    ("WHEEL_SPEEDS", "WheelSpeedFL"),
    ("WHEEL_SPEEDS", "WheelSpeedFR"),
    ("WHEEL_SPEEDS", "WheelSpeedRL"),
    ("WHEEL_SPEEDS", "WheelSpeedRR"),
    ("ABS_STATUS", "VehicleSpeed"),
    ("ABS_STATUS", "LongitudinalAccel"),
    ("STEERING", "SteeringAngle"),
    ("BRAKE_STATUS", "BrakePressure"),
    ("TRANSMISSION", "GearSelector"),
    ("BATTERY_STATUS", "BatteryVoltage"),
    ("ENGINE_TEMPS", "CoolantTemp"),
    ("CLIMATE_STATUS", "CabinTemp"),
]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def capacity(seconds: float, buses: int) -> float:
    """Frames the buses can physically carry: 8-byte standard frames, typical stuffing."""
    bits = statistics.fmean(frame_bits(0x580 + i, False, os.urandom(8))[0] for i in range(2000))
    return buses * BITRATE / bits * seconds


def baseline_plumbing(seconds: float, buses: int) -> tuple[int, int]:
    """Bare python-can: the same simulators, a Notifier per bus into BufferedReaders, no window."""
    vehicles, readers, notifiers, all_buses = [], [], [], []
    for i in range(buses):
        channel = f"bench-base-{os.getpid()}-{i}"
        car_bus = can.Bus(interface="virtual", channel=channel)
        rx_bus = can.Bus(interface="virtual", channel=channel)
        reader = can.BufferedReader()
        notifiers.append(can.Notifier(rx_bus, [reader], timeout=0.05))
        vehicles.append(DemoVehicle(car_bus, pace_bitrate=BITRATE, extra_load=1.0, seed=i))
        readers.append(reader)
        all_buses += [car_bus, rx_bus]
    for v in vehicles:
        v.start()
    received = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for r in readers:
            while r.get_message(0) is not None:
                received += 1
        time.sleep(0.03)
    for v in vehicles:
        v.stop()
    time.sleep(0.1)
    for r in readers:
        while r.get_message(0) is not None:
            received += 1
    for n in notifiers:
        n.stop()
    for b in all_buses:
        b.shutdown()
    return sum(v.frames_sent for v in vehicles), received


def car_process(buses: int, conn: Connection) -> None:
    """The simulated cars in their own process, each bus served over socketcand on loopback.

    A car is not inside the workshop PC: running the simulators in the window's process would
    make them compete with capture for the same interpreter lock.
    """
    servers, vehicles, handles = [], [], []
    for i in range(buses):
        channel = f"bench-car-{os.getpid()}-{i}"
        car_bus = can.Bus(interface="virtual", channel=channel)
        server_bus = can.Bus(interface="virtual", channel=channel)
        server = SocketcandServer(server_bus, host="127.0.0.1", port=0, channel="can0")
        server.start()
        servers.append(server)
        vehicles.append(DemoVehicle(car_bus, pace_bitrate=BITRATE, extra_load=1.0, seed=i))
        handles += [car_bus, server_bus]
    conn.send([s.address[1] for s in servers])
    conn.recv()  # go
    for v in vehicles:
        v.start()
    conn.recv()  # stop
    for v in vehicles:
        v.stop()
    time.sleep(0.5)  # let the servers forward what is queued
    conn.send(
        {
            "sent": sum(v.frames_sent for v in vehicles),
            "forwarded": sum(s.stats.frames_sent for s in servers),
            "server_dropped": sum(s.stats.frames_dropped for s in servers),
            # python-can's socketcand client cannot parse CAN FD frames: the server skips them.
            "fd_skipped": sum(s.stats.fd_skipped for s in servers),
        }
    )
    for s in servers:
        s.stop()
    for b in handles:
        b.shutdown()


def run_window(seconds: float, buses: int, workdir: Path) -> dict[str, float]:
    make_app()
    ring = FrameRing(1_000_000)
    parent_conn, child_conn = multiprocessing.Pipe()
    car = multiprocessing.get_context("spawn").Process(
        target=car_process, args=(buses, child_conn), daemon=True
    )
    car.start()
    ports = parent_conn.recv()
    sims = [
        AdapterSource(
            ring,
            BusConfig("socketcand", "can0", bitrate=BITRATE, host="127.0.0.1", port=port),
            channel_label=f"can{i}",
        )
        for i, port in enumerate(ports)
    ]
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    session = CaptureSession(MultiSource(ring, sims), dbs)
    settings = QSettings(str(workdir / f"settings-{buses}.ini"), QSettings.Format.IniFormat)
    window = MainWindow(session, settings=settings, history=None)
    window.show()
    window.trace_view.expandAll()
    for n, (message, signal) in enumerate(PLOTTED):  # four plots of four curves
        window.plot_panel.add_signal(message, signal, None if n % 4 == 0 else n // 4)
    window.start()
    parent_conn.send("go")
    blf = workdir / f"bench-{buses}.blf"
    session.start_recording(blf)

    ticks: list[float] = []
    mem: list[float] = []
    original = window.bridge._on_timeout

    def timed_tick() -> None:
        t0 = time.perf_counter()
        original()
        ticks.append(time.perf_counter() - t0)

    window.bridge._timer.timeout.disconnect()
    window.bridge._timer.timeout.connect(timed_tick)
    QTimer.singleShot(int(min(10.0, seconds / 3) * 1000), lambda: mem.append(rss_mb()))
    # A private event loop: QApplication.quit() would close the window (and stop capture) first.
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    cpu0, wall0 = time.process_time(), time.monotonic()
    loop.exec()
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - wall0
    mem.append(rss_mb())
    parent_conn.send("stop")  # stop the cars first so every frame they sent can be counted
    car_stats = parent_conn.recv()
    sent = car_stats["sent"]
    drain_end = time.monotonic() + 3.0
    while (
        time.monotonic() < drain_end
        and session.store.total_frames + session.ring.backlog < car_stats["forwarded"]
    ):
        session.tick()
        time.sleep(0.05)
    summary = session.stop()
    car.join(5)
    window.close()
    received = session.store.total_frames
    written = summary.frames_written if summary else 0
    read_back = sum(1 for _ in can.BLFReader(blf))
    return {
        "wall": wall,
        "sent": sent,
        "received": received,
        "dropped": session.ring.dropped,
        "server_dropped": car_stats["server_dropped"],
        "forwarded": car_stats["forwarded"],
        "fd_skipped": car_stats["fd_skipped"],
        "written": written,
        "read_back": read_back,
        "rate": received / wall,
        "tick_p50": pct(ticks, 0.50) * 1000,
        "tick_p95": pct(ticks, 0.95) * 1000,
        "tick_p99": pct(ticks, 0.99) * 1000,
        "ticks": len(ticks),
        "cpu": cpu / wall * 100,
        "mem_start": mem[0],
        "mem_end": mem[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--buses", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for buses in args.buses:
            cap = capacity(args.seconds, buses)
            base_sent, base_received = baseline_plumbing(min(args.seconds, 10.0), buses)
            r = run_window(args.seconds, buses, Path(tmp))
            lost = r["sent"] - r["fd_skipped"] - r["received"]
            print(f"== {buses} bus(es) at 1 Mbit/s, saturated, {r['wall']:.0f} s")
            print(f"   baseline: physical capacity      {cap / args.seconds:10,.0f} frames/s")
            print(
                f"   baseline: bare python-can (10 s) {base_received / min(args.seconds, 10.0):10,.0f} frames/s "
                f"received of {base_sent / min(args.seconds, 10.0):,.0f} sent"
            )
            print(
                f"   sent {r['sent']:,}  received {r['received']:,}  recorded {r['written']:,}  lost {lost:,}"
            )
            print(
                f"   capture rate {r['rate']:,.0f} frames/s   ring drops {r['dropped']:,}   "
                f"socketcand server drops {r['server_dropped']:,}, "
                f"CAN FD frames socketcand cannot carry {r['fd_skipped']:,}"
            )
            print(
                f"   GUI tick p50 {r['tick_p50']:.1f} ms  p95 {r['tick_p95']:.1f} ms  p99 {r['tick_p99']:.1f} ms "
                f"({r['ticks']} ticks)"
            )
            print(
                f"   CPU {r['cpu']:.0f}% of one core   RSS {r['mem_start']:.0f} MB -> {r['mem_end']:.0f} MB"
            )
            sys.stdout.flush()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
