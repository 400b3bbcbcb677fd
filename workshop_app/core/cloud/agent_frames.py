"""The agent's frame pump: ring → bounded outage buffer → binary batches on the broker.

One thread (``cloud-frames``) owns everything here. Each turn it drains the source's ring into
the pending buffer, lets the status watch see the frames (body commands read their result
there), and, while the link is up, cuts batches of one channel each (``wire.py``):
a batch goes out when it holds ~7 KB or its oldest frame has waited ``interval`` seconds.

Limits of the strictest managed broker (AWS IoT Core) are kept per connection with two token
buckets: ≤ 100 publishes/s and ≤ 512 KB/s. A saturated 500 kbit/s bus (~4,400 frames/s,
~75 KB/s) uses a tenth of each, which leaves room to deliver an outage's backlog afterwards.

During an outage the buffer holds at most ``buffer_frames`` frames; beyond that the oldest are
dropped and counted. Indices are given when a batch is cut, so frames the agent dropped leave no
gap in ``first_index``: receivers tell the broker's losses (gaps) from the agent's (``dropped``).
QoS 0 batches written just before a broker vanishes are lost in its socket, so batches of the
last ``RESEND_S`` seconds before a link loss are sent again after it; receivers count the repeats
as duplicates (``SequenceTracker``), never as frames.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.cloud.health import FrameCounters
from workshop_app.core.cloud.wire import FrameBatch, encode_batch
from workshop_app.core.types import Frame

BATCH_INTERVAL_S = 0.1
BATCH_BYTES = 7 * 1024
MAX_PUBLISHES_PER_S = 100.0
MAX_BYTES_PER_S = 512 * 1024.0
RESEND_S = 1.0
_HEADER_BYTES = struct.calcsize("<2sBBIIQIdHB")
_TICK_S = 0.01

Publish = Callable[[bytes], bool]  # True when handed to a connected client


class TokenBucket:
    """At most ``rate`` units per second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._t = time.monotonic()

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._t) * self.rate)
        self._t = now

    def available(self, amount: float, now: float) -> bool:
        self._refill(now)
        return self._tokens >= amount

    def take(self, amount: float) -> None:
        self._tokens -= amount


class StatusWatch:
    """Newest data of a few message ids (body status, battery, odometer), from the pump thread."""

    def __init__(self, ids: Iterable[tuple[int, bool]] = ()) -> None:
        self._ids = set(ids)
        self._latest: dict[tuple[int, bool], Frame] = {}
        self.newest_time: float | None = None
        self._changed = threading.Condition()

    def watch(self, frame_id: int, extended: bool) -> None:
        self._ids.add((frame_id, extended))

    def feed(self, frames: list[Frame]) -> None:
        if not frames:
            return
        ids, seen = self._ids, False
        for f in frames:
            key = (f.arbitration_id, f.is_extended)
            if key in ids and f.is_rx:
                self._latest[key] = f
                seen = True
        self.newest_time = frames[-1].timestamp
        if seen:
            with self._changed:
                self._changed.notify_all()

    def latest(self, frame_id: int, extended: bool = False) -> Frame | None:
        return self._latest.get((frame_id, extended))

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(predicate, timeout)


@dataclass(slots=True)
class _Sent:
    at: float
    payload: bytes


def frame_bytes(f: Frame) -> int:
    flagged = f.is_fd or f.bitrate_switch or f.error_state_indicator or f.is_error or not f.is_rx
    return 9 + len(f.data) + (1 if flagged else 0)


