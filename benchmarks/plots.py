"""Plot speed offscreen: live update rate of many curves, and one very long curve.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/plots.py

1. 16 live curves × 10k points (4 plots × 4 curves, 1 kHz data in a 10 s window): each
   frame appends 33 ms of samples to every series, calls ``PlotPanel.refresh`` and repaints.
2. 10 M points in one curve (peak downsampling + clip-to-view): first render of the whole
   span, then the mean time of a pan (1 % of the span) + repaint inside a 10 % view.

Each figure is compared with bare pyqtgraph doing the same work in the same run (a
GraphicsLayoutWidget with the same plots and canvas size, no panel), and with the figures
measured on this kind of machine in NOTES.md. The panel's first render also pays for
copying the series out of its ring buffer (printed separately) and for pyqtgraph's first
pass over data whose finiteness it does not know yet (an extra full-size temporary); at the
panel's default series capacity (100k samples) both are a few milliseconds.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QApplication

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.gui import plot_panel
from workshop_app.gui.plot_panel import PlotPanel
from workshop_app.paths import demo_dbc_path

NOTES_LIVE_FPS = 70.0
NOTES_FIRST_RENDER_S = 0.12
NOTES_PAN_MS = 14.0

SIZE = (1200, 800)
CURVES, PLOTS, POINTS = 16, 4, 10_000
RATE_HZ = 1000.0
FRAME_S = 0.033
FRAMES = 150
BIG = 10_000_000
PANS = 40

# 16 signals of the demo car, 4 per plot; their series are filled with synthetic data below.
SIGNALS = [
    ("ENGINE_DATA", "EngineSpeed"),
    ("ENGINE_DATA", "AccelPedalPosition"),
    ("ENGINE_DATA", "ThrottlePosition"),
    ("ENGINE_DATA", "EngineLoad"),
    ("WHEEL_SPEEDS", "WheelSpeedFL"),
    ("WHEEL_SPEEDS", "WheelSpeedFR"),
    ("WHEEL_SPEEDS", "WheelSpeedRL"),
    ("WHEEL_SPEEDS", "WheelSpeedRR"),
    ("ABS_STATUS", "VehicleSpeed"),
    ("ABS_STATUS", "LongitudinalAccel"),
    ("ABS_STATUS", "YawRate"),
    ("BRAKE_STATUS", "BrakePressure"),
    ("STEERING", "SteeringAngle"),
    ("STEERING", "SteeringRate"),
    ("TRANSMISSION", "OutputShaftSpeed"),
    ("TRANSMISSION", "TurbineSpeed"),
]


def new_session() -> CaptureSession:
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    return CaptureSession(SimulatorSource(FrameRing()), dbs)  # never started: data comes from here


def wave(t: np.ndarray, k: int) -> np.ndarray:
    return np.sin(t * (0.5 + 0.1 * k)) * 100 + np.random.default_rng(k).normal(0, 2, len(t))


def settle(app: QApplication, widget: object) -> None:
    widget.resize(*SIZE)
    widget.show()
    for _ in range(5):
        app.processEvents()
        time.sleep(0.02)


def live_panel(app: QApplication) -> float:
    plot_panel.SERIES_CAPACITY = POINTS  # a 10 s ring at 1 kHz
    session = new_session()
    panel = PlotPanel(session)
    settle(app, panel)
    for i, (message, signal) in enumerate(SIGNALS):
        panel.add_signal(message, signal, None if i % (CURVES // PLOTS) == 0 else i // (CURVES // PLOTS))
    panel.set_window(POINTS / RATE_HZ)
    series = [session.decoder.subscribe(m, s) for m, s in SIGNALS]
    t = np.arange(POINTS) / RATE_HZ
    for k, s in enumerate(series):
        s.extend(t, wave(t, k))
    panel.refresh()
    panel.canvas.viewport().repaint()
    step = int(RATE_HZ * FRAME_S)
    now = t[-1]
    t0 = time.perf_counter()
    for _ in range(FRAMES):
        new_t = now + np.arange(1, step + 1) / RATE_HZ
        now = new_t[-1]
        for k, s in enumerate(series):
            s.extend(new_t, wave(new_t, k))
        panel.refresh()
        panel.canvas.viewport().repaint()
    fps = FRAMES / (time.perf_counter() - t0)
    panel.close()
    return fps


def live_bare(app: QApplication) -> float:
    canvas = pg.GraphicsLayoutWidget()
    settle(app, canvas)
    curves = []
    for p in range(PLOTS):
        plot = canvas.addPlot(row=p, col=0)
        curves += [plot.plot(pen=pg.mkPen(plot_panel.PALETTE[c])) for c in range(CURVES // PLOTS)]
    t = np.arange(POINTS) / RATE_HZ
    ys = [wave(t, k) for k in range(CURVES)]
    step = int(RATE_HZ * FRAME_S)
    t0 = time.perf_counter()
    for _ in range(FRAMES):
        t = t + step / RATE_HZ
        for k, curve in enumerate(curves):
            ys[k] = np.roll(ys[k], -step)
            curve.setData(t, ys[k])
        canvas.viewport().repaint()
    fps = FRAMES / (time.perf_counter() - t0)
    canvas.close()
    return fps


def big_panel(app: QApplication) -> tuple[float, float, float]:
    plot_panel.SERIES_CAPACITY = BIG
    session = new_session()
    panel = PlotPanel(session)
    settle(app, panel)
    panel.add_signal("ENGINE_DATA", "EngineSpeed")
    panel.set_window(None)
    series = session.decoder.subscribe("ENGINE_DATA", "EngineSpeed")
    t = np.arange(BIG) / RATE_HZ
    series.extend(t, wave(t, 0))
    t0 = time.perf_counter()
    panel.refresh()  # copies the series, sets the data, follows: the whole span
    panel.canvas.viewport().repaint()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    series.arrays()  # the share of the first render that is the core's ring-buffer copy
    copy = time.perf_counter() - t0
    pan_ms = pan(panel.plot_items()[0].getViewBox(), panel.canvas, BIG / RATE_HZ)
    panel.close()
    return first, pan_ms, copy


def big_bare(app: QApplication) -> tuple[float, float]:
    widget = pg.PlotWidget()
    settle(app, widget)
    t = np.arange(BIG) / RATE_HZ
    y = wave(t, 0)
    t0 = time.perf_counter()
    curve = widget.plot(pen=pg.mkPen(plot_panel.PALETTE[0]))
    curve.setDownsampling(auto=True, method="peak")
    curve.setClipToView(True)
    curve.setData(t, y)
    widget.viewport().repaint()
    first = time.perf_counter() - t0
    pan_ms = pan(widget.getPlotItem().getViewBox(), widget, BIG / RATE_HZ)
    widget.close()
    return first, pan_ms


def pan(view: pg.ViewBox, canvas: pg.GraphicsView, span: float) -> float:
    width = span / 10
    view.setXRange(0.0, width, padding=0)
    canvas.viewport().repaint()
    t0 = time.perf_counter()
    for i in range(1, PANS + 1):
        lo = i * span / 100
        view.setXRange(lo, lo + width, padding=0)
        canvas.viewport().repaint()
    return (time.perf_counter() - t0) / PANS * 1000


def main() -> None:
    app = QApplication.instance() or QApplication([])
    fps_ours, fps_bare = live_panel(app), live_bare(app)
    (first_ours, pan_ours, copy), (first_bare, pan_bare) = big_panel(app), big_bare(app)
    print(f"canvas {SIZE[0]}x{SIZE[1]} offscreen, pyqtgraph {pg.__version__}")
    print(f"{'':44} {'PlotPanel':>10} {'bare pyqtgraph':>15} {'NOTES':>8}")
    print(
        f"{'16 live curves x 10k points, frames/s':44} {fps_ours:10.1f} {fps_bare:15.1f} {NOTES_LIVE_FPS:8.1f}"
    )
    print(
        f"{'10 M points, first render (s)':44} {first_ours:10.3f} {first_bare:15.3f} {NOTES_FIRST_RENDER_S:8.3f}"
    )
    print(f"{'  of which SignalSeries.arrays() copy (s)':44} {copy:10.3f}")
    print(f"{'10 M points, pan + repaint (ms)':44} {pan_ours:10.1f} {pan_bare:15.1f} {NOTES_PAN_MS:8.1f}")


if __name__ == "__main__":
    main()
