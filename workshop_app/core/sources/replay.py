"""ReplaySource: ``--replay LOG``, the window's playback engine over a log file.

A PlaybackSource that reads its file on the player thread (the caller never waits for a big
log), then plays it like any loaded log: same pacing, loop, seek and pause.
"""

from __future__ import annotations

import logging
from pathlib import Path

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.errors import WorkshopError
from workshop_app.core.logs.columns import FrameColumns
from workshop_app.core.logs.playback import PlaybackSource
from workshop_app.core.logs.player import check_speed
from workshop_app.core.logs.reader import read_log

log = logging.getLogger(__name__)


class ReplaySource(PlaybackSource):
    """Frames from a log file, paced by their timestamps divided by ``speed``.

    ``speed=0`` replays as fast as the consumer drains. Unlike a live bus a replay can wait, so
    it never drops: it pauses while the ring is nearly full. ``loop`` restarts at the end.
    """

    def __init__(self, ring: FrameRing, path: str | Path, *, speed: float = 1.0, loop: bool = False) -> None:
        check_speed(speed)
        self.path = Path(path)
        super().__init__(ring, FrameColumns.empty(), speed=speed, name=self.path.name, loop=loop)
        self.loop = loop
        self._loaded = False
        # What was wrong with the file (damage skipped, impossible frames rejected): the
        # frames that could be recovered are replayed, and this says what was left out.
        self.warning: str | None = None

    def describe(self) -> str:
        return f"replay {self.path.name}"

    def _open(self) -> None:
        if not self.path.is_file():
            raise WorkshopError(f"{self.path}: no such file")
        super()._open()

    def _load(self) -> bool:
        if self._loaded:
            return True
        try:
            read = read_log(self.path)
        except WorkshopError as exc:
            self._fail(str(exc))
            self.finished.set()
            return False
        self.warning = read.warning()
        if self.warning:
            log.warning("%s: %s", self.path, self.warning)
        self._set_columns(read.frames)
        self._loaded = True
        return True
