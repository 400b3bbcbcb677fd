"""`workshop dtc watch`: catch an intermittent fault from a terminal, as the Fault codes dock does.

The fault memories are read every --interval seconds and each code that appears (or clears)
is printed as one line. With --trigger or --on-new-fault the capture keeps the last --before
seconds of traffic; when the trigger fires, --after seconds more are taken and the recording is
saved (--record FILE, else a new file under the recordings folder) and indexed in the
history, and the command ends. Ctrl-C (SIGTERM, SIGHUP) stops cleanly at any time.

Threads: the main thread ticks the session (frames → store → trigger) and waits for signals;
the watch job waits on its own thread; UDS calls run on the diagnostic worker.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

from workshop_app.commands.common import GapWatcher, load_databases
from workshop_app.commands.dtc_vehicle import open_history, open_vehicle
from workshop_app.core.capture.trigger import TriggerCapture, TriggerEvent, parse_signal_trigger
from workshop_app.core.diag.jobs import DiagJobs
from workshop_app.core.diag.watch import DtcEvent
from workshop_app.core.errors import WorkshopError
from workshop_app.core.history import default_recordings_dir
from workshop_app.core.jobs import CancelToken, JobProgress
from workshop_app.core.stop_signals import graceful_stop
from workshop_app.core.workshop import WorkshopSession

_TICK_S = 0.05  # the CLI's tick: frames reach the trigger's buffer within this


def _event_line(event: DtcEvent) -> str:
    when = time.strftime("%H:%M:%S", time.localtime(event.time))
    text = f"{when}  {event.kind:<8}  {event.ecu:<5} {event.dtc.sae}"
    return f"{text}  {event.dtc.description}" if event.dtc.description else text


def _trigger(args: argparse.Namespace, session: WorkshopSession) -> TriggerCapture | None:
    if not (args.trigger or args.on_new_fault):
        if args.record is not None:
            raise WorkshopError("--record needs --trigger or --on-new-fault (what starts the recording)")
        return None
    capture = TriggerCapture(
        default_recordings_dir() / "triggers",
        pre_seconds=args.before,
        post_seconds=args.after,
        path=args.record,
    )
    if args.trigger:
        messages = [m for loaded in session.databases.databases for m in loaded.db.messages]
        try:
            capture.add_signal_trigger(parse_signal_trigger(args.trigger, messages))
        except ValueError as exc:
            raise WorkshopError(f"--trigger: {exc}") from None
    return capture


def run(args: argparse.Namespace) -> int:
    source, spec = open_vehicle(args, inject=False)
    store = None
    session: WorkshopSession | None = None
    try:
        store = open_history(args)
        session = WorkshopSession(source, load_databases(args.dbc), history=store, vehicle_spec=spec)
        trigger = _trigger(args, session)
        return _watch(args, session, session.diagnostics, trigger)
    finally:
        if session is not None:
            session.close()  # the watch's worker, any armed trigger, the source
        else:
            source.stop()
        if store is not None:
            store.close()


def _watch(
    args: argparse.Namespace, session: WorkshopSession, jobs: DiagJobs, trigger: TriggerCapture | None
) -> int:
    cancel = CancelToken()
    watching = threading.Event()
    out: list[TriggerEvent | None] = []
    failure: list[BaseException] = []
    last_step = [""]

    def progress(p: JobProgress) -> None:  # the job's thread: one line per change of step
        step = p.phase.split(":")[0]
        if step != last_step[0]:
            last_step[0] = step
            print(p.phase, file=sys.stderr, flush=True)
        if p.done >= 1:
            watching.set()

    def printed(event: DtcEvent) -> None:
        print(_event_line(event), flush=True)

    def job() -> None:
        try:
            if trigger is None:
                jobs.watch(args.interval, printed, progress, cancel, on_cleared=printed)
                out.append(None)
            else:
                out.append(
                    jobs.triggered_capture(
                        trigger,
                        progress,
                        cancel,
                        watch_interval=args.interval,
                        fire_on_new_fault=args.on_new_fault,
                        on_new_fault=printed,
                        on_cleared=printed,
                    )
                )
        except BaseException as exc:  # handed to the main thread, which reports it
            failure.append(exc)

    names = ", ".join(e.name for e in jobs.spec.ecus)
    print(
        f"{session.source.describe()}: reading the fault codes of {names} every {args.interval:g} s; "
        "Ctrl-C to stop",
        file=sys.stderr,
        flush=True,
    )
    worker = threading.Thread(target=job, name="dtc-watch")
    gaps = GapWatcher(session.source)
    faults = list(args.fault)
    stopped = False
    with graceful_stop() as stop:
        worker.start()
        try:
            while worker.is_alive():
                session.tick()
                for line in gaps.poll():
                    print(line, file=sys.stderr, flush=True)
                if faults and watching.is_set():
                    vehicle = getattr(session.source, "vehicle", None)
                    for name in faults:
                        vehicle.inject_fault(name)  # type: ignore[union-attr]
                        print(f"simulated fault injected: {name}", file=sys.stderr, flush=True)
                    faults = []
                if stop.is_set() and not cancel.cancelled:
                    stopped = True
                    cancel.cancel("stopped")
                worker.join(_TICK_S)
        finally:
            cancel.cancel("stopped")
            worker.join()
    if failure:
        raise failure[0]
    event = out[0] if out else None
    if event is not None and event.path is not None:
        frames = event.summary.frames_written if event.summary else 0
        print(f"saved {event.path} ({frames} frames): {event.reason}", flush=True)
    elif trigger is not None:
        print("stopped before the trigger fired: nothing recorded", file=sys.stderr, flush=True)
    if stopped:
        print("watch stopped", file=sys.stderr, flush=True)
    return 0
