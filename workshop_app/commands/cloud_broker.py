"""`workshop cloud broker --dir DIR`: everything a trial of the cloud link needs, in one folder.

Writes the CA, the broker's certificate, mosquitto.conf and its access list, an agent
profile per VIN and a workshop profile per workshop id (with an owner grant for each VIN
granted to it), prints what it wrote and what to run next; ``--run`` then starts mosquitto
in the foreground until Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workshop_app import cli_values as values

DEMO_VIN = "WSADEM5T2T0000421"
DEFAULT_PORT = 8883  # the registered port of MQTT over TLS


def add_arguments(csub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = csub.add_parser(
        "broker",
        help="write a trial broker (CA, certificates, mosquitto.conf, ACL) and profiles for cars and workshops",
    )
    p.add_argument("--dir", type=Path, required=True, metavar="DIR", help="folder to write the trial into")
    p.add_argument(
        "--port",
        type=values.port,
        default=None,
        help=f"TLS port on 127.0.0.1 (default {DEFAULT_PORT})",
    )
    p.add_argument(
        "--vin",
        action="append",
        metavar="VIN",
        help=f"a vehicle (repeatable; default the demo car {DEMO_VIN})",
    )
    p.add_argument(
        "--workshop", action="append", metavar="ID", help="a workshop id (repeatable; default garage-1)"
    )
    p.add_argument(
        "--grant",
        action="append",
        default=[],
        metavar="ID:VIN",
        help="let workshop ID reach VIN (repeatable; default: every workshop every VIN)",
    )
    p.add_argument(
        "--grant-days",
        type=values.positive_float,
        default=30.0,
        help="how long the owner's grants last, in days (default 30, at most 366)",
    )
    p.add_argument(
        "--run",
        action="store_true",
        help="then run mosquitto in the foreground until Ctrl-C (a folder that already holds a trial is run as written)",
    )


def _grants(args: argparse.Namespace, vins: list[str], workshops: list[str]) -> dict[str, list[str]]:
    from workshop_app.core.cloud.errors import CloudError

    if not args.grant:
        return {w: list(vins) for w in workshops}
    grants: dict[str, list[str]] = {w: [] for w in workshops}
    for text in args.grant:
        workshop, sep, vin = text.partition(":")
        if not sep or not workshop or not vin:
            raise CloudError(f"--grant {text!r}: expected ID:VIN, e.g. garage-1:{DEMO_VIN}")
        grants.setdefault(workshop, []).append(vin)
    return grants


def run(args: argparse.Namespace) -> int:
    from workshop_app.core.cloud.broker import CONF, read_trial
    from workshop_app.core.cloud.errors import CloudError

    folder: Path = args.dir
    rewriting = bool(args.vin or args.workshop or args.grant or args.port is not None)
    if (folder / "broker" / CONF).exists() and not rewriting:
        # Writing again would issue new certificates and keys and invalidate every folder
        # already handed to a car or a workshop: an existing trial is only ever run.
        if not args.run:
            raise CloudError(
                f"{folder} already holds a trial: run it with --run, re-issue it by naming --vin/--workshop/--grant, "
                "or choose an empty folder"
            )
        port, grants = read_trial(folder / "broker")
        print(f"Running the trial in {folder} as written (port {port}).")
        return _serve(folder, port, grants)
    return _write(args, folder)


def _write(args: argparse.Namespace, folder: Path) -> int:
    from workshop_app.core.cloud.broker import CONF, write_trial
    from workshop_app.core.cloud.profile import default_workshop_profile

    port = args.port if args.port is not None else DEFAULT_PORT
    vins = list(dict.fromkeys(args.vin or [DEMO_VIN]))
    workshops = list(dict.fromkeys(args.workshop or ["garage-1"]))
    grants = _grants(args, vins, workshops)
    written = write_trial(folder, vins, workshops, grants, port=port, grant_ttl_s=args.grant_days * 86400)
    print(f"Trial cloud link written to {folder}:")
    for path in written:
        print(f"  {path.relative_to(folder) if path.is_relative_to(folder) else path}")
    for workshop in workshops:
        reach = ", ".join(grants.get(workshop, [])) or "no vehicle"
        print(f"  {workshop} may reach: {reach}")
    broker_dir = folder / "broker"
    first_vin, first_workshop = vins[0], workshops[0]
    print("\nNext:")
    if not args.run:
        print(f"  workshop cloud broker --dir {folder} --run      # or: mosquitto -c {broker_dir / CONF}")
    workshop_profile = folder / "workshops" / first_workshop / "workshop.json"
    print("  workshop simulate --serve socketcand            # the car's bus, on 127.0.0.1:29536")
    print(
        f"  workshop cloud agent --profile {folder / 'vehicles' / first_vin / 'agent.json'} "
        "-i socketcand   # the car's telematics unit beside it"
    )
    print(f"  workshop cloud vehicles --cloud-profile {workshop_profile}")
    print(f"  (or copy the workshop's folder to {default_workshop_profile().parent} and drop the option)")
    print(
        f"Hand each party only its own folder (vehicles/<VIN>, workshops/<id>); keep {folder / 'owner'} private."
    )
    if not args.run:
        return 0
    return _serve(folder, port, grants)


def _serve(folder: Path, port: int, grants: dict[str, list[str]]) -> int:
    from workshop_app.core.cloud.broker import ACL, LOG, MosquittoBroker
    from workshop_app.core.stop_signals import graceful_stop

    broker_dir = folder / "broker"
    broker = MosquittoBroker(broker_dir, port, grants)
    broker.start()
    print(
        f"\nmosquitto listening on 127.0.0.1:{broker.port} (TLS, certificates required, ACL {broker_dir / ACL}); "
        f"log {broker_dir / LOG}. Ctrl-C stops it."
    )
    sys.stdout.flush()
    try:
        with graceful_stop() as stop:
            while not stop.wait(0.5):
                if not broker.running:
                    from workshop_app.core.cloud.broker import log_tail
                    from workshop_app.core.cloud.errors import CloudError

                    raise CloudError(f"mosquitto stopped on its own: {log_tail(broker_dir)}")
    finally:
        broker.stop()
    print("mosquitto stopped")
    return 0
