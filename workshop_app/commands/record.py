"""`workshop record OUT`: capture to any python-can log format chosen by the file extension."""

from __future__ import annotations

import argparse
import sys

from workshop_app.commands.common import load_databases, run_capture, source_spec
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.factory import make_source


def run(args: argparse.Namespace) -> int:
    spec = source_spec(args)
    session = CaptureSession(make_source(spec), load_databases(args.dbc))
    session.start_recording(args.output)  # fails early on a bad path or format
    try:
        session.start()
    except Exception:
        session.stop_recording()
        raise
    print(f"recording {session.source.describe()} to {args.output} (Ctrl-C to stop)", file=sys.stderr)
    try:
        run_capture(session, args.duration)
    finally:
        summary = session.stop()
    failed = session.source.error
    if summary is not None:
        print(
            f"{summary.frames_written} frames written, "
            f"{summary.frames_dropped + session.ring.dropped} dropped, "
            f"{summary.duration:.1f} s, {summary.path}"
        )
    if failed:
        print(f"workshop record: error: {failed}", file=sys.stderr)
        return 1
    return 0
