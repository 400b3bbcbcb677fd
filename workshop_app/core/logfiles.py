"""Reading and writing CAN log files through python-can, by file suffix, with clear errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import can

from workshop_app.core.errors import LogFileError

# Suffixes python-can can read back (".gz" variants of the text formats too).
READABLE_SUFFIXES = (".asc", ".blf", ".csv", ".db", ".log", ".mf4", ".trc")
# Only formats that read back: python-can's ".txt" (its Printer's text) has no reader, so a
# recording written to it could never be decoded, exported or replayed.
WRITABLE_SUFFIXES = READABLE_SUFFIXES


def log_suffix(path: Path) -> str:
    """The format suffix, looking through a trailing .gz (``trace.asc.gz`` → ``.asc``)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def readable_log(path: str | Path) -> tuple[Path, str]:
    """The path and its format suffix, or a LogFileError for a missing file or unknown format."""
    p = Path(path)
    if p.is_dir():
        raise LogFileError(f"{p} is a directory, not a log")
    if not p.exists():
        raise LogFileError(f"{p}: no such file")
    if not p.is_file():
        raise LogFileError(f"{p} is not a regular file, not a log")
    suffix = log_suffix(p)
    if suffix not in READABLE_SUFFIXES:
        raise LogFileError(
            f"{p}: unknown log format {suffix or '(no suffix)'!r}; readable: {', '.join(READABLE_SUFFIXES)}"
        )
    return p, suffix


def iter_log(path: str | Path) -> Iterator[can.Message]:
    """Yield the frames of a log file; errors name the file and the frame where reading stopped.

    A 0-byte file yields nothing. Frames read before an error have already been yielded, so a
    caller keeps them.
    """
    p, suffix = readable_log(path)
    if p.stat().st_size == 0:
        return
    count = 0
    try:
        reader = can.LogReader(p)
    except Exception as exc:
        raise LogFileError(f"{p}: cannot open as {suffix} log ({exc})") from exc
    try:
        for msg in reader:
            count += 1
            yield msg
    except LogFileError:
        raise
    except Exception as exc:
        raise LogFileError(f"{p}: unreadable after frame {count}: {exc}") from exc
    finally:
        stop = getattr(reader, "stop", None)
        if stop is not None:
            stop()
