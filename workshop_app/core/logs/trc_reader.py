"""A reader for PEAK TRC text logs (versions 1.0, 1.1, 1.3, 2.0, 2.1) into columns.

The results are those of python-can's ``TRCReader``: timestamps are the line's offset in ms
divided by 1000, plus ``;$STARTTIME`` (days since 1899-12-30, UTC) from version 1.1 on; channel
1 unless the version has a bus column; lines python-can skips (bus info, unsupported types,
short lines) are skipped here too. The common line, a received or sent classic data frame, is
decoded column-wise with numpy at the token positions the version's fixed columns give; other
lines go through a per-line parser with python-can's grammar.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from workshop_app.core.logs.columns import (
    BRS,
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
from workshop_app.core.logs.notes import LineIssues, LogNotes, impossible_reason, printable
from workshop_app.core.logs.text_arrays import HEX_DIGITS as _HEX
from workshop_app.core.logs.text_arrays import decimal_seconds as _decimal_seconds
from workshop_app.core.logs.text_arrays import groups_by_size as _groups
from workshop_app.core.logs.text_arrays import records_at as _at
from workshop_app.core.logs.text_tokens import BadLine, finish, parse_in_chunks, tokenize

# How every message line starts (its number and offset): a cut last line that starts so is damage.
_FRAME_START = re.compile(rb"\s*\d+\)?(\s|$)")
_EPOCH_1899 = datetime(1899, 12, 30, tzinfo=UTC)
_LEN2DLC = {n: d for d, n in enumerate((0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64))}
_V2_TYPES = {"DT": 0, "FD": FD, "FB": FD | BRS, "FE": FD | BRS | ESI, "BI": FD | ESI, "RR": REMOTE}

# (timestamp, channel, id, flags, length, data) or None for a line python-can skips.
_Frame = tuple[float, int, int, int, int, bytes] | None


def _len2dlc(length: int) -> int:
    if length <= 8:
        return length
    return next((d for n, d in _LEN2DLC.items() if n >= length), 15)


class _Header:
    def __init__(self) -> None:
        self.version = "1.0"
        self.start = 0.0
        self.columns: dict[str, int] = {}
        self.num_columns = -1


def _parse_header(raw: bytes) -> tuple[_Header, int, int]:
    """The header fields, the byte offset of the first line after the ``;`` block, its index."""
    h = _Header()
    pos = 0
    index = 0
    while pos < len(raw):
        nl = raw.find(b"\n", pos)
        end = len(raw) if nl < 0 else nl + 1
        line = raw[pos:end].decode("utf-8", "replace").strip()
        if line.startswith(";$FILEVERSION"):
            parts = line.split("=")
            if len(parts) > 1:
                h.version = parts[1] if parts[1] in ("1.1", "1.3", "2.0", "2.1") else "1.0"
        elif line.startswith(";$STARTTIME"):
            parts = line.split("=")
            if len(parts) > 1:
                h.start = (_EPOCH_1899 + timedelta(days=float(parts[1]))).timestamp()
        elif line.startswith(";$COLUMNS"):
            parts = line.split("=")
            if len(parts) > 1:
                names = parts[1].split(",")
                h.columns = {name: names.index(name) for name in names}
                h.num_columns = len(names) - 1
        elif not line.startswith(";"):
            break
        pos = end
        index += 1
    return h, pos, index


@dataclass(frozen=True)
class _Layout:
    """Token positions of a classic data line in one TRC version (None: no such column)."""

    time: int
    ident: int
    dlc: int
    data: int
    channel: int | None = None
    direction: int | None = None
    kind: int | None = None
    add_start: bool = True


def _layout(h: _Header) -> _Layout | None:
    if h.version == "1.0":
        return _Layout(time=1, ident=2, dlc=3, data=4, add_start=False)
    if h.version == "1.1":
        return _Layout(time=1, direction=2, ident=3, dlc=4, data=5)
    if h.version == "1.3":
        return _Layout(time=1, channel=2, direction=3, ident=4, dlc=6, data=7)
    c = h.columns
    # The fast path needs the data column last and a DLC (not a byte count) column.
    if not all(k in c for k in "TOIdLD") or "l" in c or c["D"] != h.num_columns:
        return None
    return _Layout(
        time=c["O"], ident=c["I"], dlc=c["L"], data=c["D"], channel=c.get("B"), direction=c["d"], kind=c["T"]
    )


def _v1_0(cols: list[str], start: float) -> _Frame:
    ident = cols[2]
    if ident == "FFFFFFFF":  # bus information line
        return None
    dlc = int(cols[3])
    flags = EXTENDED if len(ident) > 4 else 0
    if len(cols) > 4 and cols[4] == "RTR":
        return float(cols[1]) / 1000, 1, int(ident, 16), flags | REMOTE, dlc, b""
    data = bytes(int(cols[i + 4], 16) for i in range(dlc))
    return float(cols[1]) / 1000, 1, int(ident, 16), flags, len(data), data


def _v1_x(cols: list[str], start: float, first: int, has_bus: bool) -> _Frame:
    # 1.1: N) O Rx|Tx I L D... ; 1.3: N) O B Rx|Tx I - L D...
    direction = cols[first - 1]
    if direction not in ("Tx", "Rx"):
        return None
    ident = cols[first]
    flags = (EXTENDED if len(ident) > 4 else 0) | (TX if direction == "Tx" else 0)
    at = first + (2 if has_bus else 1)
    dlc = int(cols[at])
    ts = float(cols[1]) / 1000 + start
    channel = int(cols[2]) if has_bus else 1
    if len(cols) > at + 1 and cols[at + 1] == "RTR":
        return ts, channel, int(ident, 16), flags | REMOTE, dlc, b""
    data = bytes(int(cols[i + at + 1], 16) for i in range(dlc))
    return ts, channel, int(ident, 16), flags, len(data), data


def _v2_parser(columns: dict[str, int], start: float) -> Callable[[list[str]], _Frame]:
    t_col, o_col, i_col, d_col = columns["T"], columns["O"], columns["I"], columns["d"]
    bus = columns.get("B")
    data_col = columns.get("D")
    len_col = columns.get("l")
    dlc_col = columns.get("L")

    def parse(cols: list[str]) -> _Frame:
        kind = cols[t_col]
        if kind not in _V2_TYPES:
            return None
        if len_col is not None:
            dlc = _len2dlc(int(cols[len_col]))
        elif dlc_col is not None:
            dlc = int(cols[dlc_col])
        else:
            raise ValueError("no length or DLC column")
        ident = cols[i_col]
        flags = _V2_TYPES[kind] | (EXTENDED if len(ident) > 4 else 0)
        ts = float(cols[o_col]) / 1000 + start
        channel = int(cols[bus]) if bus is not None else 1
        aid = int(ident, 16)
        flags |= 0 if cols[d_col] == "Rx" else TX
        if kind == "RR":
            return ts, channel, aid, flags, dlc, b""
        data = bytes.fromhex(cols[data_col]) if dlc and data_col is not None else b""
        return ts, channel, aid, flags, len(data), data

    return parse


def read_trc(
    path: str | Path,
    *,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    notes: LogNotes | None = None,
) -> FrameColumns:
    """All frames of a PEAK TRC log (``.trc`` or ``.trc.gz``) as columns.

    A malformed line or an impossible frame is skipped and goes into ``notes`` with its 1-based
    line; reading goes on. Without ``notes`` the first one raises LogFileError after the read,
    every good frame on ``partial``. A header that cannot be used is an error either way.
    """
    p = Path(path)
    found = LogNotes(p) if notes is None else notes
    try:
        raw = gzip.decompress(p.read_bytes()) if p.suffix.lower() == ".gz" else p.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise log_error(f"{p}: cannot read ({exc})", FrameColumns.empty()) from exc
    try:
        header, pos, line_base = _parse_header(raw)
    except ValueError as exc:
        raise log_error(f"{p}: bad header ({exc})", FrameColumns.empty(), line=1) from exc
    if header.version in ("2.0", "2.1") and not header.columns:
        raise log_error(f"{p}: TRC {header.version} file without ;$COLUMNS", FrameColumns.empty(), line=1)
    start = header.start
    parse: Callable[[list[str]], _Frame]
    if header.version == "1.1":
        parse = lambda cols: _v1_x(cols, start, 3, False)  # noqa: E731
    elif header.version == "1.3":
        parse = lambda cols: _v1_x(cols, start, 4, True)  # noqa: E731
    elif header.version in ("2.0", "2.1"):
        try:
            parse = _v2_parser(header.columns, start)
        except KeyError as exc:
            raise log_error(f"{p}: ;$COLUMNS lacks {exc}", FrameColumns.empty(), line=1) from exc
    else:
        parse = lambda cols: _v1_0(cols, start)  # noqa: E731
    layout = _layout(header)

    def parse_text(text: str) -> _Frame:
        try:
            return parse(text.split(None, header.num_columns))
        except IndexError:  # python-can drops short lines with a warning
            return None

    frames = parse_in_chunks(
        p,
        raw,
        pos,
        line_base,
        lambda chunk: _parse_chunk(chunk, layout, start, parse_text),
        progress=progress,
        cancel=cancel,
        notes=found,
        frame_line=_FRAME_START,
    )
    return finish(frames, found, notes is None)


def _number(raw: np.ndarray) -> np.ndarray | None:
    """Plain decimal numbers (digits, at most one point, not at either end) as exact floats."""
    if (raw[:, 0] == ord(".")).any() or (raw[:, -1] == ord(".")).any():
        return None
    if raw.shape[1] > 2 and (exact := _decimal_seconds(raw)) is not None:
        return exact
    digits = raw - np.uint8(ord("0"))
    if raw.shape[1] > 15 or (digits > 9).any():
        return None
    total = np.zeros(len(raw), np.int64)
    for j in range(raw.shape[1]):
        total = total * 10 + digits[:, j]
    return total.astype(np.float64)


def _parse_chunk(
    chunk: bytes, layout: _Layout | None, start: float, parse_text: Callable[[str], _Frame]
) -> tuple[FrameColumns, LineIssues]:
    issues = LineIssues()
    tokens = tokenize(chunk)
    if tokens is None:
        return FrameColumns.empty(), issues
    padded, bp, tok = tokens.padded, tokens.bp, tokens.tok
    line_starts, line_ends = tokens.line_starts, tokens.line_ends
    tok_start, first_tok, count = tokens.tok_start, tokens.first_tok, tokens.count
    n_lines, n_tok = tokens.n_lines, tokens.n_tok

    timestamps = np.zeros(n_lines, np.float64)
    channel_no = np.ones(n_lines, np.int64)  # python-can's channel when the version has none
    arbitration_id = np.zeros(n_lines, np.uint32)
    flags = np.zeros(n_lines, np.uint8)
    length = np.zeros(n_lines, np.uint8)
    payload = np.zeros((n_lines, 8), np.uint8)
    ok = np.zeros(n_lines, bool)

    if layout is not None and n_tok:
        rows = np.flatnonzero(count > layout.dlc)
        s0, _ = tok(0, rows)
        good = bp[s0] != ord(";")
        sd, ld = tok(layout.dlc, rows, 3)
        dlc = np.where(ld == 1, bp[sd].astype(np.int64) - 48, 99)
        good &= (dlc >= 0) & (dlc <= 8) & (count[rows] == layout.data + np.clip(dlc, 0, 8))
        if layout.kind is not None:
            sk, _ = tok(layout.kind, rows)
            good &= (bp[sk] == ord("D")) & (bp[sk + 1] == ord("T")) & (bp[sk + 2] <= 32)
        if layout.direction is not None:
            sr, _ = tok(layout.direction, rows)
            good &= (
                ((bp[sr] == ord("R")) | (bp[sr] == ord("T"))) & (bp[sr + 1] == ord("x")) & (bp[sr + 2] <= 32)
            )
            flags[rows] = np.where(bp[sr] == ord("T"), TX, 0)
        ok[rows[good]] = True
        length[rows[good]] = dlc[good]

        rows = np.flatnonzero(ok)
        st, lt = tok(layout.time, rows, 24)
        for width, sub in _groups(lt, np.arange(len(rows))):
            value = _number(_at(padded, st[sub], width)) if width < 24 else None
            if value is None:
                ok[rows[sub]] = False
            else:
                # float(text) / 1000 (+ start), the same operations python-can does.
                timestamps[rows[sub]] = value / 1000 + start if layout.add_start else value / 1000

        if layout.channel is not None:
            sc, lc = tok(layout.channel, rows, 4)
            value = np.zeros(len(rows), np.int64)
            bad = (lc > 3) | ~((bp[sc] >= 48) & (bp[sc] <= 57))
            for j in range(3):
                digit = bp[sc + j].astype(np.int64) - 48
                inside = j < lc
                bad |= inside & ((digit < 0) | (digit > 9))
                value = np.where(inside, value * 10 + digit, value)
            channel_no[rows] = value
            ok[rows[bad]] = False

        si, li = tok(layout.ident, rows, 10)
        bad = (li < 1) | (li > 8)
        for width, sub in _groups(li, np.flatnonzero(~bad)):
            nib = _HEX[_at(padded, si[sub], width)]
            bad[sub[(nib == 255).any(axis=1)]] = True
            v = np.zeros(len(sub), np.uint32)
            for j in range(width):
                v = (v << np.uint32(4)) | nib[:, j]
            arbitration_id[rows[sub]] = v
        if layout.kind is None and layout.direction is None:
            bad |= arbitration_id[rows] == 0xFFFFFFFF  # 1.0 bus information: python-can drops it
        flags[rows] |= np.where(li > 4, EXTENDED, 0).astype(np.uint8)
        ok[rows[bad]] = False

        rows = np.flatnonzero(ok)
        for size, sub in _groups(length, rows):
            if size == 0:
                continue
            begins = tok_start[first_tok[sub][:, None] + layout.data + np.arange(size)]
            hi = _HEX[bp[begins]]
            lo = _HEX[bp[begins + 1]]
            bad = (bp[begins + 2] > 32).any(axis=1) | (hi == 255).any(axis=1) | (lo == 255).any(axis=1)
            payload[sub, :size] = (hi << 4) | lo
            ok[sub[bad]] = False
    keep = ok.copy()

    # Every other line by python-can's grammar; a bad line is noted and skipped.
    for i in np.flatnonzero(~ok).tolist():
        end = line_ends[i]
        text = chunk[line_starts[i] : end].decode("utf-8", "replace").strip()
        if not text or text[0] == ";":
            continue
        try:
            frame = parse_text(text)
        except (ValueError, KeyError) as exc:
            issues.add(i, f"malformed line {printable(text, 80)} ({exc})")
            continue
        if frame is None:
            continue
        ts, chan, aid, fl, ln, data = frame
        if ln > 64 or aid > 0xFFFFFFFF:  # beyond what the columns hold, let alone a bus
            reason = (
                impossible_reason(aid, fl, ln) if aid <= 0xFFFFFFFF else f"id 0x{aid:X} is beyond 29 bits"
            )
            issues.add(i, reason, True)
            continue
        timestamps[i], channel_no[i], arbitration_id[i], flags[i], length[i] = ts, chan, aid, fl, ln
        if len(data) > payload.shape[1]:
            payload = np.pad(payload, ((0, 0), (0, len(data) - payload.shape[1])))
        payload[i] = 0
        payload[i, : len(data)] = np.frombuffer(data, np.uint8)
        keep[i] = True

    def build(sel: np.ndarray) -> FrameColumns:
        found, inverse = np.unique(channel_no[sel], return_inverse=True)
        width = max(8, int(length[sel & ((flags & REMOTE) == 0)].max(initial=0)))
        return FrameColumns(
            timestamp=timestamps[sel],
            channel=inverse.ravel().astype(np.uint8),
            arbitration_id=arbitration_id[sel],
            flags=flags[sel],
            length=length[sel],
            payload=payload[sel][:, :width],
            channels=tuple(str(v) for v in found.tolist()),
        )

    issues.reject_impossible(arbitration_id, flags, length, keep)
    if len(np.unique(channel_no[keep])) > 256:
        raise BadLine(n_lines - 1, "more than 256 channels", FrameColumns.empty())
    return build(keep), issues.sorted()
