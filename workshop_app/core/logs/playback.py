"""Play a log held in memory: into the frame ring (PlaybackSource) or onto a real bus.

Both pace frames against absolute deadlines (``wall0 + (t - t0) / speed``) rather than
sleeping frame-to-frame gaps, so rounding in each wait never accumulates into drift.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import can
import numpy as np

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.logs.columns import (
    BRS,
    ERROR,
    ESI,
    EXTENDED,
    FD,
    REMOTE,
    TX,
    FrameColumns,
    channel_value,
)
from workshop_app.core.sources.base import FrameSource, SourceState
from workshop_app.core.types import Frame, SourceCaps, channel_label

MIN_SPEED = 0.1
MAX_SPEED = 100.0
# Longest the player thread waits without looking at its controls: bounds pause/seek latency.
_POLL = 0.01
# Frames pushed per lock hold, so controls never wait behind a long burst at speed 0.
_BATCH = 1024
# Below this a wait is shorter than the OS timer granularity; the frame is sent now.
_SPIN = 0.0005


def time_range(columns: FrameColumns, start: float | None = None, end: float | None = None) -> FrameColumns:
    """Rows with ``start <= timestamp <= end`` (log time; None leaves that side open)."""
    if start is None and end is None:
        return columns
    ts = columns.timestamp
    mask = np.ones(len(ts), dtype=bool)
    if start is not None:
        mask &= ts >= start
    if end is not None:
        mask &= ts <= end
    return columns.select(mask)


def channel_labels(columns: FrameColumns) -> list[str]:
    # Same naming as the vectorised decoder, so replayed frames find their databases.
    return [channel_label(channel_value(name)) for name in columns.channels] or ["can0"]


def frames_of(columns: FrameColumns, labels: list[str], start: int, stop: int) -> list[Frame]:
    """Frames for rows ``start:stop``, built from whole-slice ``tolist`` calls (fast)."""
    out: list[Frame] = []
    payload = columns.payload[start:stop]
    for row, (ts, ch, aid, fl, ln) in enumerate(
        zip(
            columns.timestamp[start:stop].tolist(),
            columns.channel[start:stop].tolist(),
            columns.arbitration_id[start:stop].tolist(),
            columns.flags[start:stop].tolist(),
            columns.length[start:stop].tolist(),
            strict=True,
        )
    ):
        remote = bool(fl & REMOTE)
        out.append(
            Frame(
                ts,
                aid,
                b"" if remote else payload[row, :ln].tobytes(),
                labels[ch] if ch < len(labels) else f"can{ch}",
                bool(fl & EXTENDED),
                bool(fl & FD),
                bool(fl & BRS),
                bool(fl & ESI),
                remote,
                bool(fl & ERROR),
                not fl & TX,
            )
        )
    return out


class PlaybackSource(FrameSource):
    """A log in memory played into the ring, with pause, seek, step, speed and loop controls.

    Times are log times (the clock of ``columns.timestamp``; see :attr:`start_time`).
    Controls may be called from any thread; the player thread notices them within ~10 ms.
    A finished playback keeps its thread and rests paused at the end: ``play`` starts over
    (from the loop start, if set); ``seek`` then ``play`` continues from anywhere.

    >>> src = PlaybackSource(FrameRing(), read_columns("drive.blf"))  # doctest: +SKIP
    >>> src.start(); src.seek(src.start_time + 10); src.set_speed(4)  # doctest: +SKIP
    """

    caps = SourceCaps(live=False, can_transmit=False, seekable=True)

    def __init__(
        self,
        ring: FrameRing,
        columns: FrameColumns,
        *,
        speed: float = 1.0,
        name: str = "log",
        paused: bool = False,
    ) -> None:
        super().__init__(ring)
        _check_speed(speed)
        self.columns = columns
        self.name = name
        self.frames_replayed = 0
        self.finished = threading.Event()
        self._ts = columns.timestamp
        self._n = len(columns)
        self._monotonic = bool(self._n < 2 or np.all(np.diff(self._ts) >= 0))
        self._labels = channel_labels(columns)
        self._t_min = float(self._ts.min()) if self._n else 0.0
        self._t_max = float(self._ts.max()) if self._n else 0.0
        # Everything below is guarded by _cond; the player thread and the controls share it.
        self._cond = threading.Condition()
        self._halt = False
        self._thread: threading.Thread | None = None
        self._speed = speed
        self._playing = not paused
        self._index = 0  # next row to push
        self._generation = 0  # bumped by every jump of the head; stale batches are dropped
        self._position = self.start_time  # log time reached (pause/seek point)
        self._anchor_wall = 0.0
        self._anchor_log = self._position
        self._steps = 0
        self._loop: tuple[int, int] | None = None  # row range [lo, hi) to repeat

    # -- information ---------------------------------------------------------------------------
    def describe(self) -> str:
        return f"playback {self.name}"

    @property
    def start_time(self) -> float:
        """Earliest log time (logs merged from several channels need not be sorted)."""
        return self._t_min

    @property
    def end_time(self) -> float:
        return self._t_max

    @property
    def duration(self) -> float:
        return self.end_time - self.start_time

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def position(self) -> float:
        """Log time of the playback head (never past the next frame not yet pushed)."""
        with self._cond:
            return self._position_locked() if self._thread is not None else self._position

    # -- controls ------------------------------------------------------------------------------
    def play(self) -> None:
        with self._cond:
            if self._playing:
                return
            if self._index >= self._end_row():
                self._jump(self._start_row())  # a finished playback starts over
            self._playing = True
            self._anchor(self._position)
            self._resume()

    def pause(self) -> None:
        with self._cond:
            if not self._playing:
                return
            self._position = self._position_locked()
            self._playing = False
            self._cond.notify_all()

    def seek(self, t: float) -> None:
        """Continue from the first frame at or after log time ``t``."""
        with self._cond:
            self._jump(self._row_at(t), min(max(t, self.start_time), self.end_time) if self._n else t)
            self._steps = 0
            self._resume()

    def step(self, n: int = 1) -> None:
        """Push the next ``n`` frames now; pauses first if playing."""
        if n < 1:
            raise ValueError("step needs n >= 1")
        with self._cond:
            if self._playing:
                self._position = self._position_locked()
                self._playing = False
            self._steps += n
            self._resume()

    def set_speed(self, speed: float) -> None:
        """``speed`` in 0.1–100 (1 = real time), or 0 for as fast as the ring drains."""
        _check_speed(speed)
        with self._cond:
            if self._playing:
                # Re-anchor at the current head so a speed change neither jumps nor stalls.
                self._position = self._position_locked()
                self._anchor(self._position)
            self._speed = speed
            self._cond.notify_all()

    def set_loop(self, start: float | None, end: float | None) -> None:
        """Repeat log times ``start``–``end`` (None: that end of the log); both None: no loop."""
        with self._cond:
            if start is None and end is None:
                self._loop = None
            else:
                lo = self._row_at(self.start_time if start is None else start)
                hi = self._row_after(self.end_time if end is None else end)
                self._loop = (lo, max(lo, hi))
                if not lo <= self._index < hi:
                    self._jump(lo)
            self._generation += 1  # a batch in flight may cross the new range's end
            self._resume()

    # -- FrameSource ---------------------------------------------------------------------------
    def _open(self) -> None:
        with self._cond:
            self._halt = False
            self._anchor(self._position)
        self.finished.clear()  # the thread sets it again (and FINISHED) if already at the end
        self._thread = threading.Thread(target=self._run, name=f"playback-{self.name}", daemon=True)
        self._thread.start()

    def _close(self) -> None:
        with self._cond:
            self._halt = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # -- player thread -------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                rows = self._next_rows()
                if rows is None:
                    return
                generation, lo, hi = rows
            if hi == lo:
                continue
            # Built outside the lock so controls are never kept waiting behind a burst.
            frames = frames_of(self.columns, self._labels, lo, hi)
            with self._cond:
                if generation != self._generation:
                    continue  # a seek or loop change moved the head meanwhile; drop the batch
                self.ring.push_many(frames)
                self.frames_replayed += hi - lo
                self._position = max(self._position, float(self._ts[hi - 1]))
                self._index = hi

    def _next_rows(self) -> tuple[int, int, int] | None:
        """(generation, lo, hi) of the rows to push next; waits when there are none; None: halt."""
        ring = self.ring
        high = max(1, int(ring.capacity * 0.9))
        while not self._halt:
            end = self._end_row()
            if self._index >= end:
                if self._loop is not None and self._loop[1] > self._loop[0]:
                    self._jump(self._loop[0])
                    continue
                self._steps = 0
                if not self.finished.is_set():
                    self._position = self.end_time
                    self._playing = False
                    self.finished.set()
                    self._state = SourceState.FINISHED
                self._cond.wait()
                continue
            if not self._playing and self._steps == 0:
                self._cond.wait()
                continue
            room = high - ring.backlog
            if room <= 0:
                # Never drop: a replay can wait for the consumer, a live bus cannot.
                self._cond.wait(0.005)
                continue
            if self._playing:
                count = self._due_rows(end, min(room, _BATCH))
                if count == 0:
                    continue  # _due_rows waited; look at the controls again
            else:
                count = min(self._steps, room, _BATCH, end - self._index)
                self._steps -= count
            return self._generation, self._index, self._index + count
        return None

    def _due_rows(self, end: int, limit: int) -> int:
        """Rows due now (at most ``limit``); if none, wait until the next one (or _POLL)."""
        stop = min(end, self._index + limit)
        if self._speed == 0:
            return stop - self._index
        log_now = self._anchor_log + (time.perf_counter() - self._anchor_wall) * self._speed
        if self._monotonic:
            count = int(np.searchsorted(self._ts[self._index : stop], log_now, side="right"))
        else:
            late = self._ts[self._index : stop] > log_now
            count = int(np.argmax(late)) if late.any() else stop - self._index
        if count == 0:
            delay = (float(self._ts[self._index]) - log_now) / self._speed
            if delay <= _SPIN:
                return 1
            self._cond.wait(min(delay, _POLL))
        return count

    # -- helpers (caller holds _cond) ----------------------------------------------------------
    def _position_locked(self) -> float:
        if not self._playing or self._speed == 0:
            return self._position
        now = self._anchor_log + (time.perf_counter() - self._anchor_wall) * self._speed
        limit = float(self._ts[self._index]) if self._index < self._n else self.end_time
        return max(self._position, min(now, limit))

    def _anchor(self, log_time: float) -> None:
        self._anchor_wall = time.perf_counter()
        self._anchor_log = log_time

    def _jump(self, row: int, position: float | None = None) -> None:
        """Move the head to ``row`` (log time ``position``, default that row's time)."""
        self._index = row
        self._generation += 1
        if position is None:
            position = float(self._ts[row]) if row < self._n else self.end_time
        self._position = position
        self._anchor(position)

    def _resume(self) -> None:
        # A seek or step after the end brings a finished playback back to life.
        if self.finished.is_set() and self._index < self._end_row():
            self.finished.clear()
            if self._state is SourceState.FINISHED:
                self._state = SourceState.RUNNING
        self._cond.notify_all()

    def _start_row(self) -> int:
        return self._loop[0] if self._loop is not None else 0

    def _end_row(self) -> int:
        return self._loop[1] if self._loop is not None else self._n

    def _row_at(self, t: float) -> int:
        """First row with timestamp >= t (n when none)."""
        if self._monotonic:
            return int(np.searchsorted(self._ts, t, side="left"))
        hits = np.flatnonzero(self._ts >= t)
        return int(hits[0]) if len(hits) else self._n

    def _row_after(self, t: float) -> int:
        """One past the last row with timestamp <= t."""
        if self._monotonic:
            return int(np.searchsorted(self._ts, t, side="right"))
        hits = np.flatnonzero(self._ts <= t)
        return int(hits[-1]) + 1 if len(hits) else 0


def _check_speed(speed: float) -> None:
    if speed != 0 and not MIN_SPEED <= speed <= MAX_SPEED:
        raise ValueError(f"speed must be 0 or between {MIN_SPEED} and {MAX_SPEED}, not {speed}")


# -- onto a real bus ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReplayStats:
    """What a bus replay did. Lateness is send time minus the frame's deadline, in seconds."""

    frames_sent: int
    send_errors: int
    error_frames_skipped: int  # error frames are bus events, not something to transmit
    unmapped_frames: int  # frames of log channels with no bus in the channel map
    max_lateness: float
    mean_lateness: float
    late_frames: int  # frames sent more than 1 ms after their deadline
    duration: float  # wall seconds
    passes: int  # times the range was played (more than 1 with loop)
    cancelled: bool


LATE = 0.001


def replay_to_bus(
    columns: FrameColumns,
    bus: can.BusABC | Mapping[str, can.BusABC],
    *,
    speed: float = 1.0,
    start: float | None = None,
    end: float | None = None,
    loop: bool = False,
    cancel: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayStats:
    """Send the frames of a log (log times ``start``–``end``) onto a bus with their original timing.

    ``bus`` is one bus for every frame, or a map from the log's channel names (or their labels,
    ``"can1"``) to buses; frames of unmapped channels are counted, not sent. ``speed=0`` sends
    as fast as the bus accepts. Error frames are skipped and counted; remote frames are sent as
    remote frames. ``loop`` repeats until ``cancel`` is set. ``progress(done, total)`` counts
    frames of the current pass.
    """
    if speed < 0:
        raise ValueError("speed must be >= 0")
    part = time_range(columns, start, end)
    n = len(part)
    if isinstance(bus, can.BusABC):
        routes: list[can.BusABC | None] = [bus] * max(1, len(part.channels))
    else:
        labels = channel_labels(part)
        routes = [bus.get(name, bus.get(labels[i])) for i, name in enumerate(part.channels)] or [None]
    cancel = cancel or threading.Event()
    sent = errors = skipped = unmapped = late = passes = 0
    max_late = total_late = 0.0
    t_begin = time.perf_counter()
    wall0 = t_begin
    ts = part.timestamp
    t0 = float(ts[0]) if n else 0.0
    chunk = 512
    while n and not cancel.is_set():
        passes += 1
        for lo in range(0, n, chunk):
            if cancel.is_set():
                break
            hi = min(n, lo + chunk)
            messages = part.to_messages(lo, hi)
            channels = part.channel[lo:hi].tolist()
            for i, msg in enumerate(messages):
                if msg.is_error_frame:
                    skipped += 1
                    continue
                target = routes[channels[i]] if channels[i] < len(routes) else None
                if target is None:
                    unmapped += 1
                    continue
                lateness = 0.0
                if speed > 0:
                    due = wall0 + (msg.timestamp - t0) / speed
                    delay = due - time.perf_counter()
                    if delay > _SPIN and cancel.wait(delay):
                        break
                    lateness = max(0.0, time.perf_counter() - due)
                msg.channel = None  # the bus's own channel, whatever the log called it
                try:
                    target.send(msg, timeout=1.0)
                except (can.CanError, OSError, ValueError):
                    errors += 1
                    continue
                sent += 1
                total_late += lateness
                max_late = max(max_late, lateness)
                if lateness > LATE:
                    late += 1
            if progress is not None:
                progress(hi, n)
        if not loop:
            break
        # The next pass starts right after this one's last deadline (keeps the schedule absolute).
        wall0 += (float(ts.max()) - t0) / speed if speed > 0 else 0.0
        if speed == 0:
            wall0 = time.perf_counter()
    return ReplayStats(
        frames_sent=sent,
        send_errors=errors,
        error_frames_skipped=skipped,
        unmapped_frames=unmapped,
        max_lateness=max_late,
        mean_lateness=total_late / sent if sent else 0.0,
        late_frames=late,
        duration=time.perf_counter() - t_begin,
        passes=passes,
        cancelled=cancel.is_set(),
    )
