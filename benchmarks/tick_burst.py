"""A burst in the ring: how long one tick takes with and without the per-tick cap.

Run: .venv/bin/python benchmarks/tick_burst.py [frames]

A burst (a replay at full speed, a backlog after the window was busy) leaves many frames in the
ring. Uncapped, one tick takes them all and the window freezes for that long; capped at
``TICK_MAX_FRAMES``, the same frames are taken over several ticks, each short. Frames are the
demo car's messages (16 of their signals decoded into series, as 16 plots would); the store,
decoder and subscribers do the same work in both runs.
"""

from __future__ import annotations

import statistics
import sys
import time

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.core.types import Frame
from workshop_app.core.workshop import TICK_MAX_FRAMES, WorkshopSession
from workshop_app.paths import demo_dbc_path


def _session(burst: list[Frame]) -> WorkshopSession:
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    session = WorkshopSession(SimulatorSource(FrameRing(len(burst) + 1)), dbs)  # never started
    signals = [(m.name, s.name) for loaded in dbs.databases for m in loaded.db.messages for s in m.signals]
    for message, signal in signals[:16]:
        session.capture.decoder.subscribe(message, signal, 100_000)
    session.ring.push_many(burst)
    return session


def main(n: int) -> None:
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    messages = [m for loaded in dbs.databases for m in loaded.db.messages if not m.is_extended_frame]
    t0 = time.time()
    burst = [
        Frame(
            t0 + i * 1e-4,
            m.frame_id,
            bytes((i + k) % 256 for k in range(m.length)),
            "can0",
            is_fd=m.length > 8,
        )
        for i in range(n)
        for m in (messages[i % len(messages)],)
    ]
    for label, cap in (("uncapped (before)", n), (f"capped at {TICK_MAX_FRAMES:,}", TICK_MAX_FRAMES)):
        session = _session(burst)
        ticks: list[float] = []
        while True:
            start = time.perf_counter()
            taken = len(session.tick(cap))
            ticks.append(time.perf_counter() - start)
            if taken < cap:
                break
        total = sum(ticks)
        print(
            f"{label:>22}: {len(ticks):3d} ticks, longest {max(ticks) * 1e3:8.1f} ms, "
            f"median {statistics.median(ticks) * 1e3:7.1f} ms, all {total:6.2f} s "
            f"({n / total:,.0f} frames/s), {session.capture.store.total_frames:,} frames"
        )
        session.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
