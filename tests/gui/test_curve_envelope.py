"""The min/max envelope live curves are drawn from (pure numpy, no window needed)."""

import numpy as np
import pytest

from workshop_app.gui.curve_envelope import block_size, peak_envelope


def test_few_samples_per_pixel_column_are_drawn_as_they_are():
    t = np.arange(100, dtype=float)
    v = np.sin(t)
    x, y, reduced = peak_envelope(t, v, 0, width_px=60)
    assert not reduced and x is t and y is v
    assert block_size(100, 0) == 1  # a plot not laid out yet: nothing to size blocks by


@pytest.mark.parametrize("first_index", [0, 1, 5, 8, 1003])
def test_blocks_keep_every_extreme_and_the_newest_sample(first_index):
    rng = np.random.default_rng(first_index)
    t = np.sort(rng.uniform(0, 30, 12_000))
    v = rng.normal(0, 1, len(t))
    v[5_000] = 40.0  # a one-sample spike must survive the reduction
    v[7_777] = -40.0
    x, y, reduced = peak_envelope(t, v, first_index, width_px=1_000)
    ds = block_size(len(t), 1_000)
    assert reduced and ds == 8  # 12 samples per column: the power of two below
    assert len(x) <= 2 * len(t) // ds + 2 * ds
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
        x, y, reduced = peak_envelope(t[first : first + n], v[first : first + n], first, 1_000)
        assert reduced and block_size(n, 1_000) == ds
        head = (-first) % ds
        pairs = range(head, len(x) - 2 * ds, 2)  # before the raw samples at the end
        return {float(x[i]): (float(y[i]), float(y[i + 1])) for i in pairs}

    before, after = blocks(0, 10_000), blocks(3, 10_002)  # three dropped, five new
    shared = set(before) & set(after)
    assert len(shared) > 1_000
    assert all(before[k] == after[k] for k in shared)
