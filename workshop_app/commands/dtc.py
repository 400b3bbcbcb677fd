"""`workshop dtc scan|clear|history|report|trace`: fault codes from the command line."""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from typing import TypeVar

from workshop_app.commands.common import source_spec
from workshop_app.commands.dtc_history import run_history, run_report
from workshop_app.commands.dtc_text import comparison_lines, scan_lines
from workshop_app.commands.history import history_path
from workshop_app.core.diag.client import DiagError
from workshop_app.core.diag.ecu_spec import VehicleSpec, demo_vehicle_spec, load_vehicle_spec
from workshop_app.core.diag.model import ScanLabel, ScanResult, compare_scans
from workshop_app.core.diag.scan import ClearOutcome, ScanOptions
from workshop_app.core.diag.session import DiagSession
from workshop_app.core.errors import SourceError, WorkshopError
from workshop_app.core.history import HistoryStore
from workshop_app.core.sim.faults import available_faults
from workshop_app.core.sources.base import FrameSource, SourceState
from workshop_app.core.sources.factory import make_source
from workshop_app.core.sources.reconnect import NO_RECONNECT

T = TypeVar("T")


def open_vehicle(args: argparse.Namespace) -> tuple[FrameSource, VehicleSpec]:
    """Connect (default: the simulated vehicle), inject --fault, wait --settle."""
    spec = load_vehicle_spec(args.spec) if args.spec else demo_vehicle_spec()
    # No reconnecting under a scan: answers missing during a gap would read as missing ECUs.
    # The connect itself runs under the policy's deadlines (a silent server fails in seconds).
    source = make_source(replace(source_spec(args), reconnect=NO_RECONNECT))
    unknown = [f for f in args.fault if f not in available_faults()]
    if unknown:
        raise SourceError(f"unknown fault {unknown[0]!r}; see `workshop simulate --list-faults`")
    if (args.fault or getattr(args, "repair", False)) and not source_spec(args).is_simulator:
        raise SourceError("--fault and --repair work on the simulated vehicle only (no connection option)")
    source.start()
    vehicle = getattr(source, "vehicle", None)
    if args.fault and vehicle is None:
        source.stop()
        raise SourceError("the simulated vehicle did not start")
    for name in args.fault:
        vehicle.inject_fault(name)  # type: ignore[union-attr]
    ecus = getattr(source, "ecus", None)
    if args.fault and args.settle is None and ecus is not None:
        # until the ECUs confirm the faults: a misfire is seen only once the engine runs
        ecus.wait_confirmed(args.fault, timeout=20.0)
    else:
        settle = args.settle if args.settle is not None else (2.5 if args.fault else 0.2)
        time.sleep(max(0.0, settle))
    return source, spec


def _while_linked(source: FrameSource, diag: DiagSession, job: Future[T]) -> T:
    """The job's result, or a plain SourceError as soon as the link is lost under it."""
    while True:
        try:
            result = job.result(timeout=0.1)
        except FutureTimeout:
            if source.state is SourceState.FAILED:
                diag.cancel.set()  # the scan stops between requests; no half result is stored
                raise SourceError(_lost(source)) from None
            continue
        if source.state is SourceState.FAILED:
            raise SourceError(_lost(source))
        return result


def _lost(source: FrameSource) -> str:
    why = (source.error or "").removeprefix("connection lost: ")
    return f"{source.describe()}: connection lost during the scan ({why})"


def _history(args: argparse.Namespace) -> HistoryStore | None:
    if getattr(args, "no_history", False):
        return None
    return HistoryStore(history_path(args))


def _store(args: argparse.Namespace, result: ScanResult) -> None:
    store = _history(args)
    if store is None:
        return
    with store:
        if result.vin:
            result.add_missing(store.expected_ecus(result.vin))
        store.add_scan(result)


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
    try:
        with DiagSession(source, spec, options=options) as diag:
            label = ScanLabel(args.label) if args.label else ScanLabel.NONE
            progress = None if args.json else _progress
            result = _while_linked(source, diag, diag.scan(label=label, progress=progress))
    finally:
        source.stop()
    if not args.json:
        print(file=sys.stderr)
    _store(args, result)
    _print_scan(args, result)
    return 0 if any(e.responded for e in result.ecus) else 3


def _progress(text: str, fraction: float) -> None:
    print(f"\r{fraction * 100:3.0f}% {text:<40}", end="", file=sys.stderr, flush=True)


def run_clear(args: argparse.Namespace) -> int:
    source, spec = open_vehicle(args)
    options = ScanOptions(
        sweep=not args.no_sweep, timeout=args.timeout, fd=bool(args.fd or args.data_bitrate)
    )
    outcomes: list[ClearOutcome] = []
    try:
        with DiagSession(source, spec, options=options) as diag:
            for name in args.ecu:
                spec.ecu(name)  # unknown names fail before anything is cleared
            before = _while_linked(source, diag, diag.scan(label=ScanLabel.PRE_REPAIR))
            _store(args, before)
            if not args.json:
                print("\n".join(scan_lines(before)))
            targets = args.ecu or [e.name for e in before.ecus if e.responded and e.expected]
            vehicle = getattr(source, "vehicle", None)
            if args.repair and vehicle is not None:
                vehicle.clear_faults()  # the repair itself, on the simulated car
            if not args.yes:
                answer = input(f"\nClear the fault codes of {', '.join(targets)}? [y/N] ")
                if answer.strip().lower() not in ("y", "yes"):
                    print("nothing cleared")
                    return 1
            outcomes = _while_linked(source, diag, diag.clear(targets))
            time.sleep(0.3)  # let the modules finish their own housekeeping before reading again
            after = _while_linked(source, diag, diag.scan(label=ScanLabel.POST_REPAIR))
    finally:
        source.stop()
    store = _history(args)
    if store is not None:
        with store:
            store.add_clears(outcomes, vin=before.vin)
            store.add_scan(after)
    cmp = compare_scans(before, after)
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
    return 0 if all(o.done for o in outcomes) else 4


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
        if action == "trace":
            from workshop_app.commands.dtc_trace import run as run_trace

            return run_trace(args)
    except DiagError as exc:
        raise WorkshopError(str(exc)) from None
    raise WorkshopError(f"unknown action {action!r}")
