"""One window tick on the simulated car with 16 plotted signals: what the trace repaints.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/trace_tick.py [seconds] [quiet streams] [all]

``all`` repaints every row on every tick, as the trace did before it took the changed streams
from the tick and held its repaints to ten a second (the baseline, measured in the same
conditions).

With ``quiet streams`` N > 0, N more message ids (0x010 upwards, so they sort to the top of the
trace where the view shows them) each send once a second beside the car, as the many slow
messages of a real car do; they are pushed into the ring by a 10 ms timer on the GUI thread.

The window (1440×900, offscreen) runs on the simulated vehicle with the demo database, the
Messages tab in front and 16 signals in 4 plots. Over the run it prints, per tick:
- the bridge's tick (drain, store, decode, every subscriber) p50/p95/max in ms;
- the trace model's ``data()`` calls and the time spent in them (the Python half of a
  repaint: the view asks for every cell of every row it repaints);
- the process's CPU time per tick (painting, plots, everything).
Run it before and after a change to the trace's repaint on the same machine, load noted.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings, QTimer

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.core.types import Frame
from workshop_app.gui import trace_model
from workshop_app.gui.app import make_app
from workshop_app.gui.main_window import MainWindow
from workshop_app.paths import demo_dbc_path

PLOTTED = 16


def main(seconds: float, quiet: int, all_rows: bool) -> None:
    if all_rows:
        trace_model.SWEEP_TICKS = 1  # every tick a sweep: every row repainted
    app = make_app()
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "bench.ini"), QSettings.Format.IniFormat)
        dbs = DatabaseSet()
        dbs.add(demo_dbc_path())
        window = MainWindow(CaptureSession(SimulatorSource(FrameRing()), dbs), settings=settings)
        if all_rows:
            window.trace_model.repaint_interval = 0.0  # no wall-clock hold either
        panel = window.plot_panel
        panel.clear()
        chosen = [
            (m.name, s.name) for loaded in dbs.databases for m in loaded.db.messages for s in m.signals
        ][:PLOTTED]
        for i, (message, signal) in enumerate(chosen):
            panel.add_signal(message, signal, None if i % 4 == 0 else panel.plot_count - 1)
        window.trace_tabs.setCurrentIndex(0)
        window.show()
        due = {0x010 + i: time.monotonic() + i / max(quiet, 1) for i in range(quiet)}

        def feed_quiet() -> None:
            now = time.monotonic()
            ready = [ident for ident, t in due.items() if t <= now]
            for ident in ready:
                due[ident] += 1.0
            window.session.ring.push_many(Frame(time.time(), i, bytes(8), "can0") for i in ready)

        feeder = QTimer()
        feeder.timeout.connect(feed_quiet)
        if quiet:
            feeder.start(10)

        model = window.trace_model
        calls = 0
        spent = 0.0
        original = model.data

        def counted(index, role=0):  # same shape as the model's data()
            nonlocal calls, spent
            t0 = time.perf_counter()
            try:
                return original(index, role)
            finally:
                spent += time.perf_counter() - t0
                calls += 1

        model.data = counted  # type: ignore[method-assign]  # the view calls through the instance
        # The bridge times a tick after its signal went out: each tick reads the one before.
        ticks: list[float] = []
        window.bridge.ticked.connect(lambda *_: ticks.append(window.bridge.last_tick_seconds))
        rows_repainted: list[int] = []
        # Subscribed after the window's own subscribers: the trace model has refreshed by then.
        window.workshop.subscribe("stats", lambda _s: rows_repainted.append(len(model.last_repainted)))
        window.start()
        warm = time.monotonic() + 2.0
        while time.monotonic() < warm:
            app.processEvents()
            time.sleep(0.002)
        ticks.clear()
        rows_repainted.clear()
        calls, spent = 0, 0.0
        cpu0 = time.process_time()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.002)
        cpu = time.process_time() - cpu0
        n = max(len(ticks), 1)
        rows = model.rowCount()
        frames = window.session.store.total_frames
        feeder.stop()
        window.close()

    times = sorted(ticks[1:])
    mode = "every row every tick" if all_rows else "changed rows"
    print(
        f"[{mode}] simulated car + {quiet} quiet streams, {rows} trace rows, {PLOTTED} plotted signals, {seconds:g} s, {n} ticks"
    )
    print(f"  frames in the store            {frames:,}")
    if times:
        p95 = times[int(0.95 * (len(times) - 1))]
        print(
            f"  tick p50 / p95 / max          {statistics.median(times) * 1e3:6.2f} / {p95 * 1e3:6.2f} / {times[-1] * 1e3:6.2f} ms"
        )
    print(f"  trace rows repainted per tick {statistics.mean(rows_repainted or [0]):8.1f}")
    print(f"  trace data() calls per tick   {calls / n:8.1f}")
    print(f"  trace data() time per tick    {spent / n * 1e3:8.3f} ms")
    print(f"  CPU per tick (whole process)  {cpu / n * 1e3:8.3f} ms")
    print(f"  load average                  {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(float(args[0]) if args else 20.0, int(args[1]) if len(args) > 1 else 0, "all" in args[2:])
