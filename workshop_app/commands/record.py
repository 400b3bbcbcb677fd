"""`workshop record OUT`: capture to any python-can log format chosen by the file extension.

Every finished recording is indexed in the workshop history (``--history PATH`` or the default
location; ``--no-history`` skips it), and its history id is printed.
"""

from __future__ import annotations

import argparse
import sys

from workshop_app.commands.common import gap_lines, load_databases, run_capture, source_spec
from workshop_app.commands.history import history_path
from workshop_app.core.history import HistoryStore
from workshop_app.core.sources.factory import SourceSpec
from workshop_app.core.workshop import WorkshopSession


def run(args: argparse.Namespace) -> int:
    spec = source_spec(args)
    # Opened first: an unusable history file fails before anything is captured.
    history = None if getattr(args, "no_history", False) else HistoryStore(history_path(args))
    try:
        return _record(args, spec, history)
    finally:
        if history is not None:
            history.close()


def _record(args: argparse.Namespace, spec: SourceSpec, history: HistoryStore | None) -> int:
    workshop = WorkshopSession(spec, load_databases(args.dbc), history=history)
    session = workshop.capture
    workshop.start_recording(args.output)  # fails early on a bad path or format
    try:
        workshop.start()
    except Exception:
        workshop.stop_recording()
        raise
    print(f"recording {session.source.describe()} to {args.output} (Ctrl-C to stop)", file=sys.stderr)
    recorder = session.recorder
    said: list[str] = []

    def report_write_error() -> None:
        # Said when it happens (full disk...): the file is closed and readable, capture goes on.
        if recorder is not None and recorder.error and not said:
            said.append(recorder.error)
            print(f"workshop record: error: {recorder.error} (capture goes on)", file=sys.stderr)

    try:
        run_capture(workshop, args.duration, on_tick=report_write_error)
    finally:
        summary = workshop.close()
    failed = session.source.error
    if summary is not None:
        print(
            f"{summary.frames_written} frames written, "
            f"{summary.frames_dropped + session.ring.dropped} dropped, "
            f"{summary.duration:.1f} s, {summary.path}"
        )
        if summary.warning:
            print(f"workshop record: warning: {summary.warning}", file=sys.stderr)
        # The file stayed open through each lost link: say where it has no frames.
        for line in gap_lines(session.source.gaps):
            print(line)
        if summary.error:
            failed = failed or summary.error
        if history is not None:
            # The ring's drops happened during this recording: the session records from its start.
            rid = history.index_recording(
                summary,
                session.source.describe(),
                extra_dropped=session.ring.dropped,
                gaps=session.source.gaps,
            )
            print(f"recording id {rid} in {history.path}")
    if failed:
        if failed not in said:
            print(f"workshop record: error: {failed}", file=sys.stderr)
        return 1
    return 0
