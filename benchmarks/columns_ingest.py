"""Columnar ingestion: the window's per-batch work with and without a Frame per frame.

Run: .venv/bin/python benchmarks/columns_ingest.py [--frames 12000] [--rounds 5]

The demo car runs on a python-can virtual bus and its traffic is recorded (``--frames`` frames,
its own message mix and cycle times); the recording is cut into batches of 600 and 5,000 frames,
as the capture process sends them (packed columns, unpacked into read-only views). For each batch
size two ways are timed over the same batches, each with a fresh store and decoder subscribed to
the 16 signals ``benchmarks/live.py`` plots:

- ``frames`` (the baseline, today's path): ``to_frames`` + ``FrameStore.ingest`` + ``LiveDecoder.process``;
- ``columns``: ``FrameStore.ingest_columns`` + ``LiveDecoder.process_columns``.

Printed: the best of ``--rounds`` rounds in µs per frame, and the speed-up.
"""

from __future__ import annotations

import argparse
import time
import uuid
from dataclasses import replace

import can
from plotted_signals import PLOTTED

from workshop_app.core.capture.columns import FrameColumns
from workshop_app.core.capture.store import FrameStore
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.decode.live import LiveDecoder
from workshop_app.core.sim.demo_vehicle import DemoVehicle
from workshop_app.core.types import Frame
from workshop_app.paths import demo_dbc_path


def record_demo_car(n: int) -> list[Frame]:
    """``n`` frames of the demo car (engine running), as received from its bus."""
    channel = f"bench-{uuid.uuid4().hex[:8]}"
    car_bus = can.Bus(interface="virtual", channel=channel, receive_own_messages=False)
    rx = can.Bus(interface="virtual", channel=channel)
    car = DemoVehicle(car_bus, start_at=15.0, listen=False, channel="can0")
    frames: list[Frame] = []
    car.start()
    try:
        while len(frames) < n:
            msg = rx.recv(timeout=5.0)
            if msg is None:
                raise RuntimeError("the demo car sent nothing for 5 s")
            frames.append(Frame.from_message(msg, "can0"))
    finally:
        car.stop()
        car_bus.shutdown()
        rx.shutdown()
    return frames


def _decoder(dbs: DatabaseSet) -> LiveDecoder:
    decoder = LiveDecoder(dbs)
    for message, signal in PLOTTED:
        decoder.subscribe(message, signal)
    return decoder


def run_frames(batches: list[FrameColumns], dbs: DatabaseSet) -> float:
    store, decoder = FrameStore(), _decoder(dbs)
    start = time.perf_counter()
    for cols in batches:
        frames = cols.to_frames()
        store.ingest(frames)
        decoder.process(frames)
    return time.perf_counter() - start


def run_columns(batches: list[FrameColumns], dbs: DatabaseSet) -> float:
    store, decoder = FrameStore(), _decoder(dbs)
    start = time.perf_counter()
    for cols in batches:
        store.ingest_columns(cols)
        decoder.process_columns(cols)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=6_000, help="frames of the demo car to record")
    parser.add_argument("--repeat", type=int, default=4, help="the recording played this many times in a row")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per way; the best is printed")
    args = parser.parse_args()
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    t0 = time.perf_counter()
    frames = record_demo_car(args.frames)
    ids = {f.arbitration_id for f in frames}
    print(f"recorded {len(frames):,} frames of {len(ids)} ids in {time.perf_counter() - t0:.1f} s")
    # Played again right after itself: the same mix, later timestamps.
    span = frames[-1].timestamp - frames[0].timestamp + 0.001
    frames = [replace(f, timestamp=f.timestamp + k * span) for k in range(args.repeat) for f in frames]
    for size in (600, 5_000):
        # As the link delivers them: packed, then unpacked into views on the received bytes.
        batches = [
            FrameColumns.unpack(FrameColumns.from_frames(frames[i : i + size]).pack())
            for i in range(0, len(frames) - size + 1, size)
        ]
        n = sum(len(b) for b in batches)
        best_frames = min(run_frames(batches, dbs) for _ in range(args.rounds)) / n * 1e6
        best_columns = min(run_columns(batches, dbs) for _ in range(args.rounds)) / n * 1e6
        print(
            f"batches of {size:>5,}: frames (to_frames + ingest + process) {best_frames:6.2f} µs/frame, "
            f"columns (ingest_columns + process_columns) {best_columns:6.2f} µs/frame, "
            f"speed-up {best_frames / best_columns:4.1f}x"
        )


if __name__ == "__main__":
    main()
