"""ISO-TP (ISO 15765-2) reassembly of a recorded log: frames in, diagnostic messages out.

Every stream (channel, 11/29-bit, CAN id) runs its own receiver state machine. Only normal
addressing is handled (the protocol control information, PCI, is the first data byte): plain
11-bit, plain 29-bit and 29-bit normal-fixed (0x18DA<TA><SA> physical, 0x18DB<TA><SA>
functional). A recording is evidence, not a conversation we take part in, so nothing here ever
raises on bad traffic: every protocol violation becomes an :class:`IsoTpProblem` and the
receiver resynchronises on the next single or first frame.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from workshop_app.core.logs.columns import ERROR, EXTENDED, FD, REMOTE, FrameColumns

# PCI frame types (high nibble of the first byte).
SINGLE_FRAME = 0
FIRST_FRAME = 1
CONSECUTIVE_FRAME = 2
FLOW_CONTROL = 3

# Flow status of a flow control frame (low nibble).
FLOW_STATUS_NAMES = {0: "continue to send", 1: "wait", 2: "overflow"}

StreamKey = tuple[int, bool, int]  # (channel index, extended, arbitration id)


@dataclass(frozen=True, slots=True)
class IsoTpMessage:
    """One complete diagnostic message (PCI removed, padding dropped)."""

    start: float  # time of the single or first frame
    end: float  # time of the last frame
    channel: int  # index into FrameColumns.channels
    can_id: int
    extended: bool
    payload: bytes
    frames: int
    fd: bool = False  # carried in CAN FD frames

    @property
    def stream(self) -> StreamKey:
        return (self.channel, self.extended, self.can_id)


@dataclass(frozen=True, slots=True)
class FlowControl:
    """A flow control frame: the receiver's answer to a first frame (or a wait/overflow)."""

    time: float
    channel: int
    can_id: int
    extended: bool
    status: int  # 0 continue to send, 1 wait, 2 overflow, others invalid
    block_size: int
    st_min: int  # raw STmin byte (0x00-0x7F ms, 0xF1-0xF9 100-900 µs)

    @property
    def status_name(self) -> str:
        return FLOW_STATUS_NAMES.get(self.status, f"invalid flow status {self.status}")


@dataclass(frozen=True, slots=True)
class IsoTpProblem:
    """A protocol violation found while reassembling, with where and when it happened."""

    time: float
    channel: int
    can_id: int
    extended: bool
    kind: str  # wrong_sequence, interrupted, incomplete, unexpected_cf, bad_length, overflow, ...
    text: str


@dataclass
class IsoTpResult:
    messages: list[IsoTpMessage] = field(default_factory=list)  # in order of completion time
    flow_controls: list[FlowControl] = field(default_factory=list)
    problems: list[IsoTpProblem] = field(default_factory=list)
    frames: int = 0  # frames looked at


@dataclass
class _Transfer:
    """A segmented message being received on one stream."""

    start: float
    expected: int  # total length announced by the first frame
    data: bytearray
    next_sn: int  # sequence number the next consecutive frame must carry
    frames: int
    fd: bool
    last: float


@dataclass
class _Receiver:
    """Per-stream state: the transfer in progress, and whether to drop CFs of an aborted one."""

    transfer: _Transfer | None = None
    discarding: bool = False


def normal_fixed_addresses(can_id: int, extended: bool) -> tuple[int, int, bool] | None:
    """(target, source, functional) of a 29-bit normal-fixed id, or None for any other id.

    The priority bits (top three of the 29) are free, so only the PF byte 0xDA/0xDB is checked.
    """
    if not extended:
        return None
    pf = (can_id >> 16) & 0xFF
    if pf not in (0xDA, 0xDB):
        return None
    return (can_id >> 8) & 0xFF, can_id & 0xFF, pf == 0xDB


