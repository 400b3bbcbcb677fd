"""`workshop gui`: the window, connected to the simulated vehicle unless told otherwise."""

from __future__ import annotations

import argparse
from dataclasses import replace

from workshop_app.commands.common import load_databases, source_spec
from workshop_app.core.capture.process import make_process_source
from workshop_app.core.sources.base import FrameSource
from workshop_app.core.sources.factory import make_source


def run(args: argparse.Namespace) -> int:
    from workshop_app.gui.app import run_gui  # Qt is imported only for this command

    # The window opens at once; a live source connects (and reconnects) on its own thread.
    spec = replace(source_spec(args), connect_in_background=True)
    # --capture-process: receiving and the bus in a capture process; diagnostics go through it.
    source: FrameSource = make_process_source(spec) if spec.capture_process else make_source(spec)
    return run_gui(source, load_databases(args.dbc), quit_after=args.quit_after, screenshot=args.screenshot)
