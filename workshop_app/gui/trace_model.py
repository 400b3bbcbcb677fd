"""TraceModel: one row per message stream of the FrameStore, refreshed on the bridge's tick."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from workshop_app.core.capture.store import MessageStats
from workshop_app.core.decode.live import decode_payload
from workshop_app.core.session import CaptureSession

COLUMNS = ("Channel", "ID", "Message", "Count", "Rate (Hz)", "Jitter (ms)", "DLC", "Data", "Signals")
_Index = QModelIndex | QPersistentModelIndex


class TraceModel(QAbstractTableModel):
    def __init__(self, session: CaptureSession) -> None:
        super().__init__()
        self.session = session
        self._rows: list[MessageStats] = []
        self._names: dict[tuple[str, int, bool], str | None] = {}

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

    def message_name(self, stats: MessageStats) -> str | None:
        key = stats.key
        if key not in self._names:
            message = self.session.databases.lookup(*key)
            self._names[key] = None if message is None else message.name
        return self._names[key]

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        s = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return s.channel
            if col == 1:
                return f"{s.arbitration_id:08X}" if s.is_extended else f"{s.arbitration_id:03X}"
            if col == 2:
                return self.message_name(s) or "(unknown)"
            if col == 3:
                return f"{s.count:,}"
            if col == 4:
                return f"{s.rate(self.session.store.last_ts):.1f}"
            if col == 5:
                return f"{s.jitter * 1000:.2f}"
            if col == 6:
                return str(s.dlc)
            if col == 7:
                return s.data.hex(" ").upper()
            if col == 8:
                return self._signals_text(s)
        if role == Qt.ItemDataRole.ForegroundRole and col == 2 and self.message_name(s) is None:
            return QBrush(QColor("#9a6700"))
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (3, 4, 5, 6):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _signals_text(self, s: MessageStats) -> str:
        message = self.session.databases.lookup(*s.key)
        if message is None:
            return ""
        try:
            return ", ".join(f"{v.name}={v.text()}" for v in decode_payload(message, s.data))
        except Exception as exc:
            return f"(cannot decode: {exc})"

    def refresh(self) -> None:
        """Pick up new streams and repaint changed cells (called once per tick)."""
        rows = self.session.store.sorted_messages()
        if len(rows) != len(self._rows):
            self.beginResetModel()
            self._rows = rows
            self.endResetModel()
        elif rows:
            self._rows = rows
            self.dataChanged.emit(self.index(0, 3), self.index(len(rows) - 1, len(COLUMNS) - 1))
