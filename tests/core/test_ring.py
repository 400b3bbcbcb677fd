import threading

import pytest

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.types import Frame


def _frame(i: int) -> Frame:
    return Frame(float(i), i & 0x7FF, i.to_bytes(4, "little"))


def test_drain_returns_frames_in_order_and_respects_max():
    ring = FrameRing(10)
    for i in range(5):
        assert ring.push(_frame(i))
    assert [f.timestamp for f in ring.drain(2)] == [0.0, 1.0]
    assert ring.backlog == 3
    assert [f.timestamp for f in ring.drain()] == [2.0, 3.0, 4.0]
    assert ring.drain() == []


def test_full_ring_drops_new_frames_and_counts_them():
    ring = FrameRing(3)
    results = [ring.push(_frame(i)) for i in range(5)]
    assert results == [True, True, True, False, False]
    assert ring.dropped == 2
    assert ring.pushed == 3
    assert [f.timestamp for f in ring.drain()] == [0.0, 1.0, 2.0]
    assert ring.high_water == 3


def test_push_many_fills_to_capacity_then_counts_drops():
    ring = FrameRing(4)
    assert ring.push_many(_frame(i) for i in range(6)) == 4
    assert ring.dropped == 2


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        FrameRing(0)


def test_concurrent_producers_lose_nothing_that_is_not_counted():
    ring = FrameRing(50_000)
    n_per, producers = 20_000, 4
    drained: list[Frame] = []
    stop = threading.Event()

    def produce(base: int) -> None:
        for i in range(n_per):
            ring.push(_frame(base + i))

    def consume() -> None:
        while not stop.is_set() or ring.backlog:
            drained.extend(ring.drain(1000))

    consumer = threading.Thread(target=consume)
    consumer.start()
    threads = [threading.Thread(target=produce, args=(k * n_per,)) for k in range(producers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    consumer.join()
    assert len(drained) + ring.dropped == n_per * producers
    # Frames of one producer stay in their order.
    firsts = [f.timestamp for f in drained if f.timestamp < n_per]
    assert firsts == sorted(firsts)
