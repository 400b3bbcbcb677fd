"""Open any log as FrameColumns: fast readers where we have them, python-can otherwise."""

from __future__ import annotations

from pathlib import Path

from workshop_app.core.errors import LogFileError
from workshop_app.core.logfiles import READABLE_SUFFIXES, iter_log, log_suffix
from workshop_app.core.logs.blf_reader import read_blf
from workshop_app.core.logs.candump_reader import read_candump
from workshop_app.core.logs.columns import Cancel, FrameColumns, Progress


def read_columns(
    path: str | Path, *, progress: Progress | None = None, cancel: Cancel | None = None
) -> FrameColumns:
    """Every frame of a log file as columns.

    BLF and candump files go straight to arrays; the other formats (ASC, TRC, CSV, SQLite,
    MF4) are read through python-can's readers. Errors name the file and the position; the
    frames read before a problem are on the exception's ``partial`` attribute.
    """
    p = Path(path)
    if not p.is_file():
        raise LogFileError(f"{p}: no such file")
    suffix = log_suffix(p)
    if suffix not in READABLE_SUFFIXES:
        raise LogFileError(
            f"{p}: unknown log format {suffix or '(no suffix)'!r}; readable: {', '.join(READABLE_SUFFIXES)}"
        )
    if suffix == ".blf" and p.suffix.lower() == ".blf":
        return read_blf(p, progress=progress, cancel=cancel)
    if suffix == ".log":
        return read_candump(p, progress=progress, cancel=cancel)
    return FrameColumns.from_messages(iter_log(p))
