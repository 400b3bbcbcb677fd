"""Opening the car for the `workshop dtc` commands: connection, description, simulated faults."""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from workshop_app.commands.common import source_spec
from workshop_app.commands.history import history_path
from workshop_app.core.capture.process_session import make_process_source
from workshop_app.core.diag.ecu_spec import VehicleSpec, demo_vehicle_spec, load_vehicle_spec
from workshop_app.core.errors import SourceError
from workshop_app.core.history import HistoryStore
from workshop_app.core.sim.faults import available_faults
from workshop_app.core.sources.base import FrameSource
from workshop_app.core.sources.factory import make_source
from workshop_app.core.sources.reconnect import NO_RECONNECT


def open_vehicle(args: argparse.Namespace, *, inject: bool = True) -> tuple[FrameSource, VehicleSpec]:
    """Connect (default: the simulated vehicle), inject --fault, wait --settle.

    ``inject=False`` checks the --fault names but leaves injecting to the caller (the watch
    injects once it has learnt what is stored, so the fault is seen appearing).
    """
    spec = load_vehicle_spec(args.spec) if args.spec else demo_vehicle_spec()
    # No reconnecting under a scan: answers missing during a gap would read as missing ECUs.
    # The connect itself runs under the policy's deadlines (a silent server fails in seconds).
    connection = replace(source_spec(args), reconnect=NO_RECONNECT)
    if connection.capture_process and (args.fault or getattr(args, "repair", False)):
        raise SourceError(
            "--fault and --repair need the simulated vehicle in this process (no --capture-process)"
        )
    # --capture-process: the bus lives in a capture process; diagnostics reach it through the
    # pipe. Nobody ticks here, so its ring is small: what piles up is counted and dropped.
    source = (
        make_process_source(connection, ring_capacity=100_000)
        if connection.capture_process
        else make_source(connection)
    )
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
    if not inject:
        return source, spec
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


def open_history(args: argparse.Namespace) -> HistoryStore | None:
    """The history the command stores in (None with --no-history)."""
    if getattr(args, "no_history", False):
        return None
    return HistoryStore(history_path(args))
