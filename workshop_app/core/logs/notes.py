"""What went wrong while reading a log, kept beside the frames instead of ending the read.

Readers add a :class:`LogNote` for each damaged place (a truncated or corrupt BLF container, a
malformed text line) and each impossible frame they refuse (a classic frame with 20 data bytes,
an id beyond 29 bits), then go on. A :class:`LogRead` carries the frames and those notes; the
commands print one warning line from it, or treat it as an error under ``--strict``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workshop_app.core.errors import LogFileError
from workshop_app.core.logs.columns import ERROR, EXTENDED, FD, REMOTE, FrameColumns, log_error

# Notes kept word for word; beyond this only the counts grow (a log of garbage lines must not
# build a million strings).
MAX_KEPT = 100
# Data lengths a CAN FD frame can have (its DLC codes 0..15).
FD_LENGTHS = np.zeros(256, bool)
FD_LENGTHS[[0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64]] = True
_ID_LIMIT = np.array([0x7FF, 0x1FFFFFFF], np.uint32)  # by the extended flag


def printable(raw: bytes | str, limit: int = 40) -> str:
    """``raw`` fit for one terminal line: non-printables escaped as ``\\xNN``, cut at ``limit``.

    A binary file's bytes must never reach the terminal as they are (they can move the cursor
    or switch the character set).
    """
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    cut = len(text) > limit
    out = []
    for ch in text[:limit]:
        code = ord(ch)
        if 32 <= code < 127:
            out.append("\\\\" if ch == "\\" else ch)
        elif code < 256:
            out.append(f"\\x{code:02x}")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(f"\\u{code:04x}")
    return "'" + "".join(out) + ("…" if cut else "") + "'"


@dataclass(frozen=True, slots=True)
class LogNote:
    """One damaged place or rejected frame: where (line or byte offset) and why."""

    path: Path
    reason: str
    line: int | None = None
    offset: int | None = None
    rejected: bool = False  # an impossible frame refused (False: damage to the file itself)

    def __str__(self) -> str:
        if self.line is not None:
            return f"{self.path}:{self.line}: {self.reason}"
        if self.offset is not None:
            return f"{self.path}: {self.reason} at byte {self.offset}"
        return f"{self.path}: {self.reason}"


@dataclass
class LogNotes:
    """The collector a reader fills; counts everything, keeps the first MAX_KEPT notes."""

    path: Path
    notes: list[LogNote] = field(default_factory=list)
    damaged: int = 0
    rejected: int = 0

    def damage(self, reason: str, *, line: int | None = None, offset: int | None = None) -> None:
        self.damaged += 1
        self._keep(LogNote(self.path, reason, line, offset))

    def reject(
        self, reason: str, *, line: int | None = None, offset: int | None = None, count: int = 1
    ) -> None:
        self.rejected += count
        self._keep(LogNote(self.path, reason, line, offset, rejected=True))

    def _keep(self, note: LogNote) -> None:
        if len(self.notes) < MAX_KEPT:
            self.notes.append(note)

    def __bool__(self) -> bool:
        return bool(self.damaged or self.rejected)

    def error(self, frames: FrameColumns) -> LogFileError:
        """The strict reading: the first note as an error, every frame read on ``partial``."""
        first = self.notes[0]
        where = {k: v for k, v in (("line", first.line), ("offset", first.offset)) if v is not None}
        exc = log_error(str(first), frames, **where)
        exc.notes = self  # type: ignore[attr-defined]
        return exc


@dataclass(frozen=True, eq=False)
class LogRead:
    """The frames of a log and what was wrong with it (nothing, for a sound file)."""

    frames: FrameColumns
    notes: tuple[LogNote, ...] = ()
    damaged: int = 0
    rejected: int = 0

    @classmethod
    def of(cls, frames: FrameColumns, notes: LogNotes) -> LogRead:
        return cls(frames, tuple(notes.notes), notes.damaged, notes.rejected)

    def warning(self) -> str | None:
        """One line for stderr, or None: counts, then the first place with its reason."""
        if not self.notes:
            return None
        parts = []
        if self.damaged:
            parts.append(f"{self.damaged:,} damaged place{'s' if self.damaged != 1 else ''} skipped")
        if self.rejected:
            parts.append(f"{self.rejected:,} impossible frame{'s' if self.rejected != 1 else ''} rejected")
        return f"{'; '.join(parts)}, {len(self.frames):,} frames kept; first: {self.notes[0]}"


def impossible(arbitration_id: np.ndarray, flags: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Rows no CAN bus can carry: ids beyond 11/29 bits, data beyond 8 bytes on classic CAN,
    an FD length no DLC gives, a remote DLC beyond 15. Error frames carry no id or length of
    their own: never flagged."""
    n = len(arbitration_id)
    bad: np.ndarray | None = None
    # Each test runs only when a cheap maximum says it can fail: the readers call this on
    # every chunk, and in a sound log ids fit 11 bits or are extended, lengths fit 8 bytes.
    if n and int(length.max()) > 8:
        remote = (flags & REMOTE) != 0
        fd = (flags & FD) != 0
        bad = np.where(remote, length > 15, np.where(fd, ~FD_LENGTHS[length], length > 8))
    if n and int(arbitration_id.max()) > 0x7FF:
        limit = _ID_LIMIT[flags & EXTENDED]  # EXTENDED is bit 0: the index itself
        bad = arbitration_id > limit if bad is None else bad | (arbitration_id > limit)
    if bad is None or not bad.any():
        return np.zeros(n, bool)
    bad &= (flags & ERROR) == 0
    return bad


