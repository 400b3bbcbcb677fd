"""A bulk reader for Vector ASC text logs, with the results of python-can's ``ASCReader``.

The text is cut into whitespace-separated tokens with numpy (the start of each token and the
first token of each line). The common lines in hex base, classic data frames
``ts ch id[x] Rx|Tx d dlc bytes...`` and CAN FD data frames ``ts CANFD ch Rx|Tx id brs esi dlc
len bytes...``, are then decoded column-wise; everything else (remote and error frames, symbolic
names, events, triggerblock markers, decimal base) goes through a per-line parser with
python-can's grammar.

As in ``can.LogReader`` (which opens ASC with relative timestamps), a frame's timestamp is the
number written on its line; the ``Begin Triggerblock`` date does not shift it. ASC channel 1 is
channel ``0``.
"""

from __future__ import annotations

import gzip
import re
import zlib
from pathlib import Path

import numpy as np

from workshop_app.core.logs.columns import (
    BRS,
    ERROR,
    ESI,
    EXTENDED,
    FD,
    REMOTE,
    TX,
    Cancel,
    FrameColumns,
    Progress,
    log_error,
)
from workshop_app.core.logs.notes import FD_LENGTHS, ImpossibleFrame, LineIssues, LogNotes, printable
from workshop_app.core.logs.text_arrays import HEX_DIGITS as _HEX
from workshop_app.core.logs.text_arrays import decimal_seconds as _decimal_seconds
from workshop_app.core.logs.text_arrays import groups_by_size as _groups
from workshop_app.core.logs.text_arrays import records_at as _at
from workshop_app.core.logs.text_tokens import BadLine, finish, parse_in_chunks, tokenize

_DLC2LEN = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64], np.int64)

# python-can's line filters: lines that fail them are skipped, not errors.
_MESSAGE = re.compile(r"\d+\.\d+\s+(\d+\s+(\w+\s+(Tx|Rx)|ErrorFrame)|CANFD)", re.ASCII | re.IGNORECASE)
# How every frame line starts (its timestamp): a cut last line that starts so is damage.
_FRAME_START = re.compile(rb"\s*\d+\.\d*(\s|$)")
_START = re.compile(r"^\d+\.\d+\s+Start of measurement")
_HEADER_DATE = re.compile(r"date\s+\w+\s+(?P<datetime_string>.+)", re.IGNORECASE)
_HEADER_BASE = re.compile(
    r"base\s+(?P<base>hex|dec)(?:\s+timestamps\s+(?:absolute|relative))?", re.IGNORECASE
)

_Frame = tuple[float, str, int, int, int, bytes]


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix.lower() == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise log_error(f"{path}: cannot read ({exc})", FrameColumns.empty()) from exc


def _header(raw: bytes) -> tuple[int, int, int]:
    """(base, byte offset of the body, lines consumed) as python-can's header scan leaves them.

    python-can reads header lines (date, base, comments) and stops at the first other line,
    which it consumes without parsing it as a frame; the same line is skipped here.
    """
    base = 16
    pos = 0
    lines = 0
    while pos < len(raw):
        nl = raw.find(b"\n", pos)
        end = len(raw) if nl < 0 else nl + 1
        line = raw[pos:end].decode("utf-8", "replace").strip()
        pos = end
        lines += 1
        if _HEADER_DATE.match(line):
            continue
        if m := _HEADER_BASE.match(line):
            base = 10 if m.group("base") == "dec" else 16
            continue
        if line.startswith("//"):
            continue
        break
    return base, pos, lines


def read_asc(
    path: str | Path,
    *,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    notes: LogNotes | None = None,
) -> FrameColumns:
    """All frames of a Vector ASC log (``.asc`` or ``.asc.gz``) as columns.

    A malformed frame line or an impossible frame (``d 99``, an id beyond 29 bits) is skipped
    and goes into ``notes`` with its 1-based line; reading goes on. Without ``notes`` the first
    one raises LogFileError after the read, every good frame on ``partial``.
    """
    p = Path(path)
    found = LogNotes(p) if notes is None else notes
    raw = _read_bytes(p)
    base, pos, line_base = _header(raw)
    frames = parse_in_chunks(
        p,
        raw,
        pos,
        line_base,
        lambda chunk: _parse_chunk(chunk, base),
        progress=progress,
        cancel=cancel,
        notes=found,
        frame_line=_FRAME_START,
    )
    return finish(frames, found, notes is None)


