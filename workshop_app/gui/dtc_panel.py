"""DtcPanel: scan the car, see the network and its fault codes, clear, report, catch intermittents.

Everything diagnostic runs on the core's DiagSession worker thread; results come back to the
GUI thread through a queued signal. The panel only shows and asks: scanning, clearing,
history and reports are core calls that the ``workshop dtc`` command makes the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workshop_app.core.capture.trigger import SignalTrigger, TriggerCapture, TriggerEvent
from workshop_app.core.diag.activity import CAR_ACTIVITY, CarBusyError
from workshop_app.core.diag.client import DiagError
from workshop_app.core.diag.dtc import Dtc
from workshop_app.core.diag.ecu_spec import VehicleSpec
from workshop_app.core.diag.model import EcuResult, EcuState, ScanLabel, ScanResult, compare_scans
from workshop_app.core.diag.scan import ClearOutcome
from workshop_app.core.diag.session import DiagSession
from workshop_app.core.diag.watch import DtcEvent, DtcWatcher
from workshop_app.core.errors import WorkshopError
from workshop_app.core.history import HistoryStore, default_recordings_dir
from workshop_app.core.session import CaptureSession
from workshop_app.core.sim.faults import available_faults

STATE_COLOURS = {
    EcuState.OK: ("#1a7f37", "OK"),
    EcuState.FAULTS: ("#d1242f", "Faults"),
    EcuState.MISSING: ("#6e7781", "Missing"),
    EcuState.UNEXPECTED: ("#b26a00", "Unexpected"),
    EcuState.ERROR: ("#b26a00", "Error"),
}
NETWORK_COLUMNS = ("ECU", "Address", "State", "DTCs", "Description")
DTC_COLUMNS = ("ECU", "Code", "UDS", "Description", "Status", "Occurrences")
SCAN_COLUMNS = ("Scan", "Started", "Label", "DTCs", "km")
WATCH_SECONDS = 3.0


class _Relay(QObject):
    """Carries a finished future's callback from the worker thread to the GUI thread."""

    done = Signal(object, object)  # callback, future


