"""Read rate of the bulk BLF / candump readers against python-can's LogReader.

Run: .venv/bin/python benchmarks/readers.py [--frames N] [--fd-share F] [--repeat R]

Both files are written by python-can's own writers from the same random frames (classic 11/29-bit
ids with 0-8 bytes, plus ``--fd-share`` CAN FD frames of up to 64 bytes). Baseline: iterating
``can.LogReader`` over the file, one ``can.Message`` per frame, nothing else. "ours": the reader
returning FrameColumns. Best of ``--repeat`` runs each, wall clock, file in the page cache.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import can

from workshop_app.core.logs import FrameColumns, read_blf, read_candump


def make_messages(count: int, fd_share: float, seed: int = 1) -> list[can.Message]:
    rng = random.Random(seed)
    t = 1_700_000_000.0
    out = []
    for _ in range(count):
        t += rng.random() * 0.0005
        ext = rng.random() < 0.2
        ident = rng.getrandbits(29 if ext else 11)
        if rng.random() < fd_share:
            data = rng.randbytes(rng.choice([12, 16, 24, 32, 48, 64]))
            out.append(
                can.Message(
                    timestamp=t,
                    arbitration_id=ident,
                    is_extended_id=ext,
                    is_fd=True,
                    bitrate_switch=True,
                    data=data,
                    channel=1,
                )
            )
        else:
            data = rng.randbytes(8 if rng.random() < 0.8 else rng.randint(0, 8))
            out.append(
                can.Message(timestamp=t, arbitration_id=ident, is_extended_id=ext, data=data, channel=0)
            )
    return out


def best_of(repeat: int, fn: Callable[[], int]) -> tuple[float, int]:
    best = float("inf")
    count = 0
    for _ in range(repeat):
        start = time.perf_counter()
        count = fn()
        best = min(best, time.perf_counter() - start)
    return best, count


def python_can_count(path: Path) -> int:
    count = 0
    for _ in can.LogReader(path):
        count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--fd-share", type=float, default=0.0, help="share of CAN FD frames (0..1)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    print(f"generating {args.frames:,} frames ({args.fd_share:.0%} CAN FD) ...", flush=True)
    messages = make_messages(args.frames, args.fd_share)
    readers: dict[str, Callable[[Path], FrameColumns]] = {".blf": read_blf, ".log": read_candump}
    with tempfile.TemporaryDirectory() as tmp:
        for suffix, reader in readers.items():
            path = Path(tmp) / f"bench{suffix}"
            with can.Logger(path) as writer:
                for m in messages:
                    writer.on_message_received(m)
            size = path.stat().st_size
            base_s, base_n = best_of(args.repeat, lambda p=path: python_can_count(p))
            cols: list[FrameColumns] = []

            def ours(
                p: Path = path, r: Callable[[Path], FrameColumns] = reader, out: list[FrameColumns] = cols
            ) -> int:
                out[:] = [r(p)]
                return len(out[0])

            our_s, our_n = best_of(args.repeat, ours)
            if our_n != base_n:
                raise SystemExit(f"{suffix}: frame counts differ: ours {our_n}, python-can {base_n}")
            frames = cols[0]
            print(
                f"{suffix:5} {size / 1e6:7.1f} MB  python-can LogReader {base_n / base_s:>12,.0f} frames/s"
                f"  ours {our_n / our_s:>12,.0f} frames/s  ratio {base_s / our_s:5.1f}x"
                f"  FrameColumns {frames.nbytes / len(frames):.1f} bytes/frame (payload width {frames.payload.shape[1]})"
            )


if __name__ == "__main__":
    main()
