"""The min/max envelope live curves are drawn from (pure numpy, no window needed)."""

import numpy as np
import pytest

from workshop_app.core.capture.series import SignalSeries
from workshop_app.gui.curve_envelope import LiveEnvelope, block_size


def _series(t: np.ndarray, v: np.ndarray, first_index: int = 0) -> SignalSeries:
    """A series holding ``t``/``v``, the first of them its sample number ``first_index``."""
    series = SignalSeries("x", len(t))
    if first_index:
        series.extend(np.full(first_index, t[0] - 1.0), np.zeros(first_index))  # overwritten
    series.extend(t, v)
    return series


def test_few_samples_per_pixel_column_are_drawn_as_they_are():
    t = np.arange(100, dtype=float)
    v = np.sin(t)
    x, y, reduced = LiveEnvelope().update(_series(t, v), 0.0, -np.inf, 60)
    assert not reduced and x.tolist() == t.tolist() and y.tolist() == v.tolist()
    assert block_size(100, 0) == 1  # a plot not laid out yet: nothing to size blocks by


@pytest.mark.parametrize("first_index", [0, 1, 5, 8, 1003])
def test_blocks_keep_every_extreme_and_the_newest_sample(first_index):
    rng = np.random.default_rng(first_index)
    t = np.sort(rng.uniform(0, 30, 12_000))
    v = rng.normal(0, 1, len(t))
    v[5_000] = 40.0  # a one-sample spike must survive the reduction
    v[7_777] = -40.0
    x, y, reduced = LiveEnvelope().update(_series(t, v, first_index), 0.0, -np.inf, 1_000)
    ds = block_size(len(t), 1_000)
    assert reduced and ds == 16  # 12 samples per column: the power of two above
    assert len(x) <= 2 * 1_000 + 2 * ds  # two points a column at most, besides the raw ends
    assert y.max() == 40.0 and y.min() == -40.0
    assert (x[-1], y[-1]) == (t[-1], v[-1])  # the newest sample is drawn as it is
    assert np.all(np.diff(x) >= 0)  # still in time order for clipping to the view
    # Every drawn point is a sample's value; the blocks start on multiples of ds.
    head = (-first_index) % ds
    assert np.array_equal(y[:head], v[:head])
    block = v[head : head + ds]
    assert (y[head], y[head + 1]) == (block.max(), block.min())


def test_a_block_keeps_its_extremes_as_samples_arrive():
    # Blocks are aligned to the series' sample count, so new samples never move old blocks:
    # the envelope does not shimmer as the curve scrolls.
    rng = np.random.default_rng(3)
    t = np.arange(20_000, dtype=float)
    v = rng.normal(0, 1, len(t))
    ds = block_size(10_000, 1_000)

    def blocks(first: int, n: int) -> dict[float, tuple[float, float]]:
        series = _series(t[first : first + n], v[first : first + n], first)
        x, y, reduced = LiveEnvelope().update(series, 0.0, -np.inf, 1_000)
        assert reduced and block_size(n, 1_000) == ds
        head = (-first) % ds
        pairs = range(head, len(x) - 2 * ds, 2)  # before the raw samples at the end
        return {float(x[i]): (float(y[i]), float(y[i + 1])) for i in pairs}

    before, after = blocks(0, 10_000), blocks(3, 10_002)  # three dropped, five new
    shared = set(before) & set(after)
    assert len(shared) > 500
    assert all(before[k] == after[k] for k in shared)


def _in_window(x: np.ndarray, y: np.ndarray, left: float) -> list[tuple[float, float]]:
    return [(a, b) for a, b in zip(x.tolist(), y.tolist(), strict=True) if a >= left]


@pytest.mark.parametrize("capacity", [100_000, 9_000])  # the second overwrites while it runs
def test_the_live_envelope_reduces_only_new_samples_and_draws_what_a_fresh_one_would(capacity):
    rng = np.random.default_rng(11)
    series = SignalSeries("x", capacity)
    live = LiveEnvelope()
    origin, window, width, now = 1000.0, 10.0, 800.0, 0.0
    for step in range(60):
        n = int(rng.integers(1, 400))
        t = origin + now + np.sort(rng.uniform(0.0, 0.25, n))
        now = float(t[-1] - origin)
        v = rng.normal(0.0, 1.0, n)
        if step == 30:
            v[n // 2] = 99.0  # a spike that must show while it is in the window
        series.extend(t, v)
        left = max(now, window) - window
        x, y, _ = live.update(series, origin, left, width)
        # The same window reduced from scratch (blocks share their alignment).
        fresh_x, fresh_y, _ = LiveEnvelope().update(series, origin, left, width)
        ds = live.ds
        margin = left + (ds + 1) * 0.25 / 100 if ds > 1 else left  # past the first blocks
        assert _in_window(x, y, margin) == _in_window(fresh_x, fresh_y, margin)
        assert x[-1] == now and np.all(np.diff(x) >= 0)
        oldest = float(series.arrays()[0][0]) - origin
        assert x[0] <= max(left, oldest) + 0.25 * (ds + 1) / 100  # reaches the window's left edge
    assert 99.0 in y if left < 30 * 0.25 else True


def test_the_live_envelope_starts_over_when_the_block_size_or_origin_changes():
    series = SignalSeries("x", 100_000)
    t = np.arange(0.0, 100.0, 0.001)
    series.extend(t, np.sin(t))
    live = LiveEnvelope()
    live.update(series, 0.0, 90.0, 1_000)
    assert live.ds == 16  # 10,000 samples on 1,000 pixels
    x, _, _ = live.update(series, 0.0, 0.0, 1_000)  # the whole history: bigger blocks
    assert live.ds == 128 and x[0] < 0.1
    x, _, _ = live.update(series, 50.0, -50.0, 1_000)  # another origin shifts every x
    assert live.ds == 128 and -50.0 < x[0] < -49.9
    x, _, reduced = live.update(series, 50.0, 49.99, 1_000)  # ten samples: drawn as they are
    assert not reduced and live.ds == 0 and len(x) in (10, 11)
