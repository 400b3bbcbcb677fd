"""Open any log as FrameColumns: fast readers where we have them, python-can otherwise."""

from __future__ import annotations

import gzip
import re
import zlib
from pathlib import Path

import can

from workshop_app.core.errors import LogFileError
from workshop_app.core.logfiles import iter_log, readable_log
from workshop_app.core.logs.asc_reader import read_asc
from workshop_app.core.logs.blf_reader import read_blf
from workshop_app.core.logs.candump_reader import read_candump
from workshop_app.core.logs.columns import Cancel, FrameColumns, Progress, log_error
from workshop_app.core.logs.mf4_reader import read_mf4
from workshop_app.core.logs.mf4_recover import readable_mf4
from workshop_app.core.logs.notes import LogNotes, LogRead, drop_impossible, printable
from workshop_app.core.logs.trc_reader import read_trc

# What each text format is called in "X is not a … log".
_TEXT_NAMES = {".log": "candump", ".asc": "ASC", ".trc": "TRC", ".csv": "CSV"}
_SNIFF_BYTES = 64 << 10
_SLOW_NAMES = {".csv": "CSV", ".db": "SQLite", ".blf": "BLF", ".mf4": "MF4"}  # read by python-can


def _head(path: Path) -> bytes:
    """The first bytes of the (decompressed) file, for a look at what it holds."""
    try:
        if path.suffix.lower() == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read(_SNIFF_BYTES)
        with path.open("rb") as fh:
            return fh.read(_SNIFF_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise log_error(f"{path}: cannot read ({exc})", FrameColumns.empty()) from exc


def _binary(head: bytes) -> bool:
    """True when ``head`` is not text: a NUL byte, or more than 1 % control bytes or invalid UTF-8."""
    if b"\x00" in head:
        return True
    text = head.decode("utf-8", "replace")
    odd = sum(1 for ch in text if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\t\n\r\f"))
    return odd > max(len(head) // 100, 2)


def _a(name: str) -> str:
    """The article as the name is spoken: "an ASC", "a candump", "a TRC"."""
    return f"an {name}" if name[0] in "AEFHILMNORSX" else f"a {name}"


# A line any log of the format has (header, comment or frame line), looked for in its first bytes.
_FORMAT_LINE = {
    ".asc": re.compile(rb"^\s*(date |base |begin triggerblock|//|\d+\.\d+\s)", re.IGNORECASE | re.MULTILINE),
    ".trc": re.compile(rb"^\s*(;|\d+\)?\s)", re.MULTILINE),
    ".log": re.compile(rb"^\s*\(", re.MULTILINE),
}


def _looks_like(suffix: str, head: bytes) -> bool:
    """Whether ``head`` has a line of the format (True for a blank file or no known pattern)."""
    pattern = _FORMAT_LINE.get(suffix)
    return pattern is None or not head.strip() or pattern.search(head) is not None


def _first_line(head: bytes) -> str:
    for line in head.splitlines():
        if line.strip():
            return printable(line.strip(), 60)
    return "''"


def read_log(path: str | Path, *, progress: Progress | None = None, cancel: Cancel | None = None) -> LogRead:
    """Every frame of a log file that can be recovered, and what was wrong with the file.

    Damage (a cut BLF container, a malformed line) and impossible frames are skipped and
    listed on the result, never raised. A missing file, a directory, a file that is not a log
    of its suffix's format (random bytes named ``.asc``), or an MF4 cut before its metadata
    raise LogFileError with one printable line.
    """
    p, suffix = readable_log(path)
    notes = LogNotes(p)
    if p.stat().st_size == 0:
        return LogRead.of(FrameColumns.empty(), notes)
    name = _TEXT_NAMES.get(suffix)
    head = _head(p) if name is not None else b""
    if name is not None and _binary(head):
        raise log_error(
            f"{p} is not {_a(name)} log (binary data: {printable(head[:24])})", FrameColumns.empty(), offset=0
        )
    fast = {".log": read_candump, ".asc": read_asc, ".trc": read_trc}.get(suffix)
    if suffix == ".blf" and p.suffix.lower() == ".blf":
        frames = read_blf(p, progress=progress, cancel=cancel, notes=notes)
    elif fast is not None:
        frames = fast(p, progress=progress, cancel=cancel, notes=notes)
    elif suffix == ".mf4" and p.suffix.lower() == ".mf4":
        # A recording of ours cut off by a crash: read as it is, or through a repaired copy.
        with readable_mf4(p) as source:
            if source != p:  # say so: the user may not know the recorder never closed it
                notes.damage(
                    "unfinished MF4 recording (still being written, or its recorder was killed): "
                    "read as far as it was flushed; `workshop repair` finishes the file"
                )
            frames = read_mf4(source, progress=progress, cancel=cancel, notes=notes)
    else:
        messages: list[can.Message] = []
        try:
            messages.extend(iter_log(p))
        except LogFileError as exc:
            if not messages:  # not one frame: python-can's reader does not take it for its format
                reason = printable(str(exc.__cause__ or exc), 80)[1:-1]
                raise log_error(
                    f"{p} is not {_a(_SLOW_NAMES[suffix])} log ({reason})", FrameColumns.empty()
                ) from None
            notes.damage(str(exc).removeprefix(f"{p}: "))  # keep the frames before it
        for msg in messages:
            # python-can's CSV and SQLite layouts have no FD flag: a frame longer than classic
            # CAN allows was CAN FD when recorded (a length no FD frame has is still refused).
            if not msg.is_fd and len(msg.data) > 8:
                msg.is_fd = True
        frames = drop_impossible(FrameColumns.from_messages(messages), notes)
    if name is not None and not len(frames) and (notes.damaged or not _looks_like(suffix, head)):
        # Not one line of the file was a frame, and nothing in it is of the format (ASC and TRC
        # skip unknown lines silently): it is some other text, not a damaged log.
        raise log_error(f"{p} is not {_a(name)} log (first line: {_first_line(head)})", frames, offset=0)
    return LogRead.of(frames, notes)


def read_columns(
    path: str | Path, *, progress: Progress | None = None, cancel: Cancel | None = None
) -> FrameColumns:
    """Every frame of a log file as columns, strictly: any damage or impossible frame raises.

    BLF, candump, ASC and TRC (also gzipped) and MF4 files go straight to arrays; CSV and SQLite
    are read through python-can's readers. Errors name the file and the position (the first
    problem); every frame that could be recovered is on the exception's ``partial`` and the
    full list of problems on ``notes``. :func:`read_log` is the tolerant form.
    """
    read = read_log(path, progress=progress, cancel=cancel)
    if read.notes:
        notes = LogNotes(Path(path), list(read.notes), read.damaged, read.rejected)
        raise notes.error(read.frames)
    return read.frames
