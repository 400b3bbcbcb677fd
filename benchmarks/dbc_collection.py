"""How many DBCs of a whole collection load, and how long that takes, against plain cantools.

Run: .venv/bin/python benchmarks/dbc_collection.py FOLDER   (e.g. a checkout of commaai/opendbc)
Every *.dbc under FOLDER is loaded once by each loader. Baseline (same run):
cantools.database.load_file(strict=False), counted as "empty" when it loads no message
(a generator file whose IMPORT lines cantools reads as comments).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import cantools

from workshop_app.core.decode.database import load_database
from workshop_app.core.errors import DatabaseError


def _ours(path: Path) -> tuple[str, int]:
    try:
        loaded = load_database(path)
    except DatabaseError as exc:
        return f"failed: {exc}", 0
    return ("loaded" if loaded.db.messages else "empty"), len(loaded.warnings)


def _cantools(path: Path) -> str:
    try:
        db = cantools.database.load_file(path, strict=False)
    except Exception:
        return "failed"
    return "loaded" if db.messages else "empty"


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    paths = sorted(Path(sys.argv[1]).rglob("*.dbc"))
    logging.disable(logging.CRITICAL)  # cantools logs every overwritten message
    t0 = time.perf_counter()
    ours = [_ours(p) for p in paths]
    ours_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = [_cantools(p) for p in paths]
    theirs_s = time.perf_counter() - t0
    print(f"{len(paths)} DBC files under {sys.argv[1]}")
    for name, results, seconds in (
        ("cantools strict=False (baseline)", theirs, theirs_s),
        ("workshop load_database", [r for r, _ in ours], ours_s),
    ):
        loaded = sum(r == "loaded" for r in results)
        empty = sum(r == "empty" for r in results)
        failed = len(results) - loaded - empty
        print(f"  {name:<34} loaded {loaded:4d}  empty {empty:3d}  failed {failed:3d}  {seconds:6.1f} s")
    print(f"  warnings reported by workshop: {sum(w for _, w in ours)}")
    for path, (result, _) in zip(paths, ours, strict=True):
        if result != "loaded":
            print(f"  {path}: {result}")


if __name__ == "__main__":
    main()