class FramePump:
    """Batches the ring's frames onto the broker; see the module docstring."""

    def __init__(
        self,
        ring: FrameRing,
        publish: Publish,
        *,
        buffer_frames: int,
        watch: StatusWatch | None = None,
        interval: float = BATCH_INTERVAL_S,
        batch_bytes: int = BATCH_BYTES,
        max_publishes: float = MAX_PUBLISHES_PER_S,
        max_bytes: float = MAX_BYTES_PER_S,
        session: int | None = None,
    ) -> None:
        if buffer_frames <= 0:
            raise ValueError("buffer_frames must be positive")
        self.ring = ring
        self._publish = publish
        self.buffer_frames = buffer_frames
        self.watch = watch
        self.interval = interval
        self.batch_bytes = batch_bytes
        self.session = session if session is not None else int.from_bytes(os.urandom(4), "little")
        self._publishes = TokenBucket(max_publishes, max(1.0, max_publishes / 10))
        self._bytes = TokenBucket(max_bytes, max(float(batch_bytes) * 2, max_bytes / 8))
        self._pending: deque[Frame] = deque()
        self._resend: deque[_Sent] = deque()  # at-risk batches, re-sent after a link loss
        self._recent: deque[_Sent] = deque()  # batches of the last RESEND_S seconds
        self._next_index: dict[str, int] = {}
        self._seq = 0
        self._up = False
        self._resume_at = 0.0
        self._fill_started: float | None = None  # when the frames now pending began to wait
        self._lock = threading.Lock()  # guards link changes against the pump turn
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.dropped = 0
        self.batches = 0
        self.bytes_sent = 0
        self.resent_batches = 0

    # -- counters -----------------------------------------------------------------------------
    @property
    def buffered(self) -> int:
        return len(self._pending) + self.ring.backlog

    def counters(self) -> FrameCounters:
        return FrameCounters(self.sent, self.buffered, self.dropped)

    # -- link ---------------------------------------------------------------------------------
    def link_up(self, resume_after: float = 0.0) -> None:
        """The client is connected; the backlog starts after ``resume_after`` seconds."""
        with self._lock:
            self._resume_at = time.monotonic() + resume_after
            self._up = True

    def link_down(self) -> None:
        """Frames stay buffered; the batches that may not have reached the broker are kept."""
        with self._lock:
            self._go_down()

    def _go_down(self) -> None:
        if not self._up:
            return
        self._up = False
        cutoff = time.monotonic() - RESEND_S
        self._resend.extend(s for s in self._recent if s.at >= cutoff)
        self._recent.clear()

    # -- thread ---------------------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="cloud-frames", daemon=True)
        self._thread.start()

    def stop(self, flush_s: float = 0.0) -> None:
        """Stop the thread; with ``flush_s`` first give the pending frames that long to go out."""
        deadline = time.monotonic() + flush_s
        while flush_s and self._up and self.buffered and time.monotonic() < deadline:
            time.sleep(_TICK_S)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.turn()
            self._stop.wait(_TICK_S)

    def turn(self, now: float | None = None) -> None:
        """One pump turn (the thread's; tests call it directly)."""
        frames = self.ring.drain()
        if self.watch is not None:
            self.watch.feed(frames)
        pending = self._pending
        pending.extend(frames)
        over = len(pending) - self.buffer_frames
        if over > 0:
            for _ in range(over):
                pending.popleft()
            self.dropped += over
        with self._lock:
            now = time.monotonic() if now is None else now
            if not self._up or now < self._resume_at:
                return
            while self._resend:
                if not self._send(self._resend[0].payload, now, None):
                    return
                self._resend.popleft()
                self.resent_batches += 1
            while pending:
                cut = self._cut(now)
                if cut is None:
                    return
                batch, size = cut
                payload = encode_batch(batch)
                if not self._send(payload, now, size):
                    return
                for _ in batch.frames:
                    pending.popleft()
                self._next_index[batch.channel] = batch.first_index + len(batch.frames)
                self._seq += 1
                self.sent += len(batch.frames)
            cutoff = now - RESEND_S
            while self._recent and self._recent[0].at < cutoff:
                self._recent.popleft()

    def _cut(self, now: float) -> tuple[FrameBatch, int] | None:
        """The next batch of the pending frames, or None while it should wait to fill."""
        pending = self._pending
        channel = pending[0].channel
        size = _HEADER_BYTES + len(channel.encode())
        frames: list[Frame] = []
        full = False
        for f in pending:
            if f.channel != channel:
                full = True  # another channel starts: this batch is complete
                break
            n = frame_bytes(f)
            if frames and size + n > self.batch_bytes:
                full = True
                break
            frames.append(f)
            size += n
            if len(frames) == 0xFFFF:
                full = True
                break
        # Vehicle timestamps may come from another clock (socketcand): wait by our own.
        if not full and not self._waited_enough(now):
            return None
        first = self._next_index.get(channel, 0)
        return FrameBatch(self.session, self._seq, first, channel, frames, self.dropped), size

    def _waited_enough(self, now: float) -> bool:
        if self._fill_started is None:
            self._fill_started = now
        return now - self._fill_started >= self.interval

    def _send(self, payload: bytes, now: float, size: int | None) -> bool:
        n = len(payload)
        if not (self._publishes.available(1, now) and self._bytes.available(n, now)):
            return False
        if not self._publish(payload):
            self._go_down()  # the client lost its connection; on_disconnect follows
            return False
        self._publishes.take(1)
        self._bytes.take(n)
        self.batches += 1
        self.bytes_sent += n
        self._recent.append(_Sent(now, payload))
        if size is not None:
            self._fill_started = None
        return True
