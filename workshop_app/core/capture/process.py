"""Capture in its own process, behind the same interface as :class:`CaptureSession`.

Receiving (python-can parsing every frame), the ring and the recorder run in a spawned capture
process (:mod:`.process_child`); it sends this process one packed batch of columns per ~20 ms
and takes commands back (record, stop recording, send a frame, tap ids, stop). So four
saturated buses no longer hold this interpreter's lock while the window ticks.

- :class:`~.process_session.ProcessCaptureSession` is a :class:`CaptureSession` whose source
  is a :class:`CaptureProcessSource` and whose ring is a :class:`LinkRing` (a columnar ring:
  the batches are ingested as columns); store, decoder, stats and ``tick`` are the base class's.
- One reader thread per capture process reads the pipe all the time (``recv_bytes`` waits
  without the interpreter lock): batches go to the LinkRing (:meth:`LinkRing.push_columns`),
  control messages change this side's state under a Condition that ``wait_for`` sleeps on.
- Diagnostics run here on :attr:`CaptureProcessSource.bus`, a :class:`~.link_bus.LinkBus`, and
  its :attr:`~CaptureProcessSource.notifier`: frames they send go out through the capture
  process; the reader thread copies the received rows they want (a numpy mask on the id column)
  into the bus's queue. The ids they wait for are tapped in the capture process, which then
  sends a batch as soon as such a frame arrives instead of at its next tick.
- Loss is counted at each hop: the capture ring (receive), the queue to this process (link),
  and this process's ring (window); ``ring.dropped`` is their sum, ``drops`` each one.
- If this process dies, the capture process stops its source, finishes the recording and
  exits. If the capture process dies, the source reports a lost link (a gap, state
  ``RECONNECTING``) and a new capture process is started; a recording it held ends there.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from workshop_app.core.capture.column_ring import ColumnRing
from workshop_app.core.capture.columns import FrameColumns
from workshop_app.core.capture.link_bus import FrameWriter, LinkBusHost
from workshop_app.core.capture.process_child import ChildOptions, run
from workshop_app.core.capture.recorder import Recorder, RecordingProgress, RecordingSummary, open_writer
from workshop_app.core.capture.remote_vehicle import RemoteVehicle
from workshop_app.core.errors import SourceError, WorkshopError
from workshop_app.core.sources.base import FrameSource, SourceState
from workshop_app.core.sources.factory import SourceSpec
from workshop_app.core.sources.reconnect import LinkGap
from workshop_app.core.types import Frame, SourceCaps

# Bounds on waiting for the capture process (start-up imports, a recording's last writes).
START_TIMEOUT = 30.0
REPLY_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class HopDrops:
    """Frames lost at each hop: capture ring (receive), queue to the window (link), window ring."""

    receive: int
    link: int
    window: int


class LinkRing(ColumnRing):
    """The window's ring: the pipe reader thread pushes the capture process's batches into it
    as they came (columns: the window's process never builds a Frame per frame for them)."""

    def __init__(self, capacity: int = 1_000_000) -> None:
        super().__init__(capacity)
        self.link: CaptureProcessSource | None = None

    @property
    def window_dropped(self) -> int:
        return super().dropped

    @property
    def dropped(self) -> int:
        remote = self.link.drops if self.link is not None else HopDrops(0, 0, 0)
        return remote.receive + remote.link + super().dropped

    @property
    def backlog(self) -> int:
        return len(self) + (self.link.remote_backlog if self.link is not None else 0)


class RemoteRecorder(Recorder):
    """A recording running in the capture process; progress comes with its statistics."""

    takes_frames = False  # the capture process writes every frame itself

    def __init__(self, source: CaptureProcessSource, path: Path, started: float) -> None:
        # The base class would open the file here; the capture process owns it instead.
        self.path = path
        self.started = started
        self.error: str | None = None
        self.warning: str | None = None
        self._source = source
        self._progress = RecordingProgress(0, 0, 0, 0, 0.0, None, None)
        self._summary: RecordingSummary | None = None

    @property
    def running(self) -> bool:
        return self._summary is None

    @property
    def frames_written(self) -> int:
        return self._summary.frames_written if self._summary else self._progress.frames_written

    @property
    def frames_dropped(self) -> int:
        return self._summary.frames_dropped if self._summary else self._progress.frames_dropped

    @property
    def queued(self) -> int:
        return 0 if self._summary else self._progress.queued

    @property
    def bytes_written(self) -> int:
        return self._summary.size_bytes if self._summary else self._progress.bytes_written

    @property
    def progress(self) -> RecordingProgress:
        if self._summary is not None:
            s = self._summary
            return RecordingProgress(
                s.frames_written, s.frames_dropped, 0, s.size_bytes, s.duration, s.error, s.warning
            )
        return self._progress

    def write(self, frames: list[Frame], columns: FrameColumns | None = None) -> None:
        """Nothing to do: the capture process records every frame before it is sent here."""

    def stop(self) -> RecordingSummary:
        if self._summary is None:
            try:
                self._source.command(("stop_record",))
            except SourceError as exc:
                self._ended(str(exc))
            self._source.wait_for(lambda: self._summary is not None, REPLY_TIMEOUT)
        if self._summary is None:
            self._ended("the capture process did not finish the recording in time")
        assert self._summary is not None
        return self._summary

    def _update(self, progress: RecordingProgress) -> None:
        self._progress = progress
        self.error = progress.error

    def _finished(self, summary: RecordingSummary) -> None:
        self._summary = summary
        self.error = summary.error

    def _ended(self, reason: str) -> None:
        """The capture process went away: the file holds what it flushed before."""
        p = self._progress
        size = self.path.stat().st_size if self.path.exists() else 0
        self.error = reason
        self._summary = RecordingSummary(
            self.path,
            self.started,
            time.time() - self.started,
            p.frames_written,
            p.frames_dropped,
            size,
            reason,
        )


class CaptureProcessSource(LinkBusHost, FrameSource):
    """The sources inside a capture process, seen from the window's process.

    ``specs`` are opened in the capture process: one spec as :func:`make_source` opens it, or
    several live buses (named by ``labels``, ``can0``.. by default) captured together.
    """

    def __init__(
        self,
        ring: LinkRing,
        specs: Sequence[SourceSpec],
        labels: Sequence[str | None] | None = None,
        *,
        options: ChildOptions | None = None,
        restart: bool = True,
    ) -> None:
        super().__init__(ring)
        if not specs:
            raise ValueError("a capture process needs at least one source")
        self.specs = list(specs)
        self.labels = list(labels) if labels is not None else [None] * len(self.specs)
        if len(self.labels) != len(self.specs):
            raise ValueError("one label per source spec")
        self.options = options or ChildOptions()
        self.restart = restart
        self.restarts = 0  # capture processes started again after one died
        self.send_error: str | None = None  # the last frame the capture process could not send
        self.vehicle_error: str | None = None  # the last simulated-car control that could not run
        self._vehicle: RemoteVehicle | None = None
        self.recorder: RemoteRecorder | None = None
        self._link_ring = ring
        ring.link = self
        self._conn: Connection | None = None
        self._process: BaseProcess | None = None
        self._ready = False
        self._stopping = False
        self._description = "capture process (starting)"
        self._bitrate: int | None = None
        self._data_bitrate: int | None = None
        self._channels = len(self.specs)
        self._received = 0  # frames the capture process took from its sources
        self._drops = HopDrops(0, 0, 0)
        self._remote_backlog = 0
        self._remote_gaps: tuple[LinkGap, ...] = ()
        self._own_gaps: list[LinkGap] = []  # capture process deaths
        self._recording_reply: tuple[Any, ...] | None = None
        self._initial_record: Path | None = None  # asked for before the capture process started
        self._send_lock = threading.Lock()  # commands may come from transmit threads too
        # Frames to send go to the pipe in batches: an ISO-TP transfer never waits on each one.
        self._writer = FrameWriter(self._write_frames)
        self._open_failed = False  # the capture process could not open its sources
        self._stopped_reply = False
        # State the pipe reader thread changes; waiters (wait_for) sleep on it.
        self._cond = threading.Condition()
        self._reader: threading.Thread | None = None
        self._init_link_buses()

    # -- what the window reads ------------------------------------------------------------
    def describe(self) -> str:
        return self._description

    @property
    def bitrate(self) -> int | None:
        return self._bitrate

    @property
    def data_bitrate(self) -> int | None:
        return self._data_bitrate

    @property
    def channel_count(self) -> int:
        return self._channels

    @property
    def gaps(self) -> tuple[LinkGap, ...]:
        return tuple(sorted((*self._remote_gaps, *self._own_gaps), key=lambda g: g.started))

    @property
    def drops(self) -> HopDrops:
        return HopDrops(self._drops.receive, self._drops.link, self._link_ring.window_dropped)

    @property
    def received(self) -> int:
        """Frames the capture process took from its sources (dropped ones included)."""
        return self._received

    @property
    def remote_backlog(self) -> int:
        return self._remote_backlog

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def vehicle(self) -> RemoteVehicle | None:
        """The simulated car's controls when this capture process runs the built-in car (a call
        while the capture process is not running raises SourceError, as a send does)."""
        if len(self.specs) != 1 or not self.specs[0].is_simulator:
            return None
        if self._vehicle is None:
            self._vehicle = RemoteVehicle(self.command)
        return self._vehicle

    def _link_open(self) -> bool:
        return not self._stopping and self._state is not SourceState.STOPPED

    # -- lifecycle ----------------------------------------------------------------------
    def _open(self) -> None:
        self._stopping = False
        self._spawn()
        if any(s.connect_in_background for s in self.specs):
            self._state = SourceState.CONNECTING
            return
        if not self.wait_for(lambda: self._ready or self._error is not None, START_TIMEOUT):
            self._shutdown(1.0)
            raise SourceError("the capture process did not start in time")
        if not self._ready:
            self._shutdown(1.0)
            raise SourceError(self._error or "the capture process failed")

    def _close(self) -> None:
        with self._cond:
            self._stopping = True
        self._writer.close(REPLY_TIMEOUT)  # frames sent before the stop go out before it
        if self._conn is not None:
            # Already gone: the reader sees the end of the pipe.
            with contextlib.suppress(SourceError):
                self.command(("stop",))
            self.wait_for(lambda: self._stopped_reply, REPLY_TIMEOUT)
        self._shutdown(5.0)
        self._close_link_buses()

    def _spawn(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        here, there = ctx.Pipe(duplex=True)
        record, self._initial_record = self._initial_record, None
        process = ctx.Process(
            target=run,
            args=(there, self.specs, self.labels, self.options, str(record) if record else None),
            name="workshop-capture",
            daemon=True,
        )
        process.start()
        there.close()  # only the child holds its end: its death ends our reads
        reader = threading.Thread(target=self._read, args=(here,), name="capture-link-reader", daemon=True)
        with self._cond:
            self._conn, self._process, self._reader = here, process, reader
            self._ready = False
            self._stopped_reply = False
            self._open_failed = False
            self._tap = frozenset()  # a new capture process starts with no tap
        reader.start()

    def _shutdown(self, timeout: float) -> None:
        """End the capture process, then its reader (which sees the pipe end), then the pipe."""
        with self._cond:
            process, conn, reader = self._process, self._conn, self._reader
            self._process = self._conn = self._reader = None
            self._cond.notify_all()
        if process is not None:
            process.join(timeout)
            if process.is_alive():
                process.kill()
                process.join(timeout)
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout)
        if conn is not None:
            conn.close()

    def command(self, cmd: tuple[Any, ...]) -> None:
        """Send a command; any thread (a transmit job's, the GUI's), one message at a time."""
        conn = self._conn
        if conn is None:
            raise SourceError("the capture process is not running")
        try:
            with self._send_lock:
                conn.send(cmd)
        except OSError as exc:
            raise SourceError("the capture process is gone") from exc

    def send(self, frame: Frame) -> None:
        """Hand the frame to the capture process; its echo comes back with the received frames."""
        if not self.caps.can_transmit:
            raise SourceError(f"{self.describe()} cannot transmit")
        if self.state is not SourceState.RUNNING:
            raise SourceError(f"{self.describe()} is not connected")
        self._writer.put(frame)
        self.frames_sent += 1

    def _write_frames(self, frames: tuple[Frame, ...]) -> None:
        try:
            self.command(("send", *frames))
        except SourceError as exc:  # the capture process is gone: a restart does not resend
            self.send_error = f"{len(frames)} frame(s) not sent: {exc}"

    def start_recording(self, path: Path) -> RemoteRecorder:
        """Record in the capture process; before :meth:`start`, from its first frame on."""
        self._recording_reply = None
        if self._conn is None:
            # Fail now on a bad path or format, as an in-process recording would.
            open_writer(path).close()
            self._initial_record = path
            self.recorder = RemoteRecorder(self, path, time.time())
            return self.recorder
        self.command(("record", str(path)))
        if not self.wait_for(lambda: self._recording_reply is not None, REPLY_TIMEOUT):
            raise WorkshopError("the capture process did not answer the request to record")
        assert self._recording_reply is not None
        _, _, started, error = self._recording_reply
        if error is not None:
            raise WorkshopError(error)
        self.recorder = RemoteRecorder(self, path, started)
        return self.recorder

    # -- the pipe ----------------------------------------------------------------------
    def wait_for(self, condition: Any, timeout: float) -> bool:
        """Wait until ``condition()`` holds (the reader thread changes what it reads), the
        capture process is gone, or ``timeout``; returns ``condition()``."""
        with self._cond:
            self._cond.wait_for(lambda: condition() or self._conn is None, timeout)
            return bool(condition())

    def _read(self, conn: Connection) -> None:
        """The reader thread of one capture process: batches to the LinkBuses and the ring,
        control messages to this object's state, until the pipe ends."""
        ring = self._link_ring
        try:
            while True:
                buf = conn.recv_bytes()  # blocks without holding the interpreter lock
                if buf[:1] == b"F":
                    cols = FrameColumns.unpack(buf[1:])
                    self._offer_link_buses(cols)  # diagnostics first: they are waited on
                    ring.push_columns(cols)
                else:
                    msg = pickle.loads(buf[1:])
                    with self._cond:
                        self._control(msg)
                        self._cond.notify_all()
                    if msg[0] == "ready":
                        self.retap()
        except (EOFError, OSError):
            pass
        with self._cond:
            current = conn is self._conn
        if current:
            self._lost()

    def _control(self, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "ready":
            _, self._description, caps, self._bitrate, self._data_bitrate, self._channels = msg
            self.caps = caps if isinstance(caps, SourceCaps) else self.caps
            self._ready = True
            if self._own_gaps and self._own_gaps[-1].open:
                gap = self._own_gaps[-1]
                self._own_gaps[-1] = LinkGap(gap.started, time.time(), gap.reason)
                self.reconnects += 1
            if self._state in (SourceState.CONNECTING, SourceState.RECONNECTING):
                self._state = SourceState.RUNNING
                self._error = None
        elif kind == "failed":
            self._error = msg[1]
            self._open_failed = True
            if self._ready or self._state is not SourceState.RUNNING:
                self._state = SourceState.FAILED
        elif kind == "stats":
            _, self._received, ring_dropped, link_dropped, self._remote_backlog, state, error, gaps, rec = msg
            self._drops = HopDrops(ring_dropped, link_dropped, 0)
            self._remote_gaps = gaps
            if self._ready and self._state is not SourceState.STOPPED and not self._stopping:
                self._state = SourceState(state)
                self._error = error
            if rec is not None and self.recorder is not None:
                self.recorder._update(rec)
        elif kind == "recording":
            self._recording_reply = msg
            if msg[3] is None and self.recorder is not None and self.recorder.path == Path(msg[1]):
                self.recorder.started = msg[2]
        elif kind == "recorded":
            if self.recorder is not None:
                self.recorder._finished(msg[1])
        elif kind == "send_failed":
            self.send_error = msg[1]
        elif kind == "vehicle_failed":
            self.vehicle_error = msg[1]
        elif kind == "stopped":
            if msg[1] is not None and self.recorder is not None:
                self.recorder._finished(msg[1])
            self._stopped_reply = True

    def _lost(self) -> None:
        """The pipe ended (reader thread): expected after a stop, else a lost link and a restart."""
        process = self._process
        self._shutdown(2.0)
        code = process.exitcode if process is not None else None
        with self._cond:
            try:
                if self._stopping:
                    return
                if self._open_failed:  # it said why it could not open: starting again would not help
                    self._state = SourceState.FAILED
                    return
                reason = f"capture process ended (exit code {code})"
                if self.recorder is not None and self.recorder.running:
                    self.recorder._ended(f"{reason}; the file holds what was written before")
                self._error = reason
                if not self.restart:
                    self._state = SourceState.FAILED
                    return
                self._own_gaps.append(LinkGap(time.time(), None, reason))
                self._state = SourceState.RECONNECTING
                self.restarts += 1
                # Under the lock: a stop() now waits and then stops the new process.
                self._spawn()
            finally:
                self._cond.notify_all()
