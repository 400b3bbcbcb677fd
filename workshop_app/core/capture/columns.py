"""FrameColumns: a batch of frames as numpy columns, and its packed form for a pipe.

The capture process sends the window one packed batch per tick instead of one pickled object
per frame: a fixed header, the channel names, then the arrays back to back. Unpacking is
``np.frombuffer`` views on the received bytes (no copy, no per-frame work); only consumers that
still want :class:`Frame` objects pay for :meth:`FrameColumns.to_frames`.

>>> cols = FrameColumns.from_frames([Frame(1.0, 0x123, b"\\x01\\x02", "can1")])
>>> FrameColumns.unpack(cols.pack()).to_frames()[0].data
b'\\x01\\x02'
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from workshop_app.core.types import Frame

# Flag bits of the ``flags`` column.
EXTENDED, FD, BRS, ESI, REMOTE, ERROR, RX = (1 << i for i in range(7))

# magic, frame count, data width (bytes per row), length of the joined channel names.
_HEADER = struct.Struct("<4sIHH")
_MAGIC = b"WSC1"


@dataclass(frozen=True, slots=True)
class FrameColumns:
    """``n`` frames: timestamp (float64), id (uint32), flags, length and channel index (uint8),
    data (uint8, ``n`` x width, zero padded); ``channels`` names the channel indices."""

    timestamp: np.ndarray
    can_id: np.ndarray
    flags: np.ndarray
    length: np.ndarray
    channel: np.ndarray
    data: np.ndarray
    channels: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.timestamp)

    def __getitem__(self, rows: slice) -> FrameColumns:
        """The rows of a slice, as views on these arrays (no copy)."""
        if not isinstance(rows, slice):
            raise TypeError("FrameColumns takes a slice of rows; use row(i) for one frame")
        return FrameColumns(
            self.timestamp[rows],
            self.can_id[rows],
            self.flags[rows],
            self.length[rows],
            self.channel[rows],
            self.data[rows],
            self.channels,
        )

    @classmethod
    def empty(cls) -> FrameColumns:
        return cls(
            np.zeros(0, np.float64),
            np.zeros(0, np.uint32),
            np.zeros(0, np.uint8),
            np.zeros(0, np.uint8),
            np.zeros(0, np.uint8),
            np.zeros((0, 0), np.uint8),
            (),
        )

    @classmethod
    def concat(cls, batches: Iterable[FrameColumns]) -> FrameColumns:
        """The batches one after the other: channel indices renumbered onto one name table,
        payloads zero padded to the widest."""
        parts = [b for b in batches if len(b)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        names: dict[str, int] = {}
        channel_parts = []
        for b in parts:
            # Map this batch's channel numbers onto the joint table (most batches share one).
            table = np.array([names.setdefault(name, len(names)) for name in b.channels] or [0], np.uint8)
            channel_parts.append(b.channel if table.tolist() == list(range(len(table))) else table[b.channel])
        if len(names) > 255:
            raise ValueError("a batch holds at most 255 channels")
        width = max(b.data.shape[1] for b in parts)
        n = sum(len(b) for b in parts)
        data = np.zeros((n, width), np.uint8)
        pos = 0
        for b in parts:
            data[pos : pos + len(b), : b.data.shape[1]] = b.data
            pos += len(b)
        return cls(
            np.concatenate([b.timestamp for b in parts]).astype(np.float64, copy=False),
            np.concatenate([b.can_id for b in parts]).astype(np.uint32, copy=False),
            np.concatenate([b.flags for b in parts]).astype(np.uint8, copy=False),
            np.concatenate([b.length for b in parts]).astype(np.uint8, copy=False),
            np.concatenate(channel_parts).astype(np.uint8, copy=False),
            data,
            tuple(names),
        )

    def row(self, i: int) -> Frame:
        """Row ``i`` as one :class:`Frame` (for showing a single row without converting the batch)."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"row {i} of a batch of {n}")
        return self[i : i + 1 or None].to_frames()[0]

    @classmethod
    def from_frames(cls, frames: Sequence[Frame]) -> FrameColumns:
        n = len(frames)
        names: dict[str, int] = {}
        channel = np.fromiter((names.setdefault(f.channel, len(names)) for f in frames), np.uint8, n)
        if len(names) > 255:
            raise ValueError("a batch holds at most 255 channels")
        length = np.fromiter((len(f.data) for f in frames), np.uint8, n)
        width = int(length.max()) if n else 0
        if width:
            raw = b"".join(f.data.ljust(width, b"\0") for f in frames)
            data = np.frombuffer(raw, np.uint8).reshape(n, width)
        else:
            data = np.zeros((n, 0), np.uint8)
        flags = np.fromiter(
            (
                (EXTENDED if f.is_extended else 0)
                | (FD if f.is_fd else 0)
                | (BRS if f.bitrate_switch else 0)
                | (ESI if f.error_state_indicator else 0)
                | (REMOTE if f.is_remote else 0)
                | (ERROR if f.is_error else 0)
                | (RX if f.is_rx else 0)
                for f in frames
            ),
            np.uint8,
            n,
        )
        return cls(
            np.fromiter((f.timestamp for f in frames), np.float64, n),
            np.fromiter((f.arbitration_id for f in frames), np.uint32, n),
            flags,
            length,
            channel,
            data,
            tuple(names),
        )

    def pack(self) -> bytes:
        n = len(self)
        width = self.data.shape[1] if n else 0
        names = "\0".join(self.channels).encode()
        return b"".join(
            (
                _HEADER.pack(_MAGIC, n, width, len(names)),
                names,
                np.ascontiguousarray(self.timestamp, np.float64).tobytes(),
                np.ascontiguousarray(self.can_id, np.uint32).tobytes(),
                np.ascontiguousarray(self.flags, np.uint8).tobytes(),
                np.ascontiguousarray(self.length, np.uint8).tobytes(),
                np.ascontiguousarray(self.channel, np.uint8).tobytes(),
                np.ascontiguousarray(self.data, np.uint8).tobytes(),
            )
        )

    @classmethod
    def unpack(cls, buf: bytes) -> FrameColumns:
        """Views on ``buf`` (read-only arrays); raises ValueError on a malformed batch."""
        if len(buf) < _HEADER.size:
            raise ValueError("frame batch shorter than its header")
        magic, n, width, names_len = _HEADER.unpack_from(buf)
        if magic != _MAGIC:
            raise ValueError("not a frame batch")
        expected = _HEADER.size + names_len + n * (8 + 4 + 3 + width)
        if len(buf) != expected:
            raise ValueError(f"frame batch of {len(buf)} bytes, expected {expected}")
        pos = _HEADER.size
        names = buf[pos : pos + names_len].decode()
        pos += names_len

        def take(dtype: type[np.generic], count: int) -> np.ndarray:
            nonlocal pos
            arr = np.frombuffer(buf, dtype, count, pos)
            pos += arr.nbytes
            return arr

        ts = take(np.float64, n)
        ids = take(np.uint32, n)
        flags = take(np.uint8, n)
        length = take(np.uint8, n)
        channel = take(np.uint8, n)
        data = take(np.uint8, n * width).reshape(n, width)
        return cls(ts, ids, flags, length, channel, data, tuple(names.split("\0")) if names_len else ())

    def to_frames(self) -> list[Frame]:
        """One :class:`Frame` per row, for consumers that still take frames (~1 µs a frame)."""
        names = self.channels
        rows = self.data.tobytes()
        width = self.data.shape[1] if len(self) else 0
        out = []
        for i, (t, can_id, fl, n, ch) in enumerate(
            zip(
                self.timestamp.tolist(),
                self.can_id.tolist(),
                self.flags.tolist(),
                self.length.tolist(),
                self.channel.tolist(),
                strict=True,
            )
        ):
            start = i * width
            out.append(
                Frame(
                    t,
                    can_id,
                    rows[start : start + n],
                    names[ch],
                    bool(fl & EXTENDED),
                    bool(fl & FD),
                    bool(fl & BRS),
                    bool(fl & ESI),
                    bool(fl & REMOTE),
                    bool(fl & ERROR),
                    bool(fl & RX),
                )
            )
        return out
