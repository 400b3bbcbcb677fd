"""The first window: how soon the default plots move, and what the trace's stale-row check costs.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/first_window.py

1. A fresh MainWindow (empty settings) on the simulated car, received in the window's process and
   in a capture process (the window's default): seconds from ``start()`` to the
   first frame in the store (the baseline: nothing can be drawn earlier), and to three of the
   default plots holding data, in the same run.
2. ``TraceModel.refresh`` on a store of N streams (N = 200 and 5,000): the whole refresh per
   tick, and what finding rows that hold a cleared store's statistics costs in it: the check
   the model makes (its first row) against comparing every row, measured alone.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from workshop_app.core.capture.process_session import ProcessCaptureSession
from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.factory import SourceSpec
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.core.types import Frame
from workshop_app.gui.app import make_app
from workshop_app.gui.main_window import MainWindow
from workshop_app.gui.trace_model import TraceModel
from workshop_app.paths import demo_dbc_path


def _curves_with_data(window: MainWindow) -> int:
    panel = window.plot_panel
    count = 0
    for index, plot in enumerate(panel.signals()):
        for message, signal in plot:
            x, _ = panel.curve_item(message, signal, index).getData()
            count += x is not None and len(x) > 1
    return count


def first_plots(app: QApplication, capture_process: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "fresh.ini"), QSettings.Format.IniFormat)
        dbs = DatabaseSet()
        dbs.add(demo_dbc_path())
        session = (
            ProcessCaptureSession(SourceSpec(connect_in_background=True), dbs)
            if capture_process
            else CaptureSession(SimulatorSource(FrameRing()), dbs)
        )
        window = MainWindow(session, settings=settings)
        window.show()
        t0 = time.perf_counter()
        window.start()
        first_frame = plotted = None
        while time.perf_counter() - t0 < 10 and plotted is None:
            app.processEvents()
            if first_frame is None and window.session.store.total_frames:
                first_frame = time.perf_counter() - t0
            if _curves_with_data(window) >= 3:
                plotted = time.perf_counter() - t0
            time.sleep(0.002)
        window.close()
    way = "in a capture process (the default)" if capture_process else "in the window's process"
    print(f"first window on the simulated car (fresh settings), received {way}")
    print(f"  first frame in the store     {first_frame or float('nan'):6.3f} s   (baseline)")
    print(f"  3 default plots with data    {plotted or float('nan'):6.3f} s")


def trace_refresh(streams: int) -> None:
    session = CaptureSession(SimulatorSource(FrameRing()), DatabaseSet())
    frames = [Frame(float(i), 0x100 + i, bytes(8), "can0", False) for i in range(streams)]
    session.store.ingest(frames)
    model = TraceModel(session)
    model.refresh()
    rows = model._rows  # the checks under test read them; a benchmark may look inside
    keys = model._keys
    messages = session.store.messages
    repeats = 200

    def per_call(fn: Callable[[], object]) -> float:
        t = time.perf_counter()
        for _ in range(repeats):
            fn()
        return (time.perf_counter() - t) / repeats

    whole = per_call(model.refresh)
    first = per_call(lambda: messages.get(keys[0]) is not rows[0])
    every = per_call(lambda: any(messages.get(k) is not s for k, s in zip(keys, rows, strict=True)))
    print(
        f"  {streams:6,} streams: refresh {whole * 1e6:8.1f} µs per tick; stale check on the first row "
        f"{first * 1e6:5.2f} µs, on every row {every * 1e6:8.1f} µs"
    )


def main() -> None:
    app = make_app()
    first_plots(app, capture_process=False)
    first_plots(app, capture_process=True)
    print("TraceModel.refresh (once per ~33 ms tick)")
    for streams in (200, 5_000):
        trace_refresh(streams)


if __name__ == "__main__":
    main()
