import threading

import numpy as np
import pytest

from workshop_app.core.capture.column_ring import ColumnRing
from workshop_app.core.capture.columns import FrameColumns
from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.types import Frame


def _frames(start: int, n: int, channel: str = "can0") -> list[Frame]:
    return [Frame(float(i), i & 0x7FF, i.to_bytes(4, "little"), channel) for i in range(start, start + n)]


def _cols(start: int, n: int, channel: str = "can0") -> FrameColumns:
    return FrameColumns.from_frames(_frames(start, n, channel))


def test_is_a_frame_ring_with_frame_counts():
    ring = ColumnRing(10)
    assert isinstance(ring, FrameRing)
    assert ring.push_columns(_cols(0, 4)) == 4
    assert ring.push(Frame(4.0, 4, b"\4\0\0\0"))
    assert ring.push_many(_frames(5, 2)) == 2
    assert len(ring) == ring.backlog == 7
    assert ring.pushed == 7 and ring.dropped == 0 and ring.high_water == 7
    assert [f.timestamp for f in ring.drain()] == [float(i) for i in range(7)]
    assert len(ring) == 0
    assert ring.drain() == []


def test_full_ring_cuts_the_batch_and_counts_the_rest():
    ring = ColumnRing(5)
    assert ring.push_columns(_cols(0, 3)) == 3
    assert ring.push_columns(_cols(3, 4)) == 2  # two fit, two dropped
    assert ring.push_columns(_cols(7, 2)) == 0
    assert not ring.push(Frame(9.0, 9, b""))
    assert ring.push_many(_frames(10, 3)) == 0
    assert ring.dropped == 2 + 2 + 1 + 3
    assert ring.pushed == 5 and ring.high_water == 5
    out = ring.drain_columns()
    assert out.timestamp.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert ring.backlog == 0


def test_drain_columns_splits_batches_oldest_first():
    ring = ColumnRing(100)
    ring.push_columns(_cols(0, 5))
    ring.push_columns(_cols(5, 5))
    first = ring.drain_columns(3)
    assert first.timestamp.tolist() == [0.0, 1.0, 2.0]
    assert ring.backlog == 7
    second = ring.drain_columns(4)  # the rest of the first batch and one of the second
    assert second.timestamp.tolist() == [3.0, 4.0, 5.0, 6.0]
    assert [f.timestamp for f in ring.drain(1)] == [7.0]
    assert ring.drain_columns().timestamp.tolist() == [8.0, 9.0]
    empty = ring.drain_columns()
    assert len(empty) == 0 and isinstance(empty, FrameColumns)
    assert len(ring.drain_columns(0)) == 0


def test_drained_frames_equal_pushed_frames_across_channels_and_widths():
    ring = ColumnRing(100)
    a = [Frame(0.0, 0x10, b"\1", "can0"), Frame(1.0, 0x11, bytes(range(12)), "can1", is_fd=True)]
    b = [Frame(2.0, 0x1ABCDEF, b"\2\3", "can1", is_extended=True, is_rx=False), Frame(3.0, 0, b"", "can2")]
    ring.push_columns(FrameColumns.from_frames(a))
    ring.push_columns(FrameColumns.from_frames(b))
    assert ring.drain() == a + b


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        ColumnRing(0)


def test_concurrent_producers_lose_nothing_that_is_not_counted():
    ring = ColumnRing(20_000)
    per_producer, producers, batch = 30_000, 3, 100
    seen: list[np.ndarray] = []
    done = threading.Event()

    def produce(base: int) -> None:
        for start in range(0, per_producer, batch):
            ring.push_columns(_cols(base + start, batch))

    def consume() -> None:
        while not done.is_set() or ring.backlog:
            seen.append(ring.drain_columns(777).timestamp.copy())

    threads = [threading.Thread(target=produce, args=(p * 1_000_000,)) for p in range(producers)]
    consumer = threading.Thread(target=consume)
    consumer.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    consumer.join()
    got = np.concatenate(seen) if seen else np.zeros(0)
    assert len(got) + ring.dropped == producers * per_producer
    assert ring.pushed == len(got)
    for p in range(producers):
        mine = got[(got >= p * 1_000_000) & (got < (p + 1) * 1_000_000)]
        assert np.all(np.diff(mine) > 0)  # each producer's frames stay in order


def test_frames_pushed_one_by_one_keep_their_order_among_batches():
    ring = ColumnRing(100)
    for f in _frames(0, 3):
        assert ring.push(f)
    ring.push_columns(_cols(3, 2))  # the loose frames become a batch before this one
    assert ring.push_many(_frames(5, 3)) == 3
    first = ring.drain_columns(4)
    assert first.timestamp.tolist() == [0.0, 1.0, 2.0, 3.0]
    for f in _frames(8, 2):
        ring.push(f)
    assert [f.timestamp for f in ring.drain()] == [float(i) for i in range(4, 10)]
    full = ColumnRing(5)
    assert full.push_many(_frames(0, 7)) == 5 and not full.push(Frame(9.0, 1, b""))
    assert full.dropped == 3 and len(full.drain_columns()) == 5
