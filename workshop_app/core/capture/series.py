"""SignalSeries: fixed-capacity numpy ring buffers of decoded values for plots."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


class SignalSeries:
    """Time/value ring buffer; appends are O(1) amortised, reads return ordered copies."""

    def __init__(self, name: str, capacity: int = 100_000, unit: str = "") -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.name = name
        self.unit = unit
        self.capacity = capacity
        self._t = np.empty(capacity, dtype=np.float64)
        self._v = np.empty(capacity, dtype=np.float64)
        self._head = 0  # next write position
        self._size = 0
        self.total = 0  # values ever appended (including overwritten ones)

    def __len__(self) -> int:
        return self._size

    def append(self, t: float, v: float) -> None:
        self._t[self._head] = t
        self._v[self._head] = v
        self._head = (self._head + 1) % self.capacity
        self._size = min(self._size + 1, self.capacity)
        self.total += 1

    def extend(self, t: npt.ArrayLike, v: npt.ArrayLike) -> None:
        ts = np.asarray(t, dtype=np.float64)
        vs = np.asarray(v, dtype=np.float64)
        if ts.shape != vs.shape or ts.ndim != 1:
            raise ValueError("times and values must be 1-D arrays of equal length")
        n = len(ts)
        self.total += n
        if n >= self.capacity:
            self._t[:] = ts[-self.capacity :]
            self._v[:] = vs[-self.capacity :]
            self._head = 0
            self._size = self.capacity
            return
        end = self._head + n
        if end <= self.capacity:
            self._t[self._head : end] = ts
            self._v[self._head : end] = vs
        else:
            first = self.capacity - self._head
            self._t[self._head :] = ts[:first]
            self._v[self._head :] = vs[:first]
            self._t[: n - first] = ts[first:]
            self._v[: n - first] = vs[first:]
        self._head = end % self.capacity
        self._size = min(self._size + n, self.capacity)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(times, values) oldest first, as new arrays."""
        if self._size < self.capacity:
            return self._t[: self._size].copy(), self._v[: self._size].copy()
        return np.roll(self._t, -self._head), np.roll(self._v, -self._head)

    def tail(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(times, values) of the newest ``count`` samples (all kept, if fewer), as new arrays."""
        count = min(max(count, 0), self._size)
        start = (self._head - count) % self.capacity
        if start + count <= self.capacity:
            return self._t[start : start + count].copy(), self._v[start : start + count].copy()
        return (
            np.concatenate((self._t[start:], self._t[: self._head])),
            np.concatenate((self._v[start:], self._v[: self._head])),
        )

    def count_since(self, t: float) -> int:
        """How many samples from the newest at or before ``t`` (the value held then) onwards.

        A live plot needs only what its time window shows, and the value held at its left
        edge: ``tail(count_since(left))``. Times are taken as ascending, as frames arrive.
        """
        return self._size - self._held_at(t)

    def value_at(self, t: float) -> float | None:
        """The value held at time ``t``: the newest sample at or before it (None: none that old)."""
        if not self._size:
            return None
        i = self._held_at(t)
        if i == 0 and self._t[(self._head - self._size) % self.capacity] > t:
            return None
        return float(self._v[(self._head - self._size + i) % self.capacity])

    def _held_at(self, t: float) -> int:
        """Logical index (0 = oldest kept) of the newest sample at or before ``t``, else 0."""
        if self._size < self.capacity:
            return max(int(np.searchsorted(self._t[: self._size], t, side="right")) - 1, 0)
        older, newer = self._t[self._head :], self._t[: self._head]
        at_or_before = int(np.searchsorted(older, t, side="right"))
        if at_or_before == len(older) and len(newer):
            at_or_before += int(np.searchsorted(newer, t, side="right"))
        return max(at_or_before - 1, 0)

    def last(self) -> tuple[float, float] | None:
        if not self._size:
            return None
        i = (self._head - 1) % self.capacity
        return float(self._t[i]), float(self._v[i])

    def clear(self) -> None:
        self._head = 0
        self._size = 0
