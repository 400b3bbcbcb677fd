"""Sustained throughput of the Recorder per log format, against python-can's writer per frame.

Run: .venv/bin/python benchmarks/recorder.py [--frames N] [--batch B] [--formats blf,mf4,...]

"ours": ``Recorder.write`` in batches of ``--batch`` frames (300 ≈ one 30 Hz GUI tick at
~9k frames/s, a loaded 1 Mbit/s bus), timed from the first ``write`` until ``stop`` returns
with the file closed; the producer never waits, so this is the recorder thread's rate.
Baseline (same run, same frames): python-can's writer for the format, fed one ``can.Message``
per call on one thread, including the same Frame -> Message conversion and the final ``stop``.
TRC: python-can's writer cannot store CAN FD, remote or error frames (1 in 20 frames here is FD);
the Recorder skips and counts them as dropped, python-can's writer skips them with a log line
(silenced here).
"""

from __future__ import annotations

import argparse
import logging
import random
import tempfile
import time
from pathlib import Path

import can

from workshop_app.core.capture.recorder import Recorder, _channel_number
from workshop_app.core.types import Frame

# (label, file suffix)
FORMATS = {
    "blf": ("BLF", ".blf"),
    "asc": ("ASC", ".asc"),
    "trc": ("TRC", ".trc"),
    "candump": ("candump", ".log"),
    "csv": ("CSV", ".csv"),
    "mf4": ("MF4", ".mf4"),
    "sqlite": ("SQLite", ".db"),
}
# A loaded bus needs ~9k frames/s (classic 1 Mbit/s, 8749 typical): anything slower falls behind.
BUS_RATE = 8_749


def make_frames(n: int, seed: int = 1) -> list[Frame]:
    """A 60-message vehicle: mostly 8-byte classic frames, some extended ids, 1 in 20 CAN FD."""
    rng = random.Random(seed)
    ids = [(rng.randrange(0x100, 0x7FF), False) for _ in range(50)] + [
        (rng.randrange(0x1000_0000), True) for _ in range(10)
    ]
    t = 1_700_000_000.0
    frames = []
    for i in range(n):
        t += 1 / BUS_RATE
        ident, ext = ids[i % len(ids)]
        if i % 20 == 0:
            frames.append(Frame(t, ident, rng.randbytes(64), "can0", ext, True, bitrate_switch=True))
        else:
            frames.append(Frame(t, ident, rng.randbytes(8), "can0", ext))
    return frames


def run_ours(path: Path, frames: list[Frame], batch: int) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    rec = Recorder(path, max_queued_frames=len(frames) + 1)
    for i in range(0, len(frames), batch):
        rec.write(frames[i : i + batch])
    summary = rec.stop()
    elapsed = time.perf_counter() - t0
    if summary.error:
        raise RuntimeError(summary.error)
    return elapsed, summary.frames_written, summary.frames_dropped


def run_python_can(path: Path, frames: list[Frame]) -> float:
    t0 = time.perf_counter()
    writer = can.Logger(path)
    numeric = path.suffix != ".log"
    for frame in frames:
        msg = frame.to_message()
        if numeric:
            msg.channel = _channel_number(frame.channel)
        writer.on_message_received(msg)
    writer.stop()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=300)
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated: " + ", ".join(FORMATS))
    args = parser.parse_args()
    logging.getLogger("can.io.trc").setLevel(logging.ERROR)

    frames = make_frames(args.frames)
    print(f"{args.frames:,} frames per format, Recorder batches of {args.batch}; bus needs ~{BUS_RATE:,}/s")
    print("frames/s = frames handed over / seconds until the file is closed")
    print(
        f"{'format':<8} {'ours frames/s':>14} {'python-can/frame':>17} {'ratio':>6} {'size MB':>8}  dropped"
    )
    with tempfile.TemporaryDirectory(prefix="recorder-bench-") as tmp:
        for key in args.formats.split(","):
            label, suffix = FORMATS[key]
            ours_path = Path(tmp) / f"ours{suffix}"
            elapsed, _written, dropped = run_ours(ours_path, frames, args.batch)
            size = ours_path.stat().st_size / 1e6
            ours_path.unlink()
            if key == "sqlite":
                # python-can's SqliteWriter loses queued frames at stop(): no fair baseline.
                base_rate = "n/a"
                ratio = ""
            else:
                base_path = Path(tmp) / f"base{suffix}"
                base = run_python_can(base_path, frames)
                base_path.unlink()
                base_rate = f"{len(frames) / base:,.0f}"
                ratio = f"{base / elapsed:5.1f}x"
            print(
                f"{label:<8} {len(frames) / elapsed:>14,.0f} {base_rate:>17} {ratio:>6} {size:>8.1f}  {dropped}",
                flush=True,
            )


if __name__ == "__main__":
    main()
