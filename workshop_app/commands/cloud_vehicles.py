"""`workshop cloud vehicles`: the vehicles this workshop may see, most attention first.

Listens to the broker for ``--wait`` seconds, prints one row per vehicle and keeps every health
summary heard in the history (docs/cloud.md, "Fleet overview"). Options only at import time:
paho loads when the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from workshop_app import cli_values as values

if TYPE_CHECKING:
    from workshop_app.core.cloud.fleet import VehicleStatus

DEFAULT_WAIT = 3.0
_CONNECT_GRACE = 5.0  # seconds to reach the broker before the listening time starts


def add_arguments(csub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = csub.add_parser(
        "vehicles",
        help="list the vehicles this workshop may see: online/offline, last seen, faults, battery",
    )
    p.add_argument("--json", action="store_true", help="print JSON (one object per vehicle) for scripts")
    p.add_argument(
        "--wait",
        type=values.seconds,
        default=DEFAULT_WAIT,
        metavar="S",
        help=f"seconds to listen for presence and health (default {DEFAULT_WAIT:g})",
    )
    p.add_argument(
        "--cloud-profile",
        type=Path,
        metavar="FILE",
        help="the workshop's cloud profile (default $WORKSHOP_HOME/cloud/workshop.json)",
    )
    p.add_argument(
        "--history",
        type=Path,
        metavar="FILE",
        help="history database the summaries go to (default: the usual)",
    )


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def vehicle_lines(rows: list[VehicleStatus]) -> list[str]:
    lines = [
        f"{'VIN':<17}  {'state':<32}  {'last seen':<19}  {'DTCs':>4}  {'battery':>7}  "
        f"{'odometer':>10}  {'software':<28}  reasons"
    ]
    for v in rows:
        dtcs = "?" if v.dtc_count is None else str(v.dtc_count)
        battery = "?" if v.battery_v is None else f"{v.battery_v:.1f} V"
        odometer = "?" if v.odometer_km is None else f"{v.odometer_km:,.0f} km"
        stored = " (stored)" if v.health_from_history else ""
        lines.append(
            f"{v.vin:<17}  {_clip(v.state_text, 32):<32}  {_when(v.last_seen):<19}  {dtcs:>4}  {battery:>7}  "
            f"{odometer:>10}  {_clip(v.software_text() or '-', 28):<28}  "
            f"{'; '.join(v.reasons) or '-'}{stored}"
        )
    return lines


def run(args: argparse.Namespace) -> int:
    from workshop_app.core.cloud.errors import CloudError
    from workshop_app.core.cloud.fleet import FleetWatcher
    from workshop_app.core.cloud.profile import CloudProfile, connection_problem, default_workshop_profile
    from workshop_app.core.history import HistoryError, default_history_path
    from workshop_app.core.history.fleet_store import FleetStore
    from workshop_app.core.stop_signals import graceful_stop

    profile_path = args.cloud_profile or default_workshop_profile()
    try:
        profile = CloudProfile.load(profile_path)
        store = FleetStore(args.history or default_history_path())
    except (CloudError, HistoryError) as exc:
        print(f"workshop cloud vehicles: {exc}", file=sys.stderr)
        return 1
    heard: set[str] = set()

    def on_change(vin: str) -> None:  # paho's thread: one line per newly heard car, as it comes
        if vin not in heard:
            heard.add(vin)
            print(f"heard {vin}", file=sys.stderr, flush=True)

    watcher = FleetWatcher(profile, store, on_change=on_change)
    try:
        watcher.start()
        if not watcher.wait_connected(_CONNECT_GRACE):
            # paho only says "not connected"; a direct TLS attempt tells which side refused.
            why = connection_problem(profile) or watcher.link_error or watcher.last_problem or "no answer"
            print(f"workshop cloud vehicles: {why}", file=sys.stderr)
            return 1
        # Retained presence arrives at once; health comes at each car's own interval. Ctrl-C
        # ends the listening early and still prints what was heard.
        print(
            f"Listening to {profile.host}:{profile.port} as {profile.client_id} for {args.wait:g} s "
            "(Ctrl-C prints what was heard so far)…",
            file=sys.stderr,
            flush=True,
        )
        with graceful_stop() as stop:
            stop.wait(args.wait)
        rows = watcher.vehicles()
    except CloudError as exc:
        print(f"workshop cloud vehicles: {exc}", file=sys.stderr)
        return 1
    finally:
        watcher.stop()
        store.close()
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2))
        return 0
    if not rows:
        print(f"No vehicle heard from in {args.wait:g} s (profile {profile_path}).")
        return 0
    print("\n".join(vehicle_lines(rows)))
    if watcher.problems:
        print(f"{watcher.problems} message(s) ignored; last: {watcher.last_problem}", file=sys.stderr)
    return 0
