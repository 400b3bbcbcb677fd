"""How frame batches should travel from the capture process to the window: pipe or shared memory.

Run: .venv/bin/python benchmarks/capture_transport.py [--frames 2000000]

Both variants move the same packed columns (core/capture/columns.py) from a spawned producer
to this process and unpack them here:
- pipe: ``send_bytes`` of each packed batch (what the capture process does);
- shared memory: the producer copies each batch into a slot of a shared ring and sends the
  slot number and size over a pipe; the consumer unpacks in place, then hands the slot back.
Printed per batch size: frames/s through the hop (no other work), and the consumer's CPU per
million frames (the window's cost, the one that matters), plus the cost of building Frame
objects from the columns for consumers that still take frames.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from multiprocessing import shared_memory
from multiprocessing.connection import Connection

from workshop_app.core.capture.columns import FrameColumns
from workshop_app.core.types import Frame

SLOTS = 16


def batch(n: int) -> bytes:
    frames = [Frame(1.0 + i * 1e-4, 0x100 + i % 60, os.urandom(8), f"can{i % 4}") for i in range(n)]
    return FrameColumns.from_frames(frames).pack()


def pipe_producer(conn: Connection, size: int, count: int) -> None:
    payload = batch(size)
    conn.recv()
    for _ in range(count):
        conn.send_bytes(payload)
    conn.send_bytes(b"")


def shm_producer(conn: Connection, name: str, slot_bytes: int, size: int, count: int) -> None:
    shm = shared_memory.SharedMemory(name=name)
    payload = batch(size)
    free = list(range(SLOTS))
    conn.recv()
    for _ in range(count):
        while not free:
            free.append(conn.recv())
        slot = free.pop()
        shm.buf[slot * slot_bytes : slot * slot_bytes + len(payload)] = payload
        conn.send((slot, len(payload)))
    conn.send(None)
    shm.close()


def run_pipe(size: int, count: int) -> tuple[float, float]:
    ctx = multiprocessing.get_context("spawn")
    here, there = ctx.Pipe()
    p = ctx.Process(target=pipe_producer, args=(there, size, count))
    p.start()
    here.send("go")
    t0, c0 = time.perf_counter(), time.process_time()
    frames = 0
    while buf := here.recv_bytes():
        frames += len(FrameColumns.unpack(buf))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    p.join()
    return frames / wall, cpu / frames * 1e6


def run_shm(size: int, count: int) -> tuple[float, float]:
    ctx = multiprocessing.get_context("spawn")
    slot_bytes = len(batch(size))
    shm = shared_memory.SharedMemory(create=True, size=slot_bytes * SLOTS)
    here, there = ctx.Pipe()
    p = ctx.Process(target=shm_producer, args=(there, shm.name, slot_bytes, size, count))
    p.start()
    here.send("go")
    t0, c0 = time.perf_counter(), time.process_time()
    frames = 0
    while (msg := here.recv()) is not None:
        slot, n = msg
        view = shm.buf[slot * slot_bytes : slot * slot_bytes + n]
        cols = FrameColumns.unpack(bytes(view))  # a copy: the slot is reused once handed back
        view.release()
        frames += len(cols)
        here.send(slot)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    p.join()
    shm.close()
    shm.unlink()
    return frames / wall, cpu / frames * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=2_000_000)
    args = parser.parse_args()
    for size in (200, 700, 5000):  # ~1 bus, ~4 buses per 20 ms tick, and a burst
        count = max(1, args.frames // size)
        pipe_rate, pipe_cpu = run_pipe(size, count)
        shm_rate, shm_cpu = run_shm(size, count)
        print(
            f"batch {size:5d}: pipe {pipe_rate:12,.0f} frames/s, window CPU {pipe_cpu:.3f} s per M frames | "
            f"shared memory {shm_rate:12,.0f} frames/s, window CPU {shm_cpu:.3f} s per M frames"
        )
    cols = FrameColumns.unpack(batch(100_000))
    t0 = time.perf_counter()
    cols.to_frames()
    print(f"Frame objects from columns: {(time.perf_counter() - t0) / 100_000 * 1e6:.2f} µs per frame")


if __name__ == "__main__":
    main()