def _parse_chunk(chunk: bytes, base: int) -> tuple[FrameColumns, LineIssues]:
    issues = LineIssues()
    tokens = tokenize(chunk)
    if tokens is None:
        return FrameColumns.empty(), issues
    padded, bp, tok = tokens.padded, tokens.bp, tokens.tok
    line_starts, line_ends = tokens.line_starts, tokens.line_ends
    tok_start, first_tok, count = tokens.tok_start, tokens.first_tok, tokens.count
    n_lines, n_tok = tokens.n_lines, tokens.n_tok

    def is_digit(values: np.ndarray) -> np.ndarray:
        return (values >= 48) & (values <= 57)

    def is_channel(j: int, rows: np.ndarray) -> np.ndarray:
        at, size = tok(j, rows, 4)
        channel: np.ndarray = (
            (size <= 3)
            & is_digit(bp[at])
            & ((size < 2) | is_digit(bp[at + 1]))
            & ((size < 3) | is_digit(bp[at + 2]))
        )
        return channel

    def is_direction(j: int, rows: np.ndarray) -> np.ndarray:
        at, _ = tok(j, rows)
        direction: np.ndarray = (
            ((bp[at] == ord("R")) | (bp[at] == ord("T"))) & (bp[at + 1] == ord("x")) & (bp[at + 2] <= 32)
        )
        return direction

    def is_flag(j: int, rows: np.ndarray) -> np.ndarray:
        at, _ = tok(j, rows)
        flag: np.ndarray = ((bp[at] == ord("0")) | (bp[at] == ord("1"))) & (bp[at + 1] <= 32)
        return flag

    # Candidate lines in hex base, checked at fixed byte positions; anything doubtful leaves
    # this path. Classic: ``ts ch id Rx|Tx d dlc xx ...``; CAN FD without a symbolic name:
    # ``ts CANFD ch Rx|Tx id brs esi dlc len xx ... (trailing fields)``.
    ok = np.zeros(n_lines, bool)
    fd = np.zeros(n_lines, bool)
    length = np.zeros(n_lines, np.uint8)
    if base == 16 and n_tok:
        rows = np.flatnonzero(count >= 6)
        s4, _ = tok(4, rows)
        s5, _ = tok(5, rows)
        good = is_channel(1, rows) & is_direction(3, rows)
        good &= (bp[s4] == ord("d")) & (bp[s4 + 1] <= 32) & (_HEX[bp[s5]] < 16) & (bp[s5 + 1] <= 32)
        nbytes = np.minimum(8, _DLC2LEN[np.minimum(_HEX[bp[s5]], 15)])
        good &= count[rows] == 6 + nbytes
        ok[rows[good]] = True
        length[rows[good]] = nbytes[good]

        rows = np.flatnonzero(~ok & (count >= 10))
        s1, _ = tok(1, rows)
        good = _at(padded, s1, 6)[:, :5].view("S5").ravel() == b"CANFD"
        good &= (bp[s1 + 5] <= 32) & is_channel(2, rows) & is_direction(3, rows)
        good &= is_flag(5, rows) & is_flag(6, rows)
        s7, _ = tok(7, rows)
        s8, l8 = tok(8, rows, 3)
        good &= (_HEX[bp[s7]] < 16) & (bp[s7 + 1] <= 32) & (l8 >= 1) & (l8 <= 2) & is_digit(bp[s8])
        good &= (l8 < 2) | is_digit(bp[s8 + 1])
        size = np.where(
            l8 == 2, (bp[s8].astype(np.int64) - 48) * 10 + bp[s8 + 1] - 48, bp[s8].astype(np.int64) - 48
        )
        good &= (size >= 1) & (size <= 64) & (count[rows] >= 9 + size)  # size 0: python-can's remote frame
        ok[rows[good]] = fd[rows[good]] = True
        length[rows[good]] = size[good]

    timestamps = np.zeros(n_lines, np.float64)
    channel_no = np.zeros(n_lines, np.int64)
    arbitration_id = np.zeros(n_lines, np.uint32)
    flags = np.zeros(n_lines, np.uint8)

    rows = np.flatnonzero(ok)
    s0, l0 = tok(0, rows, 24)
    for width, sub in _groups(l0, np.arange(len(rows))):
        raw = _at(padded, s0[sub], width)
        exact = _decimal_seconds(raw) if 2 < width < 24 else None
        if exact is None or (raw[:, 0] == ord(".")).any() or (raw[:, -1] == ord(".")).any():
            ok[rows[sub]] = False  # not plain digits around one point: the per-line path decides
        else:
            timestamps[rows[sub]] = exact
    rows = np.flatnonzero(ok)
    is_fd = fd[rows]
    s1, l1 = tok(np.where(is_fd, 2, 1), rows, 4)
    value = np.zeros(len(rows), np.int64)
    for j in range(3):
        digit = bp[s1 + j].astype(np.int64) - 48
        value = np.where(j < l1, value * 10 + digit, value)
    channel_no[rows] = value - 1

    s2, l2 = tok(np.where(is_fd, 4, 2), rows, 12)
    ext = bp[s2 + np.maximum(l2 - 1, 0)] == ord("x")
    digits = l2 - ext
    bad = (digits < 1) | (digits > 8)
    for width, sub in _groups(digits, np.flatnonzero(~bad)):
        nib = _HEX[_at(padded, s2[sub], width)]
        bad[sub[(nib == 255).any(axis=1)]] = True
        v = np.zeros(len(sub), np.uint32)
        for j in range(width):
            v = (v << np.uint32(4)) | nib[:, j]
        arbitration_id[rows[sub]] = v
    s3, _ = tok(3, rows)
    s5, _ = tok(5, rows)
    s6, _ = tok(6, rows)
    flags[rows] = (
        np.where(ext, EXTENDED, 0)
        | np.where(bp[s3] == ord("T"), TX, 0)
        | np.where(is_fd, FD, 0)
        | np.where(is_fd & (bp[s5] == ord("1")), BRS, 0)
        | np.where(is_fd & (bp[s6] == ord("1")), ESI, 0)
    )
    ok[rows[bad]] = False

    rows = np.flatnonzero(ok)
    data_at = np.where(fd[rows], 9, 6)
    payload = np.zeros((n_lines, max(8, int(length[rows].max(initial=0)))), np.uint8)
    for size, sub in _groups(length[rows], np.arange(len(rows))):
        if size == 0:
            continue
        starts = tok_start[(first_tok[rows[sub]] + data_at[sub])[:, None] + np.arange(size)]
        hi = _HEX[bp[starts]]
        lo = _HEX[bp[starts + 1]]
        bad = (bp[starts + 2] > 32).any(axis=1) | (hi == 255).any(axis=1) | (lo == 255).any(axis=1)
        payload[rows[sub], :size] = (hi << 4) | lo
        ok[rows[sub[bad]]] = False
    keep = ok.copy()

    # Every other line by python-can's grammar; a bad line is noted and skipped.
    extra_names: dict[int, str] = {}
    for i in np.flatnonzero(~ok).tolist():
        end = line_ends[i]
        text = chunk[line_starts[i] : end].decode("utf-8", "replace").strip()
        try:
            frame = _parse_line(text, base)
        except ImpossibleFrame as exc:
            issues.add(i, f"{exc} in {printable(text, 80)}", True)
            continue
        except (ValueError, IndexError) as exc:
            issues.add(i, f"malformed frame line {printable(text, 80)} ({exc})")
            continue
        if frame is None:
            continue
        ts, chan, aid, fl, ln, data = frame
        if aid > 0xFFFFFFFF:  # beyond what the columns hold, let alone a bus
            issues.add(i, f"id 0x{aid:X} is beyond 29 bits in {printable(text, 80)}", True)
            continue
        timestamps[i], arbitration_id[i], flags[i], length[i] = ts, aid, fl, ln
        extra_names[i] = chan
        if len(data) > payload.shape[1]:
            payload = np.pad(payload, ((0, 0), (0, len(data) - payload.shape[1])))
        payload[i] = 0
        payload[i, : len(data)] = np.frombuffer(data, np.uint8)
        keep[i] = True

    # Channel table: numbered channels from the fast path plus whatever the slow path found.
    names: list[str] = []
    channel = np.zeros(n_lines, np.uint8)
    fast = np.flatnonzero(ok)
    if len(fast):
        found, inverse = np.unique(channel_no[fast], return_inverse=True)
        names = [str(v) for v in found.tolist()]
        channel[fast] = inverse.ravel()
    for i, chan in extra_names.items():
        if chan not in names:
            names.append(chan)
        channel[i] = names.index(chan)
    if len(names) > 256:
        raise BadLine(n_lines - 1, "more than 256 channels", FrameColumns.empty())

    def build(sel: np.ndarray) -> FrameColumns:
        width = max(8, int(length[sel & ((flags & REMOTE) == 0)].max(initial=0)))
        return FrameColumns(
            timestamp=timestamps[sel],
            channel=channel[sel],
            arbitration_id=arbitration_id[sel],
            flags=flags[sel],
            length=length[sel],
            payload=payload[sel][:, :width],
            channels=tuple(names),
        )

    issues.reject_impossible(arbitration_id, flags, length, keep)
    return build(keep), issues.sorted()


