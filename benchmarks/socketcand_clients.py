"""The simulated car's socketcand server under many clients and a connection storm.

Run: .venv/bin/python benchmarks/socketcand_clients.py [--seconds 8] [--clients 64] [--storm 1000]

The car (demo vehicle paced at 500 kbit/s, its diagnostic ECUs and the socketcand server) runs
in its own process, as `workshop simulate --serve socketcand` does; it also records the
timestamp of every frame it puts on the bus, which is the reference each client's share is
measured against. Everything stays on 127.0.0.1. Three phases, each ``--seconds`` long:

1. baseline: one raw-mode client alone, plus a tester (python-can's socketcand client with
   can-isotp and udsoncan) reading the VIN (ReadDataByIdentifier 0xF190, ECM 0x7E0/0x7E8)
   again and again;
2. ``--clients`` raw-mode clients (the tester included), all reading;
3. the same clients at the server's cap while ``--storm`` connection attempts are kept in
   flight from another process, each retried as soon as it is refused.

Printed per phase: the share of the car's frames each client received (minimum and median),
the VIN read latency (median, 95th percentile, maximum), the car process's CPU use and the
refusals. Targets: in phases 2 and 3 every client gets >= 95 % of the frames, and in phase 3
95 % of the VIN reads take < 100 ms. Phase 1 is the baseline measured in the same run;
``--server-rev REV`` runs the same phases against the server of an older git revision;
``--idle N`` adds N connected but silent clients to phases 2 and 3 (and N to the cap).
The exit status is 0 when the targets are met.

``--compare-clients`` measures the receiving side instead: our client (``workshop-socketcand``,
``-i socketcand``) against python-can's ``socketcand`` client, each one per bus with a
python-can Notifier into a counting listener (what capture does), on the same car process.
Buses: 1 and 4 saturated 1 Mbit/s classic buses (demo car + filler), and 2 CAN FD 500k/2M
buses (demo car + 64-byte FD filler with bit rate switching near the 2,920 frames/s a bus
carries). Printed per client: frames/s received against the car's frames/s, CPU of the
receiving process (% of one core, and per 10k frames/s), CAN FD frames received (ours) or
skipped by the server because the client cannot read them (python-can's).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import logging
import math
import multiprocessing
import os
import re
import resource
import selectors
import socket
import statistics
import sys
import threading
import time
from bisect import bisect_left
from multiprocessing.connection import Connection

import can

from workshop_app.core.diag.client import DiagError, EcuAddress, EcuClient
from workshop_app.core.diag.ecu_spec import demo_vehicle_spec
from workshop_app.core.sim.demo_vehicle import DemoVehicle
from workshop_app.core.sim.ecus import EcuNetwork
from workshop_app.core.sim.socketcand_server import SocketcandServer

_FRAME = re.compile(rb"< frame ([0-9A-F]+) (\d+\.\d+) ")
VIN_DID = 0xF190
VIN_PAUSE = 0.1  # between two VIN reads
# Fresh interpreters: the tester's threads are running when the helper processes start.
_MP = multiprocessing.get_context("spawn")


def counted(can_id: int, extended: bool) -> bool:
    """Frames of the car itself: classic frames, not diagnostic requests and answers."""
    if extended:
        return can_id >> 16 not in (0x18DA, 0x18DB)
    return can_id < 0x700


# -- the car process -------------------------------------------------------------------------------


class _Stamps(can.Listener):
    def __init__(self) -> None:
        self.stamps: list[float] = []

    def on_message_received(self, msg: can.Message) -> None:
        if not (msg.is_fd or msg.is_error_frame or msg.is_remote_frame) and counted(
            msg.arbitration_id, msg.is_extended_id
        ):
            self.stamps.append(msg.timestamp)


def server_class(rev: str | None) -> type[SocketcandServer]:
    """This checkout's server, or the one of git revision ``rev`` (to compare with)."""
    if rev is None:
        return SocketcandServer
    import subprocess
    import types

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    source = subprocess.run(
        ["git", "-C", repo, "show", f"{rev}:workshop_app/core/sim/socketcand_server.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType(f"socketcand_server_{rev}")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{rev}:socketcand_server.py", "exec"), module.__dict__)
    return module.SocketcandServer  # type: ignore[no-any-return]