def _stream_rows(columns: FrameColumns, streams: Iterable[StreamKey] | None) -> np.ndarray:
    """Row indices of the data frames to reassemble, in log order."""
    usable = (columns.flags & np.uint8(ERROR | REMOTE)) == 0
    usable &= columns.length > 0
    if streams is not None:
        wanted = np.zeros(len(columns), bool)
        ext = (columns.flags & np.uint8(EXTENDED)) != 0
        for channel, extended, can_id in set(streams):
            wanted |= (columns.arbitration_id == can_id) & (columns.channel == channel) & (ext == extended)
        usable &= wanted
    return np.flatnonzero(usable)


def reassemble(columns: FrameColumns, streams: Iterable[StreamKey] | None = None) -> IsoTpResult:
    """Reassemble every ISO-TP message of ``columns`` (or of the given streams only).

    Frames are taken in log order, which is bus order for a single-channel recording; each
    stream has its own receiver so interleaved conversations do not disturb each other.
    """
    result = IsoTpResult()
    rows = _stream_rows(columns, streams)
    result.frames = len(rows)
    if not len(rows):
        return result
    # Plain Python values once: per-frame numpy scalar access would dominate the loop.
    times = columns.timestamp[rows].tolist()
    chans = columns.channel[rows].tolist()
    ids = columns.arbitration_id[rows].tolist()
    flags = columns.flags[rows].tolist()
    lengths = columns.length[rows].tolist()
    width = columns.payload.shape[1]
    blob = np.ascontiguousarray(columns.payload[rows]).tobytes()
    receivers: dict[StreamKey, _Receiver] = {}
    problems = result.problems

    for i, (t, ch, can_id, fl, n) in enumerate(zip(times, chans, ids, flags, lengths, strict=True)):
        n = min(n, width)
        data = blob[i * width : i * width + n]
        extended = bool(fl & EXTENDED)
        key = (ch, extended, can_id)
        rx = receivers.get(key)
        if rx is None:
            rx = receivers[key] = _Receiver()

        def problem(kind: str, text: str) -> None:
            problems.append(IsoTpProblem(t, ch, can_id, extended, kind, text))  # noqa: B023 (called at once)

        pci = data[0] >> 4
        if pci in (SINGLE_FRAME, FIRST_FRAME):
            if rx.transfer is not None:
                cut = rx.transfer
                problem(
                    "interrupted",
                    f"{'single' if pci == SINGLE_FRAME else 'first'} frame while a {cut.expected}-byte "
                    f"message had {len(cut.data)} bytes: the unfinished message is dropped",
                )
                rx.transfer = None
            rx.discarding = False
        if pci == SINGLE_FRAME:
            low = data[0] & 0x0F
            if low == 0 and n > 8:
                # CAN FD escape: the length moves to the second byte (ISO 15765-2:2016).
                size = data[1] if n > 1 else 0
                body = data[2 : 2 + size]
                valid = 0 < size <= n - 2
            else:
                size = low
                body = data[1 : 1 + size]
                valid = 0 < size <= n - 1
            if not valid:
                problem("bad_length", f"single frame announces {size} bytes in a {n}-byte frame")
                continue
            result.messages.append(IsoTpMessage(t, t, ch, can_id, extended, bytes(body), 1, bool(fl & FD)))
        elif pci == FIRST_FRAME:
            if n < 2:
                problem("bad_length", "first frame shorter than its length field")
                continue
            size = ((data[0] & 0x0F) << 8) | data[1]
            offset = 2
            if size == 0:
                # Escape for messages over 4095 bytes: a 32-bit length follows.
                if n < 6:
                    problem("bad_length", "first frame with a 32-bit length cut short")
                    continue
                size = int.from_bytes(data[2:6], "big")
                offset = 6
            body = data[offset:n]
            if size <= len(body):
                # A segmented transfer must need at least one consecutive frame.
                problem("bad_length", f"first frame announces {size} bytes but already carries {len(body)}")
                continue
            rx.transfer = _Transfer(t, size, bytearray(body), 1, 1, bool(fl & FD), t)
        elif pci == CONSECUTIVE_FRAME:
            tr = rx.transfer
            if tr is None:
                if not rx.discarding:
                    problem("unexpected_cf", f"consecutive frame (SN {data[0] & 0x0F}) without a first frame")
                continue
            sn = data[0] & 0x0F
            if sn != tr.next_sn:
                problem(
                    "wrong_sequence",
                    f"sequence number {sn}, expected {tr.next_sn}: the {tr.expected}-byte message "
                    f"is dropped after {len(tr.data)} bytes",
                )
                rx.transfer = None
                rx.discarding = True  # the rest of this transfer is one problem, not many
                continue
            tr.data += data[1 : 1 + tr.expected - len(tr.data)]
            tr.frames += 1
            tr.next_sn = (sn + 1) & 0x0F
            tr.last = t
            if len(tr.data) >= tr.expected:
                result.messages.append(
                    IsoTpMessage(tr.start, t, ch, can_id, extended, bytes(tr.data), tr.frames, tr.fd)
                )
                rx.transfer = None
        elif pci == FLOW_CONTROL:
            status = data[0] & 0x0F
            fc = FlowControl(
                t, ch, can_id, extended, status, data[1] if n > 1 else 0, data[2] if n > 2 else 0
            )
            result.flow_controls.append(fc)
            if status == 2:
                problem("overflow", "receiver reported overflow: the sender must abort the message")
            elif status > 2:
                problem("bad_flow_status", f"flow control with invalid flow status {status}")
        else:
            problem("bad_pci", f"invalid PCI type 0x{pci:X}")

    for (ch, extended, can_id), rx in receivers.items():
        left = rx.transfer
        if left is not None:
            result.problems.append(
                IsoTpProblem(
                    left.last,
                    ch,
                    can_id,
                    extended,
                    "incomplete",
                    f"log ends after {len(left.data)} of {left.expected} bytes "
                    f"({left.frames} frames): consecutive frames missing",
                )
            )
    result.messages.sort(key=lambda m: m.end)
    result.problems.sort(key=lambda p: p.time)
    return result


