"""A live plot's redraw as the history grows: the window's envelope against the whole series.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/plot_refresh.py [redraws]

16 curves in 4 plots (1440×900 window) follow a 30 s live window while each series holds 30 s,
120 s or 250 s of samples at 400 samples/s (a 100 Hz message on four buses; 250 s fills the
panel's 100,000-sample series). Every redraw appends 50 ms of samples to each series, then:
- ``PlotPanel.refresh``: hands pyqtgraph the window's min/max envelope, kept from redraw to
  redraw so that only the samples new since the last one are reduced (gui/curve_envelope.py);
- baseline, same run: the same curves and plots given the whole series every redraw with
  pyqtgraph's own peak downsampling and clip-to-view (what the panel did before).
Printed: CPU per redraw (p50/p95, ms) without the paint, and the paint that follows.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pyqtgraph as pg
from plotted_signals import PLOTTED
from PySide6.QtWidgets import QApplication

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.capture.series import SignalSeries
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.gui import plot_panel
from workshop_app.gui.plot_canvas import new_curve_item
from workshop_app.gui.plot_items import new_plot_item
from workshop_app.paths import demo_dbc_path

RATE = 400.0  # samples per second per curve
STEP = 0.05  # seconds of samples per redraw (the panel's 20 redraws a second)
WINDOW = 30.0
HISTORIES = (30.0, 120.0, 250.0)
SIZE = (1440, 900)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def fill(series: list[SignalSeries], start: float, end: float) -> None:
    t = np.arange(start, end, 1 / RATE)
    for k, s in enumerate(series):
        s.extend(t, np.sin(t * (0.3 + 0.05 * k)) * 100 + np.cos(t * 7.0) * 5)


def settle(app: QApplication) -> None:
    for _ in range(5):
        app.processEvents()
        time.sleep(0.02)


def run_panel(app: QApplication, history: float, redraws: int) -> tuple[list[float], list[float]]:
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    session = CaptureSession(SimulatorSource(FrameRing()), dbs)
    panel = plot_panel.PlotPanel(session, redraw_interval=0.0)
    panel.resize(*SIZE)
    panel.show()
    settle(app)
    for n, (message, signal) in enumerate(PLOTTED):
        panel.add_signal(message, signal, None if n % 4 == 0 else n // 4)
    panel.set_window(WINDOW)
    series = [session.decoder.subscribe(m, s) for m, s in PLOTTED]
    fill(series, 0.0, history)
    panel.refresh()
    app.processEvents()
    return measure(app, series, history, redraws, panel.refresh)


def run_whole(app: QApplication, history: float, redraws: int) -> tuple[list[float], list[float]]:
    canvas = pg.GraphicsLayoutWidget()
    canvas.resize(*SIZE)
    canvas.show()
    settle(app)
    plots = [new_plot_item() for _ in range(4)]
    for row, plot in enumerate(plots):
        canvas.addItem(plot, row=row, col=0)
        if row:
            plot.setXLink(plots[0])
    series = [SignalSeries(f"s{k}", plot_panel.SERIES_CAPACITY) for k in range(len(PLOTTED))]
    items = []
    for k in range(len(PLOTTED)):
        item = new_curve_item(plot_panel.PALETTE[k % 4], f"s{k}", steps=False)
        plots[k // 4].addItem(item)
        item.setDownsampling(auto=True, method="peak")
        item.setClipToView(True)
        items.append(item)
    fill(series, 0.0, history)

    def refresh() -> None:
        newest = max(float(s.last()[0]) for s in series if s.last() is not None)
        for item in items:
            item.hold = True
        plots[0].getViewBox().setXRange(newest - WINDOW, newest, padding=0)
        for item, s in zip(items, series, strict=True):
            item.hold = False
            item.setData(*s.arrays())

    refresh()
    app.processEvents()
    result = measure(app, series, history, redraws, refresh)
    canvas.close()
    return result


def measure(
    app: QApplication, series: list[SignalSeries], history: float, redraws: int, refresh: object
) -> tuple[list[float], list[float]]:
    assert callable(refresh)
    cpu: list[float] = []
    paint: list[float] = []
    now = history
    for _ in range(redraws):
        fill(series, now, now + STEP)
        now += STEP
        c0 = time.thread_time()
        refresh()
        c1 = time.thread_time()
        app.processEvents()
        cpu.append(c1 - c0)
        paint.append(time.thread_time() - c1)
    return cpu, paint


def main() -> None:
    redraws = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    app = pg.mkQApp()
    print(f"16 curves in 4 plots, {SIZE[0]}x{SIZE[1]}, {RATE:.0f} samples/s each, {WINDOW:.0f} s window")
    print(f"{'history':>8} {'way':34} {'redraw p50':>10} {'p95 ms':>7} {'paint p50':>10} {'p95 ms':>7}")
    for history in HISTORIES:
        for way, run in (("PlotPanel (window envelope)", run_panel), ("whole series (baseline)", run_whole)):
            cpu, paint = run(app, history, redraws)
            print(
                f"{history:7.0f}s {way:34} {pct(cpu, 0.5) * 1e3:10.2f} {pct(cpu, 0.95) * 1e3:7.2f} "
                f"{pct(paint, 0.5) * 1e3:10.2f} {pct(paint, 0.95) * 1e3:7.2f}"
            )
            sys.stdout.flush()
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
