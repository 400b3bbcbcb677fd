"""`workshop cloud lock|unlock|lights|flash VIN`: signed remote functions (docs/cloud.md).

Prints the car's answer; a refusal is printed with its code and the command exits 1. Every
attempt is audited in the workshop's history. Options only at import time: paho and
cryptography load when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from workshop_app import cli_values as values

LIGHT_MODES = ("Off", "LowBeam", "HighBeam")  # BODY_COMMAND.LightsRequest's choices
ACTIONS = ("lock", "unlock", "lights", "flash")


def add_arguments(csub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    helps = {
        "lock": "lock the car (a signed command; the owner's grant is needed)",
        "unlock": "unlock the car (a signed command; the owner's grant is needed)",
        "lights": "switch the car's headlights: Off, LowBeam or HighBeam",
        "flash": "install a software package on the car, verified by the car itself (grant scope 'flash')",
    }
    for action in ACTIONS:
        p = csub.add_parser(action, help=helps[action])
        p.add_argument("vin", metavar="VIN", help="the vehicle's VIN")
        if action == "lights":
            p.add_argument("mode", choices=LIGHT_MODES, help="headlight mode")
        if action == "flash":
            p.add_argument("--package-url", required=True, metavar="URL", help="http(s) URL of the package")
            p.add_argument("--ecu", metavar="NAME", help="the ECU the package must bring an image for")
        p.add_argument(
            "--timeout",
            type=values.seconds,
            default=30.0 if action != "flash" else 120.0,
            metavar="S",
            help="seconds to wait for the car's answer (each progress report restarts it)",
        )
        p.add_argument(
            "--cloud-profile",
            type=Path,
            metavar="FILE",
            help="the workshop's cloud profile (default $WORKSHOP_HOME/cloud/workshop.json)",
        )
        p.add_argument(
            "--history", type=Path, metavar="FILE", help="history database the attempt is audited in"
        )


def _progress(result: dict[str, Any]) -> None:
    data = result.get("data") or {}
    if "done" in data and "total" in data and data["total"]:
        percent = 100.0 * float(data["done"]) / float(data["total"])
        print(f"  {result.get('message')}: {percent:5.1f} %", flush=True)
    else:
        print(f"  {result.get('message')}", flush=True)


def run(args: argparse.Namespace) -> int:
    from workshop_app.core.cloud.profile import CloudProfile, default_workshop_profile
    from workshop_app.core.cloud.remote import RemoteControl, is_refusal
    from workshop_app.core.history.location import default_history_path

    action = args.cloud_action
    command_args: dict[str, Any] = {}
    if action == "lights":
        command_args["mode"] = args.mode
    if action == "flash":
        command_args["url"] = args.package_url
        if args.ecu:
            command_args["ecu"] = args.ecu
    profile = CloudProfile.load(args.cloud_profile or default_workshop_profile())
    history = args.history or default_history_path()
    remote = RemoteControl(profile, history=history)
    result = remote.command(args.vin, action, command_args, args.timeout, progress=_progress)
    if result.get("ok"):
        print(f"{args.vin}: {action}: {result.get('message')}")
        return 0
    how = "refused" if is_refusal(result) else "failed"
    print(f"{args.vin}: {action} {how} ({result.get('code')}): {result.get('message')}", file=sys.stderr)
    return 1
