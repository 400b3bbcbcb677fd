"""The capture process itself: sources, ring, recorder; batches out, commands in.

Started by :class:`workshop_app.core.capture.process.CaptureProcessSource` with the spawn
context. Threads here:

- the source's own receive threads push into the ring (as in one process);
- the main loop drains the ring every :data:`TICK` seconds, hands the batch to the recorder
  and queues it, packed as columns, for the window; it drains at once when a receive thread
  wakes it (a frame of an id the window tapped for diagnostics, :class:`TapRing`) or the command
  thread does (a command for it);
- the sender thread writes queued messages to the pipe (it may block while the window is
  busy; the queue is bounded and what does not fit is counted as dropped on the link);
- the command thread reads the window's commands; it sends the frames it is given itself (a
  source's send is safe beside its receive threads) and sets the tap, the rest go to the main
  loop. When the window's process dies the pipe ends, and the recording is finished and
  closed here before this process exits.

Wire: to the window, ``send_bytes`` of ``b"F"`` + a packed :class:`FrameColumns` or ``b"C"`` +
a pickled control tuple; from the window, pickled command tuples (``conn.send``): ``record``,
``stop_record``, ``send`` (one or more frames), ``tap`` (ids to send at once; None: every id, at :data:`FAST_TICK`),
``stop``.
"""

from __future__ import annotations

import pickle
import signal
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from workshop_app.core.capture.columns import FrameColumns
from workshop_app.core.capture.recorder import Recorder
from workshop_app.core.capture.remote_vehicle import call_vehicle
from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.errors import WorkshopError
from workshop_app.core.sources.adapter import AdapterSource
from workshop_app.core.sources.base import FrameSource
from workshop_app.core.sources.factory import SourceSpec, make_source
from workshop_app.core.sources.multi import MultiSource
from workshop_app.core.sources.opening import plain_reason
from workshop_app.core.types import Frame

# Seconds between drains of the ring: ~50 batches a second, a few hundred frames each at full load.
TICK = 0.02
# Tick while the window's diagnostics take every id (a discovery listener): answers within ~2 ms.
FAST_TICK = 0.002
# Seconds between statistics messages to the window.
STATS_EVERY = 0.2


@dataclass(frozen=True, slots=True)
class ChildOptions:
    ring_capacity: int = 1_000_000
    # Frames that may wait for the window; beyond it batches are dropped and counted.
    link_capacity: int = 1_000_000


def build_source(specs: list[SourceSpec], labels: list[str | None], ring: FrameRing) -> FrameSource:
    """One source, or a MultiSource of live buses named by ``labels`` (``can0``.. by default)."""
    if len(specs) == 1 and labels[0] is None:
        return make_source(specs[0], ring)
    members: list[FrameSource] = []
    for i, (spec, label) in enumerate(zip(specs, labels, strict=True)):
        if spec.interface is None:
            raise WorkshopError("several buses in one capture process must all be live interfaces")
        members.append(
            AdapterSource(
                ring,
                spec.bus_config(),
                channel_label=label or f"can{i}",
                policy=spec.reconnect,
                connect_in_background=spec.connect_in_background,
            )
        )
    return members[0] if len(members) == 1 else MultiSource(ring, members)


class TapRing(FrameRing):
    """The capture ring, waking the main loop when a frame of a tapped id arrives.

    The window taps the ids its diagnostics wait for (ISO-TP answers and flow control), so
    those frames go out at once instead of at the next tick. The test runs on the receive
    threads: one set lookup per frame.
    """

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.wake = threading.Event()  # set by a tapped frame, a command, or the end
        self.tap: frozenset[int] = frozenset()
        self.tap_all = False  # every id wanted: the main loop ticks at FAST_TICK instead

    def set_tap(self, wanted: frozenset[tuple[int, bool]] | None) -> None:
        self.tap_all = wanted is None
        self.tap = frozenset(can_id for can_id, _ in wanted) if wanted is not None else frozenset()

    def push(self, frame: Frame) -> bool:
        accepted = super().push(frame)
        if frame.arbitration_id in self.tap:
            self.wake.set()
        return accepted

    def push_many(self, frames: Iterable[Frame]) -> int:
        batch = list(frames)
        accepted = super().push_many(batch)
        tap = self.tap
        if tap and any(f.arbitration_id in tap for f in batch):
            self.wake.set()
        return accepted


