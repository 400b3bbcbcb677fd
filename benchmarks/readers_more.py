"""Read rate of the bulk MF4 / ASC / TRC readers against python-can's LogReader.

Run: .venv/bin/python benchmarks/readers_more.py [--frames N] [--fd-share F] [--repeat R] [--only .asc ...]

Each file is written by python-can's own writer from the same random frames (classic 11/29-bit
ids with 0-8 bytes, plus ``--fd-share`` CAN FD frames; the TRC writer drops FD frames). Baseline:
iterating ``can.LogReader`` over the file, one ``can.Message`` per frame. "ours": the reader
returning FrameColumns. Best of ``--repeat`` runs each (the slow baseline runs once), wall
clock, file in the page cache. Targets: MF4 >= 3 M frames/s, ASC and TRC >= 1 M frames/s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import can
from readers import best_of, make_messages, python_can_count

from workshop_app.core.logs.asc_reader import read_asc
from workshop_app.core.logs.columns import FrameColumns
from workshop_app.core.logs.mf4_reader import read_mf4
from workshop_app.core.logs.trc_reader import read_trc

READERS: dict[str, Callable[[Path], FrameColumns]] = {".mf4": read_mf4, ".asc": read_asc, ".trc": read_trc}


def write(path: Path, messages: list[can.Message]) -> None:
    start = time.perf_counter()
    with can.Logger(path) as writer:
        for m in messages:
            writer.on_message_received(m)
    print(f"  wrote {path.name} in {time.perf_counter() - start:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--fd-share", type=float, default=0.0, help="share of CAN FD frames (0..1)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=list(READERS), help="suffixes to run")
    args = parser.parse_args()

    print(f"generating {args.frames:,} frames ({args.fd_share:.0%} CAN FD) ...", flush=True)
    messages = make_messages(args.frames, args.fd_share)
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in args.only:
            reader = READERS[suffix]
            path = Path(tmp) / f"bench{suffix}"
            write(path, messages)
            size = path.stat().st_size
            base_s, base_n = best_of(1, lambda p=path: python_can_count(p))
            cols: list[FrameColumns] = []

            def ours(
                p: Path = path, r: Callable[[Path], FrameColumns] = reader, out: list[FrameColumns] = cols
            ) -> int:
                out[:] = [r(p)]
                return len(out[0])

            our_s, our_n = best_of(args.repeat, ours)
            if our_n != base_n:
                raise SystemExit(f"{suffix}: frame counts differ: ours {our_n}, python-can {base_n}")
            print(
                f"{suffix:5} {size / 1e6:7.1f} MB  python-can LogReader {base_n / base_s:>12,.0f} frames/s"
                f"  ours {our_n / our_s:>12,.0f} frames/s  ratio {base_s / our_s:5.1f}x",
                flush=True,
            )


if __name__ == "__main__":
    main()
