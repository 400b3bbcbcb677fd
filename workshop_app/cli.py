"""The ``workshop`` command line. Every sub-command is a thin shell over the core."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from workshop_app import __version__
from workshop_app import cli_values as values
from workshop_app.commands.dtc_watch_options import add_watch_parser
from workshop_app.commands.log_input import add_strict_option
from workshop_app.commands.options import add_bus_options as _add_bus_options
from workshop_app.core.errors import WorkshopError
from workshop_app.core.sources.factory import SOCKETCAND_PORT


def _add_source_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("connection (default: the built-in simulated vehicle)")
    _add_bus_options(g, "python-can interface: socketcand, pcan, kvaser, vector, workshop-cloud, ...")
    g.add_argument(
        "--cloud-profile",
        type=Path,
        metavar="FILE",
        help="with -i workshop-cloud --channel VIN: the workshop's cloud profile "
        "(default $WORKSHOP_HOME/cloud/workshop.json)",
    )
    g.add_argument(
        "--no-reconnect",
        action="store_true",
        help="end on a lost connection instead of reconnecting every second",
    )
    g.add_argument("--replay", type=Path, metavar="LOG", help="replay a log file instead of a live bus")
    g.add_argument(
        "--speed", type=values.speed, default=1.0, help="replay speed factor (0 = as fast as possible)"
    )
    _add_dbc_option(p)


def _add_capture_process_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--capture-process",
        action="store_true",
        help="receive, count and record in a separate capture process (core/capture/process.py)",
    )


def _add_dbc_option(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument(
        "--dbc",
        action="append",
        default=[],
        required=required,
        metavar="FILE[@CHANNEL]",
        help="signal database (DBC, KCD, SYM, ARXML); repeat for several; @CHANNEL assigns it to one channel"
        + ("" if required else " (default: the demo vehicle's database)"),
    )


def _add_dtc_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    dtc = sub.add_parser("dtc", help="fault codes: scan the car, clear, history, customer report, trace")
    dsub = dtc.add_subparsers(dest="dtc_command", metavar="ACTION", required=True)

    def vehicle_options(p: argparse.ArgumentParser) -> None:
        _add_source_options(p)
        _add_capture_process_option(p)
        p.add_argument(
            "--spec", type=Path, metavar="FILE", help="ECU description file (default: the demo vehicle's)"
        )
        p.add_argument(
            "--fault",
            action="append",
            default=[],
            metavar="NAME",
            help="simulated vehicle only: inject this fault first (see `workshop simulate --list-faults`)",
        )
        p.add_argument(
            "--settle",
            type=values.seconds_or_zero,
            metavar="S",
            help="simulated vehicle: seconds to let the ECUs detect injected faults "
            "(default with --fault: until they confirm them, at most 20 s)",
        )
        p.add_argument("--no-sweep", action="store_true", help="skip the physical address sweep (faster)")
        p.add_argument(
            "--timeout",
            type=values.seconds,
            default=1.0,
            help="seconds to wait for each first answer (P2)",
        )
        p.add_argument("--json", action="store_true", help="machine-readable output")
        g = p.add_mutually_exclusive_group()
        g.add_argument(
            "--history", type=Path, metavar="PATH", help="history database (default: as for record)"
        )
        g.add_argument("--no-history", action="store_true", help="do not store the scans in the history")

    p = dsub.add_parser("scan", help="find the ECUs and read their identity and fault codes")
    vehicle_options(p)
    p.add_argument(
        "--label", choices=["pre-repair", "post-repair"], help="label the scan for the repair record"
    )
    p.add_argument("--live", action="store_true", help="also read each ECU's live values")

    p = dsub.add_parser("clear", help="scan, clear fault codes (after confirmation), scan again and compare")
    vehicle_options(p)
    p.add_argument(
        "--ecu", action="append", default=[], metavar="NAME", help="clear only this ECU (repeatable)"
    )
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument(
        "--repair",
        action="store_true",
        help="simulated vehicle: remove the injected faults before clearing (as a repair would)",
    )

    add_watch_parser(dsub, _add_source_options)

    p = dsub.add_parser("history", help="scans stored for a vehicle, a scan in full, or a vehicle's timeline")
    p.add_argument("--vin", help="only this vehicle")
    p.add_argument(
        "--scan",
        type=values.positive_int,
        metavar="ID",
        help="show one scan in full (and what changed since the one before)",
    )
    p.add_argument(
        "--timeline", action="store_true", help="with --vin: scans, clears, fault events and recordings"
    )
    p.add_argument(
        "--limit", type=values.non_negative_int, default=20, metavar="N", help="at most N scans (0: all)"
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--history", type=Path, metavar="PATH", help="history database (default: as for record)")

    p = dsub.add_parser("report", help="customer report of a scan as PDF or HTML")
    p.add_argument("output", type=Path, help="report.pdf or report.html")
    p.add_argument("--scan", type=values.positive_int, metavar="ID", help="the scan (default: the latest)")
    p.add_argument(
        "--after",
        type=values.positive_int,
        metavar="ID",
        help="a later scan to show as 'after' (default: the next one after a clear)",
    )
    p.add_argument("--workshop", default="", help="workshop name for the header")
    p.add_argument("--history", type=Path, metavar="PATH", help="history database (default: as for record)")

    p = dsub.add_parser("import-cdd", help="write an ECU description file from a CANdelaStudio CDD's DIDs")
    p.add_argument("cdd", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True, help="ECU description file to write (.json)")
    p.add_argument("--ecu", required=True, help="name of the ECU, e.g. ECM")
    p.add_argument("--request", required=True, help="request CAN id, e.g. 0x7E0")
    p.add_argument("--response", required=True, help="response CAN id, e.g. 0x7E8")

    p = dsub.add_parser(
        "trace", help="diagnostic trace of a recorded log: ISO-TP reassembled, UDS/OBD decoded"
    )
    p.add_argument("log", type=Path)
    add_strict_option(p)
    p.add_argument(
        "--pair",
        action="append",
        default=[],
        metavar="REQ:RESP",
        help="request/response ids, e.g. 0x79B:0x7BB",
    )
    p.add_argument("--dbc", action="append", default=[], metavar="FILE", help="decode reassembled payloads")
    p.add_argument("--spec", type=Path, metavar="FILE", help="ECU description file for DID names")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--limit",
        type=values.non_negative_int,
        default=0,
        metavar="N",
        help="print at most N transactions (0: all)",
    )


def _add_package_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    pkg = sub.add_parser("package", help="publisher side: build and sign update packages (docs/updates.md)")
    psub = pkg.add_subparsers(dest="package_action", metavar="ACTION", required=True)

    def folder(p: argparse.ArgumentParser) -> None:
        p.add_argument("dir", type=Path, help="the package folder")
        p.add_argument("--keys", type=Path, help="private key folder (default DIR/keys)")

    p = psub.add_parser("init", help="make the image and director repositories with fresh Ed25519 keys")
    folder(p)
    p.add_argument(
        "--threshold", type=values.positive_int, default=1, help="keys per role, all required (default 1)"
    )
    p.add_argument(
        "--expires",
        type=values.positive_float,
        default=365,
        help="days until the metadata expires (default 365)",
    )
    p = psub.add_parser("add", help="add an ECU image (Intel HEX, S-record or raw binary) as a target")
    folder(p)
    p.add_argument("image", type=Path)
    p.add_argument("--ecu", required=True, help="ECU name, as in the vehicle description (e.g. ECM)")
    p.add_argument("--version", required=True, help="software version the ECU reports after the flash")
    p.add_argument(
        "--release-counter", type=values.non_negative_int, required=True, help="monotonic release number"
    )
    p.add_argument("--hardware", required=True, help="allowed hardware numbers, comma separated")
    p.add_argument("--min-bootloader", help="lowest bootloader version that can take this image")
    p.add_argument("--depends", action="append", default=[], metavar="ECU>=V", help="repeatable")
    p.add_argument("--address", help="load address of a raw binary (e.g. 0x8000)")
    p.add_argument("--name", help="target name (default ECU-VERSION.ext)")
    p = psub.add_parser("assign", help="director: which targets a VIN gets")
    folder(p)
    p.add_argument("--vin", required=True)
    p.add_argument("targets", nargs="+", help="target names from the image repository")
    p.add_argument(
        "--allow-downgrade", action="append", default=[], metavar="ECU", help="signed downgrade grant"
    )
    p = psub.add_parser("rotate", help="replace a role's keys (new root version; old keys retired)")
    folder(p)
    p.add_argument("--repository", choices=["image", "director"], required=True)
    p.add_argument("--role", choices=["root", "targets", "snapshot", "timestamp"], required=True)
    for action in ("sign", "publish"):
        p = psub.add_parser(action, help="new versions, expiry and signatures of snapshot and timestamp")
        folder(p)
        p.add_argument(
            "--expires", type=values.positive_float, help="days until targets, snapshot and timestamp expire"
        )
        p.add_argument(
            "--archive", type=Path, help="also write the shippable package (.tar, .tar.gz; no keys)"
        )
    p = psub.add_parser(
        "inspect", help="targets and custom fields of a package folder or archive (unverified)"
    )
    p.add_argument("package", help="package folder, archive, or http(s):// URL")
    p.add_argument("--json", action="store_true")


def _add_update_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    upd = sub.add_parser("update", help="software updates: trust a manufacturer, verify a package for a car")
    usub = upd.add_subparsers(dest="update_action", metavar="ACTION", required=True)
    p = usub.add_parser("trust", help="trust these root files (given by the manufacturer) from now on")
    p.add_argument("--image-root", type=Path, required=True)
    p.add_argument("--director-root", type=Path, required=True)
    p = usub.add_parser("check", help="verify a package for a car and show what would change (sends nothing)")
    p.add_argument("package", help="package folder, .tar/.tar.gz/.zip archive, or http(s):// URL")
    p.add_argument("--vin")
    p.add_argument("--facts", type=Path, help="JSON file with the car's VIN and per-ECU facts")
    p.add_argument(
        "--ecu", action="append", default=[], metavar="NAME:HW:BOOT:VERSION:COUNTER", help="one ECU's facts"
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--history", type=Path, help="history whose flashes set the lowest release counter")
    from workshop_app.commands import flash  # its options only: the flash stack loads when it runs

    flash.add_arguments(usub, _add_source_options)
    from workshop_app.commands import install  # flash a verified package (core/update/campaign.py)

    install.add_arguments(usub, _add_source_options)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workshop",
        description="Workshop tool for cars: CAN capture, signal decoding, logs. "
        "Without a connection option every command uses the built-in simulated vehicle.",
    )
    parser.add_argument("--version", action="version", version=f"workshop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("gui", help="open the workshop window (default: on the simulated vehicle)")
    _add_source_options(p)
    p.add_argument(
        "--capture-process",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="receive, record and reach a live bus (the simulated car included) through a separate "
        "capture process, so a busy bus cannot stall the window (default: on; a log plays in the "
        "window's process either way)",
    )
    p.add_argument("--quit-after", type=values.seconds, help=argparse.SUPPRESS)
    p.add_argument("--screenshot", type=Path, help=argparse.SUPPRESS)

    p = sub.add_parser("simulate", help="run the demo vehicle on a bus, optionally shared over socketcand")
    p.add_argument(
        "-i", "--interface", default="virtual", help="python-can interface to drive (default virtual)"
    )
    p.add_argument("-c", "--channel", default="workshop-sim", help="channel to drive (default workshop-sim)")
    p.add_argument(
        "-b",
        "--bitrate",
        type=values.bitrate_or_zero,
        default=500_000,
        help="pace frames at this bitrate (0 = unpaced)",
    )
    p.add_argument("--serve", choices=["socketcand"], help="share the bus with other programs")
    p.add_argument("--host", default="127.0.0.1", help="socketcand listen address (default 127.0.0.1)")
    p.add_argument(
        "--port",
        type=values.port,
        default=SOCKETCAND_PORT,
        help=f"socketcand port (default {SOCKETCAND_PORT})",
    )
    p.add_argument(
        "--max-clients",
        type=values.positive_int,
        help="socketcand clients served at once; further connections are refused (default 64)",
    )
    p.add_argument(
        "--time-scale",
        type=values.time_scale,
        default=1.0,
        help="speed up the car's physics (warm-up etc.), at most 100",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--fault", action="append", default=[], metavar="NAME", help="inject a fault (see --list-faults)"
    )
    p.add_argument("--list-faults", action="store_true", help="list the faults that can be injected")
    p.add_argument(
        "--no-ecus", action="store_true", help="do not run the diagnostic ECUs (UDS/OBD-II) on the bus"
    )
    p.add_argument(
        "--parked",
        action="store_true",
        help="keep the car parked, key on and engine off (as for flashing an ECU)",
    )
    p.add_argument(
        "--duration", type=values.seconds, help="stop after this many seconds (default: until Ctrl-C)"
    )

    p = sub.add_parser("interfaces", help="list the CAN adapters python-can detects")
    p.add_argument("--json", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true", help="show why drivers are missing")

    p = sub.add_parser("monitor", help="show live decoded values in the terminal")
    _add_source_options(p)
    _add_capture_process_option(p)
    p.add_argument(
        "--duration", type=values.seconds, help="stop after this many seconds (default: until Ctrl-C)"
    )
    p.add_argument("--interval", type=values.seconds, default=0.5, help="refresh period in seconds")
    p.add_argument("--filter", help="only messages whose name or hex id contains this text")

    p = sub.add_parser("record", help="record frames to a log file (format from the extension)")
    p.add_argument(
        "output", type=Path, help="e.g. drive.blf, drive.asc, drive.log, drive.trc, drive.mf4, drive.csv"
    )
    _add_source_options(p)
    _add_capture_process_option(p)
    p.add_argument(
        "--duration", type=values.seconds, help="stop after this many seconds (default: until Ctrl-C)"
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--history",
        type=Path,
        metavar="PATH",
        help="history database to index the recording in (default: "
        "$WORKSHOP_HOME/history.db or ~/.local/share/workshop/history.db)",
    )
    g.add_argument("--no-history", action="store_true", help="do not index the recording in the history")

    p = sub.add_parser("history", help="list the recordings or vehicles in the workshop history")
    p.add_argument(
        "what",
        nargs="?",
        choices=["recordings", "vehicles"],
        default="recordings",
        help="default: recordings",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--history", type=Path, metavar="PATH", help="history database (default: as for record)")
    p.add_argument(
        "--limit",
        type=values.non_negative_int,
        default=20,
        metavar="N",
        help="show at most N rows, most recent first (0: all)",
    )
    p.add_argument("--vin", help="only the recordings of the vehicle with this VIN")

    p = sub.add_parser("repair", help="finish MF4 recordings a crash or a kill left unfinished")
    p.add_argument("files", type=Path, nargs="+", metavar="FILE.mf4")
    p.add_argument(
        "--no-backup",
        action="store_true",
        help="do not keep NAME.before-repair.mf4 when a damaged chain must be cut",
    )

    p = sub.add_parser("decode", help="decode the signals of a log file to CSV")
    p.add_argument("log", type=Path)
    add_strict_option(p)
    _add_dbc_option(p, required=True)
    p.add_argument("-o", "--output", type=Path, help="CSV file to write (default: standard output)")
    p.add_argument(
        "--summary",
        action="store_true",
        help="decode the whole log and print per signal: values, min, max, mean (no CSV)",
    )
    p.add_argument("--json", action="store_true", help="with --summary: machine-readable output")

    p = sub.add_parser("replay", help="send a log's frames onto a CAN bus with their original timing")
    p.add_argument("log", type=Path)
    add_strict_option(p)
    g = p.add_argument_group("bus to send to (required)")
    _add_bus_options(g, "python-can interface: socketcand, pcan, kvaser, virtual, ...")
    p.add_argument(
        "--speed", type=values.speed, default=1.0, help="speed factor (0 = as fast as the bus takes)"
    )
    p.add_argument(
        "--start",
        type=values.seconds_or_zero,
        metavar="S",
        help="start S seconds after the log's first frame",
    )
    p.add_argument(
        "--end", type=values.seconds_or_zero, metavar="S", help="end S seconds after the log's first frame"
    )
    p.add_argument("--loop", action="store_true", help="repeat until Ctrl-C")
    p.add_argument(
        "--channel-map",
        nargs="+",
        default=[],
        metavar="LOG=BUS",
        help="send log channel LOG to bus channel BUS (e.g. 0=can1); unmapped channels are not sent",
    )

    p = sub.add_parser("export", help="export part of a log: decoded signals (CSV) or raw frames")
    p.add_argument("log", type=Path)
    add_strict_option(p)
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="signals: OUT.csv (with --dbc); frames: .blf, .asc, .log, .trc, .mf4, ... (format by suffix)",
    )
    p.add_argument(
        "--dbc", action="append", default=[], metavar="FILE[@CHANNEL]", help="export decoded signals"
    )
    p.add_argument(
        "--start",
        type=values.seconds_or_zero,
        metavar="S",
        help="from S seconds after the log's first frame",
    )
    p.add_argument(
        "--end",
        type=values.seconds_or_zero,
        metavar="S",
        help="until S seconds after the log's first frame",
    )
    p.add_argument(
        "--signal", action="append", default=[], metavar="MSG.SIG", help="only this signal (repeatable)"
    )

    from workshop_app.commands import send  # its options only: the transmit jobs load when it runs

    send.add_arguments(sub, _add_source_options)
    _add_dtc_parser(sub)
    _add_package_parser(sub)
    _add_update_parser(sub)
    from workshop_app.commands import cloud  # its options only: paho and cryptography load when it runs

    cloud.add_parser(sub)

    p = sub.add_parser("audit", help="the flash audit trail: list attempts, or verify its hash chain")
    p.add_argument("action", nargs="?", choices=["list", "verify"], default="list")
    p.add_argument("--vin", help="only this car's attempts")
    p.add_argument("--json", action="store_true")
    p.add_argument("--history", type=Path, help="history database (default: the workshop's)")

    p = sub.add_parser("info", help="describe a signal database and every loading warning")
    p.add_argument("database", type=Path)
    p.add_argument("--json", action="store_true")
    p.add_argument("--signals", action="store_true", help="list every signal of every message")
    return parser


def _command(name: str) -> Callable[[argparse.Namespace], int]:
    # Sub-commands import their modules lazily: `workshop info` must not pay for Qt or numpy.
    from importlib import import_module

    module = import_module(f"workshop_app.commands.{name}")
    return module.run


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["gui", *(argv or [])])
    # SIGINT, SIGTERM and SIGHUP end a capture like Ctrl-C does: files closed, summaries printed.
    from workshop_app.core.stop_signals import install_cli

    handlers = install_cli()
    try:
        return _command(args.command)(args)
    except WorkshopError as exc:
        print(f"workshop {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    finally:
        handlers.restore()