def car_process(pipe: Connection, max_clients: int, rev: str | None) -> None:
    channel = f"bench-car-{os.getpid()}"
    handles = [can.Bus(interface="virtual", channel=channel) for _ in range(4)]
    car_bus, server_bus, ecu_bus, reference_bus = handles
    vehicle = DemoVehicle(car_bus, pace_bitrate=500_000)
    ecus = EcuNetwork(ecu_bus, vehicle)
    cls = server_class(rev)
    if "max_clients" in inspect.signature(cls).parameters:
        server = cls(server_bus, port=0, max_clients=max_clients)
    else:
        server = cls(server_bus, port=0)  # a revision without a cap
    stamps = _Stamps()
    notifier = can.Notifier(reference_bus, [stamps], timeout=0.05)
    server.start()
    vehicle.start()
    ecus.start()
    pipe.send(server.address[1])
    try:
        while True:
            request = pipe.recv()
            if request[0] == "count":
                _, t0, t1 = request
                got = list(stamps.stamps)
                pipe.send(bisect_left(got, t1) - bisect_left(got, t0))
            elif request[0] == "stats":
                pipe.send(dataclasses.asdict(server.stats))  # plain: the class may be another revision's
            elif request[0] == "cpu":
                pipe.send(time.process_time())
            else:
                break
    finally:
        ecus.stop()
        vehicle.stop()
        server.stop()
        notifier.stop()
        for bus in handles:
            bus.shutdown()


# -- the storm process -----------------------------------------------------------------------------


