"""Whitespace tokens of a chunk of log text, found with numpy for all lines at once.

The text readers (ASC, TRC) check their common line shapes at fixed token positions over
whole arrays of lines; this is the shared first step: where lines and tokens start.
"""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workshop_app.core.logs.columns import Cancel, FrameColumns, Progress, ReadCancelled, log_error
from workshop_app.core.logs.notes import LineIssues, LogNotes, printable
from workshop_app.core.logs.text_arrays import records_at as _at

CHUNK_BYTES = 8 << 20  # bounds the temporary token arrays and paces progress
PARSE_THREADS = max(1, min(4, os.cpu_count() or 1))


@dataclass
class Tokens:
    padded: bytes  # the chunk plus 64 zero bytes, so fixed-width peeks never run off the end
    bp: np.ndarray  # ``padded`` as uint8
    line_starts: np.ndarray
    line_ends: np.ndarray  # the newline ending each line (or the chunk's end)
    tok_start: np.ndarray
    first_tok: np.ndarray  # index of each line's first token in ``tok_start``
    count: np.ndarray  # tokens per line

    @property
    def n_lines(self) -> int:
        return len(self.line_starts)

    @property
    def n_tok(self) -> int:
        return len(self.tok_start)

    def tok(self, j: int | np.ndarray, rows: np.ndarray, widest: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Start and length (up to ``widest``; ``widest`` means longer) of token j of each row."""
        start = self.tok_start[np.minimum(self.first_tok[rows] + j, max(self.n_tok - 1, 0))]
        if not widest:
            return start, np.zeros(0, np.int64)
        blank = _at(self.padded, start, widest) <= 32
        return start, np.where(blank.any(axis=1), blank.argmax(axis=1), widest)


def tokenize(chunk: bytes) -> Tokens | None:
    """Line and token starts of ``chunk`` (None when it is empty)."""
    b = np.frombuffer(chunk, np.uint8)
    nb = len(b)
    if nb == 0:
        return None
    nl = np.flatnonzero(b == 10)
    line_starts = np.concatenate(([0], nl + 1))
    if line_starts[-1] >= nb:
        line_starts = line_starts[:-1]
    # Token starts only: a byte above the space after one that is not (tabs, CR and LF all
    # separate). Lengths are looked up later for the few tokens that need them.
    solid = b > 32
    tok_start = np.flatnonzero(solid[1:] > solid[:-1]) + 1
    if solid[0]:
        tok_start = np.concatenate(([0], tok_start))
    first_tok = np.searchsorted(tok_start, line_starts)
    count = np.diff(np.append(first_tok, len(tok_start)))
    line_ends = np.concatenate((nl, [nb]))[: len(line_starts)]
    padded = chunk + bytes(64)
    return Tokens(
        padded, np.frombuffer(padded, np.uint8), line_starts, line_ends, tok_start, first_tok, count
    )


class BadLine(Exception):
    """A chunk parser's report of the first bad line: its index in the chunk and the good frames before it."""

    def __init__(self, index: int, reason: str, good: FrameColumns) -> None:
        super().__init__(reason)
        self.index = index
        self.reason = reason
        self.good = good


def parse_in_chunks(
    path: Path,
    raw: bytes,
    pos: int,
    line_base: int,
    parse: Callable[[bytes], tuple[FrameColumns, LineIssues]],
    *,
    progress: Progress | None,
    cancel: Cancel | None,
    notes: LogNotes,
    chunk_bytes: int | None = None,
    frame_line: re.Pattern[bytes] | None = None,
) -> FrameColumns:
    """Feed ``raw[pos:]`` to ``parse`` in chunks of whole lines; every bad line goes into
    ``notes`` as ``path:line`` and reading goes on. ``line_base`` is the number of lines
    before ``pos``. A BadLine (a chunk that cannot be used at all) is a LogFileError with the
    frames before it on ``partial``.

    A last line without its newline that gives no frame although it starts like a frame line
    (``frame_line``) is a log cut short while being written: noted as damage with its line.

    Chunks are parsed on worker threads (numpy releases the GIL for the array work) and
    collected in file order, so results and notes are those of a sequential read.
    """
    total = len(raw)
    # The unterminated last line is parsed on its own below, so its fate is known.
    whole = total if not raw or raw.endswith(b"\n") else max(raw.rfind(b"\n") + 1, pos)
    tail_line = line_base + raw.count(b"\n", pos, whole) + 1
    size = chunk_bytes or CHUNK_BYTES
    parts: list[FrameColumns] = []
    # (first line number of the chunk, end offset, parse result), oldest first.
    running: deque[tuple[int, int, Future[tuple[FrameColumns, LineIssues]]]] = deque()

    def collect_one() -> None:
        first_line, end, future = running.popleft()
        try:
            frames, issues = future.result()
        except BadLine as bad:
            for _, _, later in running:
                later.cancel()
            line = first_line + bad.index + 1
            partial = FrameColumns.concat([*parts, bad.good])
            raise log_error(f"{path}:{line}: {bad.reason}", partial, line=line) from None
        parts.append(frames)
        for index, reason, rejected in issues.items:
            if rejected:
                notes.reject(reason, line=first_line + index + 1)
            else:
                notes.damage(reason, line=first_line + index + 1)
        # Issues beyond the ones kept word for word still count.
        notes.damaged += issues.damaged - sum(1 for *_, r in issues.items if not r)
        notes.rejected += issues.rejected - sum(1 for *_, r in issues.items if r)
        if progress is not None:
            progress(end, total)

    with ThreadPoolExecutor(max_workers=PARSE_THREADS, thread_name_prefix="log-parse") as pool:
        while pos < whole:
            if cancel is not None and cancel():
                for _, _, later in running:
                    later.cancel()
                while running and not running[0][2].cancelled():
                    collect_one()
                raise ReadCancelled(
                    f"{path}: reading cancelled at line {line_base + 1}", FrameColumns.concat(parts)
                )
            stop = min(pos + size, whole)
            if stop < whole:
                nl = raw.find(b"\n", stop)
                stop = whole if nl < 0 else nl + 1
            chunk = raw[pos:stop]
            running.append((line_base, stop, pool.submit(parse, chunk)))
            line_base += chunk.count(b"\n")
            pos = stop
            if len(running) > PARSE_THREADS:
                collect_one()
        while running:
            collect_one()
    if whole < total:
        tail = raw[whole:]
        running.append((tail_line - 1, total, _done(parse, tail)))
        before = len(parts), notes.damaged + notes.rejected
        collect_one()
        got_nothing = not len(parts[-1]) and notes.damaged + notes.rejected == before[1]
        if got_nothing and frame_line is not None and frame_line.match(tail):
            notes.damage(f"last line cut short: {printable(tail.strip(), 60)}", line=tail_line)
    return FrameColumns.concat(parts)


def _done(
    parse: Callable[[bytes], tuple[FrameColumns, LineIssues]], chunk: bytes
) -> Future[tuple[FrameColumns, LineIssues]]:
    """``parse(chunk)`` run here, as a finished future (exceptions included)."""
    future: Future[tuple[FrameColumns, LineIssues]] = Future()
    try:
        future.set_result(parse(chunk))
    except BaseException as exc:
        future.set_exception(exc)
    return future


def finish(frames: FrameColumns, notes: LogNotes, strict: bool) -> FrameColumns:
    """A reader's last step: under ``strict`` (no collector given) the first note is an error."""
    if strict and notes:
        raise notes.error(frames)
    return frames
