import math

import pytest

from workshop_app.core.capture.store import FrameStore
from workshop_app.core.types import Frame


def test_counts_rate_jitter_and_last_data_per_stream():
    store = FrameStore()
    frames = [Frame(i * 0.010, 0x100, bytes([i & 0xFF, 0, 0, 0])) for i in range(200)]
    frames += [Frame(i * 0.100, 0x200, b"\x01", channel="can1") for i in range(20)]
    frames.sort(key=lambda f: f.timestamp)
    touched = store.ingest(frames)
    assert touched == {("can0", 0x100, False), ("can1", 0x200, False)}
    s = store.get("can0", 0x100)
    assert s is not None
    assert s.count == 200
    assert math.isclose(s.rate(), 100.0, rel_tol=1e-6)
    assert s.jitter < 1e-6
    assert s.data == bytes([199, 0, 0, 0])
    assert store.get("can1", 0x200).count == 20
    assert store.total_frames == 220


def test_rate_falls_to_zero_when_stream_goes_silent():
    store = FrameStore()
    store.ingest([Frame(i * 0.02, 0x10, b"\0") for i in range(10)])
    s = store.get("can0", 0x10)
    assert s.rate(now=0.2) > 40
    assert s.rate(now=5.0) == 0.0


def test_jitter_reflects_irregular_cycle():
    store = FrameStore()
    t, frames = 0.0, []
    for i in range(400):
        t += 0.010 if i % 2 else 0.030
        frames.append(Frame(t, 0x10, b"\0"))
    store.ingest(frames)
    s = store.get("can0", 0x10)
    assert 0.007 < s.jitter < 0.013  # intervals alternate 10/30 ms: std 10 ms
    assert math.isclose(s.min_interval, 0.010, abs_tol=1e-9)
    assert math.isclose(s.max_interval, 0.030, abs_tol=1e-9)


def test_changed_bits_and_flip_counts():
    store = FrameStore()
    payloads = [b"\x00\x00", b"\x01\x00", b"\x00\x00", b"\x01\x80"]
    store.ingest([Frame(i * 0.1, 0x7, p) for i, p in enumerate(payloads)])
    s = store.get("can0", 0x7)
    assert s.bit_flips[0] == 3  # byte 0 bit 0 toggled three times
    assert s.bit_flips[15] == 1  # byte 1 bit 7 once
    assert sum(s.bit_flips) == 4
    assert s.changed_mask == (1 << 0) | (1 << 15)  # the last change: 00 00 -> 01 80
    assert s.ever_changed == (1 << 0) | (1 << 15)
    assert s.byte_changed_at == [pytest.approx(0.3), pytest.approx(0.3)]
    store.ingest([Frame(0.4, 0x7, b"\x01\x80")])
    assert s.changed_mask == 0  # unchanged payload
    assert s.byte_changed_at[1] == pytest.approx(0.3)


def test_length_change_and_error_frames():
    store = FrameStore()
    store.ingest(
        [Frame(0.0, 0x5, b"\x01"), Frame(0.1, 0x5, b"\x01\x02\x03"), Frame(0.2, 0, b"", is_error=True)]
    )
    s = store.get("can0", 0x5)
    assert s.dlc == 3
    assert len(s.bit_flips) == 24
    assert s.bit_flips[9] == 1 and s.bit_flips[8] == 0  # 0x02 in byte 1
    assert store.error_frames == 1


def test_extended_and_standard_same_number_are_distinct_streams():
    store = FrameStore()
    store.ingest([Frame(0, 0x100, b"\1"), Frame(0, 0x100, b"\2", is_extended=True)])
    assert len(store.messages) == 2
