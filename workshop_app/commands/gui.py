"""`workshop gui`: the window, connected to the simulated vehicle unless told otherwise."""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import replace

from workshop_app.commands.common import load_databases, source_spec
from workshop_app.core.capture.process_session import ProcessCaptureSession, make_capture_session
from workshop_app.core.errors import WorkshopError


def run(args: argparse.Namespace) -> int:
    from workshop_app.gui.app import run_gui  # Qt is imported only for this command

    # The window opens at once; a live source connects (and reconnects) on its own thread.
    spec = replace(source_spec(args), connect_in_background=True)
    # --capture-process: receiving, recording and the bus in a capture process (diagnostics go
    # through it); the session keeps it for every live connection made in the window.
    databases = load_databases(args.dbc)
    session = make_capture_session(spec, databases)
    if isinstance(session, ProcessCaptureSession):
        # Spawned now, the capture process imports and connects while Qt loads and the window
        # is built (~2 s of each here): the window then has data from its first tick. A start
        # that fails is tried again by the window, which shows why.
        with contextlib.suppress(WorkshopError):
            session.source.start()
    return run_gui(session, databases, quit_after=args.quit_after, screenshot=args.screenshot)
