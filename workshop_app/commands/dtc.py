"""`workshop dtc scan|clear|watch|history|report|trace`: fault codes from the command line."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from workshop_app.commands.dtc_history import run_history, run_report
from workshop_app.commands.dtc_text import comparison_lines, scan_lines
from workshop_app.commands.dtc_vehicle import open_history, open_vehicle
from workshop_app.core.diag.client import DiagError
from workshop_app.core.diag.ecu_spec import load_vehicle_spec
from workshop_app.core.diag.jobs import DiagJobs, NotStored
from workshop_app.core.diag.model import ScanLabel, ScanResult
from workshop_app.core.diag.scan import ScanOptions
from workshop_app.core.errors import WorkshopError
from workshop_app.core.history import HistoryStore
from workshop_app.core.jobs import CancelToken, JobCancelled, JobProgress, no_progress


def _history(args: argparse.Namespace) -> contextlib.AbstractContextManager[HistoryStore | None]:
    store = open_history(args)
    return store if store is not None else contextlib.nullcontext()


def _print_scan(args: argparse.Namespace, result: ScanResult) -> None:
    if args.json:
        print(json.dumps(result.to_json(), indent=1))
    else:
        print("\n".join(scan_lines(result)))
        if result.scan_id is not None:
            print(f"\nstored as scan {result.scan_id}")


def run_scan(args: argparse.Namespace) -> int:
    source, spec = open_vehicle(args)
    options = ScanOptions(
        sweep=not args.no_sweep, live=args.live, timeout=args.timeout, fd=bool(args.fd or args.data_bitrate)
    )
    label = ScanLabel(args.label) if args.label else ScanLabel.NONE
    problem = ""
    try:
        with _history(args) as store, DiagJobs(source, spec, store) as jobs:
            try:
                result = jobs.scan_and_store(options, label, no_progress if args.json else _progress)
            except NotStored as exc:
                result, problem = exc.result, str(exc)
    finally:
        source.stop()
    if not args.json:
        print(file=sys.stderr)
    _print_scan(args, result)
    if problem:
        raise WorkshopError(problem)
    return 0 if any(e.responded for e in result.ecus) else 3


def _progress(p: JobProgress) -> None:
    fraction = p.fraction or 0.0
    print(f"\r{fraction * 100:3.0f}% {p.phase:<40}", end="", file=sys.stderr, flush=True)


def run_clear(args: argparse.Namespace) -> int:
    source, spec = open_vehicle(args)
    options = ScanOptions(
        sweep=not args.no_sweep, timeout=args.timeout, fd=bool(args.fd or args.data_bitrate)
    )

    def before_clear(before: ScanResult, targets: list[str]) -> bool:
        if not args.json:
            print("\n".join(scan_lines(before)))
        vehicle = getattr(source, "vehicle", None)
        if args.repair and vehicle is not None:
            vehicle.clear_faults()  # the repair itself, on the simulated car
        if args.yes:
            return True
        answer = input(f"\nClear the fault codes of {', '.join(targets)}? [y/N] ")
        return answer.strip().lower() in ("y", "yes")

    try:
        with _history(args) as store, DiagJobs(source, spec, store) as jobs:
            report = jobs.clear_with_scans(
                args.ecu or None, no_progress, CancelToken(), options=options, before_clear=before_clear
            )
    except JobCancelled:
        print("nothing cleared")
        return 1
    finally:
        source.stop()
    before, outcomes, after = report.before, report.outcomes, report.after
    cmp = report.comparison
    if args.json:
        print(
            json.dumps(
                {
                    "before": before.to_json(),
                    "cleared": [{"ecu": o.ecu, "done": o.done, "detail": o.detail} for o in outcomes],
                    "after": after.to_json(),
                    "gone": [[e, d.sae] for e, d in cmp.gone],
                    "still": [[e, d.sae] for e, d in cmp.still],
                    "new": [[e, d.sae] for e, d in cmp.new],
                },
                indent=1,
            )
        )
    else:
        print()
        for o in outcomes:
            print(f"  {o.ecu:<6} {'cleared' if o.done else 'NOT cleared'}: {o.detail}")
        print("\nAfter clearing:")
        print("\n".join(comparison_lines(cmp)))
        print()
        print("\n".join(scan_lines(after)))
    if report.history_problems:
        raise WorkshopError("not stored in the history: " + "; ".join(report.history_problems))
    return 0 if report.all_cleared else 4


def run_import_cdd(args: argparse.Namespace) -> int:
    from workshop_app.core.diag.cdd_import import cdd_ecu, write_spec

    try:
        request, response = int(args.request, 0), int(args.response, 0)
    except ValueError:
        raise WorkshopError("--request and --response are CAN ids such as 0x7E0") from None
    ecu = cdd_ecu(args.cdd, name=args.ecu, request_id=request, response_id=response)
    out = write_spec([ecu], args.output)
    load_vehicle_spec(out)  # what was written must load back
    print(f"{out}: {args.ecu} with {len(ecu['dids'])} DIDs from {args.cdd}")
    return 0


def run(args: argparse.Namespace) -> int:
    action = args.dtc_command
    try:
        if action == "scan":
            return run_scan(args)
        if action == "clear":
            return run_clear(args)
        if action == "history":
            return run_history(args)
        if action == "report":
            return run_report(args)
        if action == "import-cdd":
            return run_import_cdd(args)
        if action == "watch":
            from workshop_app.commands.dtc_watch import run as run_watch

            return run_watch(args)
        if action == "trace":
            from workshop_app.commands.dtc_trace import run as run_trace

            return run_trace(args)
    except DiagError as exc:
        raise WorkshopError(str(exc)) from None
    raise WorkshopError(f"unknown action {action!r}")
