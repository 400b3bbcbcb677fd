"""Open any log as FrameColumns: fast readers where we have them, python-can otherwise."""

from __future__ import annotations

from pathlib import Path

from workshop_app.core.logfiles import iter_log, readable_log
from workshop_app.core.logs.asc_reader import read_asc
from workshop_app.core.logs.blf_reader import read_blf
from workshop_app.core.logs.candump_reader import read_candump
from workshop_app.core.logs.columns import Cancel, FrameColumns, Progress
from workshop_app.core.logs.mf4_reader import read_mf4
from workshop_app.core.logs.mf4_recover import readable_mf4
from workshop_app.core.logs.trc_reader import read_trc


def read_columns(
    path: str | Path, *, progress: Progress | None = None, cancel: Cancel | None = None
) -> FrameColumns:
    """Every frame of a log file as columns.

    BLF, candump, ASC and TRC (also gzipped) and MF4 files go straight to arrays; CSV and SQLite
    are read through python-can's readers. Errors name the file and the position; the
    frames read before a problem are on the exception's ``partial`` attribute.
    """
    p, suffix = readable_log(path)
    if suffix == ".blf" and p.suffix.lower() == ".blf":
        return read_blf(p, progress=progress, cancel=cancel)
    if suffix == ".log":
        return read_candump(p, progress=progress, cancel=cancel)
    if suffix == ".asc":
        return read_asc(p, progress=progress, cancel=cancel)
    if suffix == ".trc":
        return read_trc(p, progress=progress, cancel=cancel)
    if suffix == ".mf4" and p.suffix.lower() == ".mf4":
        # A recording of ours cut off by a crash: read as it is, or through a repaired copy.
        with readable_mf4(p) as source:
            return read_mf4(source, progress=progress, cancel=cancel)
    return FrameColumns.from_messages(iter_log(p))
