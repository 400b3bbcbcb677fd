"""`workshop send`: what the Transmit panel does, from a terminal.

One frame (``ID#DATA`` as cansend writes it, ``ID##1DATA`` for CAN FD) or one DBC message from
``--signal NAME=VALUE`` values, sent once or every ``--period`` seconds until ``--count``
frames, ``--duration`` or Ctrl-C. ``--show NAME`` prints a received message afterwards, so the
car's answer is seen (the simulated body ECU's BODY_STATUS after a BODY_COMMAND).

Threads: the periodic run blocks a worker thread (``TransmitJobs.run_periodic``, whose frames
leave from the scheduler thread); the main thread drains the capture and turns a stop signal
into the run's cancel token, so Ctrl-C ends the run between two frames.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from workshop_app import cli_values as values
from workshop_app.core.errors import WorkshopError

if TYPE_CHECKING:  # the transmit stack loads when the command runs, not when options are built
    from workshop_app.core.jobs import JobProgress
    from workshop_app.core.transmit_jobs import TransmitJob, TransmitJobs
    from workshop_app.core.workshop import WorkshopSession

_TICK = 0.05  # seconds between drains of the capture while a periodic run goes on


def add_arguments(
    sub: argparse._SubParsersAction, add_source_options: Callable[[argparse.ArgumentParser], None]
) -> None:
    """The ``send`` sub-command's options (the connection options come from cli.py)."""
    p = sub.add_parser(
        "send", help="send a frame or a DBC message once or periodically (default: to the simulated car)"
    )
    p.add_argument(
        "frame",
        nargs="?",
        metavar="ID#DATA",
        help="raw frame as cansend writes it: 2B0#0100 (11-bit), 18DAF110#02 (29-bit), 123##1AABB (CAN FD)",
    )
    p.add_argument("--message", metavar="NAME", help="DBC message to encode instead of a raw frame")
    p.add_argument(
        "--signal",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="signal value of --message: a number or a value-table name (repeatable; "
        "others take their initial value)",
    )
    p.add_argument("--period", type=values.seconds, metavar="S", help="send every S seconds (default: once)")
    p.add_argument(
        "--count", type=values.positive_int, metavar="N", help="with --period: stop after N frames"
    )
    p.add_argument("--duration", type=values.seconds, metavar="S", help="with --period: stop after S seconds")
    p.add_argument(
        "--show",
        action="append",
        default=[],
        metavar="NAME",
        help="afterwards print this received DBC message, decoded (repeatable), e.g. BODY_STATUS",
    )
    p.add_argument(
        "--show-timeout",
        type=values.seconds,
        default=3.0,
        metavar="S",
        help="seconds to wait for each --show message (default 3)",
    )
    add_source_options(p)


def _job(args: argparse.Namespace, channel: str) -> TransmitJob:
    from workshop_app.core.transmit_encode import parse_frame_text, parse_signal_values
    from workshop_app.core.transmit_jobs import TransmitJob

    if (args.frame is None) == (args.message is None):
        raise WorkshopError("give a frame (ID#DATA) or --message NAME, not both")
    if args.signal and args.message is None:
        raise WorkshopError("--signal needs --message")
    if args.period is None and (args.count is not None or args.duration is not None):
        raise WorkshopError("--count and --duration need --period")
    if args.frame is not None:
        return TransmitJob(frame=parse_frame_text(args.frame, channel), period=args.period, limit=args.count)
    return TransmitJob(
        message=args.message,
        values=parse_signal_values(args.signal),
        period=args.period,
        limit=args.count,
    )


def _progress_line(progress: JobProgress) -> None:
    # Worker thread; a terminal gets one line rewritten in place, a pipe nothing until the end.
    total = f" of {progress.total:,}" if progress.total else ""
    sys.stderr.write(f"\r{progress.phase}: {progress.done:,}{total} sent")
    sys.stderr.flush()