def storm_process(port: int, in_flight: int, seconds: float, pipe: Connection) -> None:
    """Keep ``in_flight`` connection attempts going; each is retried as soon as it ends."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, in_flight + 256)), hard))
    sel = selectors.DefaultSelector()
    counts = {"attempts": 0, "refused": 0, "greeted": 0, "failed": 0}

    def launch() -> None:
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        sel.register(s, selectors.EVENT_READ)

    for _ in range(in_flight):
        launch()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for key, _ in sel.select(0.1):
            s = key.fileobj
            assert isinstance(s, socket.socket)
            try:
                data = s.recv(256)
            except OSError:
                data = None
            counts["attempts"] += 1
            if data is None or not data:
                counts["failed"] += 1
            elif data.startswith(b"< error too many clients"):
                counts["refused"] += 1
            elif data.startswith(b"< hi >"):
                counts["greeted"] += 1
            sel.unregister(s)
            s.close()
            launch()
    for key in list(sel.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    pipe.send(counts)


# -- clients in this process -----------------------------------------------------------------------


def open_raw(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    for command, answer in ((None, b"< hi >"), (b"< open can0 >", b"< ok >"), (b"< rawmode >", b"< ok >")):
        if command:
            s.sendall(command)
        got = s.recv(64)
        if got != answer:
            raise RuntimeError(f"handshake: expected {answer!r}, got {got!r}")
    s.setblocking(False)
    return s


def readers_process(port: int, count: int, idle: int, pipe: Connection) -> None:
    """Raw-mode clients read by one selector; answers ("shares", t0, t1, reference) requests.

    A process of its own, so parsing tens of thousands of lines per second does not take the
    interpreter from the tester, whose latency is measured. ``idle`` more connections only
    take their ``< hi >`` and then say nothing.
    """
    socks = [open_raw(port) for _ in range(count)]
    quiet = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(idle)]
    for s in quiet:
        if s.recv(64) != b"< hi >":
            raise RuntimeError("an idle connection was not greeted")
    stamps: list[list[float]] = [[] for _ in socks]
    tails = [b""] * count
    pipe.send("ready")
    with selectors.DefaultSelector() as sel:
        for i, s in enumerate(socks):
            sel.register(s, selectors.EVENT_READ, i)
        sel.register(pipe.fileno(), selectors.EVENT_READ, None)
        while True:
            for key, _ in sel.select():
                i = key.data
                if i is None:
                    request = pipe.recv()
                    if request[0] != "shares":
                        for s in socks + quiet:
                            s.close()
                        return
                    _, t0, t1, reference = request
                    pipe.send([sum(t0 <= t < t1 for t in got) / reference for got in stamps])
                    continue
                try:
                    data = socks[i].recv(1 << 16)
                except BlockingIOError:
                    continue
                if not data:
                    sel.unregister(socks[i])
                    continue
                text = tails[i] + data
                cut = text.rfind(b">") + 1
                tails[i] = text[cut:]
                out = stamps[i]
                for m in _FRAME.finditer(text, 0, cut):
                    ident = m.group(1)
                    if counted(int(ident, 16), len(ident) == 8):
                        out.append(float(m.group(2)))


class RawReaders:
    """The handle of a readers process."""

    def __init__(self, port: int, count: int, idle: int = 0) -> None:
        self.pipe, child = _MP.Pipe()
        self.proc = _MP.Process(target=readers_process, args=(port, count, idle, child))
        self.proc.start()
        if self.pipe.recv() != "ready":
            raise RuntimeError("readers did not start")

    def shares(self, t0: float, t1: float, reference: int) -> list[float]:
        self.pipe.send(("shares", t0, t1, reference))
        return self.pipe.recv()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.pipe.send(("stop",))
        self.proc.join(10)


class Tester:
    """python-can's socketcand client with the project's UDS client on the ECM."""

    def __init__(self, port: int) -> None:
        self.bus = can.Bus(interface="socketcand", host="127.0.0.1", port=port, channel="can0")
        self.stamps = _Stamps()
        self.notifier = can.Notifier(self.bus, [self.stamps], timeout=0.05)
        ecm = next(e for e in demo_vehicle_spec().ecus if e.name == "ECM")
        self.client = EcuClient(self.bus, self.notifier, EcuAddress.of(ecm), spec=ecm)
        self.client.open()
        self.vin = self.client.read_did(VIN_DID)

    def read_vins(self, seconds: float) -> list[float]:
        """VIN read latencies in seconds, one read every VIN_PAUSE; unanswered reads are inf."""
        latencies = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            start = time.perf_counter()
            try:
                vin = self.client.read_did(VIN_DID)
            except DiagError:
                latencies.append(math.inf)  # no answer within the client's 1 s
                continue
            latencies.append(time.perf_counter() - start)
            if vin != self.vin:
                raise RuntimeError(f"VIN read returned {vin!r}, expected {self.vin!r}")
            time.sleep(VIN_PAUSE)
        return latencies

    def share(self, t0: float, t1: float, reference: int) -> float:
        return sum(t0 <= t < t1 for t in self.stamps.stamps) / reference

    def close(self) -> None:
        self.client.close()
        self.notifier.stop()
        self.bus.shutdown()


# -- phases ----------------------------------------------------------------------------------------


@dataclasses.dataclass
class Phase:
    rate: float  # the car's frames per second in the window
    shares: list[float]  # per client: received / sent by the car, sorted
    latencies: list[float]  # VIN reads in seconds, sorted
    car_cpu: float  # the car process's CPU time / wall time
    storm: dict[str, int] | None


def measure(
    car: Connection, readers: RawReaders, tester: Tester, seconds: float, storm: tuple[int, int] | None
) -> Phase:
    storm_pipe = storm_proc = None
    if storm is not None:
        port, in_flight = storm
        storm_pipe, child = _MP.Pipe()
        storm_proc = _MP.Process(target=storm_process, args=(port, in_flight, seconds + 1.0, child))
        storm_proc.start()
        time.sleep(1.0)  # the storm is going before the window opens
    car.send(("cpu",))
    cpu0 = car.recv()
    t0 = time.time()
    latencies = tester.read_vins(seconds)
    t1 = time.time()
    car.send(("cpu",))
    car_cpu = (car.recv() - cpu0) / (t1 - t0)
    time.sleep(0.5)  # frames stamped inside the window may still be on their way
    car.send(("count", t0, t1))
    reference = car.recv()
    shares = [*readers.shares(t0, t1, reference), tester.share(t0, t1, reference)]
    counts = None
    if storm_pipe is not None and storm_proc is not None:
        counts = storm_pipe.recv()
        storm_proc.join()
    return Phase(reference / (t1 - t0), sorted(shares), sorted(latencies), car_cpu, counts)


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def wait_for_clients(car: Connection, count: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        car.send(("stats",))
        if car.recv()["clients"] == count:
            return
        time.sleep(0.05)
    raise RuntimeError(f"the server still has other than {count} clients")


def report(name: str, r: Phase) -> None:
    shares, lat = r.shares, r.latencies
    p95 = percentile(lat, 0.95)
    print(
        f"{name:<44} {len(shares):>3} clients  car {r.rate:5.0f} frames/s  "
        f"share min {shares[0] * 100:5.1f} %  median {statistics.median(shares) * 100:5.1f} %  "
        f"VIN read median {statistics.median(lat) * 1000:5.1f} ms  p95 {p95 * 1000:5.1f} ms  "
        f"max {lat[-1] * 1000:5.1f} ms ({len(lat)} reads, {lat.count(math.inf)} unanswered)  car process CPU {r.car_cpu * 100:3.0f} %"
    )
    if r.storm is not None:
        s = r.storm
        print(
            f"{'':<44} storm: {s['attempts']:,} attempts finished, {s['refused']:,} refused with a "
            f"reply, {s['greeted']:,} greeted, {s['failed']:,} closed without a reply"
        )


# -- receiving side: our client against python-can's --------------------------------------------

CLIENTS = {"python-can": "socketcand", "ours": "workshop-socketcand"}
FD_FILL_RATE = 2_800  # 64-byte BRS frames/s on a 500k/2M bus: just under its ~2,920


class _CountingServer(SocketcandServer):
    """The simulator's server, also counting the CAN FD frames the car put on the bus."""

    fd_from_bus = 0

    def _on_bus_message(self, msg: can.Message) -> None:
        if msg.is_fd:
            self.fd_from_bus += 1
        super()._on_bus_message(msg)


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
                    is_extended_id=False,
                    is_fd=True,
                    bitrate_switch=True,
                    data=bytes((n + i) & 0xFF for i in range(64)),
                )
            )
            sent += 1
        stop.wait(0.01)


