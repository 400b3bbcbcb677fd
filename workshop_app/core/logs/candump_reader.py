"""A bulk reader for candump ``-L`` logs: ``(1700000000.123456) can0 123#DEADBEEF [R|T]``.

The whole text is handled as one numpy byte array: line and field boundaries come from the
positions of newlines, spaces and ``#``, hex digits go through a lookup table, and payload bytes
are decoded per payload length. Lines the fast path does not recognise (tabs, odd timestamps,
multi-digit remote DLCs) get a per-line parse with python-can's grammar, so only truly malformed
lines are errors.
"""

from __future__ import annotations

import gzip
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
from workshop_app.core.logs.notes import ImpossibleFrame, LineIssues, LogNotes
from workshop_app.core.logs.text_arrays import HEX_DIGITS as _HEX
from workshop_app.core.logs.text_arrays import decimal_seconds as _decimal_seconds
from workshop_app.core.logs.text_arrays import groups_by_size as _groups
from workshop_app.core.logs.text_arrays import records_at as _at
from workshop_app.core.logs.text_tokens import BadLine, finish, parse_in_chunks

# Bytes of text parsed per step: bounds the temporary index arrays (~30 MB) and paces progress.
CHUNK_BYTES = 8 << 20
CAN_ERR_FLAG = 0x20000000
MAX_TOKEN = 32  # longest timestamp or interface name the fast path gathers


class _BadLine(Exception):
    def __init__(self, index: int, reason: str, good: FrameColumns | None = None) -> None:
        super().__init__(reason)
        self.index = index
        self.reason = reason
        self.good = good if good is not None else FrameColumns.empty()


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix.lower() == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise log_error(f"{path}: cannot read ({exc})", FrameColumns.empty()) from exc


def read_candump(
    path: str | Path,
    *,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    notes: LogNotes | None = None,
) -> FrameColumns:
    """All frames of a candump ``-L`` log (``.log`` or ``.log.gz``) as columns.

    A malformed line or an impossible frame (20 data bytes on classic CAN, an id beyond 29
    bits) is skipped and goes into ``notes`` with its 1-based line; reading goes on. Without
    ``notes`` the first one raises LogFileError after the read, every good frame on ``partial``.
    """
    p = Path(path)
    found = LogNotes(p) if notes is None else notes
    raw = _read_bytes(p)

    def parse(chunk: bytes) -> tuple[FrameColumns, LineIssues]:
        try:
            return _parse_chunk(chunk)
        except _BadLine as bad:
            raise BadLine(bad.index, bad.reason, bad.good or FrameColumns.empty()) from None

    frames = parse_in_chunks(
        p, raw, 0, 0, parse, progress=progress, cancel=cancel, notes=found, chunk_bytes=CHUNK_BYTES
    )
    return finish(frames, found, notes is None)


