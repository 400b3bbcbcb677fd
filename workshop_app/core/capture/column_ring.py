"""ColumnRing: a FrameRing that holds whole column batches instead of one object per frame.

The capture process's link delivers :class:`FrameColumns` batches; keeping them as batches
means the window's process never builds a Frame unless a consumer asks for frames. The
contract is FrameRing's: bounded, thread-safe, producers never block, one consumer, and when
full the new frames that do not fit are dropped and counted (a batch that fits partly is cut).
All counts (``capacity``, ``pushed``, ``dropped``, ``high_water``, ``backlog``) are frames.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from workshop_app.core.capture.columns import FrameColumns
from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.types import Frame


class ColumnRing(FrameRing):
    """Bounded, thread-safe hand-off of column batches; also takes and gives Frames."""

    def __init__(self, capacity: int = 262_144) -> None:
        super().__init__(capacity)
        self._batches: deque[FrameColumns] = deque()
        self._count = 0  # frames in ``_batches`` and ``_loose``
        # Frames pushed one by one (a local source: a replay, a simulator) wait here as objects
        # and become one batch when the next batch arrives or the consumer drains: a batch per
        # frame would cost ~10 µs a frame.
        self._loose: list[Frame] = []

    def _seal(self) -> None:
        """Turn the loose frames into a batch, in order (under the lock)."""
        if self._loose:
            self._batches.append(FrameColumns.from_frames(self._loose))
            self._loose = []

    def push_columns(self, cols: FrameColumns) -> int:
        """Append a batch (kept by reference, not copied); returns how many frames were accepted."""
        n = len(cols)
        if not n:
            return 0
        with self._lock:
            room = self.capacity - self._count
            if room <= 0:
                self._dropped += n
                return 0
            if n > room:
                self._dropped += n - room
                cols = cols[:room]
                n = room
            self._seal()
            self._batches.append(cols)
            self._count += n
            self._pushed += n
            if self._count > self._high_water:
                self._high_water = self._count
            return n

    def drain_columns(self, max_n: int | None = None) -> FrameColumns:
        """Remove and return up to ``max_n`` frames (all when None), oldest first, as one batch."""
        with self._lock:
            self._seal()
            batches = self._batches
            if max_n is None or max_n >= self._count:
                taken = list(batches)
                batches.clear()
                self._count = 0
            else:
                taken = []
                want = max(max_n, 0)
                while want > 0:
                    head = batches[0]
                    if len(head) <= want:
                        taken.append(batches.popleft())
                        want -= len(head)
                    else:
                        # Split the oldest batch: its tail waits for the next drain.
                        taken.append(head[:want])
                        batches[0] = head[want:]
                        want = 0
                self._count -= sum(len(b) for b in taken)
        return FrameColumns.concat(taken)

    def push(self, frame: Frame) -> bool:
        with self._lock:
            if self._count >= self.capacity:
                self._dropped += 1
                return False
            self._loose.append(frame)
            self._count += 1
            self._pushed += 1
            if self._count > self._high_water:
                self._high_water = self._count
            return True

    def push_many(self, frames: Iterable[Frame]) -> int:
        batch = list(frames)
        with self._lock:
            room = max(self.capacity - self._count, 0)
            taken = batch[:room]
            self._dropped += len(batch) - len(taken)
            self._loose.extend(taken)
            self._count += len(taken)
            self._pushed += len(taken)
            if self._count > self._high_water:
                self._high_water = self._count
            return len(taken)

    def drain(self, max_n: int | None = None) -> list[Frame]:
        return self.drain_columns(max_n).to_frames()

    def __len__(self) -> int:
        return self._count

    @property
    def backlog(self) -> int:
        return self._count
