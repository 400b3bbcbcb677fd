"""Live capture under load: the window with the trace, 16 plotted signals and a BLF recording.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/live.py [--seconds 60] [--setups 1x1M 4x1M 2xFD]

Setups: ``1x1M`` and ``4x1M`` are saturated classic 1 Mbit/s buses (the demo car plus filler
frames, ~8,700 frames/s each); ``2xFD`` are two CAN FD 500k/2M buses (the demo car plus 64-byte
BRS frames just under the bus's capacity). The cars run in their own process and serve each bus
over socketcand on loopback; every bus is read with our socketcand client (CAN FD included).

Three ways are measured in the same run, each against fresh cars:
- ``bare``: python-can plumbing only (our client, a Notifier per bus, a counting listener);
- ``in-process``: today's window, receiving on threads of the window's own process;
- ``capture-process``: the window fed by a capture process (core/capture/process.py), which
  receives, records and sends packed columns.
Printed per way: frames the cars put on the buses = received = recorded (read back from the
BLF file), GUI tick p50/p95/p99, RSS every 10 s (window + capture process), and CPU (both
processes) per 10k frames/s.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import can
from plotted_signals import PLOTTED
from PySide6.QtCore import QEventLoop, QSettings, QTimer

from workshop_app.core.capture.process_session import ProcessCaptureSession
from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.session import CaptureSession
from workshop_app.core.sim.demo_vehicle import DemoVehicle
from workshop_app.core.sim.socketcand_server import SocketcandServer
from workshop_app.core.sources.adapter import AdapterSource
from workshop_app.core.sources.base import FrameSource
from workshop_app.core.sources.factory import SourceSpec
from workshop_app.core.sources.multi import MultiSource
from workshop_app.gui.app import make_app
from workshop_app.gui.main_window import MainWindow
from workshop_app.paths import demo_dbc_path

SETUPS = {"1x1M": ["1M"], "4x1M": ["1M"] * 4, "2xFD": ["FD", "FD"]}
WAYS = ("bare", "in-process", "capture-process")
FD_FILL_RATE = 2_800  # 64-byte BRS frames/s on a 500k/2M bus: just under its ~2,920


def proc_rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _fd_filler(bus: can.BusABC, stop: threading.Event) -> None:
    """64-byte FD frames with bit rate switching at FD_FILL_RATE, sent in 10 ms slices."""
    sent, t0, n = 0, time.monotonic(), 0
    while not stop.is_set():
        due = int((time.monotonic() - t0) * FD_FILL_RATE)
        while sent < due:
            n = (n + 1) & 0xFF
            bus.send(
                can.Message(
                    arbitration_id=0x5C0 + (n & 0x1F),
                    is_fd=True,
                    bitrate_switch=True,
                    data=bytes((n + i) & 0xFF for i in range(64)),
                )
            )
            sent += 1
        stop.wait(0.01)


def car_process(kinds: list[str], conn: Connection) -> None:
    """The simulated cars in their own process, each bus served over socketcand on loopback.

    A car is not inside the workshop PC: running the simulators in the window's process would
    make them compete with capture for the same interpreter lock.
    """
    servers: list[SocketcandServer] = []
    vehicles, handles, fillers = [], [], []
    stop = threading.Event()
    for i, kind in enumerate(kinds):
        channel = f"bench-car-{os.getpid()}-{i}"
        car_bus = can.Bus(interface="virtual", channel=channel)
        server_bus = can.Bus(interface="virtual", channel=channel)
        handles += [car_bus, server_bus]
        if kind == "1M":
            vehicles.append(DemoVehicle(car_bus, pace_bitrate=1_000_000, extra_load=1.0, seed=i))
        else:
            vehicles.append(DemoVehicle(car_bus, pace_bitrate=500_000, data_bitrate=2_000_000, seed=i))
            fill_bus = can.Bus(interface="virtual", channel=channel)
            handles.append(fill_bus)
            fillers.append(threading.Thread(target=_fd_filler, args=(fill_bus, stop), daemon=True))
        server = SocketcandServer(server_bus, host="127.0.0.1", port=0, channel="can0")
        server.start()
        servers.append(server)
    conn.send([s.address[1] for s in servers])
    conn.recv()  # go: the clients are connected
    for v in vehicles:
        v.start()
    for f in fillers:
        f.start()
    conn.recv()  # halt
    stop.set()
    for v in vehicles:
        v.stop()
    for f in fillers:
        f.join(5)
    time.sleep(1.0)  # let the servers forward what is queued
    conn.send(
        {
            "sent": sum(s.stats.frames_from_bus for s in servers),
            "server_dropped": sum(s.stats.frames_dropped for s in servers),
            "fd_skipped": sum(s.stats.fd_skipped for s in servers),
        }
    )
    conn.recv()  # exit
    for s in servers:
        s.stop()
    for b in handles:
        b.shutdown()


class _Cars:
    def __init__(self, kinds: list[str]) -> None:
        self.conn, child = multiprocessing.Pipe()
        self.process = multiprocessing.get_context("spawn").Process(
            target=car_process, args=(kinds, child), daemon=True
        )
        self.process.start()
        self.ports: list[int] = self.conn.recv()

    def go(self) -> None:
        self.conn.send("go")

    def halt(self) -> dict[str, int]:
        self.conn.send("halt")
        counts: dict[str, int] = self.conn.recv()
        return counts

    def close(self) -> None:
        self.conn.send("exit")
        self.process.join(10)


class _Counter(can.Listener):
    def __init__(self) -> None:
        self.n = 0

    def on_message_received(self, msg: can.Message) -> None:
        self.n += 1


def run_bare(kinds: list[str], seconds: float) -> dict[str, Any]:
    cars = _Cars(kinds)
    buses = [
        can.Bus(interface="workshop-socketcand", channel="can0", host="127.0.0.1", port=p) for p in cars.ports
    ]
    counters = [_Counter() for _ in buses]
    notifiers = [can.Notifier(b, [c], timeout=0.05) for b, c in zip(buses, counters, strict=True)]
    time.sleep(0.5)  # the clients are in raw mode before the cars start
    cpu0, wall0 = time.process_time(), time.monotonic()
    cars.go()
    time.sleep(seconds)
    wall = time.monotonic() - wall0
    cpu = time.process_time() - cpu0
    car = cars.halt()
    deadline = time.monotonic() + 5
    while sum(c.n for c in counters) < car["sent"] and time.monotonic() < deadline:
        time.sleep(0.05)
    for n in notifiers:
        n.stop()
    for b in buses:
        b.shutdown()
    cars.close()
    received = sum(c.n for c in counters)
    return {"wall": wall, **car, "received": received, "rate": received / wall, "cpu": cpu, "dropped": 0}


def run_window(kinds: list[str], seconds: float, workdir: Path, way: str) -> dict[str, Any]:
    make_app()
    cars = _Cars(kinds)
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    session: CaptureSession
    if way == "capture-process":
        specs = [SourceSpec(interface="socketcand", host="127.0.0.1", port=p) for p in cars.ports]
        session = ProcessCaptureSession(specs, dbs, labels=[f"can{i}" for i in range(len(specs))])
    else:
        ring = FrameRing(1_000_000)
        members: list[FrameSource] = [
            AdapterSource(
                ring, SourceSpec(interface="socketcand", port=p).bus_config(), channel_label=f"can{i}"
            )
            for i, p in enumerate(cars.ports)
        ]
        session = CaptureSession(MultiSource(ring, members), dbs)
    settings = QSettings(str(workdir / f"settings-{way}.ini"), QSettings.Format.IniFormat)
    window = MainWindow(session, settings=settings, history=None)
    window.show()
    window.trace_view.expandAll()
    for n, (message, signal) in enumerate(PLOTTED):  # four plots of four curves
        window.plot_panel.add_signal(message, signal, None if n % 4 == 0 else n // 4)
    window.start()
    child = session.capture_source.pid if isinstance(session, ProcessCaptureSession) else None
    blf = workdir / f"bench-{way}-{len(kinds)}.blf"
    session.start_recording(blf)

    ticks: list[float] = []
    tick_cpu: list[float] = []  # the GUI thread's own CPU time per tick (wall minus waiting for a core)
    rss: list[tuple[float, float]] = []
    original = window.bridge._on_timeout

    def timed_tick() -> None:
        t0, c0 = time.perf_counter(), time.thread_time()
        original()
        ticks.append(time.perf_counter() - t0)
        tick_cpu.append(time.thread_time() - c0)

    def sample() -> None:
        rss.append((proc_rss_mb(os.getpid()), proc_rss_mb(child) if child else 0.0))

    window.bridge._timer.timeout.disconnect()
    window.bridge._timer.timeout.connect(timed_tick)
    sampler = QTimer()
    sampler.timeout.connect(sample)
    sampler.start(10_000)
    # A private event loop: QApplication.quit() would close the window (and stop capture) first.
    settle = QEventLoop()
    QTimer.singleShot(500, settle.quit)  # the clients reach raw mode before the cars start
    settle.exec()
    ticks.clear()
    tick_cpu.clear()
    sample()
    car_cpu0 = proc_cpu(cars.process.pid) if cars.process.pid else 0.0
    cars.go()
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    cpu0, child0, wall0 = time.process_time(), proc_cpu(child) if child else 0.0, time.monotonic()
    loop.exec()
    cpu = time.process_time() - cpu0
    child_cpu = (proc_cpu(child) - child0) if child else 0.0
    wall = time.monotonic() - wall0
    car_cpu = (proc_cpu(cars.process.pid) - car_cpu0) if cars.process.pid else 0.0
    sampler.stop()
    sample()
    window.bridge._timer.stop()
    car = cars.halt()  # the cars fall silent so every frame they sent can be counted
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and session.store.total_frames + session.ring.backlog < car["sent"]:
        session.tick()
        time.sleep(0.05)
    summary = session.stop()
    window.close()
    cars.close()
    return {
        "wall": wall,
        **car,
        "received": session.store.total_frames,
        "dropped": session.ring.dropped,
        "hops": session.drops if isinstance(session, ProcessCaptureSession) else None,
        "written": summary.frames_written if summary else 0,
        "read_back": sum(1 for _ in can.BLFReader(blf)),
        "rate": session.store.total_frames / wall,
        "ticks": ticks,
        "tick_cpu": tick_cpu,
        "car_cpu": car_cpu,
        "cpu": cpu + child_cpu,
        "window_cpu": cpu,
        "rss": rss,
    }


def report(way: str, r: dict[str, Any]) -> None:
    per10k = r["cpu"] / r["wall"] * 100 / max(r["rate"] / 10_000, 1e-9)
    lost = r["sent"] - r["received"]
    line = f"   {way:16s} sent {r['sent']:,}  received {r['received']:,}"
    if "written" in r:
        line += f"  recorded {r['written']:,} (read back {r['read_back']:,})"
    line += f"  lost {lost:,}  ({r['rate']:,.0f} frames/s)"
    print(line)
    hops = r.get("hops")
    drops = (
        f"receive {hops.receive}, link {hops.link}, window {hops.window}" if hops else f"ring {r['dropped']}"
    )
    print(f"   {'':16s} dropped: {drops}; server {r['server_dropped']}; FD skipped {r['fd_skipped']}")
    if "ticks" in r:
        t = r["ticks"]
        print(
            f"   {'':16s} GUI tick p50 {pct(t, 0.5) * 1e3:.1f} ms  p95 {pct(t, 0.95) * 1e3:.1f} ms  "
            f"p99 {pct(t, 0.99) * 1e3:.1f} ms ({len(t)} ticks, {len(t) / r['wall']:.0f}/s)"
        )
        c = r["tick_cpu"]
        print(
            f"   {'':16s} GUI tick CPU p50 {pct(c, 0.5) * 1e3:.1f} ms  p95 {pct(c, 0.95) * 1e3:.1f} ms  "
            f"p99 {pct(c, 0.99) * 1e3:.1f} ms (the rest of the wall time waits for a core)"
        )
        rss = "  ".join(f"{w:.0f}+{c:.0f}" for w, c in r["rss"])
        print(f"   {'':16s} RSS MB (window+capture) every 10 s: {rss}")
    window = f" (window {r['window_cpu'] / r['wall'] * 100:.0f}%)" if "window_cpu" in r else ""
    cars = f"; the cars' process took {r['car_cpu'] / r['wall'] * 100:.0f}%" if "car_cpu" in r else ""
    print(
        f"   {'':16s} CPU {r['cpu'] / r['wall'] * 100:.0f}% of a core{window}, "
        f"{per10k:.1f}% of a core per 10k frames/s{cars}"
    )
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--setups", nargs="+", choices=sorted(SETUPS), default=["1x1M", "4x1M", "2xFD"])
    parser.add_argument("--ways", nargs="+", choices=WAYS, default=list(WAYS))
    args = parser.parse_args()
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.setups:
            kinds = SETUPS[name]
            print(f"== {name}: {len(kinds)} bus(es), {args.seconds:.0f} s")
            for way in args.ways:
                if way == "bare":
                    r = run_bare(kinds, args.seconds)
                else:
                    r = run_window(kinds, args.seconds, Path(tmp), way)
                report(way, r)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
