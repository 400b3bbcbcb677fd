"""WorkshopSession: the workshop as one object — source, capture, recording, transmit,
diagnostics and history — that the window and the ``workshop`` commands are thin clients of.

Clients drive it with :meth:`WorkshopSession.tick` (the window from a ~30 Hz timer, the CLI from
its loop) and learn what happened by subscribing to events instead of polling every part:

======== ======================================= ==========================================
kind     payload                                 when
======== ======================================= ==========================================
frames   ``list[Frame]``, the tick's batch        a tick took frames
columns  ``FrameColumns``, the same batch         a tick took frames
changed  ``set[MessageKey]`` the batch touched    a tick took frames
stats    ``CaptureStats``                         every tick (counters, rates, backlog)
source   the new ``FrameSource``                  after :meth:`switch_source`
recording ``Recorder`` when started,              a recording starts or stops (a source
         ``RecordingSummary`` when stopped        switch stops one too)
======== ======================================= ==========================================

A batch is built in the form a subscriber asks for, and only if somebody asks: the window's
panels take ``columns``, so a capture process's batches reach them without a Frame per frame;
the fault watch's triggers take ``frames`` while they are armed.

Threads: subscribers run synchronously on the thread that calls ``tick``/``switch_source``/
``start_recording`` — the GUI thread in the window, the main thread in the CLI — so a Qt
widget may subscribe directly. Nothing here is called from a receive thread.

>>> from workshop_app.core.sources.factory import SourceSpec
>>> session = WorkshopSession(SourceSpec(sim_time_scale=10.0), None)
>>> session.start()
>>> result = session.tick()
>>> session.close()
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workshop_app.core.capture.batch import FrameBatch
from workshop_app.core.capture.columns import FrameColumns
from workshop_app.core.capture.process_session import make_capture_session
from workshop_app.core.capture.recorder import Recorder, RecordingSummary
from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.capture.store import MessageKey
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.diag.ecu_spec import VehicleSpec
from workshop_app.core.diag.jobs import DiagJobs
from workshop_app.core.history.store import HistoryStore
from workshop_app.core.session import CaptureSession, CaptureStats
from workshop_app.core.sources.base import FrameSource
from workshop_app.core.sources.factory import SourceSpec, make_source
from workshop_app.core.transmit_jobs import TransmitJobs
from workshop_app.core.types import Frame

# Frames one tick takes from the ring at most. A frame costs ~3.4 µs through store, decoder
# (16 plotted signals) and recorder here (benchmarks/tick_burst.py), so 5,000 keep a tick near
# 17 ms; at 30 ticks a second that is 150,000 frames/s, four times four saturated 1 Mbit/s
# buses. A burst (a replay at full speed, a backlog after a pause) is spread over ticks.
TICK_MAX_FRAMES = 5_000

EVENT_KINDS = ("frames", "columns", "changed", "stats", "source", "recording")

Subscriber = Callable[[Any], None]
Subscription = tuple[str, Subscriber]  # what unsubscribe() takes back


@dataclass(frozen=True, slots=True)
class TickResult:
    """What one tick took: the batch, the message streams it touched, what is left."""

    batch: FrameBatch = field(default_factory=FrameBatch)
    changed: frozenset[MessageKey] = frozenset()
    backlog: int = 0  # frames still waiting in the ring (more than one tick's share arrived)

    def __len__(self) -> int:
        return len(self.batch)

    @property
    def frames(self) -> list[Frame]:
        return self.batch.frames

    @property
    def columns(self) -> FrameColumns:
        return self.batch.columns


class WorkshopSession:
    """One workshop: a source and everything that works on it, switched as one."""

    def __init__(
        self,
        source: SourceSpec | FrameSource | CaptureSession,
        databases: DatabaseSet | None = None,
        *,
        history: HistoryStore | None = None,
        vehicle_spec: VehicleSpec | None = None,
        max_frames: int = TICK_MAX_FRAMES,
    ) -> None:
        if max_frames <= 0:
            raise ValueError("max_frames must be positive")
        if isinstance(source, CaptureSession):
            capture = source
        elif isinstance(source, SourceSpec):
            # In a capture process when the spec asks for one (--capture-process), else here.
            capture = make_capture_session(source, databases)
        else:
            capture = CaptureSession(source, databases)
        self.capture = capture
        self.history = history
        self.vehicle_spec = vehicle_spec
        self.max_frames = max_frames
        # Switched to each new source and stopped with the session.
        self.transmit = TransmitJobs(capture.source, capture.databases)
        self._subscribers: dict[str, list[Subscriber]] = {kind: [] for kind in EVENT_KINDS}
        self._diagnostics: DiagJobs | None = None
        self.ticks = 0  # ticks so far; subscribers tell one tick from the next by it

    # -- the parts --------------------------------------------------------------------------
    @property
    def source(self) -> FrameSource:
        return self.capture.source

    @property
    def ring(self) -> FrameRing:
        return self.capture.ring

    @property
    def databases(self) -> DatabaseSet:
        return self.capture.databases

    @property
    def stats(self) -> CaptureStats:
        return self.capture.stats

    @property
    def recorder(self) -> Recorder | None:
        return self.capture.recorder

    @property
    def scheduler(self) -> TransmitJobs:
        """The transmit jobs under their older name."""
        return self.transmit

    @property
    def diagnostics(self) -> DiagJobs:
        """The diagnostic jobs on this session (its current source; its frames feed triggers),
        built on first use."""
        if self._diagnostics is None:
            self._diagnostics = DiagJobs(self, self.vehicle_spec, self.history)
        return self._diagnostics

    # -- events -----------------------------------------------------------------------------
    def subscribe(self, kind: str, fn: Subscriber) -> Subscription:
        """Call ``fn(payload)`` on every event of ``kind`` (see the module's table)."""
        self._listeners(kind).append(fn)
        return (kind, fn)

    def unsubscribe(self, kind: str, fn: Subscriber) -> None:
        """Stop calling ``fn``; unknown subscribers are ignored (a panel may go twice)."""
        listeners = self._listeners(kind)
        if fn in listeners:
            listeners.remove(fn)

    def _listeners(self, kind: str) -> list[Subscriber]:
        try:
            return self._subscribers[kind]
        except KeyError:
            raise ValueError(f"no event kind {kind!r} (kinds: {', '.join(EVENT_KINDS)})") from None

    def _publish(self, kind: str, payload: object) -> None:
        for fn in tuple(self._subscribers[kind]):  # a subscriber may unsubscribe itself
            fn(payload)

    # -- running ----------------------------------------------------------------------------
    def start(self) -> None:
        self.capture.start()

    def tick(self, max_frames: int | None = None) -> TickResult:
        """Take at most ``max_frames`` (default :data:`TICK_MAX_FRAMES`) from the ring into the
        store, decoder and recorder, then tell the subscribers."""
        self.ticks += 1
        batch, changed = self.capture.tick_batch(max_frames or self.max_frames)
        result = TickResult(batch, frozenset(changed), self.capture.ring.backlog)
        if batch:
            if self._subscribers["frames"]:
                self._publish("frames", batch.frames)
            if self._subscribers["columns"]:
                self._publish("columns", batch.columns)
            self._publish("changed", result.changed)
        self._publish("stats", self.capture.stats)
        return result

    def switch_source(self, source: SourceSpec | FrameSource, *, start: bool = True) -> FrameSource:
        """Stop recording and transmitting, and move every part to another source.

        A ``SourceSpec`` is opened on this session's ring. With ``start`` the new source is
        started last; a ``WorkshopError`` from that start propagates with the switch done.
        """
        reopen = getattr(self.capture, "set_source_spec", None)
        if isinstance(source, SourceSpec) and reopen is None:
            source = make_source(source, self.capture.ring)  # may fail: nothing is touched yet
        self.stop_recording()
        if isinstance(source, SourceSpec):
            assert reopen is not None
            reopen(source)  # a capture process opens its sources itself (core/capture/process.py)
            new = self.capture.source
        else:
            new = source
            self.capture.set_source(new)
        self.transmit.set_source(new)  # periodic jobs stop; the user resumes them
        self._publish("source", new)
        if start:
            self.capture.start()
        return new

    def start_recording(self, path: str | Path) -> Recorder:
        recorder = self.capture.start_recording(path)
        self._publish("recording", recorder)
        return recorder

    def stop_recording(self) -> RecordingSummary | None:
        summary = self.capture.stop_recording()
        if summary is not None:
            self._publish("recording", summary)
        return summary

    def stop(self) -> RecordingSummary | None:
        """Stop transmitting and the source, take in what it delivered, close any recording."""
        self.transmit.stop_all()
        self.capture.source.stop()
        while len(self.tick()) >= self.max_frames:
            pass  # the source has stopped: what it delivered is taken in a bounded number of ticks
        return self.stop_recording()

    def close(self) -> RecordingSummary | None:
        """:meth:`stop`, and the diagnostic and transmit jobs with it (the history is the caller's)."""
        if self._diagnostics is not None:
            self._diagnostics.close()
        self.transmit.close()
        return self.stop()
