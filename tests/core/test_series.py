import numpy as np
import pytest

from workshop_app.core.capture.series import SignalSeries


def test_append_and_wrap_keep_newest_in_order():
    s = SignalSeries("x", capacity=5)
    for i in range(8):
        s.append(float(i), float(i * 10))
    t, v = s.arrays()
    assert t.tolist() == [3, 4, 5, 6, 7]
    assert v.tolist() == [30, 40, 50, 60, 70]
    assert s.total == 8
    assert s.last() == (7.0, 70.0)


@pytest.mark.parametrize("chunks", [[3, 3, 3], [7], [2, 9], [4, 1, 4, 1]])
def test_extend_matches_appending_one_by_one(chunks):
    a = SignalSeries("a", capacity=6)
    b = SignalSeries("b", capacity=6)
    k = 0
    for n in chunks:
        ts = np.arange(k, k + n, dtype=float)
        a.extend(ts, ts * 2)
        for x in ts:
            b.append(x, x * 2)
        k += n
    for x, y in zip(a.arrays(), b.arrays(), strict=True):
        assert x.tolist() == y.tolist()


def test_extend_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        SignalSeries("x").extend([1.0, 2.0], [1.0])


@pytest.mark.parametrize("capacity", [5, 16])
@pytest.mark.parametrize("n", [0, 3, 5, 12, 30])
def test_tail_count_since_and_value_at_agree_with_the_whole_arrays(capacity, n):
    s = SignalSeries("x", capacity=capacity)
    s.extend(np.arange(n, dtype=float), np.arange(n, dtype=float) * 3)
    every_t, every_v = s.arrays()
    for count in range(-1, capacity + 2):
        t, v = s.tail(count)
        keep = min(max(count, 0), len(every_t))
        assert t.tolist() == every_t[len(every_t) - keep :].tolist()
        assert v.tolist() == every_v[len(every_v) - keep :].tolist()
    for at in np.arange(-2.0, n + 2.0, 0.5):
        # From the newest sample at or before ``at`` (the value a plot holds at its left edge),
        # or from the oldest kept when none is that old.
        before = [i for i, time in enumerate(every_t) if time <= at]
        assert s.count_since(float(at)) == len(every_t) - (before[-1] if before else 0)
        held = [value for time, value in zip(every_t, every_v, strict=True) if time <= at]
        assert s.value_at(float(at)) == (held[-1] if held else None)
