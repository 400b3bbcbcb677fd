"""ChronoModel: the scrolling (chronological) trace — the newest frames, one row each."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from workshop_app.core.capture.columns import EXTENDED, FrameColumns
from workshop_app.core.session import CaptureSession
from workshop_app.core.types import Frame
from workshop_app.core.workshop import Subscription, WorkshopSession

COLUMNS = ("Time (s)", "Channel", "Dir", "ID", "Message", "DLC", "Data")
_Index = QModelIndex | QPersistentModelIndex


class ChronoModel(QAbstractTableModel):
    """Keeps the last ``capacity`` frames; while paused, new frames are counted but not shown.

    The rows are kept as numpy columns (the form the capture process delivers) and a row is
    turned into text only when the view paints it, so a tick costs the same at 30 or 30,000
    frames a second.
    """

    def __init__(self, session: CaptureSession | WorkshopSession, capacity: int = 5000) -> None:
        super().__init__()
        self.session = session.capture if isinstance(session, WorkshopSession) else session
        self.capacity = capacity
        self._rows = FrameColumns.empty()
        self._t0: float | None = None
        self.paused = False
        self.skipped_while_paused = 0
        self.name_filter = ""
        self._matches: dict[tuple[str, int, bool], bool] = {}  # per stream, for name_filter
        self._matches_for = ""

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt override
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt override
        return len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def frame(self, row: int) -> Frame:
        """The frame shown in ``row``."""
        return self._rows.row(row)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or role != Qt.ItemDataRole.DisplayRole:
            return None
        f = self._rows.row(index.row())
        col = index.column()
        if col == 0:
            return f"{f.timestamp - (self._t0 or 0.0):.6f}"
        if col == 1:
            return f.channel
        if col == 2:
            return "Rx" if f.is_rx else "Tx"
        if col == 3:
            return f"{f.arbitration_id:08X}" if f.is_extended else f"{f.arbitration_id:03X}"
        if col == 4:
            message = self.session.databases.lookup(f.channel, f.arbitration_id, f.is_extended)
            return "" if message is None else message.name
        if col == 5:
            return str(len(f.data))
        return f.data.hex(" ").upper()

    def follow(self, workshop: WorkshopSession) -> list[Subscription]:
        """Append every tick's batch."""
        return [workshop.subscribe("columns", self.append_columns)]

    def append(self, frames: list[Frame]) -> None:
        """Add frames (oldest rows fall off the top)."""
        if frames:
            self.append_columns(FrameColumns.from_frames(frames))

    def append_columns(self, cols: FrameColumns) -> None:
        """Add a tick's batch (oldest rows fall off the top)."""
        if not len(cols):
            return
        if self.paused:
            self.skipped_while_paused += len(cols)
            return
        if self._t0 is None:
            self._t0 = float(cols.timestamp[0])
        if self.name_filter:
            mask = self._filter_mask(cols)
            cols = FrameColumns(
                cols.timestamp[mask],
                cols.can_id[mask],
                cols.flags[mask],
                cols.length[mask],
                cols.channel[mask],
                cols.data[mask],
                cols.channels,
            )
        cols = cols[-self.capacity :]
        overflow = len(self._rows) + len(cols) - self.capacity
        if overflow > 0:
            self.beginRemoveRows(QModelIndex(), 0, overflow - 1)
            self._rows = self._rows[overflow:]
            self.endRemoveRows()
        if len(cols):
            start = len(self._rows)
            self.beginInsertRows(QModelIndex(), start, start + len(cols) - 1)
            self._rows = FrameColumns.concat([self._rows, cols])
            self.endInsertRows()

    def _filter_mask(self, cols: FrameColumns) -> np.ndarray:
        """Rows whose id (hex) or message name contains the filter text; decided per stream."""
        if self._matches_for != self.name_filter:
            self._matches.clear()
            self._matches_for = self.name_filter
        extended = (cols.flags & EXTENDED) != 0
        codes = (
            cols.can_id.astype(np.int64)
            | (extended.astype(np.int64) << 32)
            | (cols.channel.astype(np.int64) << 33)
        )
        unique, inverse = np.unique(codes, return_inverse=True)
        keep = np.empty(len(unique), dtype=bool)
        for i, code in enumerate(unique.tolist()):
            key = (cols.channels[code >> 33], code & 0xFFFFFFFF, bool((code >> 32) & 1))
            hit = self._matches.get(key)
            if hit is None:
                hit = self._matches[key] = self._stream_matches(*key)
            keep[i] = hit
        mask: np.ndarray = keep[inverse]
        return mask

    def _stream_matches(self, channel: str, arbitration_id: int, is_extended: bool) -> bool:
        text = self.name_filter
        if text in f"{arbitration_id:x}":
            return True
        message = self.session.databases.lookup(channel, arbitration_id, is_extended)
        return message is not None and text in message.name.lower()

    def clear(self) -> None:
        self.beginResetModel()
        self._rows = FrameColumns.empty()
        self._t0 = None
        self.endResetModel()