def plausible_pci(columns: FrameColumns, min_share: float = 0.9) -> set[StreamKey]:
    """Streams whose frames mostly carry a valid ISO-TP PCI (cheap, vectorised pre-screen).

    Used to find diagnostic traffic on ids that follow no addressing convention without running
    the state machine over (and reporting problems for) every cyclic signal frame of the log.
    """
    usable = ((columns.flags & np.uint8(ERROR | REMOTE)) == 0) & (columns.length > 0)
    if not usable.any():
        return set()
    rows = np.flatnonzero(usable)
    first = columns.payload[rows, 0]
    second = columns.payload[rows, 1] if columns.payload.shape[1] > 1 else np.zeros(len(rows), np.uint8)
    n = columns.length[rows].astype(np.int32)
    kind = first >> 4
    low = (first & 0x0F).astype(np.int32)
    sf_ok = (kind == 0) & (((low > 0) & (low <= n - 1)) | ((low == 0) & (n > 8) & (second > 0)))
    ff_ok = (kind == 1) & (n >= 8) & ((((low << 8) | second) > n - 2) | (((low << 8) | second) == 0))
    ok = sf_ok | ff_ok | (kind == 2) | ((kind == 3) & (low <= 2))
    starts = sf_ok | ff_ok
    ext = ((columns.flags[rows] & np.uint8(EXTENDED)) != 0).astype(np.uint64)
    keys = (columns.channel[rows].astype(np.uint64) << np.uint64(30)) | (ext << np.uint64(29))
    keys |= columns.arbitration_id[rows].astype(np.uint64)
    uniq, inverse = np.unique(keys, return_inverse=True)
    total = np.bincount(inverse, minlength=len(uniq))
    good = np.bincount(inverse, weights=ok, minlength=len(uniq))
    started = np.bincount(inverse, weights=starts, minlength=len(uniq))
    out: set[StreamKey] = set()
    for key, tot, g, s in zip(uniq.tolist(), total.tolist(), good.tolist(), started.tolist(), strict=True):
        if s > 0 and g >= min_share * tot:
            out.add((key >> 30, bool(key >> 29 & 1), key & 0x1FFFFFFF))
    return out
