"""FrameStore: what the trace shows, per message stream (channel, id, extended flag).

Owned by the consumer thread (the GUI tick or the CLI loop): it is fed batches drained from
the FrameRing and is never touched by receive threads, so it needs no lock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from workshop_app.core.types import Frame

# Weight of the newest interval in the running mean/variance of the cycle time.
_EMA_ALPHA = 0.05


@dataclass(slots=True)
class MessageStats:
    """Running statistics of one message stream."""

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
    # How often each bit flipped; the bit view colours by this.
    bit_flips: list[int] = field(default_factory=list)
    # Timestamp of the last change of each byte, for fading highlights.
    byte_changed_at: list[float] = field(default_factory=list)

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
            self.bit_flips = [0] * (len(data) * 8)
            self.byte_changed_at = [ts] * len(data)
        else:
            dt = ts - self.last_ts
            if dt >= 0:
                if self.count == 1:
                    self.mean_interval = dt
                else:
                    diff = dt - self.mean_interval
                    self.mean_interval += _EMA_ALPHA * diff
                    self.var_interval = (1 - _EMA_ALPHA) * (self.var_interval + _EMA_ALPHA * diff * diff)
                self.min_interval = min(self.min_interval, dt)
                self.max_interval = max(self.max_interval, dt)
            self._track_changes(self.data, data, ts)
        self.count += 1
        self.last_ts = ts
        self.data = data
        self.is_fd = frame.is_fd
        self.is_rx = frame.is_rx

    def _track_changes(self, old: bytes, new: bytes, ts: float) -> None:
        if len(new) != len(old):
            # A length change makes every byte new; grow the per-bit tables.
            n = len(new)
            if n * 8 > len(self.bit_flips):
                self.bit_flips.extend([0] * (n * 8 - len(self.bit_flips)))
                self.byte_changed_at.extend([ts] * (n - len(self.byte_changed_at)))
            old = old.ljust(n, b"\0")[:n]
        xor = int.from_bytes(old, "little") ^ int.from_bytes(new, "little")
        self.changed_mask = xor
        if not xor:
            return
        self.ever_changed |= xor
        flips = self.bit_flips
        changed_at = self.byte_changed_at
        x = xor
        last_byte = -1
        while x:
            low = x & -x
            bit = low.bit_length() - 1
            flips[bit] += 1
            byte = bit >> 3
            if byte != last_byte:
                changed_at[byte] = ts
                last_byte = byte
            x ^= low


class FrameStore:
    """Per-stream statistics plus totals; fed by batches from the ring."""

    def __init__(self) -> None:
        self.messages: dict[tuple[str, int, bool], MessageStats] = {}
        self.total_frames = 0
        self.error_frames = 0
        self.last_ts = 0.0

    def ingest(self, frames: list[Frame]) -> set[tuple[str, int, bool]]:
        """Fold a batch into the statistics; returns the keys of streams that changed."""
        touched: set[tuple[str, int, bool]] = set()
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
