"""CaptureSession: one source, its ring, the store, live decoding and recording, ticked together.

The GUI calls ``tick`` from a ~30 Hz timer, the CLI from its loop; both see the same numbers.
Construct sources with :func:`make_source` so every entry point opens them the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from workshop_app.core.capture.batch import FrameBatch
from workshop_app.core.capture.bus_time import bus_seconds, bus_seconds_columns
from workshop_app.core.capture.column_ring import ColumnRing
from workshop_app.core.capture.recorder import Recorder, RecordingSummary
from workshop_app.core.capture.store import FrameStore, MessageKey
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.decode.live import LiveDecoder
from workshop_app.core.errors import WorkshopError
from workshop_app.core.sources.base import FrameSource
from workshop_app.core.types import Frame


@dataclass(frozen=True, slots=True)
class CaptureStats:
    frames: int  # frames taken from the ring so far
    dropped: int  # frames the ring refused (consumer too slow)
    backlog: int  # frames waiting in the ring
    frames_per_second: float  # over the last ~second
    recorded: int
    record_dropped: int
    bus_load: float | None  # busy fraction of the last ~second; None when the bitrate is unknown


class CaptureSession:
    """Ties a FrameSource to the store, the live decoder and an optional recorder."""

    def __init__(self, source: FrameSource, databases: DatabaseSet | None = None) -> None:
        self.source = source
        self.ring = source.ring
        self.databases = databases if databases is not None else DatabaseSet()
        self.store = FrameStore()
        self.decoder = LiveDecoder(self.databases)
        self.recorder: Recorder | None = None
        self._rate_t0 = time.monotonic()
        self._rate_n0 = 0
        self._fps = 0.0
        self._busy_s = 0.0  # bus time of the frames taken since _rate_t0
        self._load: float | None = None

    def set_source(self, source: FrameSource) -> None:
        """Switch to another source (stopping the current one); the store starts afresh.

        The new source must push into this session's ring (``make_source(spec, session.ring)``),
        so every panel keeps working on the same session object.
        """
        if source.ring is not self.ring:
            raise ValueError("the new source must use the session's ring")
        self.source.stop()
        self.ring.drain()
        self.source = source
        self._start_afresh()

    def _start_afresh(self) -> None:
        """A new source: an empty store and rates measured from zero."""
        self.store.clear()
        self._rate_n0 = 0
        self._fps = 0.0
        self._busy_s = 0.0
        self._load = None

    def start(self) -> None:
        self.source.start()
        # Rates and load are measured from here: time spent building a window before the
        # start would otherwise pass for a quiet bus in the first second's figures.
        self._rate_t0 = time.monotonic()
        self._rate_n0 = self.store.total_frames
        self._busy_s = 0.0

    def stop(self) -> RecordingSummary | None:
        """Stop the source, take in what it delivered, and close any recording."""
        self.source.stop()
        self.tick()
        return self.stop_recording()

    def tick(self, max_frames: int | None = None) -> list[Frame]:
        """Drain the ring into the store, decoder and recorder; returns the batch."""
        return self.tick_changes(max_frames)[0]

    def tick_changes(self, max_frames: int | None = None) -> tuple[list[Frame], set[MessageKey]]:
        """As :meth:`tick`, plus the keys of the message streams the batch touched."""
        batch, changed = self.tick_batch(max_frames)
        return batch.frames, changed

    def tick_batch(self, max_frames: int | None = None) -> tuple[FrameBatch, set[MessageKey]]:
        """As :meth:`tick_changes`, with the batch in the form the ring holds it: a columnar
        ring (a capture process's) is taken in as columns, without a Frame per frame."""
        bitrate = self.source.bitrate
        changed: set[MessageKey] = set()
        if isinstance(self.ring, ColumnRing):
            batch = FrameBatch(columns=self.ring.drain_columns(max_frames))
            if batch:
                changed = self.store.ingest_columns(batch.columns)
                self.decoder.process_columns(batch.columns)
        else:
            batch = FrameBatch(self.ring.drain(max_frames))
            if batch:
                changed = self.store.ingest(batch.frames)
                self.decoder.process(batch.frames)
        if batch:
            if self.recorder is not None and self.recorder.takes_frames:
                self.recorder.write(batch.frames)
            if bitrate:
                data_bitrate = self.source.data_bitrate
                if batch.has_frames:
                    self._busy_s += bus_seconds(batch.frames, bitrate, data_bitrate)
                else:
                    self._busy_s += bus_seconds_columns(batch.columns, bitrate, data_bitrate)
        now = time.monotonic()
        if now - self._rate_t0 >= 1.0:
            elapsed = now - self._rate_t0
            self._fps = (self.store.total_frames - self._rate_n0) / elapsed
            self._load = self._busy_s / elapsed / self.source.channel_count if bitrate else None
            self._rate_t0, self._rate_n0, self._busy_s = now, self.store.total_frames, 0.0
        return batch, changed

    def start_recording(self, path: str | Path) -> Recorder:
        if self.recorder is not None:
            raise WorkshopError(f"already recording to {self.recorder.path}")
        self.recorder = Recorder(path)
        return self.recorder

    def stop_recording(self) -> RecordingSummary | None:
        if self.recorder is None:
            return None
        summary = self.recorder.stop()
        self.recorder = None
        return summary

    @property
    def stats(self) -> CaptureStats:
        rec = self.recorder
        return CaptureStats(
            self.store.total_frames,
            self.ring.dropped,
            self.ring.backlog,
            self._fps,
            rec.frames_written if rec else 0,
            rec.frames_dropped if rec else 0,
            self._load,
        )
