"""ProcessCaptureSession: a CaptureSession whose live sources run in a capture process.

Live buses (adapters, socketcand, the built-in simulated car) are opened in a capture process
(:mod:`.process`): receiving, the capture ring and the recording run there, and the window's
process takes packed column batches into a :class:`LinkRing`, ingested as columns. A local
source — a log played in the window, which the window drives (pause, seek, speed) — runs here on
the same ring, with the capture process stopped; the next live source starts one again. So the
window keeps one session object whatever it is connected to.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from workshop_app.core.capture.process import CaptureProcessSource, HopDrops, LinkRing
from workshop_app.core.capture.process_child import ChildOptions
from workshop_app.core.capture.recorder import Recorder, RecordingSummary
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.errors import WorkshopError
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.base import FrameSource, SourceState
from workshop_app.core.sources.factory import SourceSpec, make_source


class ProcessCaptureSession(CaptureSession):
    """A :class:`CaptureSession` whose live sources receive and record in a capture process.

    >>> session = ProcessCaptureSession(SourceSpec(interface="socketcand", port=29536))  # doctest: +SKIP
    >>> session.start(); session.tick()                                                 # doctest: +SKIP
    """

    def __init__(
        self,
        specs: SourceSpec | Sequence[SourceSpec],
        databases: DatabaseSet | None = None,
        *,
        labels: Sequence[str | None] | None = None,
        options: ChildOptions | None = None,
        ring_capacity: int = 1_000_000,
        restart: bool = True,
    ) -> None:
        spec_list = [specs] if isinstance(specs, SourceSpec) else list(specs)
        self.link_ring = LinkRing(ring_capacity)
        self.capture_source = CaptureProcessSource(
            self.link_ring, spec_list, labels, options=options, restart=restart
        )
        super().__init__(self.capture_source, databases)

    @property
    def in_capture_process(self) -> bool:
        """True while the source is the capture process (not a log played here)."""
        return self.source is self.capture_source

    @property
    def drops(self) -> HopDrops:
        """Frames lost per hop; with a local source only this process's ring can drop."""
        if self.in_capture_process:
            return self.capture_source.drops
        return HopDrops(0, 0, self.link_ring.window_dropped)

    def set_source(self, source: FrameSource) -> None:
        """Switch to a source of this process (a log played in the window) on the same ring;
        the capture process stops. A live spec goes to :meth:`set_source_spec` instead."""
        if isinstance(source, CaptureProcessSource):
            raise WorkshopError("a capture process is opened from a spec: use set_source_spec")
        if self.in_capture_process:
            if self.recorder is not None:
                self.stop_recording()
            self.capture_source.stop()
            self.link_ring.link = None  # the capture process's hops no longer count
        super().set_source(source)

    def set_source_spec(
        self, specs: SourceSpec | Sequence[SourceSpec], labels: Sequence[str | None] | None = None
    ) -> None:
        """Stop the current source and start a capture process for ``specs``; the store starts
        afresh. A replay spec is opened here instead (see the module's docstring)."""
        spec_list = [specs] if isinstance(specs, SourceSpec) else list(specs)
        if len(spec_list) == 1 and spec_list[0].replay is not None:
            self.set_source(make_source(spec_list[0], self.link_ring))
            return
        old = self.source
        running = old.state is not SourceState.STOPPED
        if self.recorder is not None:
            self.stop_recording()
        old.stop()
        self.link_ring.drain_columns()
        options = self.capture_source.options
        self.capture_source = CaptureProcessSource(
            self.link_ring, spec_list, labels, options=options, restart=self.capture_source.restart
        )
        self.source = self.capture_source
        self._start_afresh()
        if running:
            self.start()

    def stop(self) -> RecordingSummary | None:
        """Stop the source (a capture process finishes its recording), then take in what it sent."""
        self.source.stop()
        self.tick()
        return self.stop_recording()

    def start_recording(self, path: str | Path) -> Recorder:
        if not self.in_capture_process:
            return super().start_recording(path)
        if self.recorder is not None:
            raise WorkshopError(f"already recording to {self.recorder.path}")
        self.recorder = self.capture_source.start_recording(Path(path).absolute())
        return self.recorder

    def stop_recording(self) -> RecordingSummary | None:
        summary = super().stop_recording()
        self.capture_source.recorder = None
        return summary


def make_process_source(spec: SourceSpec, ring_capacity: int = 1_000_000) -> CaptureProcessSource:
    """A capture process for ``spec`` as a plain source, for callers that take a FrameSource
    (diagnostic commands); its frames go to a :class:`LinkRing` of its own."""
    return CaptureProcessSource(LinkRing(ring_capacity), [spec])


def make_capture_session(spec: SourceSpec, databases: DatabaseSet | None = None) -> CaptureSession:
    """The session for ``spec``: live sources in a capture process when ``spec.capture_process``,
    else here."""
    if spec.capture_process and spec.replay is None:
        return ProcessCaptureSession(spec, databases)
    return CaptureSession(make_source(spec), databases)
