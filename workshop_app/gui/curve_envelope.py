"""The min/max envelope a live curve is drawn from: a few points per pixel column, not every sample.

pyqtgraph's peak downsampling reduces a curve's whole data again on every ``setData``, with a
per-row ``max``/``min`` over a (columns, samples per column) matrix that numpy does slowly for
short rows; a live plot of 16 curves spent most of its redraw there. :class:`LiveEnvelope`
keeps the envelope of the blocks reduced so far and reduces only the samples new since the last
redraw. Its blocks are aligned to the series' absolute sample count and their size is a power
of two, so a block's extremes do not change from one redraw to the next as samples arrive: the
drawn envelope does not shimmer while it scrolls. Pure numpy (no Qt), so it can be tested and
measured on its own.
"""

from __future__ import annotations

import math

import numpy as np

from workshop_app.core.capture.series import SignalSeries


def block_size(samples: int, width_px: float) -> int:
    """Samples per block: the power of two at or above ``samples / width_px`` (1: draw every sample).

    Two points a block make at most two points a pixel column, as many as any sample drawn
    as it is would (more only cost the paint: each point is a segment of the curve's path).
    """
    if width_px <= 0 or samples <= 2 * width_px:
        return 1
    return 1 << (math.ceil(samples / width_px) - 1).bit_length()


def _extremes(v: np.ndarray, ds: int) -> tuple[np.ndarray, np.ndarray]:
    """Maximum and minimum of each run of ``ds`` values (``len(v)`` is a multiple of ``ds``)."""
    if ds > 16:
        starts = np.arange(0, len(v), ds)
        return np.maximum.reduceat(v, starts), np.minimum.reduceat(v, starts)
    # Few values a block: one elementwise pass per position beats reduceat's per-block cost.
    top = v[0::ds].copy()
    bottom = top.copy()
    for j in range(1, ds):
        np.maximum(top, v[j::ds], out=top)
        np.minimum(bottom, v[j::ds], out=bottom)
    return top, bottom


_EMPTY = np.empty(0)


class LiveEnvelope:
    """A live curve's envelope kept from one redraw to the next: only new samples are reduced.

    The complete blocks reduced so far stay in a buffer (x already in canvas time); a redraw
    reduces the blocks completed since, drops those left of the window and adds the newest
    samples as they are. It starts over when the block size, the time origin or the series
    (cleared, or overwritten past what was reduced) change; :meth:`reset` forces that.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.ds = 0  # samples per block; 0: nothing kept
        self._origin = math.nan
        self._end = 0  # absolute index of the first sample after the last block kept
        self._x = np.empty(0)
        self._y = np.empty(0)
        self._start = 0  # first point kept (even: blocks are pairs)
        self._used = 0
        self._head: tuple[np.ndarray, np.ndarray] = (_EMPTY, _EMPTY)  # samples before the first block

    def update(
        self, series: SignalSeries, origin: float, left: float, width_px: float
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        """(x, y, reduced) for the samples from canvas time ``left`` on (``origin``: the series
        time of canvas time 0). Blocks start at multiples of the block size in the series'
        sample count; samples before the first block and after the last one are drawn as they
        are, the newest never in a block; each block is two points at its middle sample's time,
        its maximum then its minimum, as pyqtgraph's peak mode draws. ``reduced`` is False
        when the samples are returned as they are (few a pixel column)."""
        total = series.total
        shown = series.count_since(left + origin)
        ds = block_size(shown, width_px)
        if ds == 1:
            self.reset()
            t, v = series.tail(shown)
            t -= origin
            return t, v, False
        oldest = total - len(series)  # absolute index of the oldest sample kept
        first = total - shown  # ... and of the one held at the left edge
        if ds != self.ds or origin != self._origin or not oldest <= self._end <= total:
            self.reset()
            self.ds, self._origin = ds, origin
            self._end = first // ds * ds
            if self._end < oldest:  # the first block would start before the oldest sample kept
                self._end = min(-(-oldest // ds) * ds, total)
                t, v = series.tail(total - oldest)
                self._head = (t[: self._end - oldest] - origin, v[: self._end - oldest])
        end = max((total - 1) // ds * ds, self._end)  # the newest sample stays out of blocks
        t, v = series.tail(total - self._end)
        t -= origin
        blocks = (end - self._end) // ds
        if blocks:
            top, bottom = _extremes(v[: blocks * ds], ds)
            middle = t[ds // 2 : blocks * ds : ds]
            self._append(middle, top, bottom)
            t, v = t[blocks * ds :], v[blocks * ds :]
            self._end = end
        self._drop_before(left)
        kept = slice(self._start, self._used)
        if self._start:
            self._head = (_EMPTY, _EMPTY)  # blocks left of the window went: the head was older
        head_x, head_y = self._head
        return (
            np.concatenate((head_x, self._x[kept], t)),
            np.concatenate((head_y, self._y[kept], v)),
            True,
        )

    def _append(self, middle: np.ndarray, top: np.ndarray, bottom: np.ndarray) -> None:
        n = 2 * len(middle)
        if self._used + n > len(self._x):
            live = self._used - self._start
            size = max(2 * (live + n), 4_096)
            x, y = np.empty(size), np.empty(size)
            x[:live], y[:live] = self._x[self._start : self._used], self._y[self._start : self._used]
            self._x, self._y, self._start, self._used = x, y, 0, live
        at = self._used
        self._x[at : at + n : 2] = middle
        self._x[at + 1 : at + n : 2] = middle
        self._y[at : at + n : 2] = top
        self._y[at + 1 : at + n : 2] = bottom
        self._used += n

    def _drop_before(self, left: float) -> None:
        # Keep one block left of the window, for the line into its left edge.
        i = int(np.searchsorted(self._x[self._start : self._used], left, side="left"))
        self._start += max(i - 2, 0) & ~1
