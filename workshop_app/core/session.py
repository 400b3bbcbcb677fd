"""CaptureSession: one source, its ring, the store, live decoding and recording, ticked together.

The GUI calls ``tick`` from a ~30 Hz timer, the CLI from its loop; both see the same numbers.
Construct sources with :func:`make_source` so every entry point opens them the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from workshop_app.core.bittiming import frame_bits
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
        frames = self.ring.drain(max_frames)
        bitrate = self.source.bitrate
        changed: set[MessageKey] = set()
        if frames:
            changed = self.store.ingest(frames)
            self.decoder.process(frames)
            if self.recorder is not None:
                self.recorder.write(frames)
            if bitrate:
                self._busy_s += _bus_seconds(frames, bitrate, self.source.data_bitrate)
        now = time.monotonic()
        if now - self._rate_t0 >= 1.0:
            elapsed = now - self._rate_t0
            self._fps = (self.store.total_frames - self._rate_n0) / elapsed
            self._load = self._busy_s / elapsed / self.source.channel_count if bitrate else None
            self._rate_t0, self._rate_n0, self._busy_s = now, self.store.total_frames, 0.0
        return frames, changed

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


# Frames per tick whose exact length is computed; the rest are scaled from them. Stuff bits
# make every frame's length depend on its bits (~3 µs each): a 256-frame sample per tick keeps
# the estimate within about a percent at a fraction of the cost.
_LOAD_SAMPLE = 256


def _bus_seconds(frames: list[Frame], bitrate: int, data_bitrate: int | None) -> float:
    """Time the frames occupied the bus (ISO 11898-1 lengths with stuff bits, own tx included)."""
    step = max(1, len(frames) // _LOAD_SAMPLE)
    nominal = data = counted = 0
    for f in frames[::step]:
        if f.is_error:
            continue
        n, d = frame_bits(
            f.arbitration_id, f.is_extended, f.data, is_fd=f.is_fd, bitrate_switch=f.bitrate_switch
        )
        nominal += n
        data += d
        counted += 1
    if not counted:
        return 0.0
    scale = sum(1 for f in frames if not f.is_error) / counted if step > 1 else 1.0
    return (nominal / bitrate + data / (data_bitrate or bitrate)) * scale
