"""Play a log held in memory: into the frame ring (PlaybackSource) or onto a real bus.

Both run the one engine of ``core/logs/player.py`` (pacing against absolute deadlines, pause,
seek, step, speed, loop); only where the rows go differs. ``--replay`` (core/sources/replay.py)
is a PlaybackSource that reads its file first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import can
import numpy as np

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.jobs import CancelToken, JobProgress, ProgressFn, no_progress
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
from workshop_app.core.logs.player import MIN_SPEED, Player, check_speed
from workshop_app.core.sources.base import FrameSource, SourceState
from workshop_app.core.types import Frame, SourceCaps, channel_label

__all__ = [
    "MIN_SPEED",
    "PlaybackSource",
    "ReplayStats",
    "channel_labels",
    "frames_of",
    "replay_to_bus",
    "time_range",
]


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


class _RingSink:
    """Rows into the frame ring, as Frames; waits (never drops) while the ring is nearly full."""

    def __init__(self, source: PlaybackSource) -> None:
        self._source = source

    def room(self) -> int:
        ring = self._source.ring
        return max(1, int(ring.capacity * 0.9)) - ring.backlog

    def build(self, lo: int, hi: int) -> object:
        return frames_of(self._source.columns, self._source._labels, lo, hi)

    def push(self, batch: object, lo: int, hi: int) -> None:
        assert isinstance(batch, list)
        self._source.ring.push_many(batch)
        self._source.frames_replayed += hi - lo


class PlaybackSource(FrameSource):
    """A log in memory played into the ring, with pause, seek, step, speed and loop controls.

    Times are log times (the clock of ``columns.timestamp``; see :attr:`start_time`).
    Controls may be called from any thread; the player thread notices them within ~10 ms.
    A finished playback keeps its thread and rests paused at the end: ``play`` starts over
    (from the loop start, if set); ``seek`` then ``play`` continues from anywhere.
    ``loop=True`` repeats the whole log.

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
        loop: bool = False,
    ) -> None:
        super().__init__(ring)
        self.name = name
        self.frames_replayed = 0
        self._player = Player(columns, speed=speed, paused=paused, loop=loop, on_finished=self._on_finished)
        self._labels = channel_labels(columns)
        self.finished = self._player.finished
        self._thread: threading.Thread | None = None

    @property
    def columns(self) -> FrameColumns:
        return self._player.columns

    def _set_columns(self, columns: FrameColumns) -> None:
        self._labels = channel_labels(columns)
        self._player.set_columns(columns)

    # -- information ---------------------------------------------------------------------------
    def describe(self) -> str:
        return f"playback {self.name}"

    @property
    def start_time(self) -> float:
        """Earliest log time (logs merged from several channels need not be sorted)."""
        return self._player.start_time

    @property
    def end_time(self) -> float:
        return self._player.end_time

    @property
    def duration(self) -> float:
        return self.end_time - self.start_time

    @property
    def speed(self) -> float:
        return self._player.speed

    @property
    def playing(self) -> bool:
        return self._player.playing

    @property
    def looping(self) -> bool:
        return self._player.looping

    @property
    def position(self) -> float:
        """Log time of the playback head (never past the next frame not yet pushed)."""
        return self._player.position

    # -- controls ------------------------------------------------------------------------------
    def play(self) -> None:
        self._player.play()

    def pause(self) -> None:
        self._player.pause()

    def seek(self, t: float) -> None:
        """Continue from the first frame at or after log time ``t``."""
        self._player.seek(t)

    def step(self, n: int = 1) -> None:
        """Push the next ``n`` frames now; pauses first if playing."""
        self._player.step(n)

    def set_speed(self, speed: float) -> None:
        """``speed`` at least MIN_SPEED (1 = real time), or 0 for as fast as the ring drains."""
        self._player.set_speed(speed)

    def set_loop(self, start: float | None, end: float | None) -> None:
        """Repeat log times ``start``–``end`` (None: that end of the log); both None: no loop."""
        self._player.set_loop(start, end)

    def set_looping(self, on: bool) -> None:
        """Repeat the whole log, or stop repeating."""
        self._player.set_looping(on)

    # -- FrameSource ---------------------------------------------------------------------------
    def _open(self) -> None:
        self.finished.clear()  # the thread sets it again (and FINISHED) if already at the end
        self._thread = threading.Thread(target=self._run, name=f"playback-{self.name}", daemon=True)
        self._thread.start()

    def _close(self) -> None:
        self._player.halt()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        if self._load():
            self._player.run(_RingSink(self))

    def _load(self) -> bool:
        """Runs first on the player thread; a file source reads its file here. False: do not play."""
        return True

    def _on_finished(self, finished: bool) -> None:
        # Called by the player under its lock, on the player thread or a control's caller.
        if finished:
            self._state = SourceState.FINISHED
        elif self._state is SourceState.FINISHED:
            self._state = SourceState.RUNNING


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


