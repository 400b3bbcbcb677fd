"""FrameRing: the one structure the receive threads and the consumer share.

Producers (python-can Notifier threads, replay players) call :meth:`push`; one consumer
(the GUI tick or the CLI loop) calls :meth:`drain`. The ring is bounded and never blocks a
producer: when it is full the new frame is dropped and counted, so loss is visible.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

from workshop_app.core.types import Frame


class FrameRing:
    """Bounded, thread-safe, multi-producer single-consumer frame hand-off."""

    def __init__(self, capacity: int = 262_144) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._items: deque[Frame] = deque()
        self._lock = threading.Lock()
        self._pushed = 0
        self._dropped = 0
        self._high_water = 0

    def push(self, frame: Frame) -> bool:
        """Append one frame; returns False (and counts a drop) when the ring is full."""
        with self._lock:
            if len(self._items) >= self.capacity:
                self._dropped += 1
                return False
            self._items.append(frame)
            self._pushed += 1
            n = len(self._items)
            if n > self._high_water:
                self._high_water = n
            return True

    def push_many(self, frames: Iterable[Frame]) -> int:
        """Append frames in one lock round trip; returns how many were accepted."""
        batch = frames if isinstance(frames, list) else list(frames)
        with self._lock:
            items = self._items
            room = max(self.capacity - len(items), 0)
            accepted = min(len(batch), room)
            items.extend(batch if accepted == len(batch) else batch[:accepted])
            self._dropped += len(batch) - accepted
            self._pushed += accepted
            self._high_water = max(self._high_water, len(items))
        return accepted

    def drain(self, max_n: int | None = None) -> list[Frame]:
        """Remove and return up to ``max_n`` frames (all when None), oldest first."""
        with self._lock:
            items = self._items
            if max_n is None or max_n >= len(items):
                out = list(items)
                items.clear()
                return out
            return [items.popleft() for _ in range(max_n)]

    def __len__(self) -> int:
        return len(self._items)

    @property
    def backlog(self) -> int:
        """Frames waiting to be drained."""
        return len(self._items)

    @property
    def pushed(self) -> int:
        return self._pushed

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def high_water(self) -> int:
        """Largest backlog seen: how close the consumer came to losing frames."""
        return self._high_water
