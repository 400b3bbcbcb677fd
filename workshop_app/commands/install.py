"""`workshop update install PKG`: verify a signed package for the connected car and flash it.

The car's facts (VIN, hardware, bootloader, software, release counter) are read over UDS, the
package is verified for them, the plan is shown (from → to per ECU), and after confirmation
(or ``--yes``) each image is flashed in dependency order with a progress bar on stderr.
A refused package is recorded in the audit trail and nothing is sent that programs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workshop_app import cli_values as values
from workshop_app.core.errors import WorkshopError

if TYPE_CHECKING:  # the parser is built for every command: the update stack loads only to run
    from workshop_app.core.diag.ecu_spec import VehicleSpec
    from workshop_app.core.update.campaign import CampaignOutcome, Plan
    from workshop_app.core.update.journal import JournalEntry

AddOptions = Callable[[argparse.ArgumentParser], None]


def add_arguments(usub: argparse._SubParsersAction, add_source_options: AddOptions) -> None:
    """`update install` (cli.py calls this with its connection options)."""
    p = usub.add_parser(
        "install", help="verify a signed package for the connected car and flash it (journalled, audited)"
    )
    p.set_defaults(command="install")
    p.add_argument("package", help="package folder, .tar/.tar.gz/.zip archive, or http(s):// URL")
    p.add_argument("--yes", action="store_true", help="flash without asking once the plan is verified")
    p.add_argument("--spec", type=Path, help="vehicle description (default: the demo vehicle)")
    p.add_argument("--algorithm", default="demo", help="seed/key algorithm (default: demo)")
    p.add_argument(
        "--max-message",
        type=values.transfer_message,
        metavar="BYTES",
        help="longest TransferData message, within what the ECU offers (default 4095, what every ISO-TP carries; "
        "ECUs with ISO 15765-2:2016 long messages take more: fewer blocks, a faster CAN FD flash)",
    )
    p.add_argument("--history", type=Path, help="history database (default: the workshop's)")
    p.add_argument("--json", action="store_true", help="print the plan and the result as JSON")
    add_source_options(p)


class ProgressBar:
    """One self-rewriting line on stderr: ECU and phase, bytes, %, rate, time left."""

    def __init__(self, quiet: bool) -> None:
        from workshop_app.core.update.campaign import RateMeter

        self.quiet = quiet
        self.meter = RateMeter()
        self._last = 0.0
        self._phase = ""

    def __call__(self, phase: str, done: int, total: int) -> None:
        if self.quiet:
            return
        self.meter.update(done, total)
        now = time.monotonic()
        if phase == self._phase and now - self._last < 0.2 and done < total:
            return
        self._phase, self._last = phase, now
        width = 24
        filled = int(width * done / total) if total else 0
        line = f"\r{phase[:28]:<28} [{'#' * filled}{'.' * (width - filled)}] {self.meter.text(done, total)}"
        print(f"{line:<110}", end="\n" if phase == "done" else "", file=sys.stderr, flush=True)


def _plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "package": plan.package,
        "vin": plan.reading.vin,
        "ok": plan.ok,
        "ecus": [dataclasses.asdict(e) for e in plan.reading.ecus],
        "refusals": [dataclasses.asdict(r) for r in plan.refusals],
        "steps": [dataclasses.asdict(s) for s in plan.steps],
    }


def _outcome_json(outcome: CampaignOutcome) -> dict[str, Any]:
    return {
        "result": outcome.result,
        "error": outcome.error,
        "seconds": round(outcome.seconds, 3),
        "bytes_sent": outcome.bytes_sent,
        "total_bytes": outcome.total_bytes,
        "flashes": [dataclasses.asdict(f) for f in outcome.flashes],
        "audit": [r.as_dict() for r in outcome.audit],
    }


def print_plan(plan: Plan) -> None:
    print(f"{plan.package}: car {plan.reading.vin}")
    for e in plan.reading.ecus:
        if e.error:
            print(f"  {e.name}: not read ({e.error})")
        else:
            valid = "" if e.app_valid else ", application INVALID (in its bootloader)"
            print(
                f"  {e.name}: hardware {e.hardware}, bootloader {e.bootloader}, software "
                f"{e.software_version}, release {e.release_counter}{valid}"
            )
    if plan.ok:
        print("verified; the update would flash:")
        for s in plan.steps:
            grant = " (downgrade granted by the director)" if s.downgrade_granted else ""
            print(
                f"  {s.ecu}: {s.from_version} -> {s.to_version}, release {s.from_counter} -> "
                f"{s.to_counter}, {s.size:,} bytes, SHA-256 {s.target_hash[:16]}…{grant}"
            )
    else:
        print("REFUSED, nothing will be flashed:")
        for r in plan.refusals:
            print(f"  [{r.code}] {r}")


def _confirmed(args: argparse.Namespace) -> bool:
    if args.yes:
        return True
    if not sys.stdin.isatty():
        print("not flashed: confirm with --yes (no terminal to ask on)", file=sys.stderr)
        return False
    try:
        return input("Flash now? The car must stay connected and powered. [y/N] ").strip().lower() == "y"
    except EOFError:
        return False


def run(args: argparse.Namespace) -> int:
    from workshop_app.commands.history import history_path
    from workshop_app.commands.update import note_interrupted
    from workshop_app.core.diag.ecu_spec import demo_vehicle_spec, load_vehicle_spec

    spec = load_vehicle_spec(args.spec) if args.spec else demo_vehicle_spec()
    note_interrupted(history_path(args))
    return _update(args, str(args.package), spec, history_path(args))


def resume_package(args: argparse.Namespace, entry: JournalEntry, spec: VehicleSpec, db: Path) -> int:
    """`update resume` of a flash from a package: verify that package again, continue that ECU.

    Nothing of the journal is trusted but where the package is and which image was being
    written: TUF, director and the car's facts are checked anew, and the plan must still hold
    the very image (same SHA-256) the journal was writing.
    """
    source = entry.package_source or ""
    if "://" not in source and not Path(source).exists():
        raise WorkshopError(
            f"{source}: the update package of the unfinished flash (journal entry {entry.id}, {entry.ecu}, "
            f"{entry.target_name}) is not there any more; put it back at that path, or install a package "
            "again (the ECU waits in its bootloader)"
        )
    args.yes = True  # the user asked to finish this flash: the plan is printed, not asked again
    return _update(args, source, spec, db, resume=entry)


def _update(
    args: argparse.Namespace, package: str, spec: VehicleSpec, db: Path, resume: JournalEntry | None = None
) -> int:
    from workshop_app.commands.common import run_until_stopped, source_spec
    from workshop_app.core.sources.factory import make_source
    from workshop_app.core.sources.reconnect import NO_RECONNECT
    from workshop_app.core.update.campaign import UpdateCampaign
    from workshop_app.core.update.flash import FlashOptions

    # No reconnecting under a flash: a gap is a lost answer the job must see as such.
    source = make_source(replace(source_spec(args), reconnect=NO_RECONNECT))
    source.start()
    try:
        bus, notifier = source.bus, getattr(source, "notifier", None)
        if bus is None or notifier is None:
            raise WorkshopError(f"{source.describe()}: updating needs a live connection")
        campaign = UpdateCampaign(
            bus,
            notifier,
            package,
            spec=spec,
            history=db,
            options=FlashOptions(
                algorithm=args.algorithm, fd=bool(args.fd or args.data_bitrate), **_longest(args)
            ),
        )
        plan = campaign.prepare()
        if not args.json:
            print_plan(plan)
        if resume is not None and plan.ok:
            _still_planned(plan, resume)
        if plan.ok and not _confirmed(args):
            if args.json:
                print(json.dumps({"plan": _plan_json(plan), "outcome": None}, indent=2))
            return 1
        bar = ProgressBar(args.json or not plan.ok)
        from_ecu = resume.ecu if resume is not None and plan.ok else None
        outcome = run_until_stopped("update", lambda cancel: campaign.run(bar, cancel, from_ecu=from_ecu))
    finally:
        source.stop()
    if args.json:
        print(json.dumps({"plan": _plan_json(plan), "outcome": _outcome_json(outcome)}, indent=2))
    else:
        _print_outcome(outcome)
    if outcome.result == "refused":
        return 2
    return 0 if outcome.ok else (130 if outcome.result == "cancelled" else 1)


def _still_planned(plan: Plan, entry: JournalEntry) -> None:
    if entry.vin and plan.reading.vin != entry.vin:  # never "resume" onto another car
        raise WorkshopError(
            f"the connected car is {plan.reading.vin}, but the unfinished flash (journal entry {entry.id}, "
            f"{entry.ecu}) was on {entry.vin}; connect that car to resume, or install the package on this one"
        )
    step = next((s for s in plan.steps if s.ecu == entry.ecu), None)
    if step is None or step.target_hash != entry.target_hash:
        now = f"image {step.target_hash[:12]}…" if step else "no image"
        raise WorkshopError(
            f"{plan.package}: the package now gives {entry.ecu} {now}, not the image {entry.target_hash[:12]}… "
            f"({entry.target_name}) the unfinished flash was writing (journal entry {entry.id}); install "
            "the package again to flash what it holds now"
        )


def _print_outcome(outcome: CampaignOutcome) -> None:
    words = {"success": "flashed", "failed": "FAILED", "refused": "REFUSED", "cancelled": "CANCELLED"}
    for f in outcome.flashes:
        print(
            f"{f.ecu}: {words.get(f.result, f.result)} {f.from_version or '?'} -> {f.to_version} in "
            f"{f.seconds:.1f} s ({f.bytes_sent:,} of {f.total_bytes:,} bytes)"
        )
        for note in f.notes:
            print(f"  note: {note}")
    if outcome.error:
        print(f"  {outcome.error}", file=sys.stderr)
    if outcome.result in ("failed", "cancelled") and outcome.flashes:
        print(
            "  the journal keeps the state: `workshop update resume` (or installing the same package "
            "again) continues it",
            file=sys.stderr,
        )
    for row in outcome.audit:
        print(f"audit #{row.id}: {row.entry.ecu} {row.entry.result} ({row.row_hash[:12]}…)")


def _longest(args: argparse.Namespace) -> dict[str, Any]:
    """``--max-message`` for FlashOptions when given (its own default is 4095 bytes)."""
    return {"max_message": args.max_message} if args.max_message is not None else {}