def rates_car_process(kinds: list[str], pipe: Connection) -> None:
    """One demo car and socketcand server per bus; kind "1M" (saturated classic) or "FD"."""
    servers: list[_CountingServer] = []
    vehicles, handles, fillers = [], [], []
    stop = threading.Event()
    for i, kind in enumerate(kinds):
        channel = f"bench-rates-{os.getpid()}-{i}"
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
        server = _CountingServer(server_bus, port=0)
        server.start()
        servers.append(server)
    for v in vehicles:
        v.start()
    for f in fillers:
        f.start()
    pipe.send([s.address[1] for s in servers])

    def halt() -> None:
        stop.set()
        for v in vehicles:
            v.stop()
        for f in fillers:
            f.join(5)

    try:
        while (request := pipe.recv())[0] != "stop":
            if request[0] == "halt":  # the cars fall silent, so every frame can be counted
                halt()
                pipe.send("halted")
            elif request[0] == "counts":
                pipe.send(
                    {
                        "from_bus": sum(s.stats.frames_from_bus for s in servers),
                        "fd_from_bus": sum(s.fd_from_bus for s in servers),
                        "clients": [dataclasses.asdict(c) for s in servers for c in s.client_stats()],
                    }
                )
    finally:
        halt()
        for s in servers:
            s.stop()
        for b in handles:
            b.shutdown()


