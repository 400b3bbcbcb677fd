"""The left pane of the log analysis view: the log's messages, its signals (searchable), markers."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.logs.analysis import LoadedLog, Marker, message_summary
from workshop_app.gui.log_view_parts import cell, fit_columns, numeric_item, readonly_table, table_width

Key = tuple[str, str]  # (message, signal)


class LogLists(QSplitter):
    """Message table, signal table with its search box, marker list with its buttons.

    The view connects ``signal_table.itemActivated`` (plot), ``marker_list.itemActivated``
    (jump) and the marker buttons; this widget only fills and filters the lists.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Vertical, parent)
        self.message_table = readonly_table(["Message", "ID", "Count", "Rate (Hz)"])
        self.message_table.setSortingEnabled(True)
        self.signal_filter = QLineEdit()
        self.signal_filter.setPlaceholderText("Search signals…")
        self.signal_filter.setClearButtonEnabled(True)
        self.signal_filter.textChanged.connect(self.apply_filter)
        self.signal_table = readonly_table(["Signal", "Message", "Count", "Unit"])
        self.signal_table.setSortingEnabled(True)
        self.signal_table.setToolTip("Double-click (or Enter) to plot a signal")
        signals_box = QWidget()
        signals_layout = QVBoxLayout(signals_box)
        signals_layout.setContentsMargins(0, 0, 0, 0)
        signals_layout.addWidget(self.signal_filter)
        signals_layout.addWidget(self.signal_table)

        self.marker_list = QListWidget()
        self.marker_list.setToolTip("Double-click a marker to jump to it")
        self.add_marker_button = QPushButton("Add marker…")
        self.add_marker_button.setToolTip("Add a note at the cursor (or the middle of the view)")
        self.remove_marker_button = QPushButton("Remove")
        for button in (self.add_marker_button, self.remove_marker_button):
            button.setEnabled(False)
        markers_box = QWidget()
        markers_layout = QVBoxLayout(markers_box)
        markers_layout.setContentsMargins(0, 0, 0, 0)
        markers_buttons = QHBoxLayout()
        markers_buttons.addWidget(QLabel("Markers"), 1)
        markers_buttons.addWidget(self.add_marker_button)
        markers_buttons.addWidget(self.remove_marker_button)
        markers_layout.addLayout(markers_buttons)
        markers_layout.addWidget(self.marker_list)

        self.addWidget(self.message_table)
        self.addWidget(signals_box)
        self.addWidget(markers_box)
        self.setSizes([220, 320, 120])

    def clear(self) -> None:
        self.message_table.setRowCount(0)
        self.signal_table.setRowCount(0)
        self.marker_list.clear()

    def wanted_width(self) -> int:
        """The width that shows both tables' columns whole."""
        return max(table_width(self.message_table), table_width(self.signal_table))

    def fill_messages(self, log: LoadedLog, databases: DatabaseSet, origin: float) -> None:
        rows = message_summary(log.columns, databases)
        table = self.message_table
        table.setSortingEnabled(False)  # sorting while inserting scrambles the rows
        table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            id_text = f"{row.arbitration_id:08X}" if row.extended else f"{row.arbitration_id:03X}"
            name = QTableWidgetItem(row.name or f"({id_text})")
            name.setToolTip(f"{row.channel} · {row.first - origin:.3f} s – {row.last - origin:.3f} s")
            table.setItem(i, 0, name)
            table.setItem(i, 1, numeric_item(row.arbitration_id, id_text))
            table.setItem(i, 2, numeric_item(row.count, f"{row.count:,}"))
            table.setItem(i, 3, numeric_item(row.rate_hz, f"{row.rate_hz:.1f}"))
        table.setSortingEnabled(True)
        table.sortByColumn(1, Qt.SortOrder.AscendingOrder)  # by id, as a trace lists them
        fit_columns(table)

    def fill_signals(self, log: LoadedLog) -> None:
        table = self.signal_table
        table.setSortingEnabled(False)
        signals = sorted(log.result.signals.values(), key=lambda s: (s.name.lower(), s.message))
        table.setRowCount(len(signals))
        for i, s in enumerate(signals):
            name = QTableWidgetItem(s.name)
            name.setData(Qt.ItemDataRole.UserRole, (s.message, s.name))
            table.setItem(i, 0, name)
            table.setItem(i, 1, QTableWidgetItem(s.message))
            table.setItem(i, 2, numeric_item(len(s), f"{len(s):,}"))
            table.setItem(i, 3, QTableWidgetItem(s.unit))
        table.setSortingEnabled(True)
        table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        fit_columns(table)
        self.apply_filter(self.signal_filter.text())

    def apply_filter(self, text: str) -> None:
        words = text.lower().split()
        table = self.signal_table
        for row in range(table.rowCount()):
            hay = f"{cell(table, row, 0).text()} {cell(table, row, 1).text()}".lower()
            table.setRowHidden(row, not all(w in hay for w in words))

    def visible_signals(self) -> list[Key]:
        """The signals the search leaves in the list, top to bottom."""
        table = self.signal_table
        return [
            cell(table, row, 0).data(Qt.ItemDataRole.UserRole)
            for row in range(table.rowCount())
            if not table.isRowHidden(row)
        ]

    def signal_at(self, item: QTableWidgetItem) -> Key:
        return cell(self.signal_table, item.row(), 0).data(Qt.ItemDataRole.UserRole)

    def list_markers(self, markers: list[Marker], origin: float) -> None:
        self.marker_list.clear()
        for marker in markers:
            item = QListWidgetItem(f"{marker.t - origin:10.3f} s   {marker.note}")
            item.setData(Qt.ItemDataRole.UserRole, marker)
            self.marker_list.addItem(item)