def _parse_chunk(chunk: bytes) -> tuple[FrameColumns, LineIssues]:
    """Columns for a run of whole lines and the lines skipped (index in the chunk, reason)."""
    b = np.frombuffer(chunk, np.uint8)
    nb = len(b)
    nl = np.flatnonzero(b == 10)
    starts = np.concatenate(([0], nl + 1))
    ends = np.concatenate((nl, [nb]))
    if len(starts) and starts[-1] >= nb:  # text ends with a newline: no line after it
        starts, ends = starts[:-1], ends[:-1]
    ends = ends - ((ends > starts) & (b[np.maximum(ends - 1, 0)] == 13))  # CRLF files
    line_no = np.flatnonzero(ends > starts)
    s, e = starts[line_no], ends[line_no]
    n = len(line_no)
    issues = LineIssues()
    if n == 0:
        return FrameColumns.empty(), issues

    # Field boundaries from the positions of spaces and '#'; anything unusual goes to the slow path.
    sentinel = np.full(4, nb + 10)
    spaces = np.concatenate((np.flatnonzero(b == 32), sentinel))
    hashes = np.concatenate((np.flatnonzero(b == 35), sentinel))
    padded = chunk + bytes(160)  # fixed-width reads near the end stay inside the buffer
    bp = np.frombuffer(padded, np.uint8)
    k = np.searchsorted(spaces, s)
    s1, s2, s3, s4 = (spaces[np.minimum(k + j, len(spaces) - 1)] for j in range(4))
    four = s3 < e
    tail = np.where(four, s3, e)  # end of the frame token
    ok = (bp[s] == ord("(")) & (s2 < e) & (s4 >= e) & (s1 > s + 2) & (bp[s1 - 1] == ord(")"))
    ok &= (s2 > s1 + 1) & (s1 - s - 2 <= MAX_TOKEN) & (s2 - s1 - 1 <= MAX_TOKEN)
    ok &= ~four | ((s3 + 2 == e) & np.isin(bp[s3 + 1], list(b"RrTt")))
    h = hashes[np.searchsorted(hashes, s2)]
    id_len = h - s2 - 1
    ok &= (h < tail) & (id_len >= 1) & (id_len <= 8)
    hp = np.minimum(h, nb)
    fd = ok & (h + 1 < tail) & (bp[hp + 1] == ord("#"))
    fd_nib = _HEX[bp[hp + 2]]
    ok &= ~fd | ((h + 2 < tail) & (fd_nib < 16))
    d = np.where(fd, h + 3, h + 1)
    dp = np.minimum(d, nb)
    remote = ok & (d < tail) & ((bp[dp] == ord("R")) | (bp[dp] == ord("r")))
    remote_dlc = _HEX[bp[dp + 1]]
    ok &= ~remote | (d + 1 == tail) | ((d + 2 == tail) & (remote_dlc < 10))
    hex_len = tail - d
    ok &= remote | ((hex_len % 2 == 0) & (hex_len <= 128))

    # Each field is read per width group; a group's rows with a bad character leave the fast path.
    timestamps = np.zeros(n, np.float64)
    ts_len = s1 - s - 2
    for width, rows in _groups(ts_len, np.flatnonzero(ok)):
        raw = _at(padded, s[rows] + 1, width)
        exact = _decimal_seconds(raw)
        if exact is not None:
            timestamps[rows] = exact
            continue
        try:
            timestamps[rows] = raw.view(f"S{width}").ravel().astype(np.float64)
        except ValueError:  # e.g. "1.2.3" somewhere: the per-line path finds and names it
            ok[rows] = False

    arbitration_id = np.zeros(n, np.uint32)
    for width, rows in _groups(id_len, np.flatnonzero(ok)):
        nib = _HEX[_at(padded, s2[rows] + 1, width)]
        ok[rows[(nib == 255).any(axis=1)]] = False
        value = np.zeros(len(rows), np.uint32)
        for j in range(width):
            value = (value << np.uint32(4)) | nib[:, j]
        arbitration_id[rows] = value

    data_rows = np.flatnonzero(ok & ~remote)
    nbytes = np.where(remote, 0, hex_len // 2)
    width = max(8, int(nbytes[data_rows].max(initial=0)))
    payload = np.zeros((n, width), np.uint8)
    for size, rows in _groups(nbytes, data_rows):
        if size == 0:
            continue
        nib = _HEX[_at(padded, d[rows], 2 * size)]
        ok[rows[(nib == 255).any(axis=1)]] = False
        payload[rows, :size] = (nib[:, 0::2] << 4) | nib[:, 1::2]

    names: list[str] = []
    channel = np.zeros(n, np.uint8)
    for size, rows in _groups(s2 - s1 - 1, np.flatnonzero(ok)):
        found, index = np.unique(
            _at(padded, s1[rows] + 1, size).view(f"S{size}").ravel(), return_inverse=True
        )
        codes = []
        for name in found.tolist():
            text = name.decode("utf-8", "replace")
            if text not in names:
                names.append(text)
            codes.append(names.index(text))
        channel[rows] = np.array(codes, np.int64)[index.ravel()] if len(names) <= 256 else 0

    flags = np.where(id_len > 3, EXTENDED, 0).astype(np.uint8)
    flags |= np.where(four & np.isin(bp[s3 + 1], list(b"Tt")), TX, 0).astype(np.uint8)
    flags |= np.where(fd, FD, 0).astype(np.uint8)
    flags |= np.where(fd & (fd_nib & 1 > 0), BRS, 0).astype(np.uint8)
    flags |= np.where(fd & (fd_nib & 2 > 0), ESI, 0).astype(np.uint8)
    flags |= np.where(remote, REMOTE, 0).astype(np.uint8)
    # Error frames keep their interface and SocketCAN error class (python-can drops both).
    err = (arbitration_id & CAN_ERR_FLAG) != 0
    flags = np.where(err, (flags & ~np.uint8(REMOTE)) | ERROR, flags).astype(np.uint8)
    # SocketCAN's RTR/EFF bits (30, 31) are never part of an id: such a text is impossible.
    wide = ok & ~err & ((arbitration_id & np.uint32(0xC0000000)) != 0)
    if wide.any():
        ok &= ~wide  # the per-line parse below names it
    arbitration_id &= np.uint32(0x1FFFFFFF)
    length = np.where(remote, np.where(d + 2 == tail, remote_dlc, 0), nbytes).astype(np.uint8)
    keep = ok.copy()

    # The rest line by line; a bad line is noted and skipped.
    for i in np.flatnonzero(~ok).tolist():
        text = chunk[s[i] : e[i]]
        try:
            frame = _parse_line(text)
        except ValueError as exc:
            issues.add(int(line_no[i]), str(exc), isinstance(exc, ImpossibleFrame))
            continue
        if frame is None:
            continue
        ts, chan, aid, fl, ln, data = frame
        if chan not in names:
            names.append(chan)
        timestamps[i], channel[i], arbitration_id[i], flags[i], length[i] = ts, names.index(chan), aid, fl, ln
        if len(data) > payload.shape[1]:
            payload = np.pad(payload, ((0, 0), (0, len(data) - payload.shape[1])))
        payload[i, : len(data)] = np.frombuffer(data, np.uint8)
        keep[i] = True
    if len(names) > 256:
        raise _BadLine(int(line_no[-1]), "more than 256 channels")

    def build(rows: np.ndarray) -> FrameColumns:
        return FrameColumns(
            timestamp=timestamps[rows],
            channel=channel[rows],
            arbitration_id=arbitration_id[rows],
            flags=flags[rows],
            length=length[rows],
            payload=payload[rows],
            channels=tuple(names),
        )

    before = len(issues.items)
    issues.reject_impossible(arbitration_id, flags, length, keep)
    for item in range(before, len(issues.items)):  # row index → line index in the chunk
        row, reason, rejected = issues.items[item]
        issues.items[item] = (int(line_no[row]), reason, rejected)
    return build(keep), issues.sorted()


def _parse_line(text: bytes) -> tuple[float, str, int, int, int, bytes] | None:
    """One line by python-can's grammar; None for a blank line, ValueError if malformed."""
    try:
        line = text.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ValueError("not ASCII text") from None
    if not line:
        return None
    fields = line.split()
    flags = 0
    if len(fields) == 4 and fields[3].lower() in ("r", "t"):
        flags |= TX if fields[3].lower() == "t" else 0
    elif len(fields) != 3:
        raise ValueError(f"expected '(timestamp) interface ID#DATA', got {line[:60]!r}")
    stamp, chan, frame = fields[:3]
    if not (stamp.startswith("(") and stamp.endswith(")")):
        raise ValueError(f"bad timestamp {stamp[:40]!r}")
    try:
        ts = float(stamp[1:-1])
    except ValueError:
        raise ValueError(f"bad timestamp {stamp[:40]!r}") from None
    ident_text, sep, data = frame.partition("#")
    if not sep or not 1 <= len(ident_text) <= 8:
        raise ValueError(f"bad frame {frame[:40]!r}")
    try:
        ident = int(ident_text, 16)
        if len(ident_text) > 3:
            flags |= EXTENDED
        if data.startswith("#"):
            fd_flags = int(data[1], 16)
            flags |= FD | (BRS if fd_flags & 1 else 0) | (ESI if fd_flags & 2 else 0)
            data = data[2:]
        if data[:1] in ("R", "r"):
            length = int(data[1:]) if len(data) > 1 else 0
            payload = b""
            flags |= REMOTE
        else:
            payload = bytes.fromhex(data)
            if len(data) % 2 or len(payload) > 64:
                raise ValueError
            length = len(payload)
    except (ValueError, IndexError):
        raise ValueError(f"bad frame {frame[:40]!r}") from None
    if not 0 <= length <= 255:
        raise ValueError(f"bad remote length in {frame[:40]!r}")
    if ident & CAN_ERR_FLAG:
        flags = (flags & ~REMOTE) | ERROR
    elif ident & 0xC0000000:
        raise ImpossibleFrame(f"id 0x{ident:X} is beyond 29 bits")
    return ts, chan, ident & 0x1FFFFFFF, flags, length, payload