def _bytes(tokens: list[str], count: int, base: int) -> bytes:
    return bytes(int(t, base) for t in tokens[:count])


def _ident(text: str, base: int) -> tuple[int, int]:
    if text[-1:].lower() == "x":
        return int(text[:-1], base), EXTENDED
    return int(text, base), 0


def _parse_line(line: str, base: int) -> _Frame | None:
    """One body line as python-can reads it; None when python-can skips it."""
    if not line or _START.match(line) or not _MESSAGE.match(line):
        return None
    try:
        stamp, chan, rest = line.split(None, 2)
    except ValueError:
        return None
    ts = float(stamp)
    if chan == "CANFD":
        return _parse_fd(ts, rest, base)
    if not chan.isdigit():
        return None
    channel = str(int(chan) - 1)
    if rest.strip()[:10].lower() == "errorframe":
        # python-can's Message defaults: id 0, extended, received.
        return ts, channel, 0, ERROR | EXTENDED, 0, b""
    ident_text, direction, body = rest.split(None, 2)
    ident, flags = _ident(ident_text, base)
    flags |= 0 if direction == "Rx" else TX
    if body[0].lower() == "r":
        fields = body.split()
        dlc = int(fields[1], base) if len(fields) > 1 and fields[1].isdigit() else 0
        if dlc > 15:
            raise ImpossibleFrame(f"DLC {fields[1]} is beyond 15")
        return ts, channel, ident, flags | REMOTE, dlc, b""
    fields = body.split()
    dlc = int(fields[1], base)
    if not 0 <= dlc <= 15:
        raise ImpossibleFrame(f"DLC {fields[1]} is beyond 15")
    size = min(8, int(_DLC2LEN[dlc]))
    data = _bytes(fields[2:], size, base)
    return ts, channel, ident, flags, len(data), data


