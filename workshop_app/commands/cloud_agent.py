"""`workshop cloud agent`: the vehicle side of the cloud link, beside the car's bus (docs/cloud.md).

Runs until Ctrl-C, SIGTERM or SIGHUP (or ``--duration``): then it publishes "offline", closes
everything and prints its counters. Link changes are told on stderr, one plain line each; a
broker that is down at start is retried with back-off, not reported as a failure.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from workshop_app import cli_values as values
from workshop_app.commands.options import add_bus_options

if TYPE_CHECKING:
    from workshop_app.core.sources.factory import SourceSpec


def add_arguments(csub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = csub.add_parser(
        "agent",
        help="run the vehicle side: stream the car's bus to the broker, answer diagnostics and signed commands",
    )
    p.add_argument("--profile", type=Path, required=True, metavar="FILE", help="the vehicle's cloud profile")
    p.add_argument(
        "--buffer-frames",
        type=values.positive_int,
        default=200_000,
        metavar="N",
        help="frames kept while the broker is unreachable; beyond, the oldest are dropped and counted "
        "(default 200000, ~45 s of a full 500 kbit/s bus)",
    )
    p.add_argument(
        "--health-interval",
        type=values.seconds_or_zero,
        default=60.0,
        metavar="S",
        help="seconds between health summaries (fault codes, battery, odometer, versions; 0 = none; default 60)",
    )
    p.add_argument(
        "--allow-remote-flash",
        action="store_true",
        help="accept signed flash commands (off by default; the package is verified here before flashing)",
    )
    p.add_argument(
        "--trust-dir",
        type=Path,
        metavar="DIR",
        help="the agent's update trust store (default: the workshop home's)",
    )
    p.add_argument(
        "--history", type=Path, metavar="FILE", help="the agent's history database (its flash audit trail)"
    )
    p.add_argument(
        "--spec",
        type=Path,
        metavar="FILE",
        help="ECU description file: the ECUs the health scan and a remote flash address (default: the demo vehicle's)",
    )
    p.add_argument(
        "--dbc",
        type=Path,
        metavar="FILE",
        help="database defining BODY_COMMAND and the status frames remote functions read (default: the demo vehicle's)",
    )
    p.add_argument(
        "--duration",
        type=values.seconds,
        metavar="S",
        help="stop after this many seconds (default: until Ctrl-C)",
    )
    g = p.add_argument_group("the car's bus (default: the built-in simulated vehicle)")
    add_bus_options(g, "python-can interface: socketcand, pcan, kvaser, vector, ...")


def _spec(args: argparse.Namespace) -> SourceSpec:
    from workshop_app.core.sources.factory import SourceSpec

    return SourceSpec(
        interface=args.interface,
        channel=args.channel,
        bitrate=args.bitrate,
        data_bitrate=args.data_bitrate,
        fd=args.fd,
        host=args.host,
        port=args.port,
    )


def _say(line: str) -> None:
    print(f"workshop cloud agent: {line}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from workshop_app.core.cloud.agent import CloudAgent
    from workshop_app.core.cloud.profile import CloudProfile
    from workshop_app.core.diag.ecu_spec import load_vehicle_spec
    from workshop_app.core.stop_signals import graceful_stop, received, signal_name

    profile = CloudProfile.load(args.profile)
    agent = CloudAgent(
        profile,
        _spec(args),
        buffer_frames=args.buffer_frames,
        health_interval=args.health_interval,
        allow_remote_flash=args.allow_remote_flash,
        trust_dir=args.trust_dir,
        history=args.history,
        dbc_path=args.dbc,
        vehicle_spec=load_vehicle_spec(args.spec) if args.spec else None,
        on_event=_say,
    )
    agent.start()
    flash = "remote flash allowed" if args.allow_remote_flash else "remote flash off"
    print(
        f"agent for {agent.vin} on {agent.source.describe()}; broker {profile.host}:{profile.port}; {flash}",
        flush=True,
    )
    deadline = None if args.duration is None else time.monotonic() + args.duration
    try:
        with graceful_stop() as stop:
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                stop.wait(0.2)
    except KeyboardInterrupt:  # a second signal while stopping: still close cleanly below
        pass
    finally:
        agent.stop()
    c = agent.counters()
    why = f" ({signal_name(received[-1])})" if received else ""
    print(
        f"stopped{why}: frames sent {c.sent}, buffered {c.buffered}, dropped {c.dropped}; "
        f"{agent.pump.batches} batches, {agent.pump.bytes_sent} bytes; "
        f"{agent.requests} requests; {agent.health_published} health summaries; "
        f"{agent.connects} connection(s)",
        flush=True,
    )
    return 0
