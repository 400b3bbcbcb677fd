"""Load and decode a whole log: our columnar readers + vectorised decoder vs python-can + cantools.

Run: .venv/bin/python benchmarks/decode.py [--frames 10000000] [--formats blf asc log]

Generates a log of N frames (60 messages of ~8 signals each, cycle times 10 ms to 1 s, values
drifting like real signals) in each format, then in the same run times
  (a) the baseline: python-can ``LogReader`` + cantools ``decode_message`` per frame, on a
      sample of 200k frames, extrapolated to N;
  (b) ours: ``read_columns`` + ``decode_columns`` over the whole file, in a fresh process so its
      peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import can
import cantools
import numpy as np

from workshop_app.core.capture.recorder import open_writer
from workshop_app.core.types import Frame

SAMPLE = 200_000


def make_dbc(path: Path, seed: int = 1) -> list[tuple[int, int, float]]:
    """A 60-message database; returns (id, length, cycle seconds) per message."""
    rng = random.Random(seed)
    lines = ['VERSION ""', "NS_ :", "BS_:", "BU_: ECU", ""]
    messages = []
    cycles = [0.01] * 12 + [0.02] * 14 + [0.05] * 10 + [0.1] * 14 + [0.5] * 6 + [1.0] * 4
    for i in range(60):
        ident = 0x100 + i * 7
        lines.append(f"BO_ {ident} MSG_{i:02d}: 8 ECU")
        bit = 0
        for k in range(8):
            length = 8
            intel = rng.random() < 0.7
            signed = rng.random() < 0.3
            scale = rng.choice([1, 0.1, 0.25, 0.01])
            start = bit if intel else bit + 7  # Motorola MSB of the same byte
            lines.append(
                f' SG_ S{k} : {start}|{length}@{1 if intel else 0}{"-" if signed else "+"} ({scale},0) [0|0] "" ECU'
            )
            bit += 8
        lines.append("")
        messages.append((ident, 8, cycles[i]))
    path.write_text("\n".join(lines) + "\n")
    return messages


def write_log(path: Path, messages: list[tuple[int, int, float]], n: int, seed: int = 2) -> None:
    rng = np.random.default_rng(seed)
    rates = np.array([1 / c for _, _, c in messages])
    # Frame i of the log belongs to a message drawn by its share of the traffic.
    which = rng.choice(len(messages), size=n, p=rates / rates.sum())
    t = 1_700_000_000.0 + np.cumsum(rng.exponential(1 / rates.sum(), size=n))
    state = rng.integers(0, 256, size=(len(messages), 8)).astype(np.int64)
    # Written through the recorder's writers (batched MF4; python-can's for the others).
    writer = open_writer(path)
    batch: list[Frame] = []
    for i in range(n):
        m = which[i]
        if i % 7 == 0:  # drift a few bytes, as real signals do
            state[m] = (state[m] + rng.integers(-2, 3, size=8)) % 256
        batch.append(Frame(float(t[i]), messages[m][0], bytes(state[m].astype(np.uint8)), "can0", False))
        if len(batch) == 10_000:
            writer.write_frames(batch)
            batch = []
    writer.write_frames(batch)
    writer.close()


def baseline(log: Path, dbc: Path, n: int) -> float:
    """python-can reader + cantools per frame on a sample; seconds extrapolated to n frames."""
    db = cantools.database.load_file(dbc)
    t0 = time.perf_counter()
    count = 0
    for msg in can.LogReader(log):
        db.decode_message(msg.arbitration_id, msg.data, decode_choices=False)
        count += 1
        if count >= SAMPLE:
            break
    return (time.perf_counter() - t0) / count * n


OURS = """
import json, resource, sys, time
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.decode.vectorized import decode_columns
from workshop_app.core.logs.reader import read_columns
log, dbc = sys.argv[1], sys.argv[2]
dbs = DatabaseSet(); dbs.add(dbc)
t0 = time.perf_counter()
cols = read_columns(log)
t1 = time.perf_counter()
result = decode_columns(cols, dbs)
t2 = time.perf_counter()
values = sum(len(s) for s in result.signals.values())
print(json.dumps({"frames": len(cols), "load": t1 - t0, "decode": t2 - t1, "values": values,
                  "decoded": result.decoded_frames, "bytes_per_frame": cols.nbytes / max(1, len(cols)),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=10_000_000)
    parser.add_argument("--formats", nargs="+", default=["blf", "asc", "log"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dbc = Path(tmp) / "bench.dbc"
        messages = make_dbc(dbc)
        for fmt in args.formats:
            log = Path(tmp) / f"bench.{fmt}"
            t0 = time.perf_counter()
            write_log(log, messages, args.frames)
            gen = time.perf_counter() - t0
            base = baseline(log, dbc, args.frames)
            out = subprocess.run(
                [sys.executable, "-c", OURS, str(log), str(dbc)], capture_output=True, text=True, check=True
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            total = r["load"] + r["decode"]
            print(
                f"== {fmt.upper()}: {r['frames']:,} frames, {log.stat().st_size / 1e6:.0f} MB (written in {gen:.0f} s)"
            )
            print(
                f"   baseline python-can LogReader + cantools: {base:8.1f} s  {args.frames / base:12,.0f} frames/s (extrapolated)"
            )
            print(
                f"   ours: load {r['load']:.2f} s + decode {r['decode']:.2f} s = {total:.2f} s "
                f"{r['frames'] / total:12,.0f} frames/s   {base / total:.1f}x faster"
            )
            print(
                f"   {r['values']:,} values decoded from {r['decoded']:,} frames; "
                f"{r['bytes_per_frame']:.0f} bytes/frame in memory; peak RSS {r['peak_mb']:.0f} MB"
            )
            sys.stdout.flush()
            log.unlink()


if __name__ == "__main__":
    main()
