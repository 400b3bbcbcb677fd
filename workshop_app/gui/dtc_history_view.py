"""The Fault codes dock's "Vehicle history" tab: the stored scans of a car and its timeline."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from workshop_app.core.errors import WorkshopError
from workshop_app.core.history import HistoryStore
from workshop_app.gui.dtc_tables import SCAN_COLUMNS, item, make_table


class VehicleHistoryView(QWidget):
    """Scans newest first (double-click one to show it) and what happened to the car."""

    scan_opened = Signal(object)  # ScanResult read back from the history
    problem = Signal(str)  # the history could not be read

    def __init__(self, history: HistoryStore | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.history = history
        self.scans_table = make_table(SCAN_COLUMNS)
        self.scans_table.cellDoubleClicked.connect(self._on_scan_row_activated)
        self.timeline_table = make_table(("Time", "What happened"))
        self._scan_ids: list[int] = []
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(QLabel("Scans of this vehicle (double-click to show one)"))
        box.addWidget(self.scans_table, 2)
        box.addWidget(QLabel("Timeline"))
        box.addWidget(self.timeline_table, 3)

    def reload(self, vin: str) -> None:
        """The stored scans and the timeline of the vehicle with ``vin``."""
        if self.history is None or not vin:
            return
        try:
            scans = self.history.scans(vin)
            timeline = self.history.timeline(vin)
        except WorkshopError as exc:
            self.problem.emit(f"History not readable: {exc}")
            return
        self._scan_ids = [r.id for r in scans]
        self.scans_table.setRowCount(len(scans))
        for row, r in enumerate(scans):
            self.scans_table.setItem(row, 0, item(str(r.id)))
            self.scans_table.setItem(row, 1, item(f"{r.started.astimezone():%Y-%m-%d %H:%M:%S}"))
            self.scans_table.setItem(row, 2, item(r.label.value or "–"))
            self.scans_table.setItem(row, 3, item(str(r.dtc_count), "#d1242f" if r.dtc_count else None))
            km = f"{r.mileage_km:,.0f}" if r.mileage_km is not None else ""
            self.scans_table.setItem(row, 4, item(km))
        self.timeline_table.setRowCount(len(timeline))
        for row, e in enumerate(reversed(timeline)):  # newest first, like the scans
            self.timeline_table.setItem(row, 0, item(f"{e.when.astimezone():%Y-%m-%d %H:%M:%S}"))
            self.timeline_table.setItem(row, 1, item(e.text))

    def _on_scan_row_activated(self, row: int, _column: int) -> None:
        if self.history is None or not 0 <= row < len(self._scan_ids):
            return
        try:
            result = self.history.scan(self._scan_ids[row])
        except WorkshopError as exc:
            self.problem.emit(str(exc))
            return
        self.scan_opened.emit(result)