class _Count(can.Listener):
    def __init__(self) -> None:
        self.frames = 0
        self.fd = 0

    def on_message_received(self, msg: can.Message) -> None:
        self.frames += 1
        if msg.is_fd:
            self.fd += 1


def _raw_clients(car: Connection, count: int) -> dict[str, int]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        car.send(("counts",))
        counts = car.recv()
        if len(counts["clients"]) == count and all(c["mode"] == "raw" for c in counts["clients"]):
            return counts
        time.sleep(0.05)
    raise RuntimeError(f"{count} clients did not reach raw mode")


def measure_client(car: Connection, ports: list[int], interface: str, seconds: float) -> dict[str, float]:
    buses = [can.Bus(interface=interface, host="127.0.0.1", port=port, channel="can0") for port in ports]
    counters = [_Count() for _ in buses]
    notifiers = [can.Notifier(b, [c], timeout=0.05) for b, c in zip(buses, counters, strict=True)]
    try:
        _raw_clients(car, len(buses))
        time.sleep(1.0)  # past the start: queues settled
        car.send(("counts",))
        before = car.recv()
        got0 = sum(c.frames for c in counters)
        fd0 = sum(c.fd for c in counters)
        cpu0, wall0 = time.process_time(), time.monotonic()
        time.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        got = sum(c.frames for c in counters) - got0
        fd = sum(c.fd for c in counters) - fd0
        car.send(("counts",))
        after = car.recv()
        # Loss on the client's side: the cars stop, then what the server wrote to these
        # clients since they connected is compared with what their listeners got.
        car.send(("halt",))
        car.recv()
        deadline = time.monotonic() + 10.0
        while True:
            car.send(("counts",))
            clients = car.recv()["clients"]
            written = sum(c["frames_sent"] for c in clients)
            total = sum(c.frames for c in counters)
            settled = all(c["frames_queued"] == 0 for c in clients) and total == written
            if settled or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        for n in notifiers:
            n.stop()
        for b in buses:
            b.shutdown()
    skipped = sum(c["fd_skipped"] for c in after["clients"]) - sum(c["fd_skipped"] for c in before["clients"])
    dropped = sum(c["frames_dropped"] for c in after["clients"]) - sum(
        c["frames_dropped"] for c in before["clients"]
    )
    return {
        "car_rate": (after["from_bus"] - before["from_bus"]) / wall,
        "rate": got / wall,
        "cpu": cpu / wall * 100,
        "fd_sent": after["fd_from_bus"] - before["fd_from_bus"],
        "fd_received": fd,
        "fd_skipped": skipped,
        "server_dropped": dropped,
        "written": written,
        "lost": written - total,
    }


