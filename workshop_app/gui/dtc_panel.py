"""DtcPanel: scan the car, see the network and its fault codes, clear, report, catch intermittents.

A thin client of the core's diagnostic jobs (``core/diag/jobs.py``): scanning and storing,
clearing with the scans around it, watching and the triggered capture are ``DiagJobs`` calls,
run off the GUI thread through ``gui/workers.run_job`` — the same jobs ``workshop dtc`` runs.
The panel only asks, shows and keeps the car claimed against a flash while a job runs.

Parts: the tables (``dtc_tables``), the vehicle history tab (``dtc_history_view``) and the
intermittent-fault box (``dtc_trigger_box``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workshop_app.core.capture.trigger import TriggerCapture
from workshop_app.core.diag.activity import CAR_ACTIVITY, CarBusyError
from workshop_app.core.diag.dtc import Dtc
from workshop_app.core.diag.ecu_spec import VehicleSpec
from workshop_app.core.diag.jobs import ClearReport, DiagJobs, NotStored
from workshop_app.core.diag.model import EcuResult, EcuState, ScanLabel, ScanResult
from workshop_app.core.errors import WorkshopError
from workshop_app.core.history import HistoryStore
from workshop_app.core.jobs import JobProgress
from workshop_app.core.sim.faults import available_faults
from workshop_app.core.types import Frame
from workshop_app.gui import dtc_tables as tables
from workshop_app.gui.dtc_history_view import VehicleHistoryView
from workshop_app.gui.dtc_trigger_box import TriggerBox
from workshop_app.gui.workers import JobHandle, run_job

_CLOSE_WAIT_S = 30.0  # a UDS call in progress ends within its timeouts


class DtcPanel(QWidget):
    scan_finished = Signal(object)  # ScanResult
    clear_finished = Signal(object)  # list[ClearOutcome]
    dtc_event = Signal(float, str)  # (unix time, text) for plot markers
    trigger_saved = Signal(object)  # TriggerEvent

    def __init__(
        self,
        session: Any,
        spec: VehicleSpec,
        history: HistoryStore | None = None,
        parent: QWidget | None = None,
    ) -> None:
        """``session``: the ``WorkshopSession`` (its ``diagnostics`` are used, fed by the core)
        or a ``CaptureSession`` (the panel makes its jobs; the window passes batches to ``feed``)."""
        super().__init__(parent)
        self.spec = spec
        self.history = history
        diagnostics = getattr(session, "diagnostics", None)
        self._fed_here = diagnostics is None
        self.jobs: DiagJobs = diagnostics if diagnostics is not None else DiagJobs(session, spec, history)
        self.last_scan: ScanResult | None = None
        self.before_clear: ScanResult | None = None
        self._busy = False
        self._car_token: int | None = None  # held in CAR_ACTIVITY while a scan or clear runs
        self._job: JobHandle | None = None
        self._dtc_rows: list[tuple[EcuResult, Dtc]] = []

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

        self.network_table = tables.make_table(tables.NETWORK_COLUMNS)
        self.network_table.itemSelectionChanged.connect(self._on_ecu_selected)
        self.dtc_table = tables.make_table(tables.DTC_COLUMNS)
        self.dtc_table.itemSelectionChanged.connect(self._on_dtc_selected)
        self.detail_table = tables.make_table(("Item", "Value"))
        self.detail_title = QLabel("Select an ECU or a fault code")
        self.side_tabs = QTabWidget()
        self.history_view = VehicleHistoryView(history)
        self.history_view.scan_opened.connect(self._on_stored_scan_opened)
        self.history_view.problem.connect(self.status_label.setText)
        self.scans_table = self.history_view.scans_table
        self.timeline_table = self.history_view.timeline_table

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

        databases = session.databases
        self.trigger_box = TriggerBox(self.jobs, databases)
        self.trigger_box.dtc_event.connect(self.dtc_event)
        self.trigger_box.trigger_saved.connect(self.trigger_saved)
        tb = self.trigger_box  # the box's controls, as the tests and the window know them
        self.watch_check, self.signal_edit, self.op_combo = tb.watch_check, tb.signal_edit, tb.op_combo
        self.limit_spin, self.pre_spin, self.post_spin = tb.limit_spin, tb.pre_spin, tb.post_spin
        self.arm_button, self.trigger_label = tb.arm_button, tb.trigger_label

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
        self.side_tabs.addTab(details, "Details")
        self.side_tabs.addTab(self.history_view, "Vehicle history")
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
        rv.addWidget(self.trigger_box)

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
    @property
    def busy(self) -> bool:
        return self._busy

    @property
    def trigger(self) -> TriggerCapture | None:
        """The armed trigger, if any."""
        return self.trigger_box.trigger

    def feed(self, frames: list[Frame]) -> None:
        """A captured batch, when the window hands them over (jobs made on a CaptureSession);
        a WorkshopSession's jobs are fed by the session itself."""
        if self._fed_here:
            self.jobs.feed(frames)

    def _ready(self, what: str) -> bool:
        """Claim the car for a scan or clear; False, with the reason shown, when it cannot run
        (no live connection, or a flash runs). Claimed here, on the GUI thread, so a flash
        asked for right after the click is refused at once."""
        try:
            self.jobs.diag().link()
            self._car_token = CAR_ACTIVITY.begin("scan", what)
        except (CarBusyError, WorkshopError) as exc:
            self.status_label.setText(str(exc))
            return False
        return True

    def _set_busy(self, busy: bool, text: str = "") -> None:
        self._busy = busy
        if not busy:
            self._job = None
            if self._car_token is not None:
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
        vehicle = getattr(self.jobs.source, "vehicle", None)
        self.sim_box.setVisible(vehicle is not None)
        if vehicle is not None:
            self.park_check.blockSignals(True)
            self.park_check.setChecked(vehicle.parked)
            self.park_check.blockSignals(False)

    def close_diag(self) -> None:
        """Stop the running jobs and wait for their threads (the window is closing)."""
        self.trigger_box.close_job(_CLOSE_WAIT_S)
        job, self._job = self._job, None
        if job is not None:
            job.cancel("closing")
            job.wait(_CLOSE_WAIT_S)
        self.jobs.close()

    # --- scan ---------------------------------------------------------------------------------
    def start_scan(self, label: ScanLabel | None = None) -> bool:
        if self._busy:
            return False
        chosen = label if label is not None else self.label_combo.currentData()
        if not self._ready("a fault-code scan"):
            return False
        self._set_busy(True, "Scanning…")
        self.progress.setValue(0)
        job = run_job(self, self.jobs.scan_and_store, None, chosen, car_claimed=True)
        job.progressed.connect(self._on_scan_progress)
        job.finished.connect(self._on_scanned)
        job.failed.connect(lambda text: self._on_scan_failed(job, text))
        self._job = job
        return True

    def _on_scan_progress(self, p: JobProgress) -> None:
        self.progress.setValue(int((p.fraction or 0.0) * 100))
        self.status_label.setText(f"Scanning: {p.phase}")

    def _on_scan_failed(self, job: JobHandle, text: str) -> None:
        self._set_busy(False)
        if isinstance(job.error, NotStored):  # scanned, but the history refused it
            self._show_scanned(job.error.result, f" Not stored in the history: {job.error}")
        else:  # a scan that failed as a whole (connection lost, a flash started)
            self.status_label.setText(f"Scan failed: {text}")

    def _on_scanned(self, result: ScanResult) -> None:
        self._set_busy(False)
        note = ""
        if self.history is not None and result.scan_id is not None:
            try:
                cmp = self.history.compare_with_previous(result.scan_id)
            except WorkshopError:
                cmp = None
            if cmp is not None:
                note = (
                    f" Since the previous scan: {len(cmp.new)} new, {len(cmp.gone)} gone, "
                    f"{len(cmp.still)} still present."
                )
        self._show_scanned(result, note)

    def _show_scanned(self, result: ScanResult, note: str) -> None:
        self.show_scan(result)
        self.history_view.reload(result.vin)
        self.progress.setValue(100)
        faulty = sum(1 for e in result.ecus if e.state is EcuState.FAULTS)
        warning = (
            f" Warning: not a valid VIN: {'; '.join(result.vin_warnings)}." if result.vin_warnings else ""
        )
        self.status_label.setText(
            f"{len(result.ecus)} ECUs, {faulty} with faults, {result.dtc_count} fault codes "
            f"(VIN {result.vin or '?'}, {result.seconds:.1f} s).{note}{warning}"
        )
        for e in result.ecus:
            for d in e.dtcs:
                self.dtc_event.emit(result.started + result.seconds, f"{d.sae} {e.name}")
        self.scan_finished.emit(result)

    def show_scan(self, result: ScanResult) -> None:
        self.last_scan = result
        tables.fill_network(self.network_table, result)
        self._dtc_rows = tables.fill_codes(self.dtc_table, result)

    def _on_ecu_selected(self) -> None:
        row = self.network_table.currentRow()
        if self.last_scan is None or not 0 <= row < len(self.last_scan.ecus):
            return
        e = self.last_scan.ecus[row]
        self._show_details(f"{e.name} — {e.description}", tables.ecu_details(e))

    def _on_dtc_selected(self) -> None:
        row = self.dtc_table.currentRow()
        if not 0 <= row < len(self._dtc_rows):
            return
        e, d = self._dtc_rows[row]
        self._show_details(f"{d.sae} on {e.name}: {d.description}", tables.dtc_details(d))

    def _show_details(self, title: str, items: list[tuple[str, str]]) -> None:
        self.detail_title.setText(title)
        tables.fill_details(self.detail_table, items)

    # --- vehicle history ----------------------------------------------------------------------
    def reload_history(self, vin: str) -> None:
        """The stored scans and the timeline of the vehicle with ``vin``."""
        self.history_view.reload(vin)

    def _on_stored_scan_opened(self, result: ScanResult) -> None:
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
        """Scan (pre-repair), clear, scan again (post-repair): one core job, off the GUI thread."""
        if self._busy or not self._ready("a fault-code clear"):
            return False
        self._set_busy(True, "Reading the fault codes before clearing…")
        job = run_job(self, self.jobs.clear_with_scans, names, car_claimed=True)
        job.progressed.connect(lambda p: self.status_label.setText(p.phase[:1].upper() + p.phase[1:]))
        job.finished.connect(self._on_cleared)
        job.failed.connect(lambda text: self._set_busy(False, f"Clearing failed: {text}"))
        self._job = job
        return True

    def _on_cleared(self, report: ClearReport) -> None:
        self._set_busy(False)
        self.before_clear = report.before
        self.show_scan(report.after)
        self.history_view.reload(report.after.vin)
        cmp = report.comparison
        failed = [o for o in report.outcomes if not o.done]
        text = f"Cleared: {len(cmp.gone)} codes gone, {len(cmp.still)} still present, {len(cmp.new)} new."
        if failed:
            text += " Not cleared: " + "; ".join(o.detail for o in failed)
        if report.history_problems:
            text += " Not stored in the history: " + "; ".join(report.history_problems)
        self.status_label.setText(text)
        self.clear_finished.emit(report.outcomes)

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
        vehicle = getattr(self.jobs.source, "vehicle", None)
        if vehicle is not None:
            vehicle.inject_fault(self.fault_combo.currentData())
            self.status_label.setText(f"Fault injected: {self.fault_combo.currentText()}")

    def _on_park_toggled(self, parked: bool) -> None:
        vehicle = getattr(self.jobs.source, "vehicle", None)
        if vehicle is not None:
            vehicle.park(parked)
            self.status_label.setText(
                "Parking: the car stops and its engine goes off (key on)" if parked else "Driving on"
            )

    def _on_repair_clicked(self) -> None:
        vehicle = getattr(self.jobs.source, "vehicle", None)
        if vehicle is not None:
            vehicle.clear_faults()
            self.status_label.setText("Simulated faults removed (stored codes stay until cleared)")