class _BusSink:
    """Rows onto python-can buses, each at its deadline; counts what it sent, skipped, refused."""

    def __init__(
        self,
        player: Player,
        columns: FrameColumns,
        routes: list[can.BusABC | None],
        progress: ProgressFn,
    ) -> None:
        self._player = player
        self._columns = columns
        self._routes = routes
        self._progress = progress
        self.sent = self.errors = self.skipped = self.unmapped = self.late = 0
        self.max_late = self.total_late = 0.0

    def room(self) -> int:
        return 1 << 20  # a bus send blocks instead; the player never waits for room

    def build(self, lo: int, hi: int) -> object:
        return self._columns.to_messages(lo, hi), self._columns.channel[lo:hi].tolist()

    def push(self, batch: object, lo: int, hi: int) -> None:
        # Under the player's lock: only a cancel (which takes no lock) can arrive meanwhile.
        messages, channels = cast(tuple[list[can.Message], list[int]], batch)
        player, routes = self._player, self._routes
        for msg, channel in zip(messages, channels, strict=True):
            if msg.is_error_frame:
                self.skipped += 1
                continue
            target = routes[channel] if channel < len(routes) else None
            if target is None:
                self.unmapped += 1
                continue
            lateness = max(0.0, time.perf_counter() - player.due_wall(msg.timestamp)) if player.speed else 0.0
            msg.channel = None  # the bus's own channel, whatever the log called it
            try:
                target.send(msg, timeout=1.0)
            except (can.CanError, OSError, ValueError):
                self.errors += 1
                continue
            self.sent += 1
            self.total_late += lateness
            self.max_late = max(self.max_late, lateness)
            if lateness > LATE:
                self.late += 1
        self._progress(JobProgress("replay", hi, len(self._columns)))


def replay_to_bus(
    columns: FrameColumns,
    bus: can.BusABC | Mapping[str, can.BusABC],
    *,
    speed: float = 1.0,
    start: float | None = None,
    end: float | None = None,
    loop: bool = False,
    cancel: CancelToken | None = None,
    progress: ProgressFn = no_progress,
) -> ReplayStats:
    """Send the frames of a log (log times ``start``–``end``) onto a bus with their original timing.

    ``bus`` is one bus for every frame, or a map from the log's channel names (or their labels,
    ``"can1"``) to buses; frames of unmapped channels are counted, not sent. ``speed=0`` sends
    as fast as the bus accepts. Error frames are skipped and counted; remote frames are sent as
    remote frames. ``loop`` repeats until ``cancel`` is cancelled. Progress counts frames of
    the current pass (phase ``"replay"``). Runs on the caller's thread.
    """
    check_speed(speed)
    part = time_range(columns, start, end)
    if isinstance(bus, can.BusABC):
        routes: list[can.BusABC | None] = [bus] * max(1, len(part.channels))
    else:
        labels = channel_labels(part)
        routes = [bus.get(name, bus.get(labels[i])) for i, name in enumerate(part.channels)] or [None]
    cancel = cancel or CancelToken()
    t_begin = time.perf_counter()
    player = Player(part, speed=speed, loop=loop, hold_at_end=False)
    sink = _BusSink(player, part, routes, progress)
    player.run(sink, cancel)
    return ReplayStats(
        frames_sent=sink.sent,
        send_errors=sink.errors,
        error_frames_skipped=sink.skipped,
        unmapped_frames=sink.unmapped,
        max_lateness=sink.max_late,
        mean_lateness=sink.total_late / sink.sent if sink.sent else 0.0,
        late_frames=sink.late,
        duration=time.perf_counter() - t_begin,
        passes=player.passes,
        cancelled=cancel.cancelled,
    )
