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
