"""MultiSource: several sources (buses) captured together into one ring, e.g. can0..can3."""

from __future__ import annotations

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.errors import SourceError
from workshop_app.core.sources.base import FrameSource, SourceState
from workshop_app.core.types import Frame, SourceCaps


class MultiSource(FrameSource):
    """Starts, stops and transmits through its member sources; frames keep their channel labels.

    Every member must push into the same ring as the MultiSource, so one tick drains them all.
    """

    def __init__(self, ring: FrameRing, sources: list[FrameSource]) -> None:
        super().__init__(ring)
        if not sources:
            raise ValueError("MultiSource needs at least one source")
        if any(s.ring is not ring for s in sources):
            raise ValueError("every member source must use the MultiSource's ring")
        self.sources = sources
        self.caps = SourceCaps(
            live=all(s.caps.live for s in sources),
            can_transmit=any(s.caps.can_transmit for s in sources),
            fd=any(s.caps.fd for s in sources),
        )

    @property
    def channel_count(self) -> int:
        return sum(s.channel_count for s in self.sources)

    @property
    def bitrate(self) -> int | None:
        rates = {s.bitrate for s in self.sources}
        return rates.pop() if len(rates) == 1 else None

    @property
    def data_bitrate(self) -> int | None:
        rates = {s.data_bitrate for s in self.sources}
        return rates.pop() if len(rates) == 1 else None

    @property
    def state(self) -> SourceState:
        if self._state is SourceState.RUNNING:
            failed = [s for s in self.sources if s.state is SourceState.FAILED]
            if failed:
                self._error = "; ".join(f"{s.describe()}: {s.error}" for s in failed)
                return SourceState.FAILED
        return self._state

    def describe(self) -> str:
        return f"{len(self.sources)} buses: " + ", ".join(s.describe() for s in self.sources)

    def _open(self) -> None:
        started: list[FrameSource] = []
        try:
            for s in self.sources:
                s.start()
                started.append(s)
        except Exception:
            for s in reversed(started):
                s.stop()
            raise

    def _close(self) -> None:
        for s in self.sources:
            s.stop()

    def _send(self, frame: Frame) -> None:
        for s in self.sources:
            if s.caps.can_transmit and frame.channel == getattr(s, "channel_label", None):
                s._send(frame)
                return
        raise SourceError(f"no connected bus has channel {frame.channel!r}")
