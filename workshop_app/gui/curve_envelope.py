"""The min/max envelope a live curve is drawn from: a few points per pixel column, not every sample.

pyqtgraph's peak downsampling reduces a curve's data on every ``setData`` with a per-row
``max``/``min`` over a (columns, samples per column) matrix, which numpy does slowly for short
rows; a live plot of 16 curves spent most of its redraw there. ``peak_envelope`` gives the same
picture from one ``reduceat`` per extreme. Its blocks are aligned to the series' absolute
sample count and their size is a power of two, so a block's extremes do not change from one
redraw to the next as samples arrive: the drawn envelope does not shimmer while it scrolls.
Pure numpy (no Qt), so it can be tested and measured on its own.
"""

from __future__ import annotations

import numpy as np


def block_size(samples: int, width_px: float) -> int:
    """Samples per block: the power of two nearest below ``samples / width_px`` (1: draw every sample)."""
    if width_px <= 0 or samples <= 2 * width_px:
        return 1
    return 1 << (int(samples // width_px).bit_length() - 1)


def peak_envelope(
    t: np.ndarray, v: np.ndarray, first_index: int, width_px: float
) -> tuple[np.ndarray, np.ndarray, bool]:
    """(x, y, reduced): ``t``/``v`` as at most ~2 points per pixel column of ``width_px``.

    ``first_index`` is the absolute number of ``t[0]`` in its series (blocks start at its
    multiples of the block size). Samples before the first whole block and after the last one
    are kept as they are, and the newest one never goes into a block: it is always drawn. Each block becomes two points
    at its middle sample's time, its maximum then its minimum, as pyqtgraph's peak mode draws.
    ``reduced`` is False when the data were returned unchanged (few samples per column).
    """
    n = len(t)
    ds = block_size(n, width_px)
    if ds == 1:
        return t, v, False
    head = (-first_index) % ds  # samples before the first block boundary
    blocks = (n - 1 - head) // ds  # the newest sample stays out of the blocks
    if blocks <= 0:
        return t, v, False
    end = head + blocks * ds
    starts = np.arange(head, end, ds)
    top, bottom = _extremes(v[head:end], ds)
    tail = n - end
    x = np.empty(head + 2 * blocks + tail)
    y = np.empty_like(x)
    x[:head], y[:head] = t[:head], v[:head]
    middle = t[starts + ds // 2]
    x[head : head + 2 * blocks : 2] = middle
    x[head + 1 : head + 2 * blocks : 2] = middle
    y[head : head + 2 * blocks : 2] = top
    y[head + 1 : head + 2 * blocks : 2] = bottom
    x[head + 2 * blocks :], y[head + 2 * blocks :] = t[end:], v[end:]
    return x, y, True


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
