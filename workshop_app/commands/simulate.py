"""`workshop simulate`: run the demo vehicle on a bus; `--serve socketcand` shares it."""

from __future__ import annotations

import argparse
import sys
import threading
import time

import can

from workshop_app.core.diag.ecu_spec import demo_vehicle_spec
from workshop_app.core.errors import SourceError
from workshop_app.core.sim.demo_vehicle import DemoVehicle
from workshop_app.core.sim.ecus import EcuNetwork
from workshop_app.core.sim.faults import available_faults
from workshop_app.core.sim.socketcand_server import DEFAULT_MAX_CLIENTS, SocketcandServer
from workshop_app.core.sources.adapter import open_bus
from workshop_app.core.types import BusConfig


def run(args: argparse.Namespace) -> int:
    if args.list_faults:
        for name, description in available_faults().items():
            print(f"{name:<28} {description}")
        return 0
    unknown = [f for f in args.fault if f not in available_faults()]
    if unknown:
        raise SourceError(f"unknown fault {unknown[0]!r}; see `workshop simulate --list-faults`")
    bitrate = args.bitrate or None
    bus = open_bus(
        BusConfig(args.interface, args.channel, bitrate=bitrate if args.interface != "virtual" else None)
    )
    server_bus: can.BusABC | None = None
    server: SocketcandServer | None = None
    ecu_bus: can.BusABC | None = None
    ecus: EcuNetwork | None = None
    vehicle = DemoVehicle(bus, pace_bitrate=bitrate, time_scale=args.time_scale, seed=args.seed)
    try:
        if args.serve == "socketcand":
            # The server listens on its own handle of the same virtual channel, so it sees the
            # car's frames and the car sees what clients send.
            if args.interface != "virtual":
                raise SourceError("--serve socketcand shares the simulator's virtual bus; use -i virtual")
            server_bus = can.Bus(interface="virtual", channel=args.channel)
            server = SocketcandServer(
                server_bus,
                host=args.host,
                port=args.port,
                channel="can0",
                max_clients=args.max_clients or DEFAULT_MAX_CLIENTS,
            )
            try:
                server.start()
            except OSError as exc:
                raise SourceError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
            print(
                f"socketcand server on {args.host}:{server.address[1]} channel can0, "
                f"client limit {server.max_clients} "
                f"(e.g. `workshop monitor -i socketcand --port {server.address[1]}`)",
                file=sys.stderr,
            )
        vehicle.park(args.parked)
        for fault in args.fault:
            vehicle.inject_fault(fault)
        if args.interface == "virtual" and not args.no_ecus:
            # The diagnostic ECUs (UDS, OBD-II) on their own handle of the channel.
            ecu_bus = can.Bus(interface="virtual", channel=args.channel)
            ecus = EcuNetwork(ecu_bus, vehicle)
        vehicle.start()
        if ecus is not None:
            ecus.start()
            names = ", ".join(e.name for e in demo_vehicle_spec().ecus)
            print(f"diagnostic ECUs answering: {names}", file=sys.stderr)
        print(f"demo vehicle running on {args.interface} {args.channel} (Ctrl-C to stop)", file=sys.stderr)
        _wait(vehicle, server, args.duration)
    finally:
        if ecus is not None:
            ecus.stop()
        vehicle.stop()
        if server is not None:
            server.stop()
        for b in (ecu_bus, server_bus, bus):
            if b is not None:
                b.shutdown()
    print(f"{vehicle.frames_sent} frames sent", file=sys.stderr)
    return 0


def _wait(vehicle: DemoVehicle, server: SocketcandServer | None, duration: float | None) -> None:
    stop = threading.Event()
    deadline = None if duration is None else time.monotonic() + duration
    tty = sys.stderr.isatty()
    try:
        while deadline is None or time.monotonic() < deadline:
            if stop.wait(1.0 if deadline is None else min(1.0, max(0.0, deadline - time.monotonic()))):
                break
            if tty:
                clients = ""
                if server is not None:
                    stats = server.stats
                    clients = f", {stats.clients} client(s)"
                    if stats.frames_dropped:
                        clients += f", {stats.frames_dropped} frames dropped for slow clients"
                sys.stderr.write(
                    f"\r{vehicle.frames_sent} frames sent, bus load {vehicle.bus_load * 100:4.1f}%{clients}   "
                )
                sys.stderr.flush()
    except KeyboardInterrupt:
        pass
    if tty:
        sys.stderr.write("\n")
