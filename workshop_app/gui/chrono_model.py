"""ChronoModel: the scrolling (chronological) trace — the newest frames, one row each."""

from __future__ import annotations

from collections import deque
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from workshop_app.core.session import CaptureSession
from workshop_app.core.types import Frame
from workshop_app.core.workshop import Subscription, WorkshopSession

COLUMNS = ("Time (s)", "Channel", "Dir", "ID", "Message", "DLC", "Data")
_Index = QModelIndex | QPersistentModelIndex


class ChronoModel(QAbstractTableModel):
    """Keeps the last ``capacity`` frames; while paused, new frames are counted but not shown."""

    def __init__(self, session: CaptureSession | WorkshopSession, capacity: int = 5000) -> None:
        super().__init__()
        self.session = session.capture if isinstance(session, WorkshopSession) else session
        self.capacity = capacity
        self._frames: deque[Frame] = deque()
        self._t0: float | None = None
        self.paused = False
        self.skipped_while_paused = 0
        self.name_filter = ""

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt override
        return 0 if parent.isValid() else len(self._frames)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt override
        return len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or role != Qt.ItemDataRole.DisplayRole:
            return None
        f = self._frames[index.row()]
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
        """Append every tick's frames."""
        return [workshop.subscribe("frames", self.append)]

    def append(self, frames: list[Frame]) -> None:
        """Add a tick's frames (oldest rows fall off the top)."""
        if not frames:
            return
        if self.paused:
            self.skipped_while_paused += len(frames)
            return
        if self._t0 is None:
            self._t0 = frames[0].timestamp
        if self.name_filter:
            frames = [f for f in frames if self._matches(f)]
        frames = frames[-self.capacity :]
        overflow = len(self._frames) + len(frames) - self.capacity
        if overflow > 0:
            self.beginRemoveRows(QModelIndex(), 0, overflow - 1)
            for _ in range(overflow):
                self._frames.popleft()
            self.endRemoveRows()
        if frames:
            start = len(self._frames)
            self.beginInsertRows(QModelIndex(), start, start + len(frames) - 1)
            self._frames.extend(frames)
            self.endInsertRows()

    def _matches(self, f: Frame) -> bool:
        text = self.name_filter
        ident = f"{f.arbitration_id:x}"
        if text in ident:
            return True
        message = self.session.databases.lookup(f.channel, f.arbitration_id, f.is_extended)
        return message is not None and text in message.name.lower()

    def clear(self) -> None:
        self.beginResetModel()
        self._frames.clear()
        self._t0 = None
        self.endResetModel()
