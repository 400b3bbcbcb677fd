"""The frame pump's batching and limits, turn by turn on a clock the test sets (no broker needed:
the pump hands payloads to a publish function; the end-to-end tests use mosquitto)."""

from __future__ import annotations

import time
from collections import Counter

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.cloud.agent_frames import FramePump
from workshop_app.core.cloud.wire import SequenceTracker, decode_batch
from workshop_app.core.types import Frame


def _frames(n: int, t0: float = 1000.0) -> list[Frame]:
    return [Frame(t0 + i * 0.000228, 0x100 + i % 64, bytes([i & 0xFF] * 8)) for i in range(n)]


class Wire:
    def __init__(self) -> None:
        self.sent: list[tuple[float, bytes]] = []
        self.now = 0.0
        self.up = True

    def publish(self, payload: bytes) -> bool:
        if not self.up:
            return False
        self.sent.append((self.now, payload))
        return True


def _run(pump: FramePump, wire: Wire, start: float, seconds: float, step: float = 0.01) -> None:
    t = start
    while t < start + seconds:
        wire.now = t
        pump.turn(t)
        t += step


def test_a_backlog_goes_out_within_100_publishes_and_512_kib_per_second() -> None:
    ring, wire = FrameRing(capacity=300_000), Wire()
    pump = FramePump(ring, wire.publish, buffer_frames=300_000)
    ring.push_many(_frames(200_000))  # ~3.4 MB waiting, e.g. after an outage
    pump.link_up()
    start = time.monotonic()  # the pump's clock; the test steps it by hand from here
    _run(pump, wire, start, 12.0)
    per_second: Counter[int] = Counter()
    bytes_per_second: Counter[int] = Counter()
    for t, payload in wire.sent:
        per_second[int(t - start)] += 1
        bytes_per_second[int(t - start)] += len(payload)
        assert len(payload) <= 7 * 1024
    assert max(per_second.values()) <= 100
    assert max(bytes_per_second.values()) <= 512 * 1024 + 64 * 1024  # the bucket's first burst
    assert sum(bytes_per_second[s] for s in range(1, 6)) <= 5 * 512 * 1024
    tracker = SequenceTracker()
    for _, payload in wire.sent:
        tracker.feed(decode_batch(payload))
    assert tracker.received == 200_000 and tracker.lost == 0 and pump.sent == 200_000


def test_a_quiet_bus_is_batched_by_time_and_a_full_buffer_drops_the_oldest() -> None:
    ring, wire = FrameRing(), Wire()
    pump = FramePump(ring, wire.publish, buffer_frames=1000)
    pump.link_up()
    t = time.monotonic()  # the pump's clock; the test steps it by hand from here
    ring.push_many(_frames(10))
    _run(pump, wire, t, 0.05)
    assert wire.sent == []  # waiting for the batch to fill or 100 ms to pass
    _run(pump, wire, t + 0.05, 0.1)
    assert len(wire.sent) == 1 and len(decode_batch(wire.sent[0][1]).frames) == 10
    pump.link_down()
    wire.up = False
    frames = _frames(5000, t0=2000.0)
    ring.push_many(frames)
    _run(pump, wire, t + 0.2, 0.05)
    assert pump.dropped == 4000 and pump.buffered == 1000
    wire.up = True
    pump.link_up()
    _run(pump, wire, t + 0.3, 1.0)
    batches = [decode_batch(p) for _, p in wire.sent]
    # The batch of the last second before the loss is sent again; then the newest 1000 frames.
    assert batches[1].first_index == 0 and batches[1].frames == batches[0].frames
    delivered = [(f.arbitration_id, f.data, round(f.timestamp, 5)) for b in batches[2:] for f in b.frames]
    assert delivered == [(f.arbitration_id, f.data, round(f.timestamp, 5)) for f in frames[-1000:]]
    assert batches[2].first_index == 10 and batches[-1].dropped == 4000


def test_after_a_reconnect_the_backlog_waits_for_the_workshops_to_subscribe_again() -> None:
    ring, wire = FrameRing(), Wire()
    pump = FramePump(ring, wire.publish, buffer_frames=10_000)
    t = time.monotonic()  # the pump's clock; the test steps it by hand from here
    pump.link_up(resume_after=2.0)
    ring.push_many(_frames(3000))
    _run(pump, wire, t, 1.9)
    assert wire.sent == [] and pump.buffered == 3000
    _run(pump, wire, t + 2.1, 0.5)
    assert pump.sent == 3000 and pump.buffered == 0
