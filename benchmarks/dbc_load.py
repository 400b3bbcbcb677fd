"""Loading time of the tolerant database loader against plain cantools, on the real DBCs.

Run: .venv/bin/python benchmarks/dbc_load.py [tests/data/dbc]
Baseline (same run): cantools.database.load_file(strict=False). tesla_can.dbc has no baseline:
cantools refuses it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cantools

from workshop_app.core.decode.database import load_database

ROOT = Path(__file__).resolve().parents[1]


def best_of(fn, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "data" / "dbc"
    print(f"{'file':<44} {'ours s':>8} {'cantools s':>10} {'ratio':>6} {'warnings':>8}")
    for path in sorted(folder.glob("*.dbc")):
        loaded = load_database(path)
        ours = best_of(lambda p=path: load_database(p))
        try:
            theirs = best_of(lambda p=path: cantools.database.load_file(p, strict=False))
            ratio = f"{ours / theirs:6.2f}"
            theirs_text = f"{theirs:10.3f}"
        except Exception:
            ratio, theirs_text = "     -", "   refused"
        print(f"{path.name:<44} {ours:8.3f} {theirs_text} {ratio} {len(loaded.warnings):8d}")


if __name__ == "__main__":
    main()
