"""FrameBatch: one tick's frames, as Frame objects or numpy columns, converted only on demand.

An in-process source delivers Frame objects; the capture process delivers columns. Each
consumer asks for the form it works on, and the other form is built at most once per tick
(and not at all when nobody asks): the window's panels read columns, so a capture process's
batches reach them without a Frame per frame.
"""

from __future__ import annotations

from workshop_app.core.capture.columns import FrameColumns
from workshop_app.core.types import Frame


class FrameBatch:
    """One batch in either form; ``frames`` and ``columns`` convert lazily and cache."""

    __slots__ = ("_columns", "_frames", "_n")

    def __init__(self, frames: list[Frame] | None = None, columns: FrameColumns | None = None) -> None:
        if frames is None and columns is None:
            frames = []
        self._frames = frames
        self._columns = columns
        self._n = len(frames) if frames is not None else len(columns or ())

    def __len__(self) -> int:
        return self._n

    def __bool__(self) -> bool:
        return self._n > 0

    @property
    def frames(self) -> list[Frame]:
        if self._frames is None:
            assert self._columns is not None
            self._frames = self._columns.to_frames()
        return self._frames

    @property
    def columns(self) -> FrameColumns:
        if self._columns is None:
            assert self._frames is not None
            self._columns = FrameColumns.from_frames(self._frames)
        return self._columns

    @property
    def has_frames(self) -> bool:
        """True when the Frame form exists already (reading ``frames`` costs nothing)."""
        return self._frames is not None

    @property
    def last_timestamp(self) -> float:
        if self._frames is not None:
            return self._frames[-1].timestamp
        assert self._columns is not None
        return float(self._columns.timestamp[-1])
