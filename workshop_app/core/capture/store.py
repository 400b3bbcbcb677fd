"""FrameStore: what the trace shows, per message stream (channel, id, extended flag).

Owned by the consumer thread (the GUI tick or the CLI loop): it is fed batches drained from
the FrameRing and is never touched by receive threads, so it needs no lock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from workshop_app.core.types import Frame

# One message stream: (channel, arbitration id, extended flag).
MessageKey = tuple[str, int, bool]

# Weight of the newest interval in the running mean/variance of the cycle time.
_EMA_ALPHA = 0.05


# Change records are folded into per-bit counts in batches of this many (numpy, not per bit).
_FOLD_AT = 512


@dataclass(slots=True)
class MessageStats:
    """Running statistics of one message stream.

    Per-bit flip counts and per-byte change times are what the bit view and the fading trace
    show; counting them bit by bit per frame costs more than everything else in capture, so
    each frame only records its XOR with the previous payload, and the records are folded
    into the counts with numpy when someone reads them (or every ``_FOLD_AT`` changes).
    """

    channel: str
    arbitration_id: int
    is_extended: bool
    count: int = 0
    first_ts: float = 0.0
    last_ts: float = 0.0
    data: bytes = b""
    is_fd: bool = False
    is_rx: bool = True
    mean_interval: float = 0.0
    var_interval: float = 0.0
    min_interval: float = math.inf
    max_interval: float = 0.0
    # Bits that differ between the last two payloads (bit i = byte i // 8, bit i % 8).
    changed_mask: int = 0
    # Every bit that has changed at least once since the stream started.
    ever_changed: int = 0
    _value: int = 0
    _pending_ts: list[float] = field(default_factory=list)
    _pending_xor: list[int] = field(default_factory=list)
    _flips: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    _changed_at: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float64))

    @property
    def key(self) -> tuple[str, int, bool]:
        return (self.channel, self.arbitration_id, self.is_extended)

    @property
    def dlc(self) -> int:
        return len(self.data)

    @property
    def jitter(self) -> float:
        """Standard deviation of the cycle time (seconds)."""
        return math.sqrt(self.var_interval) if self.var_interval > 0 else 0.0

    @property
    def bit_flips(self) -> list[int]:
        """How often each bit flipped (bit i = byte i // 8, bit i % 8)."""
        self._fold()
        flips: list[int] = self._flips.tolist()
        return flips

    @property
    def byte_changed_at(self) -> list[float]:
        """Timestamp of the last change of each byte, for fading highlights."""
        self._fold()
        changed_at: list[float] = self._changed_at.tolist()
        return changed_at

    def rate(self, now: float | None = None) -> float:
        """Frames per second; falls to 0 once the stream has been silent for 3 cycles."""
        if self.mean_interval <= 0:
            return 0.0
        if now is not None and now - self.last_ts > max(3 * self.mean_interval, 1.0):
            return 0.0
        return 1.0 / self.mean_interval

    def update(self, frame: Frame) -> None:
        ts = frame.timestamp
        data = frame.data
        if self.count == 0:
            self.first_ts = ts
            self._grow(len(data), ts)
            self._value = int.from_bytes(data, "little")
        else:
            dt = ts - self.last_ts
            if dt >= 0:
                if self.count == 1:
                    self.mean_interval = dt
                else:
                    diff = dt - self.mean_interval
                    self.mean_interval += _EMA_ALPHA * diff
                    self.var_interval = (1 - _EMA_ALPHA) * (self.var_interval + _EMA_ALPHA * diff * diff)
                if dt < self.min_interval:
                    self.min_interval = dt
                if dt > self.max_interval:
                    self.max_interval = dt
            if data != self.data:
                value = int.from_bytes(data, "little")
                xor = value ^ self._value
                self._value = value
                if len(data) > len(self._changed_at):
                    self._fold()
                    self._grow(len(data), ts)
                self.changed_mask = xor
                self.ever_changed |= xor
                self._pending_ts.append(ts)
                self._pending_xor.append(xor)
                if len(self._pending_xor) >= _FOLD_AT:
                    self._fold()
            else:
                self.changed_mask = 0
        self.count += 1
        self.last_ts = ts
        self.data = data
        self.is_fd = frame.is_fd
        self.is_rx = frame.is_rx

    def _grow(self, n_bytes: int, ts: float) -> None:
        old = len(self._changed_at)
        self._flips = np.concatenate([self._flips, np.zeros(n_bytes * 8 - len(self._flips), dtype=np.int64)])
        self._changed_at = np.concatenate([self._changed_at, np.full(n_bytes - old, ts)])

    def _fold(self) -> None:
        if not self._pending_xor:
            return
        n = len(self._changed_at)
        raw = b"".join(x.to_bytes(n, "little") for x in self._pending_xor)
        rows = np.frombuffer(raw, dtype=np.uint8).reshape(-1, n)
        self._flips += np.unpackbits(rows, axis=1, bitorder="little").sum(axis=0, dtype=np.int64)
        changed = rows != 0
        any_change = changed.any(axis=0)
        # Last record in which each byte changed.
        last = len(rows) - 1 - np.argmax(changed[::-1], axis=0)
        ts = np.asarray(self._pending_ts)
        self._changed_at[any_change] = ts[last[any_change]]
        self._pending_ts.clear()
        self._pending_xor.clear()


class FrameStore:
    """Per-stream statistics plus totals; fed by batches from the ring."""

    def __init__(self) -> None:
        self.messages: dict[tuple[str, int, bool], MessageStats] = {}
        self.total_frames = 0
        self.error_frames = 0
        self.last_ts = 0.0

    def ingest(self, frames: list[Frame]) -> set[MessageKey]:
        """Fold a batch into the statistics; returns the keys of streams that changed."""
        touched: set[MessageKey] = set()
        messages = self.messages
        for frame in frames:
            if frame.is_error:
                self.error_frames += 1
                continue
            key = (frame.channel, frame.arbitration_id, frame.is_extended)
            stats = messages.get(key)
            if stats is None:
                stats = messages[key] = MessageStats(frame.channel, frame.arbitration_id, frame.is_extended)
            stats.update(frame)
            touched.add(key)
        if frames:
            self.total_frames += len(frames)
            self.last_ts = max(self.last_ts, frames[-1].timestamp)
        return touched

    def get(self, channel: str, arbitration_id: int, is_extended: bool = False) -> MessageStats | None:
        return self.messages.get((channel, arbitration_id, is_extended))

    def sorted_messages(self) -> list[MessageStats]:
        return sorted(self.messages.values(), key=lambda s: (s.channel, s.is_extended, s.arbitration_id))

    def clear(self) -> None:
        self.messages.clear()
        self.total_frames = 0
        self.error_frames = 0
        self.last_ts = 0.0