def _run_periodic(
    session: WorkshopSession, jobs: TransmitJobs, job: TransmitJob, duration: float | None
) -> TransmitJob:
    """Run ``job`` on a worker thread until it ends; Ctrl-C, SIGTERM or SIGHUP cancel it."""
    from workshop_app.core.jobs import CancelToken
    from workshop_app.core.stop_signals import graceful_stop

    cancel = CancelToken()
    out: list[TransmitJob] = []
    failure: list[BaseException] = []
    progress = _progress_line if sys.stderr.isatty() else (lambda _p: None)

    def work() -> None:
        try:
            out.append(jobs.run_periodic(job, duration=duration, progress=progress, cancel=cancel))
        except BaseException as exc:  # handed to the main thread, which reports it
            failure.append(exc)

    worker = threading.Thread(target=work, name="send-periodic", daemon=True)
    with graceful_stop() as stop:
        worker.start()
        while worker.is_alive():
            session.tick()  # the ring stays drained, so a long run counts no drops
            worker.join(_TICK)
            if stop.is_set():
                cancel.cancel("stopped by a signal")
    if progress is _progress_line:
        sys.stderr.write("\n")
    if failure:
        raise failure[0]
    return out[0]


def _summary(job: TransmitJob) -> str:
    from workshop_app.core.transmit_jobs import JobStatus

    what = job.describe()
    data = job.last_data.hex(" ").upper() if job.last_data is not None else "-"
    if job.period is None:
        return f"sent {what}: {data}"
    every = f"every {job.period * 1000:g} ms"
    ended = {
        JobStatus.FINISHED: "all sent",
        JobStatus.STOPPED: "stopped",
    }.get(job.status, job.last_error or job.status.value)
    return f"sent {job.count:,} frame(s) of {what} {every} ({ended}); last data {data}"


def _show(session: WorkshopSession, jobs: TransmitJobs, names: list[str], timeout: float) -> list[str]:
    """Each named message as received after the send: the second frame of it, since the
    first may have been built before the receiver acted on what was sent."""
    from workshop_app.core.decode.live import decode_payload
    from workshop_app.core.types import Frame

    messages = [jobs.find_message(name) for name in names]
    seen: dict[str, list[Frame]] = {m.name: [] for m in messages}
    session.tick()  # frames received before the send ended are not the answer
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(len(f) < 2 for f in seen.values()):
        for frame in session.tick().frames:
            for message in messages:
                if (
                    frame.is_rx
                    and frame.arbitration_id == message.frame_id
                    and frame.is_extended == message.is_extended_frame
                ):
                    seen[message.name].append(frame)
        time.sleep(_TICK)
    lines: list[str] = []
    for message in messages:
        frames = seen[message.name]
        if not frames:
            raise WorkshopError(f"no {message.name} frame received within {timeout:g} s")
        lines.append(f"{message.name} (0x{message.frame_id:03X}): {frames[-1].data.hex(' ').upper()}")
        lines += [f"    {v.name:<30} {v.text()}" for v in decode_payload(message, frames[-1].data)]
    return lines


def run(args: argparse.Namespace) -> int:
    from workshop_app.commands.common import load_databases, source_spec
    from workshop_app.core.transmit_jobs import JobStatus
    from workshop_app.core.workshop import WorkshopSession

    session = WorkshopSession(source_spec(args), load_databases(args.dbc))
    jobs: TransmitJobs = session.transmit  # the Transmit panel's jobs, on this session's source
    job = _job(args, jobs.default_channel)
    jobs.check(job)  # bad input: one line, before anything starts
    session.start()
    try:
        if session.source.error:
            raise WorkshopError(session.source.error)
        if job.period is None:
            job_id = jobs.send_once(job.frame, message=job.message, values=job.values)
            ended = jobs.job(job_id)
        else:
            ended = _run_periodic(session, jobs, job, args.duration)
        print(_summary(ended))
        if ended.status in (JobStatus.DISCONNECTED, JobStatus.FAILED):
            print(f"workshop send: error: {ended.last_error}", file=sys.stderr)
            return 1
        for line in _show(session, jobs, args.show, args.show_timeout):
            print(line)
    finally:
        session.close()
    return 0
