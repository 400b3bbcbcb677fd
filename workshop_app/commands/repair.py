"""`workshop repair FILE.mf4 ...`: finish MF4 recordings a crash or a kill left unfinished.

The other formats need no repair: BLF, text and SQLite recordings are readable as a crash left
them (everything up to the last flush). An unfinished MF4 recording is readable too (the readers
finish a temporary copy); ``repair`` finishes the file itself, once, so every tool opens it.
"""

from __future__ import annotations

import argparse
import sys

from workshop_app.core.errors import LogFileError
from workshop_app.core.logfiles import log_suffix
from workshop_app.core.logs.mf4_recover import repair_mf4


def run(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        if log_suffix(path) != ".mf4" or path.suffix.lower() != ".mf4":
            print(
                f"workshop repair: error: {path}: only MF4 recordings need repairing; "
                "other formats are readable as a crash left them",
                file=sys.stderr,
            )
            status = 1
            continue
        try:
            result = repair_mf4(path, backup=not args.no_backup)
        except LogFileError as exc:
            print(f"workshop repair: error: {exc}", file=sys.stderr)
            status = 1
            continue
        if result.already_finished:
            print(f"{path}: finished already, nothing to repair")
            continue
        line = f"{path}: finished, {result.frames} frames"
        if result.recovered:
            line += f" ({result.recovered} written just before the crash recovered)"
        if result.discarded_blocks:
            line += f"; {result.discarded_blocks} damaged data chain(s) cut at the last good block"
        if result.backup is not None:
            line += f"; the file as it was is kept as {result.backup}"
        print(line)
    return status