def _parse_fd(ts: float, rest: str, base: int) -> _Frame:
    chan, direction, body = rest.split(None, 2)
    channel = str(int(chan) - 1)
    flags = FD | (0 if direction == "Rx" else TX)
    if body.strip()[:10].lower() == "errorframe":
        return ts, channel, 0, flags | ERROR | EXTENDED, 0, b""
    ident_text, name_or_brs, tail = body.split(None, 2)
    if name_or_brs.isdigit():
        brs = name_or_brs
        esi, dlc_text, size_text, data_text = tail.split(None, 3)
    else:
        brs, esi, dlc_text, size_text, data_text = tail.split(None, 4)
    ident, id_flags = _ident(ident_text, base)
    flags |= id_flags | (BRS if brs == "1" else 0) | (ESI if esi == "1" else 0)
    dlc = int(dlc_text, base)
    size = int(size_text)
    if not 0 <= dlc <= 15:
        raise ImpossibleFrame(f"DLC {dlc_text} is beyond 15")
    if not 0 <= size <= 64 or not FD_LENGTHS[size]:
        raise ImpossibleFrame(f"CAN FD data length {size} is not a CAN FD length")
    data = _bytes(data_text.split(), size, base)
    if size == 0:  # python-can reads a zero data length as a remote frame of that DLC
        return ts, channel, ident, flags | REMOTE, dlc, b""
    return ts, channel, ident, flags, len(data), data