def impossible_reason(arbitration_id: int, flags: int, length: int) -> str:
    """Why one row is impossible (for a row ``impossible`` flagged)."""
    if flags & EXTENDED and arbitration_id > 0x1FFFFFFF:
        return f"id 0x{arbitration_id:X} is beyond 29 bits"
    if not flags & EXTENDED and arbitration_id > 0x7FF:
        return f"standard id 0x{arbitration_id:X} is beyond 11 bits"
    if flags & REMOTE:
        return f"remote frame with DLC {length} (at most 15)"
    if flags & FD:
        return f"CAN FD frame with {length} data bytes (not a CAN FD length)"
    return f"classic CAN frame with {length} data bytes (at most 8)"


def drop_impossible(frames: FrameColumns, notes: LogNotes, where: str = "frame") -> FrameColumns:
    """``frames`` without impossible rows; each refused row counted in ``notes``.

    For formats without lines (BLF, MF4, python-can's readers) the place is the frame's index.
    """
    bad = impossible(frames.arbitration_id, frames.flags, frames.length)
    if not bad.any():
        return frames
    rows = np.flatnonzero(bad)
    first = int(rows[0])
    reason = impossible_reason(
        int(frames.arbitration_id[first]), int(frames.flags[first]), int(frames.length[first])
    )
    notes.reject(f"{where} {first + 1}: {reason}", count=len(rows))
    return frames.select(~bad)


@dataclass
class LineIssues:
    """Bad lines of one chunk of text: (index in the chunk, reason, rejected), the first few
    word for word, all of them counted."""

    items: list[tuple[int, str, bool]] = field(default_factory=list)
    damaged: int = 0
    rejected: int = 0

    def add(self, index: int, reason: str, rejected: bool = False) -> None:
        if rejected:
            self.rejected += 1
        else:
            self.damaged += 1
        if len(self.items) < MAX_KEPT:
            self.items.append((index, reason, rejected))

    def reject_impossible(
        self, arbitration_id: np.ndarray, flags: np.ndarray, length: np.ndarray, keep: np.ndarray
    ) -> None:
        """Take the impossible rows among ``keep`` out of it (in place), one issue per line."""
        bad = impossible(arbitration_id, flags, length) & keep
        if not bad.any():
            return
        rows = np.flatnonzero(bad)
        for i in rows[:MAX_KEPT].tolist():
            self.add(i, impossible_reason(int(arbitration_id[i]), int(flags[i]), int(length[i])), True)
        self.rejected += max(len(rows) - MAX_KEPT, 0)
        keep &= ~bad

    def sorted(self) -> LineIssues:
        self.items.sort(key=lambda item: item[0])
        return self


class ImpossibleFrame(ValueError):
    """A line that parses but describes a frame no bus can carry (rejected, not malformed)."""