class _Link:
    """Outgoing messages: control messages always go; frame batches only while there is room."""

    def __init__(self, conn: Connection, capacity: int) -> None:
        self._conn = conn
        self._capacity = capacity
        self._items: deque[tuple[bytes, int]] = deque()
        self._queued_frames = 0
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0  # frames that found the queue to the window full
        self.broken = False  # the window's end is gone
        self._thread = threading.Thread(target=self._run, name="capture-link-sender", daemon=True)
        self._thread.start()

    def frames(self, columns: FrameColumns) -> None:
        n = len(columns)
        with self._cond:
            if self.broken or self._queued_frames + n > self._capacity:
                self.dropped += n
                return
            self._items.append((b"F" + columns.pack(), n))
            self._queued_frames += n
            self._cond.notify()

    def control(self, message: tuple[Any, ...]) -> None:
        with self._cond:
            self._items.append((b"C" + pickle.dumps(message), 0))
            self._cond.notify()

    @property
    def backlog(self) -> int:
        return self._queued_frames

    def close(self, timeout: float) -> None:
        """Send what is queued (up to ``timeout``), then stop the sender."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items and not self._closed:
                    self._cond.wait()
                if not self._items:
                    return
                payload, n = self._items.popleft()
            try:
                self._conn.send_bytes(payload)
            except OSError:
                with self._cond:
                    self.broken = True
                    self.dropped += n + sum(k for _, k in self._items)
                    self._items.clear()
                    self._queued_frames = 0
                return
            with self._cond:
                self._queued_frames -= n


def run(
    conn: Connection,
    specs: list[SourceSpec],
    labels: list[str | None],
    options: ChildOptions,
    record: str | None = None,
) -> None:
    """Entry point of the capture process (spawned); ``record``: a file to record from the start."""
    # Ctrl-C in a terminal reaches the whole process group: the window's process decides what
    # happens (it sends "stop"), and if it dies instead the pipe ends and we finish up.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ring = TapRing(options.ring_capacity)
    wake = ring.wake
    link = _Link(conn, options.link_capacity)
    recorder: Recorder | None = None
    try:
        if record is not None:
            recorder = Recorder(record)
            link.control(("recording", record, recorder.started, None))
        source = build_source(specs, labels, ring)
        source.start()
    except Exception as exc:  # any failure to open is reported as one line in the window
        if recorder is not None:
            link.control(("recorded", recorder.stop()))
        link.control(("failed", plain_reason(exc)))
        link.close(5.0)
        return
    link.control(
        (
            "ready",
            source.describe(),
            source.caps,
            source.bitrate,
            source.data_bitrate,
            source.channel_count,
        )
    )
    commands: deque[tuple[Any, ...]] = deque()
    ended = threading.Event()  # the window said stop, or its process is gone

    def read_commands() -> None:
        while True:
            try:
                cmd = conn.recv()
            except (EOFError, OSError):  # the window's process ended: finish up here
                commands.append(("stop", "window gone"))
                ended.set()
                wake.set()
                return
            kind = cmd[0]
            if kind == "send":  # ("send", frame, ...): the frames queued in the window meanwhile
                # Sent from this thread, at once: an ISO-TP transfer sends thousands of frames
                # back to back, and a hop through the main loop would cost a wake-up each.
                for frame in cmd[1:]:
                    try:
                        source.send(frame)
                    except Exception as exc:
                        link.control(("send_failed", plain_reason(exc)))
                continue
            if kind == "vehicle":  # the simulated car's controls (remote_vehicle.py), in order
                problem = call_vehicle(source, cmd[1], cmd[2])
                if problem is not None:
                    link.control(("vehicle_failed", problem))
                continue
            if kind == "tap":
                ring.set_tap(cmd[1])
                wake.set()  # the new tick applies now
                continue
            commands.append(cmd)
            if kind == "stop":
                ended.set()
            wake.set()
            if kind == "stop":
                return

    def terminated(_signum: int, _frame: object) -> None:
        # multiprocessing terminates daemon children when the window's process exits without
        # stopping us: finish the recording all the same.
        commands.append(("stop", "terminated"))
        ended.set()
        wake.set()

    signal.signal(signal.SIGTERM, terminated)
    reader = threading.Thread(target=read_commands, name="capture-commands", daemon=True)
    reader.start()
    next_stats = 0.0

    def stats() -> tuple[Any, ...]:
        return (
            "stats",
            ring.pushed + ring.dropped,
            ring.dropped,
            link.dropped,
            ring.backlog + link.backlog,
            source.state.value,
            source.error,
            source.gaps,
            recorder.progress if recorder is not None else None,
        )

    while True:
        wake.clear()  # before looking: a wake-up from here on is seen by the wait below
        while commands:
            cmd = commands.popleft()
            kind = cmd[0]
            if kind == "record":
                try:
                    if recorder is not None:
                        raise WorkshopError(f"already recording to {recorder.path}")
                    recorder = Recorder(cmd[1])
                    link.control(("recording", str(recorder.path), recorder.started, None))
                except Exception as exc:
                    link.control(("recording", str(cmd[1]), time.time(), plain_reason(exc)))
            elif kind == "stop_record" and recorder is not None:
                link.control(("recorded", recorder.stop()))
                recorder = None
        if ended.is_set() and not commands:
            break
        _pump(ring, recorder, link)
        now = time.monotonic()
        if now >= next_stats:
            link.control(stats())
            next_stats = now + STATS_EVERY
        wake.wait(FAST_TICK if ring.tap_all else TICK)
    # Stop receiving first, so everything the source delivered is recorded and sent.
    source.stop()
    _pump(ring, recorder, link)
    summary = recorder.stop() if recorder is not None else None
    link.control(stats())
    link.control(("stopped", summary))
    link.close(10.0)
    conn.close()


def _pump(ring: FrameRing, recorder: Recorder | None, link: _Link) -> None:
    frames = ring.drain()
    if not frames:
        return
    columns = FrameColumns.from_frames(frames)  # for the window, and for a BLF recording too
    if recorder is not None:
        recorder.write(frames, columns)
    link.frames(columns)
