"""Player: the one engine that plays a log held in memory, wherever its frames go.

The window's replay, the ``--replay`` source and ``workshop replay`` (onto a real bus) all run
this engine; they differ only in the :class:`Sink` that takes the rows. Frames are paced against
absolute deadlines (``anchor_wall + (t - anchor_log) / speed``) rather than slept frame-to-frame,
so rounding in each wait never accumulates into drift, and a loop keeps that schedule across
passes. Controls (play, pause, seek, step, speed, loop) may be called from any thread; the
thread running :meth:`Player.run` notices them within ~10 ms.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

import numpy as np

from workshop_app.core.jobs import CancelToken
from workshop_app.core.logs.columns import FrameColumns

# Slowest useful speed: below it a replay waits hours between frames (same floor as the CLI's).
MIN_SPEED = 0.001
# Longest the player waits without looking at its controls: bounds pause/seek/cancel latency.
_POLL = 0.01
# Rows handed to the sink per batch, so controls never wait behind a long burst at speed 0.
_BATCH = 1024
# Below this a wait is shorter than the OS timer granularity; the frame is delivered now.
_SPIN = 0.0005


class Sink(Protocol):
    """Where a player's rows go. ``build`` runs outside the player's lock (it may be slow);
    ``push`` runs under it, only if no seek or loop change moved the head meanwhile."""

    def room(self) -> int:
        """Rows the sink takes now (0: wait; a replay waits for its consumer, never drops)."""
        ...

    def build(self, lo: int, hi: int) -> object: ...

    def push(self, batch: object, lo: int, hi: int) -> None: ...


def check_speed(speed: float) -> None:
    if speed != 0 and not (math.isfinite(speed) and speed >= MIN_SPEED):
        raise ValueError(f"speed must be 0 (as fast as possible) or at least {MIN_SPEED:g}, not {speed}")


class Player:
    """Playback head, pacing and controls over ``columns`` (log times: ``columns.timestamp``).

    A finished player either rests paused at its end (``hold_at_end``: ``play`` starts over,
    ``seek`` then ``play`` continues from anywhere) or returns from :meth:`run`.
    ``loop=True`` repeats the whole log; :meth:`set_loop` repeats a range.
    ``on_finished(flag)`` is called under the lock when the end is reached (True) or left (False).
    """

    def __init__(
        self,
        columns: FrameColumns,
        *,
        speed: float = 1.0,
        paused: bool = False,
        loop: bool = False,
        hold_at_end: bool = True,
        on_finished: Callable[[bool], None] | None = None,
    ) -> None:
        check_speed(speed)
        self._cond = threading.Condition()
        self.finished = threading.Event()
        self.passes = 0  # times the range was started (more than 1 with loop)
        self._hold = hold_at_end
        self._on_finished = on_finished
        self._loop_all = loop
        self._halt = False
        self._running = False  # run() is delivering: the head moves with the clock
        self._speed = speed
        self._playing = not paused
        self._steps = 0
        self._generation = 0  # bumped by every jump of the head; stale batches are dropped
        self._loop: tuple[int, int] | None = None  # row range [lo, hi) to repeat
        self._index = 0  # next row to deliver
        self._position = 0.0  # log time reached (pause/seek point)
        self._anchor_wall = 0.0
        self._anchor_log = 0.0
        self.set_columns(columns)

    def set_columns(self, columns: FrameColumns) -> None:
        """Play ``columns`` from their start (a file source sets them once it has read them)."""
        with self._cond:
            self.columns = columns
            self._ts = columns.timestamp
            self._n = len(columns)
            self._monotonic = bool(self._n < 2 or np.all(np.diff(self._ts) >= 0))
            self._t_min = float(self._ts.min()) if self._n else 0.0
            self._t_max = float(self._ts.max()) if self._n else 0.0
            self._loop = (0, self._n) if self._loop_all and self._n else None
            self._jump(0, self._t_min)
            self._cond.notify_all()

    # -- information ---------------------------------------------------------------------------
    @property
    def start_time(self) -> float:
        """Earliest log time (logs merged from several channels need not be sorted)."""
        return self._t_min

    @property
    def end_time(self) -> float:
        return self._t_max

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def looping(self) -> bool:
        return self._loop is not None or self._loop_all

    @property
    def position(self) -> float:
        """Log time of the playback head (never past the next row not yet delivered)."""
        with self._cond:
            return self._position_locked() if self._running else self._position

    def due_wall(self, t: float) -> float:
        """Wall clock (``perf_counter``) at which log time ``t`` is due; call under a sink's push."""
        return self._anchor_wall + (t - self._anchor_log) / self._speed if self._speed else 0.0

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
        """Continue from the first row at or after log time ``t``."""
        with self._cond:
            self._jump(self._row_at(t), min(max(t, self._t_min), self._t_max) if self._n else t)
            self._steps = 0
            self._resume()

    def step(self, n: int = 1) -> None:
        """Deliver the next ``n`` rows now; pauses first if playing."""
        if n < 1:
            raise ValueError("step needs n >= 1")
        with self._cond:
            if self._playing:
                self._position = self._position_locked()
                self._playing = False
            self._steps += n
            self._resume()

    def set_speed(self, speed: float) -> None:
        """``speed`` 1 = real time, 0 = as fast as the sink takes rows."""
        check_speed(speed)
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
            self._loop_all = False
            if start is None and end is None:
                self._loop = None
            else:
                lo = self._row_at(self._t_min if start is None else start)
                hi = self._row_after(self._t_max if end is None else end)
                self._loop = (lo, max(lo, hi))
                if not lo <= self._index < hi:
                    self._jump(lo)
            self._generation += 1  # a batch in flight may cross the new range's end
            self._resume()

    def set_looping(self, on: bool) -> None:
        """Repeat the whole log (also one whose rows are not loaded yet), or stop repeating."""
        with self._cond:
            self._loop_all = on
            self._loop = (0, self._n) if on and self._n else None
            self._generation += 1
            self._resume()

    def halt(self) -> None:
        """Make :meth:`run` return (from any thread)."""
        with self._cond:
            self._halt = True
            self._cond.notify_all()

    # -- the playing thread --------------------------------------------------------------------
    def run(self, sink: Sink, cancel: CancelToken | None = None) -> None:
        """Deliver rows to ``sink`` until halted or cancelled (or the end, without hold_at_end)."""
        with self._cond:
            self._halt = False
            self._running = True
            self._anchor(self._position)
            if self._index < self._end_row():
                self.passes += 1
        while True:
            with self._cond:
                rows = self._next_rows(sink, cancel)
                if rows is None:
                    self._running = False
                    return
                generation, lo, hi = rows
            batch = sink.build(lo, hi)  # outside the lock: controls never wait behind it
            with self._cond:
                if generation != self._generation:
                    continue  # a seek or loop change moved the head meanwhile; drop the batch
                sink.push(batch, lo, hi)
                self._position = max(self._position, float(self._ts[hi - 1]))
                self._index = hi

    def _next_rows(self, sink: Sink, cancel: CancelToken | None) -> tuple[int, int, int] | None:
        """(generation, lo, hi) of the rows to deliver next; waits when there are none; None: stop."""
        # With a token nobody notifies the condition on cancel, so waits are bounded.
        idle = None if cancel is None else _POLL
        while not self._halt and not (cancel is not None and cancel.cancelled):
            end = self._end_row()
            if self._index >= end:
                if self._loop is not None and self._loop[1] > self._loop[0]:
                    self._wrap()
                    continue
                self._steps = 0
                if not self.finished.is_set():
                    self._position = self._t_max
                    self._playing = False
                    self.finished.set()
                    if self._on_finished is not None:
                        self._on_finished(True)
                if not self._hold:
                    return None
                self._cond.wait(idle)
                continue
            if not self._playing and self._steps == 0:
                self._cond.wait(idle)
                continue
            room = sink.room()
            if room <= 0:
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
    def _wrap(self) -> None:
        """Back to the loop's start; the next pass begins at the last row's deadline."""
        assert self._loop is not None
        lo, hi = self._loop
        last = float(self._ts[lo:hi].max())
        wall = self.due_wall(last)
        self._jump(lo)
        self.passes += 1
        if self._playing and self._speed > 0:
            self._anchor_wall, self._anchor_log = wall, float(self._ts[lo])

    def _position_locked(self) -> float:
        if not self._playing or self._speed == 0:
            return self._position
        now = self._anchor_log + (time.perf_counter() - self._anchor_wall) * self._speed
        limit = float(self._ts[self._index]) if self._index < self._n else self._t_max
        return max(self._position, min(now, limit))

    def _anchor(self, log_time: float) -> None:
        self._anchor_wall = time.perf_counter()
        self._anchor_log = log_time

    def _jump(self, row: int, position: float | None = None) -> None:
        """Move the head to ``row`` (log time ``position``, default that row's time)."""
        self._index = row
        self._generation += 1
        if position is None:
            position = float(self._ts[row]) if row < self._n else self._t_max
        self._position = position
        self._anchor(position)

    def _resume(self) -> None:
        # A seek or step after the end brings a finished playback back to life.
        if self.finished.is_set() and self._index < self._end_row():
            self.finished.clear()
            if self._on_finished is not None:
                self._on_finished(False)
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