def _item(text: str, colour: str | None = None, bold: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    if colour:
        item.setForeground(QBrush(QColor(colour)))
    if bold:
        font = item.font()
        font.setBold(True)
        item.setFont(font)
    return item


def _table(columns: tuple[str, ...]) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(columns)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setAlternatingRowColors(True)
    table.verticalHeader().setDefaultSectionSize(22)
    table.horizontalHeader().setStretchLastSection(True)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    return table


class DtcPanel(QWidget):
    scan_finished = Signal(object)  # ScanResult
    clear_finished = Signal(object)  # list[ClearOutcome]
    dtc_event = Signal(float, str)  # (unix time, text) for plot markers
    trigger_saved = Signal(object)  # TriggerEvent

    def __init__(
        self,
        session: CaptureSession,
        spec: VehicleSpec,
        history: HistoryStore | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.spec = spec
        self.history = history
        self.last_scan: ScanResult | None = None
        self.before_clear: ScanResult | None = None
        self.trigger: TriggerCapture | None = None
        self._diag: DiagSession | None = None
        self._diag_source: object = None
        self._busy = False
        self._car_token: int | None = None  # held in CAR_ACTIVITY while a scan or clear runs
        self._watcher: DtcWatcher | None = None
        self._watch_future: Future[Any] | None = None
        self._relay = _Relay()
        self._relay.done.connect(self._on_future_done, Qt.ConnectionType.QueuedConnection)

        self.scan_button = QPushButton("Scan vehicle")
        self.scan_button.setToolTip("Find every ECU and read its identity and fault codes")
        self.scan_button.clicked.connect(lambda: self.start_scan())
        self.label_combo = QComboBox()
        self.label_combo.addItem("No label", ScanLabel.NONE)
        self.label_combo.addItem("Pre-repair", ScanLabel.PRE_REPAIR)
        self.label_combo.addItem("Post-repair", ScanLabel.POST_REPAIR)
        self.clear_combo = QComboBox()
        self.clear_button = QPushButton("Clear fault codes…")
        self.clear_button.clicked.connect(self._on_clear_clicked)
        self.report_button = QPushButton("Customer report…")
        self.report_button.clicked.connect(self._on_report_clicked)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setMaximumWidth(160)
        self.status_label = QLabel("Not scanned yet")
        self.status_label.setWordWrap(True)

        self.network_table = _table(NETWORK_COLUMNS)
        self.network_table.itemSelectionChanged.connect(self._on_ecu_selected)
        self.dtc_table = _table(DTC_COLUMNS)
        self.dtc_table.itemSelectionChanged.connect(self._on_dtc_selected)
        self.detail_table = _table(("Item", "Value"))
        self.detail_title = QLabel("Select an ECU or a fault code")
        self.side_tabs = QTabWidget()
        self.scans_table = _table(SCAN_COLUMNS)
        self.scans_table.cellDoubleClicked.connect(self._on_scan_row_activated)
        self.timeline_table = _table(("Time", "What happened"))
        self._scan_ids: list[int] = []

        self.fault_combo = QComboBox()
        for name, text in available_faults().items():
            self.fault_combo.addItem(name, name)
            self.fault_combo.setItemData(self.fault_combo.count() - 1, text, Qt.ItemDataRole.ToolTipRole)
        self.inject_button = QPushButton("Inject")
        self.inject_button.clicked.connect(self._on_inject_clicked)
        self.repair_button = QPushButton("Repair all")
        self.repair_button.setToolTip("Remove every simulated fault (the stored codes stay until cleared)")
        self.repair_button.clicked.connect(self._on_repair_clicked)
        self.park_check = QCheckBox("Parked, engine off")
        self.park_check.setToolTip("Stop the car and switch the engine off, key on (flashing needs it)")
        self.park_check.toggled.connect(self._on_park_toggled)

        self.watch_check = QCheckBox("When a fault code appears")
        self.signal_edit = QLineEdit()
        self.signal_edit.setPlaceholderText("MESSAGE.Signal, e.g. ENGINE_TEMPS.CoolantTemp")
        self.op_combo = QComboBox()
        self.op_combo.addItems([">", "<", ">=", "<="])
        self.limit_spin = QDoubleSpinBox()
        self.limit_spin.setRange(-1e9, 1e9)
        self.limit_spin.setDecimals(2)
        self.pre_spin = QDoubleSpinBox()
        self.pre_spin.setRange(1, 600)
        self.pre_spin.setValue(10)
        self.post_spin = QDoubleSpinBox()
        self.post_spin.setRange(0, 600)
        self.post_spin.setValue(5)
        self.arm_button = QPushButton("Arm trigger")
        self.arm_button.setCheckable(True)
        self.arm_button.toggled.connect(self._on_arm_toggled)
        self.trigger_label = QLabel()
        self.trigger_label.setWordWrap(True)

        self.watch_timer = QTimer(self)
        self.watch_timer.setInterval(int(WATCH_SECONDS * 1000))
        self.watch_timer.timeout.connect(self._poll_watch)

        self._build_layout()
        self._fill_clear_combo()
        self.refresh_source()

    # --- layout -------------------------------------------------------------------------------
    def _build_layout(self) -> None:
        bar = QHBoxLayout()
        bar.addWidget(self.scan_button)
        bar.addWidget(self.label_combo)
        bar.addSpacing(12)
        bar.addWidget(self.clear_combo)
        bar.addWidget(self.clear_button)
        bar.addSpacing(12)
        bar.addWidget(self.report_button)
        bar.addWidget(self.progress)
        bar.addStretch(1)

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(QLabel("Network"))
        lv.addWidget(self.network_table, 2)
        lv.addWidget(QLabel("Fault codes"))
        lv.addWidget(self.dtc_table, 3)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        details = QWidget()
        dv = QVBoxLayout(details)
        dv.setContentsMargins(0, 0, 0, 0)
        dv.addWidget(self.detail_title)
        dv.addWidget(self.detail_table, 1)
        past = QWidget()
        pv = QVBoxLayout(past)
        pv.setContentsMargins(0, 0, 0, 0)
        pv.addWidget(QLabel("Scans of this vehicle (double-click to show one)"))
        pv.addWidget(self.scans_table, 2)
        pv.addWidget(QLabel("Timeline"))
        pv.addWidget(self.timeline_table, 3)
        self.side_tabs.addTab(details, "Details")
        self.side_tabs.addTab(past, "Vehicle history")
        self.side_tabs.setTabEnabled(1, self.history is not None)
        rv.addWidget(self.side_tabs, 1)

        sim = QGroupBox("Simulated vehicle")
        sh = QHBoxLayout(sim)
        sh.addWidget(self.fault_combo, 1)
        sh.addWidget(self.inject_button)
        sh.addWidget(self.repair_button)
        sh.addWidget(self.park_check)
        rv.addWidget(sim)
        self.sim_box = sim

        trig = QGroupBox("Catch an intermittent fault: save a recording")
        tv = QVBoxLayout(trig)
        tv.addWidget(self.watch_check)
        row = QHBoxLayout()
        row.addWidget(QLabel("or when"))
        row.addWidget(self.signal_edit, 1)
        row.addWidget(self.op_combo)
        row.addWidget(self.limit_spin)
        tv.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("seconds before"))
        row.addWidget(self.pre_spin)
        row.addWidget(QLabel("after"))
        row.addWidget(self.post_spin)
        row.addStretch(1)
        row.addWidget(self.arm_button)
        tv.addLayout(row)
        tv.addWidget(self.trigger_label)
        rv.addWidget(trig)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 4, 4, 4)
        box.addLayout(bar)
        box.addWidget(self.status_label)
        box.addWidget(split, 1)
        for column, width in enumerate((60, 170, 80, 50)):
            self.network_table.horizontalHeader().resizeSection(column, width)
        for column, width in enumerate((55, 75, 65, 330, 200)):
            self.dtc_table.horizontalHeader().resizeSection(column, width)
        self.detail_table.horizontalHeader().resizeSection(0, 300)

    def _fill_clear_combo(self) -> None:
        self.clear_combo.clear()
        self.clear_combo.addItem("All ECUs", None)
        for ecu in self.spec.ecus:
            self.clear_combo.addItem(ecu.name, ecu.name)

    # --- plumbing -----------------------------------------------------------------------------
    def diag(self) -> DiagSession:
        """The DiagSession of the current connection (a new one after reconnecting)."""
        if self._diag is None or self._diag_source is not self.session.source:
            if self._diag is not None:
                self._diag.close()
            self._diag = DiagSession(self.session.source, self.spec)
            self._diag_source = self.session.source
            self._watcher = None
        return self._diag

    def _when_done(self, future: Future[Any], callback: Callable[[Future[Any]], None]) -> None:
        future.add_done_callback(lambda f: self._relay.done.emit(callback, f))

    def _on_future_done(self, callback: Callable[[Future[Any]], None], future: Future[Any]) -> None:
        callback(future)

    @property
    def busy(self) -> bool:
        return self._busy

    def _claim_car(self, what: str) -> bool:
        """Hold the car for a scan or clear; refused, with the reason shown, while a flash runs."""
        try:
            self._car_token = CAR_ACTIVITY.begin("scan", what)
        except CarBusyError as exc:
            self.status_label.setText(str(exc))
            return False
        return True

    def _set_busy(self, busy: bool, text: str = "") -> None:
        self._busy = busy
        if not busy and self._car_token is not None:
            CAR_ACTIVITY.end(self._car_token)
            self._car_token = None
        for w in (self.scan_button, self.clear_button, self.report_button, self.clear_combo):
            w.setEnabled(not busy)
        if text:
            self.status_label.setText(text)
        if not busy:
            self.progress.setValue(100 if self.last_scan else 0)

    def refresh_source(self) -> None:
        """Call when the connection changes: the simulator box only makes sense on the simulator."""
        vehicle = getattr(self.session.source, "vehicle", None)
        self.sim_box.setVisible(vehicle is not None)
        if vehicle is not None:
            self.park_check.blockSignals(True)
            self.park_check.setChecked(vehicle.parked)
            self.park_check.blockSignals(False)

    def close_diag(self) -> None:
        self.watch_timer.stop()
        if self.trigger is not None:
            self.trigger.finish_now()
            self.trigger = None
        if self._diag is not None:
            self._diag.close()
            self._diag = None

    def _linked_diag(self) -> DiagSession | None:
        """The DiagSession when the connection can do diagnostics; else says why and None."""
        try:
            diag = self.diag()
            diag.link()
        except (DiagError, WorkshopError) as exc:
            self.status_label.setText(str(exc))
            return None
        return diag

    # --- scan ---------------------------------------------------------------------------------
    def start_scan(self, label: ScanLabel | None = None) -> bool:
        if self._busy:
            return False
        chosen = label if label is not None else self.label_combo.currentData()
        diag = self._linked_diag()
        if diag is None or not self._claim_car("a fault-code scan"):
            return False
        self._set_busy(True, "Scanning…")
        self.progress.setValue(0)
        future = diag.scan(label=chosen, progress=self._scan_progress)
        self._when_done(future, self._on_scan_done)
        return True

    def _scan_progress(self, text: str, fraction: float) -> None:
        # Worker thread: hand over through the relay.
        self._relay.done.emit(lambda _f: self._show_progress(text, fraction), None)

    def _show_progress(self, text: str, fraction: float) -> None:
        self.progress.setValue(int(fraction * 100))
        self.status_label.setText(f"Scanning: {text}")

    def _on_scan_done(self, future: Future[ScanResult]) -> None:
        self._set_busy(False)
        try:
            result = future.result()
        except Exception as exc:  # a scan that failed as a whole (connection lost)
            self.status_label.setText(f"Scan failed: {exc}")
            return
        note = ""
        if self.history is not None:
            try:
                if result.vin:
                    result.add_missing(self.history.expected_ecus(result.vin))
                self.history.add_scan(result)
                cmp = self.history.compare_with_previous(result.scan_id) if result.scan_id else None
                if cmp is not None:
                    note = f" Since the previous scan: {len(cmp.new)} new, {len(cmp.gone)} gone, {len(cmp.still)} still present."
            except WorkshopError as exc:
                note = f" Not stored in the history: {exc}"
        self.show_scan(result)
        self.reload_history(result.vin)
        self.progress.setValue(100)
        faulty = sum(1 for e in result.ecus if e.state is EcuState.FAULTS)
        self.status_label.setText(
            f"{len(result.ecus)} ECUs, {faulty} with faults, {result.dtc_count} fault codes "
            f"(VIN {result.vin or '?'}, {result.seconds:.1f} s).{note}"
            + (f" Warning: not a valid VIN: {'; '.join(result.vin_warnings)}." if result.vin_warnings else "")
        )
        for e in result.ecus:
            for d in e.dtcs:
                self.dtc_event.emit(result.started + result.seconds, f"{d.sae} {e.name}")
        self.scan_finished.emit(result)

    def show_scan(self, result: ScanResult) -> None:
        self.last_scan = result
        net = self.network_table
        net.setRowCount(len(result.ecus))
        for row, e in enumerate(result.ecus):
            colour, word = STATE_COLOURS[e.state]
            net.setItem(row, 0, _item(e.name, bold=True))
            net.setItem(row, 1, _item(e.address))
            state = _item(word, colour, bold=True)
            tint = QColor(colour)
            tint.setAlpha(40)
            state.setBackground(QBrush(tint))
            net.setItem(row, 2, state)
            net.setItem(row, 3, _item(str(len(e.dtcs)) if e.responded else "–", colour if e.dtcs else None))
            net.setItem(row, 4, _item(e.description))
        rows = [(e, d) for e in result.ecus for d in e.dtcs]
        table = self.dtc_table
        table.setRowCount(len(rows))
        for row, (e, d) in enumerate(rows):
            colour = "#d1242f" if d.confirmed else "#b26a00"
            table.setItem(row, 0, _item(e.name))
            table.setItem(row, 1, _item(d.sae, colour, bold=True))
            table.setItem(row, 2, _item(d.hex))
            table.setItem(row, 3, _item(d.description or "(no description)"))
            table.setItem(row, 4, _item(d.status_text()))
            occ = d.occurrence_count()
            table.setItem(row, 5, _item("" if occ is None else str(occ)))
        self._dtc_rows = rows

    def _on_ecu_selected(self) -> None:
        row = self.network_table.currentRow()
        if self.last_scan is None or not 0 <= row < len(self.last_scan.ecus):
            return
        e = self.last_scan.ecus[row]
        self._show_details(f"{e.name} — {e.description}", self._ecu_details(e))

    def _ecu_details(self, e: EcuResult) -> list[tuple[str, str]]:
        items = [("State", STATE_COLOURS[e.state][1]), ("Address", e.address)]
        items += list(e.identification.items())
        items += [(v.name, v.text()) for v in e.live]
        items += [("Problem", p) for p in e.problems]
        return items

    def _on_dtc_selected(self) -> None:
        row = self.dtc_table.currentRow()
        rows = getattr(self, "_dtc_rows", [])
        if not 0 <= row < len(rows):
            return
        e, d = rows[row]
        self._show_details(f"{d.sae} on {e.name}: {d.description}", self._dtc_details(d))

    @staticmethod
    def _dtc_details(d: Dtc) -> list[tuple[str, str]]:
        items = [("UDS code", d.hex), ("Status", f"0x{d.status:02X}: {d.status_text()}")]
        for record, values in sorted(d.snapshots.items()):
            items += [(f"Freeze frame {record}: {v.name}", v.text()) for v in values]
        for _record, values in sorted(d.extended.items()):
            items += [(v.name, v.text()) for v in values]
        return items

    def _show_details(self, title: str, items: list[tuple[str, str]]) -> None:
        self.detail_title.setText(title)
        self.detail_table.setRowCount(len(items))
        for row, (k, v) in enumerate(items):
            self.detail_table.setItem(row, 0, _item(k))
            self.detail_table.setItem(row, 1, _item(v))

    # --- vehicle history ----------------------------------------------------------------------
    def reload_history(self, vin: str) -> None:
        """The stored scans and the timeline of the vehicle with ``vin``."""
        if self.history is None or not vin:
            return
        try:
            scans = self.history.scans(vin)
            timeline = self.history.timeline(vin)
        except WorkshopError as exc:
            self.status_label.setText(f"History not readable: {exc}")
            return
        self._scan_ids = [r.id for r in scans]
        self.scans_table.setRowCount(len(scans))
        for row, r in enumerate(scans):
            self.scans_table.setItem(row, 0, _item(str(r.id)))
            self.scans_table.setItem(row, 1, _item(f"{r.started.astimezone():%Y-%m-%d %H:%M:%S}"))
            self.scans_table.setItem(row, 2, _item(r.label.value or "–"))
            self.scans_table.setItem(row, 3, _item(str(r.dtc_count), "#d1242f" if r.dtc_count else None))
            self.scans_table.setItem(
                row, 4, _item(f"{r.mileage_km:,.0f}" if r.mileage_km is not None else "")
            )
        self.timeline_table.setRowCount(len(timeline))
        for row, e in enumerate(reversed(timeline)):  # newest first, like the scans
            self.timeline_table.setItem(row, 0, _item(f"{e.when.astimezone():%Y-%m-%d %H:%M:%S}"))
            self.timeline_table.setItem(row, 1, _item(e.text))

    def _on_scan_row_activated(self, row: int, _column: int) -> None:
        if self.history is None or not 0 <= row < len(self._scan_ids):
            return
        try:
            result = self.history.scan(self._scan_ids[row])
        except WorkshopError as exc:
            self.status_label.setText(str(exc))
            return
        self.before_clear = None
        self.show_scan(result)
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(result.started))
        label = f" ({result.label.value})" if result.label.value else ""
        self.status_label.setText(
            f"Stored scan {result.scan_id} of {when}{label}: {result.dtc_count} fault codes"
        )

    # --- clear --------------------------------------------------------------------------------
    def _on_clear_clicked(self) -> None:
        name = self.clear_combo.currentData()
        what = f"the {name}" if name else "all ECUs"
        answer = QMessageBox.question(
            self,
            "Clear fault codes",
            f"Clear the stored fault codes of {what}?\n\nThe current codes are scanned first and "
            "kept in the history (pre-repair); a new scan follows the clear (post-repair).",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.clear([name] if name else None)

    def clear(self, names: list[str] | None = None) -> bool:
        """Scan (pre-repair), clear, scan again (post-repair); all on the worker thread."""
        if self._busy:
            return False
        diag = self._linked_diag()
        if diag is None or not self._claim_car("a fault-code clear"):
            return False
        self._set_busy(True, "Reading the fault codes before clearing…")

        def job() -> tuple[ScanResult, list[ClearOutcome], ScanResult]:
            before = diag.scanner().scan(label=ScanLabel.PRE_REPAIR)
            targets = names or [e.name for e in before.ecus if e.responded and e.expected]
            outcomes = diag.scanner().clear(targets)
            time.sleep(0.3)
            after = diag.scanner().scan(label=ScanLabel.POST_REPAIR)
            return before, outcomes, after

        self._when_done(diag.submit(job), self._on_clear_done)
        return True

    def _on_clear_done(self, future: Future[tuple[ScanResult, list[ClearOutcome], ScanResult]]) -> None:
        self._set_busy(False)
        try:
            before, outcomes, after = future.result()
        except Exception as exc:
            self.status_label.setText(f"Clearing failed: {exc}")
            return
        if self.history is not None:
            try:
                self.history.add_scan(before)
                self.history.add_clears(outcomes, vin=before.vin)
                self.history.add_scan(after)
            except WorkshopError as exc:
                self.status_label.setText(f"Not stored in the history: {exc}")
        self.before_clear = before
        self.show_scan(after)
        self.reload_history(after.vin)
        cmp = compare_scans(before, after)
        failed = [o for o in outcomes if not o.done]
        text = f"Cleared: {len(cmp.gone)} codes gone, {len(cmp.still)} still present, {len(cmp.new)} new."
        if failed:
            text += " Not cleared: " + "; ".join(o.detail for o in failed)
        self.status_label.setText(text)
        self.clear_finished.emit(outcomes)

    # --- report -------------------------------------------------------------------------------
    def _on_report_clicked(self) -> None:
        if self.last_scan is None:
            self.status_label.setText("Scan the vehicle first")
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Customer report", "report.pdf", "PDF (*.pdf);;HTML (*.html)"
        )
        if path:
            self.write_report(Path(path))

    def write_report(self, path: Path) -> Path:
        from workshop_app.core.diag.report import report_html

        assert self.last_scan is not None
        if self.before_clear is not None:
            html = report_html(self.before_clear, after=self.last_scan)
        else:
            html = report_html(self.last_scan)
        if path.suffix.lower() == ".html":
            path.write_text(html, encoding="utf-8")
        else:
            from workshop_app.report_pdf import write_report_pdf

            write_report_pdf(html, path)
        self.status_label.setText(f"Report written to {path}")
        return path

    # --- simulated faults ---------------------------------------------------------------------
    def _on_inject_clicked(self) -> None:
        vehicle = getattr(self.session.source, "vehicle", None)
        if vehicle is not None:
            vehicle.inject_fault(self.fault_combo.currentData())
            self.status_label.setText(f"Fault injected: {self.fault_combo.currentText()}")

    def _on_park_toggled(self, parked: bool) -> None:
        vehicle = getattr(self.session.source, "vehicle", None)
        if vehicle is not None:
            vehicle.park(parked)
            self.status_label.setText(
                "Parking: the car stops and its engine goes off (key on)" if parked else "Driving on"
            )

    def _on_repair_clicked(self) -> None:
        vehicle = getattr(self.session.source, "vehicle", None)
        if vehicle is not None:
            vehicle.clear_faults()
            self.status_label.setText("Simulated faults removed (stored codes stay until cleared)")

    # --- triggers -----------------------------------------------------------------------------
    def _on_arm_toggled(self, armed: bool) -> None:
        if armed:
            try:
                self.arm()
            except (ValueError, WorkshopError) as exc:
                self.trigger_label.setText(str(exc))
                self.arm_button.setChecked(False)
        else:
            self.disarm()

    def arm(self) -> None:
        folder = default_recordings_dir() / "triggers"
        capture = TriggerCapture(
            folder,
            pre_seconds=self.pre_spin.value(),
            post_seconds=self.post_spin.value(),
            on_saved=self._on_trigger_saved,
        )
        text = self.signal_edit.text().strip()
        if text:
            message_name, _, signal = text.partition(".")
            message = next(
                (
                    m
                    for loaded in self.session.databases.databases
                    for m in loaded.db.messages
                    if m.name == message_name
                ),
                None,
            )
            if message is None:
                raise ValueError(f"no message {message_name!r} in the loaded databases")
            capture.add_signal_trigger(
                SignalTrigger(message, signal, self.op_combo.currentText(), self.limit_spin.value())
            )
        if not text and not self.watch_check.isChecked():
            raise ValueError("choose a signal limit or 'when a fault code appears'")
        self.trigger = capture
        if self.watch_check.isChecked():
            self._watcher = None
            self.watch_timer.start()
            self._poll_watch()
        self.trigger_label.setText("Armed: waiting for the trigger…")

    def disarm(self) -> None:
        self.watch_timer.stop()
        if self.trigger is not None:
            self.trigger.finish_now()
        self.trigger = None
        self.trigger_label.setText("")

    def feed(self, frames: list[Any]) -> None:
        """Every captured batch (the window's tick) goes through the trigger buffer."""
        if self.trigger is not None and frames:
            self.trigger.feed(frames)

    def _poll_watch(self) -> None:
        if self._watch_future is not None and not self._watch_future.done():
            return
        try:
            diag = self.diag()
            bus, notifier = diag.link()
        except (DiagError, WorkshopError):
            return
        if self._watcher is None:
            self._watcher = DtcWatcher(
                bus, notifier, list(self.spec.ecus), manufacturer=self.spec.manufacturer
            )
        watcher = self._watcher
        self._watch_future = diag.submit(watcher.poll)
        self._when_done(self._watch_future, self._on_watch_done)

    def _on_watch_done(self, future: Future[list[DtcEvent]]) -> None:
        try:
            events = future.result()
        except Exception:
            return
        for ev in events:
            text = f"{ev.dtc.sae} {ev.kind} on {ev.ecu}"
            self.dtc_event.emit(ev.time, text)
            if self.history is not None:
                vin = self.last_scan.vin if self.last_scan else None
                try:
                    self.history.add_dtc_event(
                        ev.ecu, ev.dtc.code, ev.kind, status=ev.dtc.status, time=ev.time, vin=vin or None
                    )
                except WorkshopError as exc:
                    self.trigger_label.setText(f"Fault event not stored in the history: {exc}")
            if ev.kind == "appeared" and self.trigger is not None:
                self.trigger.fire(f"fault code {ev.dtc.sae} appeared on {ev.ecu}")
                self.trigger_label.setText(f"Triggered: {text}; saving the recording…")

    def _on_trigger_saved(self, event: TriggerEvent) -> None:
        summary = event.summary
        note = ""
        if self.history is not None and summary is not None:
            try:
                vid = None
                vin = self.last_scan.vin if self.last_scan else ""
                vehicle = self.history.find_vehicle(vin) if vin else None
                vid = vehicle.id if vehicle else None
                self.history.index_recording(
                    summary, self.session.source.describe(), vid, notes=f"trigger: {event.reason}"
                )
            except WorkshopError as exc:
                note = f" (not indexed in the history: {exc})"
        frames = summary.frames_written if summary else 0
        self.trigger_label.setText(f"Saved {event.path} ({frames} frames): {event.reason}{note}")
        self.trigger = None
        self.arm_button.setChecked(False)
        self.trigger_saved.emit(event)