def compare_clients(seconds: float) -> None:
    logging.getLogger("can.interfaces.socketcand.socketcand").setLevel(
        logging.CRITICAL
    )  # as the workshop does
    configs = {"1 bus 1 Mbit/s": ["1M"], "4 buses 1 Mbit/s": ["1M"] * 4, "2 CAN FD buses 500k/2M": ["FD"] * 2}
    print(
        f"socketcand clients, receiving side: {seconds:.0f} s windows, loopback, {os.cpu_count()} cores "
        "(shared with other work: figures are noisy)"
    )
    for name, kinds in configs.items():
        for label, interface in CLIENTS.items():
            car, child = _MP.Pipe()  # a fresh car per client: each run ends by halting it
            proc = _MP.Process(target=rates_car_process, args=(kinds, child), daemon=True)
            proc.start()
            ports = car.recv()
            try:
                time.sleep(1.0)
                r = measure_client(car, ports, interface, seconds)
            finally:
                car.send(("stop",))
                proc.join(20)
            per_10k = r["cpu"] / (r["rate"] / 10_000) if r["rate"] else math.inf
            fd = (
                f"FD frames: car {r['fd_sent']:,}, received {r['fd_received']:,}, "
                f"skipped for this client {r['fd_skipped']:,}"
            )
            print(
                f"{name:<24} {label:<10} received {r['rate']:7,.0f} of {r['car_rate']:7,.0f} frames/s  "
                f"CPU {r['cpu']:5.1f} % of a core = {per_10k:4.1f} % per 10k frames/s  "
                f"server drops {r['server_dropped']:,}  lost in the client {r['lost']:,} of "
                f"{r['written']:,} written to it  {fd}"
            )
            sys.stdout.flush()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="length of each measuring window")
    ap.add_argument("--clients", type=int, default=64, help="clients in phases 2 and 3 (= the server's cap)")
    ap.add_argument("--storm", type=int, default=1000, help="connection attempts kept in flight in phase 3")
    ap.add_argument(
        "--server-rev", help="measure the server of this git revision instead (e.g. an older one)"
    )
    ap.add_argument(
        "--idle",
        type=int,
        default=0,
        help="also hold this many idle connections (greeted, silent) in phases 2 and 3; the cap grows by as many",
    )
    ap.add_argument(
        "--compare-clients",
        action="store_true",
        help="measure our socketcand client against python-can's instead (uses --seconds)",
    )
    args = ap.parse_args()
    for key in [k for k in os.environ if k.startswith("CAN_")]:
        del os.environ[key]
    can.util.CONFIG_FILES = []
    if args.compare_clients:
        compare_clients(args.seconds)
        return 0

    car, child = _MP.Pipe()
    car_proc = _MP.Process(
        target=car_process, args=(child, args.clients + args.idle, args.server_rev), daemon=True
    )
    car_proc.start()
    port = car.recv()
    results: dict[str, Phase] = {}
    idle = f" + {args.idle} idle" if args.idle else ""
    tester = Tester(port)
    readers = RawReaders(port, 1)
    try:
        time.sleep(1.0)
        results["tester + 1 client (baseline)"] = measure(car, readers, tester, args.seconds, None)
        readers.close()
        wait_for_clients(car, 1)  # the tester; the baseline's reader has gone
        readers = RawReaders(port, args.clients - 1, args.idle)
        time.sleep(1.0)
        results[f"{args.clients} clients{idle}"] = measure(car, readers, tester, args.seconds, None)
        results[f"{args.clients} clients{idle} + storm of {args.storm}"] = measure(
            car, readers, tester, args.seconds, (port, args.storm)
        )
        car.send(("stats",))
        stats = car.recv()
    finally:
        readers.close()
        tester.close()
        car.send(("stop",))
        car_proc.join(20)
    server = f"server of {args.server_rev}" if args.server_rev else "this checkout's server"
    print(
        f"socketcand server under many clients ({server}), {args.seconds:.0f} s windows, loopback, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end"
    )
    for name, r in results.items():
        report(name, r)
    print(f"server totals: {stats}")
    worst = min(r.shares[0] for name, r in results.items() if "baseline" not in name)
    storm = results[f"{args.clients} clients{idle} + storm of {args.storm}"].latencies
    median, p95, worst_lat = statistics.median(storm), percentile(storm, 0.95), storm[-1]
    ok = worst >= 0.95 and p95 < 0.1
    print(
        f"targets: every client >= 95 % of the frames: {'met' if worst >= 0.95 else 'MISSED'} "
        f"(worst {worst * 100:.1f} %); VIN read under the storm < 100 ms: "
        f"{'met' if p95 < 0.1 else 'MISSED'} for 95 % of the reads (median {median * 1000:.1f} ms, "
        f"p95 {p95 * 1000:.1f} ms), slowest {worst_lat * 1000:.1f} ms"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
