"""FleetPanel: the vehicles this workshop may see over the cloud, most attention first.

The rows come from a Qt-free :class:`~workshop_app.core.cloud.fleet.FleetWatcher`. Its
``on_change`` runs on paho's network thread, so :class:`FleetBridge` turns it into a Qt signal
(queued to the GUI thread, as ``run_job`` does for jobs); the panel then re-reads the sorted
rows. A one-second timer asks the watcher to re-check silence (a quiet car sends nothing) and
keeps the "last seen" ages current. Double-click (or Enter, or Connect) emits
``vehicle_activated(vin)``; the window opens the cloud connection.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from workshop_app.core.cloud.fleet import LOW_BATTERY_V, FleetWatcher, VehicleStatus

COLUMNS = ("", "VIN", "State", "Last seen", "DTCs", "Battery", "Odometer", "Software", "Reasons")
COL_MARK, COL_VIN, COL_STATE, COL_SEEN, COL_DTCS, COL_BATTERY, COL_ODO, COL_SOFTWARE, COL_REASONS = range(9)
VIN_ROLE = Qt.ItemDataRole.UserRole + 1
POLL_MS = 1000

# The same colours as the status bar's link states (gui/link_status.py).
_RED, _AMBER, _GREEN, _GREY = "#d1242f", "#b26a00", "#1a7f37", "#8c959f"
_INDEX = QModelIndex | QPersistentModelIndex


def row_colour(status: VehicleStatus) -> str:
    """Red: needs a look now; amber: worth a look; grey: offline and fine; green: online and fine."""
    low = status.battery_v is not None and status.battery_v < LOW_BATTERY_V
    if status.mil or (not status.online and status.dtc_count):
        return _RED
    if status.dtc_count or low:
        return _AMBER
    if not status.online:
        return _GREY
    return _AMBER if status.frames_dropped else _GREEN


_DOTS: dict[str, QIcon] = {}


def _dot(colour: str) -> QIcon:
    icon = _DOTS.get(colour)
    if icon is None:
        pixmap = QPixmap(12, 12)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(colour))
        painter.drawEllipse(1, 1, 10, 10)
        painter.end()
        icon = _DOTS[colour] = QIcon(pixmap)
    return icon


def state_colour(status: VehicleStatus) -> str:
    """The State column: green online, amber not heard from, grey offline or unknown."""
    if status.online:
        return _GREEN
    return _AMBER if status.presence == "silent" else _GREY


def _age(epoch: float | None, now: float) -> str:
    if epoch is None:
        return "—"
    seconds = max(0.0, now - epoch)
    if seconds < 5:
        return "just now"
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    when = datetime.fromtimestamp(epoch).astimezone()
    return when.strftime("%Y-%m-%d %H:%M")


class FleetModel(QAbstractTableModel):
    """Rows of :class:`VehicleStatus`, in the watcher's attention order."""

    def __init__(self, parent: QObject | None = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__(parent)
        self.rows: list[VehicleStatus] = []
        self._clock = clock

    def set_rows(self, rows: list[VehicleStatus]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def rowCount(self, parent: _INDEX = QModelIndex()) -> int:  # noqa: B008 - Qt override
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: _INDEX = QModelIndex()) -> int:  # noqa: B008 - Qt override
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation is Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: _INDEX, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        status = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(status, col)
        if role == VIN_ROLE:
            return status.vin
        if role == Qt.ItemDataRole.ToolTipRole:
            reasons = "\n".join(f"• {r}" for r in status.reasons) or "nothing needs attention"
            stored = (
                "\n(health from the history: none received this session)"
                if status.health_from_history
                else ""
            )
            codes = f"\nFault codes: {', '.join(status.dtcs)}" if status.dtcs else ""
            software = f"\nSoftware: {status.software_text()}" if status.software else ""
            return f"{status.vin} — {status.state_text}\n{reasons}{codes}{software}{stored}"
        if role == Qt.ItemDataRole.DecorationRole and col == COL_MARK:
            return _dot(row_colour(status))  # an icon: it keeps its colour on a selected row
        if role == Qt.ItemDataRole.ForegroundRole and col == COL_STATE:
            return QBrush(QColor(state_colour(status)))
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (COL_DTCS, COL_BATTERY, COL_ODO):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _text(self, s: VehicleStatus, col: int) -> str:
        if col == COL_MARK:
            return ""
        if col == COL_VIN:
            return s.vin
        if col == COL_STATE:
            return s.state_text
        if col == COL_SEEN:
            return _age(s.last_seen, self._clock())
        if col == COL_DTCS:
            return "—" if s.dtc_count is None else str(s.dtc_count)
        if col == COL_BATTERY:
            return "—" if s.battery_v is None else f"{s.battery_v:.1f} V"
        if col == COL_ODO:
            return "—" if s.odometer_km is None else f"{s.odometer_km:,.0f} km"
        if col == COL_SOFTWARE:
            return s.software_text() or "—"
        return "; ".join(s.reasons) or "—"


class FleetBridge(QObject):
    """The watcher's ``on_change`` (paho's thread) as a Qt signal delivered in the GUI thread."""

    changed = Signal(str)

    def on_change(self, vin: str) -> None:
        # RuntimeError: the panel (and this bridge) was deleted while paho still ran.
        with contextlib.suppress(RuntimeError):
            self.changed.emit(vin)


class FleetPanel(QWidget):
    """The fleet table; give it a watcher with :meth:`set_watcher` (the panel starts and stops it)."""

    vehicle_activated = Signal(str)  # VIN the user chose to connect to

    def __init__(self, watcher: FleetWatcher | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.watcher: FleetWatcher | None = None
        self.bridge = FleetBridge(self)
        self.bridge.changed.connect(self._on_changed)
        self.model = FleetModel(self)

        self.status_label = QLabel("No cloud profile: Cloud → Fleet overview asks for one.")
        self.status_label.setWordWrap(True)
        self.connect_button = QPushButton("Connect")
        self.connect_button.setToolTip("Connect to the selected vehicle through the cloud link")
        self.connect_button.clicked.connect(self._on_connect_clicked)
        self.connect_button.setEnabled(False)

        self.view = QTableView()
        self.view.setObjectName("FleetView")
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setAlternatingRowColors(True)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(22)
        header = self.view.horizontalHeader()
        header.setStretchLastSection(True)
        for col, width in enumerate((24, 160, 150, 100, 48, 70, 90, 150)):
            header.resizeSection(col, width)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        # activated covers the double click and Enter (and a single click where the platform
        # activates on one); doubleClicked as well would connect twice.
        self.view.activated.connect(self._on_activated)
        self.view.selectionModel().selectionChanged.connect(self._on_selection)

        top = QHBoxLayout()
        top.addWidget(self.status_label, 1)
        top.addWidget(self.connect_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.view)

        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._on_timer)
        if watcher is not None:
            self.set_watcher(watcher)

    # -- watcher --------------------------------------------------------------------------------
    def set_watcher(self, watcher: FleetWatcher | None) -> None:
        """Show ``watcher``'s vehicles (starting it); the previous one is stopped."""
        self.stop()
        self.watcher = watcher
        if watcher is None:
            self.model.set_rows([])
            return
        watcher.on_change = self.bridge.on_change
        self.status_label.setText(f"Connecting to {watcher.profile.host}:{watcher.profile.port}…")
        try:
            watcher.start()
        except Exception as exc:  # CloudError: a certificate or key that cannot be used
            self.status_label.setText(f"Cloud: {exc}")
            self.watcher = None
            return
        self._timer.start()
        self.refresh()

    def stop(self) -> None:
        """Stop the watcher (joins paho's thread). Idempotent; called when the window closes."""
        self._timer.stop()
        watcher, self.watcher = self.watcher, None
        if watcher is not None:
            watcher.on_change = None
            watcher.stop()

    # -- view -------------------------------------------------------------------------------------
    def refresh(self) -> None:
        watcher = self.watcher
        if watcher is None:
            return
        selected = self.selected_vin()
        self.model.set_rows(watcher.vehicles())
        if selected is not None:
            for row, status in enumerate(self.model.rows):
                if status.vin == selected:
                    self.view.selectRow(row)
        self._update_status()

    def _update_status(self) -> None:
        watcher = self.watcher
        if watcher is None:
            return
        rows = self.model.rows
        where = f"{watcher.profile.client_id} at {watcher.profile.host}:{watcher.profile.port}"
        if watcher.connected:
            online = sum(r.online for r in rows)
            need = sum(bool(r.attention) for r in rows)
            text = f"{where}: {len(rows)} vehicle(s), {online} online, {need} need attention"
        else:
            text = f"{where}: {watcher.link_error or 'connecting…'}"
        if watcher.problems:
            text += f" · {watcher.problems} message(s) ignored (last: {watcher.last_problem})"
        self.status_label.setText(text)

    def selected_vin(self) -> str | None:
        rows = self.view.selectionModel().selectedRows()
        return str(rows[0].data(VIN_ROLE)) if rows else None

    def vins(self) -> list[str]:
        """The VINs in the table, in its order (the connect dialog offers them)."""
        return [r.vin for r in self.model.rows]

    def _on_changed(self, _vin: str) -> None:
        self.refresh()

    def _on_timer(self) -> None:
        watcher = self.watcher
        if watcher is None:
            return
        if not watcher.poll():  # a change refreshes through the bridge
            self.model.dataChanged.emit(
                self.model.index(0, 0), self.model.index(max(0, self.model.rowCount() - 1), len(COLUMNS) - 1)
            )
            self._update_status()

    def _on_selection(self, *_args: object) -> None:
        self.connect_button.setEnabled(self.selected_vin() is not None)

    def _on_activated(self, index: QModelIndex) -> None:
        if index.isValid():
            self.vehicle_activated.emit(str(index.data(VIN_ROLE)))

    def _on_connect_clicked(self) -> None:
        vin = self.selected_vin()
        if vin is not None:
            self.vehicle_activated.emit(vin)
