"""What the window's views cost per tick and per second, fed at a fixed rate without a bus.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/views_tick.py [seconds] [ticks per second] [channels]

The window (1440×900, offscreen) shows the trace with every row expanded and 16 signals in
4 plots, as ``benchmarks/live.py`` does, but its frames are made here: every message of the
demo database at its cycle time (10 ms where it has none) on each of ``channels`` channels
(default 4, like ``live.py --setups 4x1M`` without its filler ids), with random payloads, pushed
into the ring before each tick. Ticks are paced by the wall clock at ``ticks per second``
(default 30: the bridge's timer when the window keeps up), so what the views hold back by
the wall clock is held back as in the window. Printed: the tick's own CPU (drain, store,
decoder and every subscriber: trace, plots) and the CPU of the paints that follow it
(``processEvents``), p50/p95 per tick and in total per second of wall time.
Run it before and after a change to the views on the same machine, load noted.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from plotted_signals import PLOTTED
from PySide6.QtCore import QSettings

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.core.types import Frame
from workshop_app.gui.app import make_app
from workshop_app.gui.main_window import MainWindow
from workshop_app.paths import demo_dbc_path


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main(seconds: float, rate: float, channels: int) -> None:
    app = make_app()
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    # (id, extended, length, cycle in s) of every message; the streams' next due times in frame time.
    messages = [
        (m.frame_id, m.is_extended_frame, m.length, (m.cycle_time or 10) / 1000)
        for loaded in dbs.databases
        for m in loaded.db.messages
        if m.length <= 8  # classic frames, as on the 1 Mbit/s buses
    ]
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "bench.ini"), QSettings.Format.IniFormat)
        session = CaptureSession(SimulatorSource(FrameRing(1_000_000)), dbs)
        window = MainWindow(session, settings=settings, history=None)
        window.resize(1440, 900)
        window.show()
        panel = window.plot_panel
        panel.clear()
        for n, (message, signal) in enumerate(PLOTTED):
            panel.add_signal(message, signal, None if n % 4 == 0 else n // 4)
        workshop = window.workshop
        t0 = time.time()
        due = {(ch, ident): t0 for ch in range(channels) for ident, _, _, _ in messages}

        def feed(until: float) -> None:
            frames = []
            for ident, extended, length, cycle in messages:
                for ch in range(channels):
                    t = due[(ch, ident)]
                    while t <= until:
                        frames.append(Frame(t, ident, rng.randbytes(length), f"can{ch}", extended))
                        t += cycle
                    due[(ch, ident)] = t
            frames.sort(key=lambda f: f.timestamp)
            session.ring.push_many(frames)

        def step(frame_time: float) -> tuple[float, float]:
            feed(frame_time)
            c0 = time.thread_time()
            workshop.tick()
            c1 = time.thread_time()
            app.processEvents()  # the paints the tick asked for
            return c1 - c0, time.thread_time() - c1

        step(t0 + 0.1)
        window.trace_view.expandAll()
        warm_end = time.monotonic() + 2.0
        while time.monotonic() < warm_end:
            step(t0 + 0.1 + time.monotonic() - warm_end + 2.0)
            time.sleep(1 / rate)
        ticks: list[float] = []
        paints: list[float] = []
        start = time.monotonic()
        base = t0 + 2.1
        n = 0
        while (now := time.monotonic()) < start + seconds:
            tick_cpu, paint_cpu = step(base + now - start)
            ticks.append(tick_cpu)
            paints.append(paint_cpu)
            n += 1
            pause = start + n / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)  # pacing only: the figures are CPU times, not waits
        wall = time.monotonic() - start
        frames = session.store.total_frames
        window.close()
    print(
        f"{channels} channel(s), {len(messages)} messages each, {frames / (wall + 2.1):,.0f} frames/s, "
        f"{len(ticks)} ticks in {wall:.1f} s ({len(ticks) / wall:.1f}/s)"
    )
    print(
        f"  tick CPU  p50 {pct(ticks, 0.5) * 1e3:6.2f}  p95 {pct(ticks, 0.95) * 1e3:6.2f}  "
        f"p99 {pct(ticks, 0.99) * 1e3:6.2f} ms   {sum(ticks) / wall * 100:5.1f}% of a core"
    )
    print(
        f"  paint CPU p50 {pct(paints, 0.5) * 1e3:6.2f}  p95 {pct(paints, 0.95) * 1e3:6.2f}  "
        f"p99 {pct(paints, 0.99) * 1e3:6.2f} ms   {sum(paints) / wall * 100:5.1f}% of a core"
    )
    print(f"  load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(
        float(args[0]) if args else 15.0,
        float(args[1]) if len(args) > 1 else 30.0,
        int(args[2]) if len(args) > 2 else 4,
    )
