"""Vehicle → Software update…: choose a package, see every check and the plan, flash, see the audit.

Four pages on one dialog: package → checks and plan → progress → result. The widgets only show
what ``core/update/campaign.py`` returns; reading the car, verifying and flashing run off the GUI
thread through ``gui/workers.run_job``, each as one job (``prepare`` then ``run``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import can
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workshop_app.core.diag.activity import CAR_ACTIVITY
from workshop_app.core.diag.ecu_spec import VehicleSpec
from workshop_app.core.errors import WorkshopError
from workshop_app.core.history.audit import AuditTrail
from workshop_app.core.history.location import default_history_path
from workshop_app.core.jobs import CancelToken, JobProgress, ProgressFn, phase_done_total
from workshop_app.core.update.campaign import CampaignOutcome, Plan, RateMeter, UpdateCampaign
from workshop_app.core.update.journal import FlashJournal, JournalEntry
from workshop_app.core.update.verify import TrustStore
from workshop_app.gui.workers import JobHandle, run_job

Link = Callable[[], tuple[can.BusABC, can.Notifier]]  # raises WorkshopError when not connected

# What a verified plan has passed (core/update/verify.py checks each before it answers ok).
CHECKS = (
    "image repository: root, timestamp, snapshot and targets signed by enough trusted keys, not expired, "
    "not older than before",
    "director repository (this VIN): the same, and it assigns these images",
    "director and image repository name the same bytes (length and SHA-256)",
    "every image downloaded within its signed length and matching its SHA-256",
    "hardware number read from each ECU is allowed by its image",
    "bootloader version read from each ECU is new enough",
    "release counter not lower than the ECU's or this workshop's record (or a signed downgrade)",
    "dependencies on other ECUs' versions met",
)
PAGE_PACKAGE, PAGE_PLAN, PAGE_PROGRESS, PAGE_RESULT = range(4)


def _table(headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


def _fill(table: QTableWidget, rows: list[list[str]]) -> None:
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            table.setItem(r, c, QTableWidgetItem(text))


class UpdateWizard(QDialog):
    """One software update of the connected car. ``link`` gives the connection's bus and notifier."""

    def __init__(
        self,
        link: Link,
        spec: VehicleSpec,
        history: Path | None = None,
        *,
        store: TrustStore | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("UpdateWizard")
        self.setWindowTitle("Software update")
        self.resize(900, 560)
        self._link = link
        self._spec = spec
        self._history = history
        self._store = store
        self.campaign: UpdateCampaign | None = None
        self.plan: Plan | None = None
        self.outcome: CampaignOutcome | None = None
        self.worker: JobHandle | None = None  # the verify or flash job while it runs
        self._meter = RateMeter()

        self.pages = QStackedWidget()
        self.pages.addWidget(self._package_page())
        self.pages.addWidget(self._plan_page())
        self.pages.addWidget(self._progress_page())
        self.pages.addWidget(self._result_page())
        layout = QVBoxLayout(self)
        layout.addWidget(self.pages)
        self.interrupted = self._offer_unfinished()  # flashes whose process died, audited now

    # --- pages -------------------------------------------------------------------------------
    def _package_page(self) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        lay.addWidget(QLabel("<b>1. Choose the update package</b> (a folder, an archive, or an http(s) URL)"))
        row = QHBoxLayout()
        self.package_edit = QLineEdit()
        self.package_edit.setPlaceholderText("/media/usb/ecm-update.tar.gz  or  https://updates.example/pkg/")
        row.addWidget(self.package_edit, 1)
        self.folder_button = QPushButton("Folder…")
        self.folder_button.clicked.connect(self._on_choose_folder)
        self.archive_button = QPushButton("Archive…")
        self.archive_button.clicked.connect(self._on_choose_archive)
        row.addWidget(self.folder_button)
        row.addWidget(self.archive_button)
        lay.addLayout(row)
        lay.addWidget(
            QLabel(
                "The car's ECUs are read over UDS (VIN, hardware, bootloader, software, release counter) "
                "and the package is verified for them. Nothing is programmed before you confirm."
            )
        )
        self.verify_status = QLabel()
        self.verify_status.setWordWrap(True)
        lay.addWidget(self.verify_status)
        lay.addStretch(1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.verify_button = QPushButton("Read car and verify")
        self.verify_button.setDefault(True)
        self.verify_button.clicked.connect(self.start_verify)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        buttons.addWidget(self.verify_button)
        buttons.addWidget(close)
        lay.addLayout(buttons)
        return page

    def _plan_page(self) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        self.plan_title = QLabel()
        lay.addWidget(self.plan_title)
        lay.addWidget(QLabel("What the car reported:"))
        self.car_table = _table(["ECU", "Hardware", "Bootloader", "Software", "Release", "Application"])
        lay.addWidget(self.car_table, 2)
        self.checks_label = QLabel("Verification:")
        lay.addWidget(self.checks_label)
        self.checks_table = _table(["Result", "Check or reason", "Where"])
        lay.addWidget(self.checks_table, 3)
        lay.addWidget(QLabel("What changes:"))
        self.plan_table = _table(["ECU", "From", "To", "Release", "Bytes", "Image SHA-256"])
        lay.addWidget(self.plan_table, 2)
        self.plan_status = QLabel()
        self.plan_status.setWordWrap(True)
        lay.addWidget(self.plan_status)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        back = QPushButton("Back")
        back.clicked.connect(lambda: self.pages.setCurrentIndex(PAGE_PACKAGE))
        self.flash_button = QPushButton("Flash")
        self.flash_button.clicked.connect(self.start_flash)
        buttons.addWidget(back)
        buttons.addWidget(self.flash_button)
        lay.addLayout(buttons)
        return page

    def _progress_page(self) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        lay.addWidget(
            QLabel("<b>Flashing.</b> Keep the car connected and powered; Cancel stops at a safe point.")
        )
        self.phase_label = QLabel()
        lay.addWidget(self.phase_label)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        lay.addWidget(self.progress)
        self.rate_label = QLabel()
        lay.addWidget(self.rate_label)
        lay.addStretch(1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_flash)
        buttons.addWidget(self.cancel_button)
        lay.addLayout(buttons)
        return page

    def _result_page(self) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        self.result_label = QLabel()
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.result_label)
        lay.addWidget(QLabel("Audit trail entries of this update:"))
        self.audit_table = _table(["#", "Time", "ECU", "Result", "From → to", "Image SHA-256", "Row hash"])
        lay.addWidget(self.audit_table, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        done = QPushButton("Close")
        done.clicked.connect(self.accept)
        buttons.addWidget(done)
        lay.addLayout(buttons)
        return page

    # --- package -----------------------------------------------------------------------------
    def _on_choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Update package folder")
        if path:
            self.package_edit.setText(path)

    def _on_choose_archive(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Update package archive", "", "Packages (*.tar *.tar.gz *.tgz *.zip);;All files (*)"
        )
        if path:
            self.package_edit.setText(path)

    def _offer_unfinished(self) -> list[JournalEntry]:
        """Audit flashes whose process died; offer the newest unfinished one from a package.

        Verifying that package again and flashing resumes it (the workflow finds the journal
        entry of the same image); choosing another package restarts instead.
        """
        db = self._history or default_history_path()
        if not db.is_file():
            return []
        try:
            with FlashJournal(db) as journal, AuditTrail(db) as audit:
                found = journal.record_interrupted(audit)
                unfinished = [e for e in journal.open_entries() if e.package_source]
        except WorkshopError as exc:
            self.verify_status.setText(f"The flash journal could not be read: {exc}")
            return []
        if unfinished:
            e = unfinished[0]
            how = "the tool was stopped" if e.result == "interrupted" else e.result or "still open"
            self.package_edit.setText(e.package_source or "")
            self.verify_status.setText(
                f"An unfinished flash of {e.ecu} on {e.vin} from this package ({how}; {e.bytes_done:,} of "
                f"{e.total_bytes:,} bytes, journal entry {e.id}). Read car and verify checks the package "
                "again; Flash then resumes from the last acknowledged block. Choose another package to "
                "restart instead."
            )
        return found

    def start_verify(self) -> None:
        package = self.package_edit.text().strip()
        if not package:
            self.verify_status.setText("Choose a package first.")
            return
        if self.worker is not None:
            return
        try:
            bus, notifier = self._link()
        except Exception as exc:
            self.verify_status.setText(f"Not connected to a car: {exc}")
            return
        self.campaign = UpdateCampaign(
            bus, notifier, package, spec=self._spec, store=self._store, history=self._history
        )
        campaign = self.campaign
        self.verify_button.setEnabled(False)
        self.verify_status.setText("Reading the car and verifying the package…")
        self._start(_verify, campaign, self._on_verified)

    def _on_verified(self, plan: object) -> None:
        assert isinstance(plan, Plan)
        self.plan = plan
        self.verify_button.setEnabled(True)
        self.verify_status.clear()
        reading = plan.reading
        self.plan_title.setText(f"<b>2. Package {plan.package}</b> for car {reading.vin}")
        _fill(
            self.car_table,
            [
                [
                    e.name,
                    e.hardware,
                    e.bootloader,
                    e.software_version,
                    str(e.release_counter),
                    _valid(e.app_valid),
                ]
                if not e.error
                else [e.name, "", "", "", "", f"not read: {e.error}"]
                for e in reading.ecus
            ],
        )
        if plan.ok:
            self.checks_label.setText("Verification: <b>passed</b>")
            _fill(self.checks_table, [["passed", check, ""] for check in CHECKS])
        else:
            self.checks_label.setText(
                f"Verification: <b>REFUSED</b> ({len(plan.refusals)} reason(s)); nothing will be flashed"
            )
            _fill(self.checks_table, [[f"refused: {r.code}", r.message, r.where] for r in plan.refusals])
        _fill(
            self.plan_table,
            [
                [
                    s.ecu,
                    s.from_version,
                    s.to_version,
                    f"{s.from_counter} → {s.to_counter}"
                    + (" (downgrade granted)" if s.downgrade_granted else ""),
                    f"{s.size:,}",
                    s.target_hash,
                ]
                for s in plan.steps
            ],
        )
        self.flash_button.setEnabled(plan.ok)
        self.flash_button.setToolTip("" if plan.ok else "The package was refused: see the reasons above")
        self.pages.setCurrentIndex(PAGE_PLAN)

    # --- flash -------------------------------------------------------------------------------
    def start_flash(self) -> None:
        if self.plan is None or not self.plan.ok or self.campaign is None or self.worker is not None:
            return
        scans = [what for kind, what in CAR_ACTIVITY.current() if kind == "scan"]
        if scans:  # the workflow refuses too; saying it here keeps the plan on screen
            self.plan_status.setText(
                f"Not now: {scans[0]} is running; the flash must wait for it to finish. Flash again then."
            )
            return
        self.plan_status.clear()
        campaign = self.campaign
        self._meter = RateMeter()
        self.progress.setValue(0)
        self.phase_label.setText("starting…")
        self.rate_label.clear()
        self.cancel_button.setEnabled(True)
        self.pages.setCurrentIndex(PAGE_PROGRESS)
        self._start(_update, campaign, self._on_flashed)

    def cancel_flash(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.cancel_button.setEnabled(False)
            self.phase_label.setText("cancelling at the next safe point…")

    def _on_progress(self, progress: JobProgress) -> None:
        phase, done, total = progress.phase, progress.done, progress.total
        self._meter.update(done, total)
        if self.worker is not None and self.worker.cancelled:
            return  # keep saying that the cancel is under way
        self.phase_label.setText(phase)
        if total:
            self.progress.setValue(int(1000 * done / total))
            self.rate_label.setText(self._meter.text(done, total))

    def _on_flashed(self, outcome: object) -> None:
        assert isinstance(outcome, CampaignOutcome)
        self.outcome = outcome
        words = {
            "success": "Update finished: every ECU flashed and confirmed.",
            "cancelled": "Cancelled. The ECU waits in its bootloader; install the same package again to "
            "finish (it resumes from the last acknowledged block), or run `workshop update resume`.",
            "failed": "The update FAILED.",
            "refused": "Refused: nothing was flashed.",
        }
        lines = [f"<b>{words.get(outcome.result, outcome.result)}</b>"]
        for f in outcome.flashes:
            lines.append(
                f"{f.ecu}: {f.result}, {f.from_version or '?'} → {f.to_version}, "
                f"{f.bytes_sent:,} of {f.total_bytes:,} bytes in {f.seconds:.1f} s"
            )
        if outcome.error:
            lines.append(outcome.error)
        self.result_label.setText("<br>".join(lines))
        _fill(
            self.audit_table,
            [
                [
                    str(r.id),
                    r.entry.time,
                    r.entry.ecu,
                    r.entry.result,
                    f"{r.entry.from_version} → {r.entry.to_version}",
                    r.entry.target_hash,
                    r.row_hash,
                ]
                for r in outcome.audit
            ],
        )
        self.pages.setCurrentIndex(PAGE_RESULT)

    # --- jobs --------------------------------------------------------------------------------
    def _start(
        self,
        job: Callable[..., object],
        campaign: UpdateCampaign,
        done: Callable[[object], None],
    ) -> None:
        handle = run_job(self, job, campaign)
        handle.progressed.connect(self._on_progress)
        handle.finished.connect(lambda result: self._ended(done, result))
        handle.failed.connect(self._on_failed)
        self.worker = handle

    def _ended(self, done: Callable[[object], None], result: object) -> None:
        self.worker = None
        done(result)

    def _on_failed(self, message: str) -> None:
        self.worker = None
        self.verify_button.setEnabled(True)
        if self.pages.currentIndex() == PAGE_PACKAGE:
            self.verify_status.setText(message)
        else:
            self.result_label.setText(f"<b>The update stopped:</b> {message}")
            self.pages.setCurrentIndex(PAGE_RESULT)

    def reject(self) -> None:
        if self.worker is not None:  # never close on a running flash: cancel it first
            self.cancel_flash()
            return
        super().reject()


def _verify(campaign: UpdateCampaign, *, progress: ProgressFn, cancel: CancelToken) -> Plan:
    """Read the car and verify the package (one answer: the plan; it takes no cancel)."""
    return campaign.prepare()


def _update(campaign: UpdateCampaign, *, progress: ProgressFn, cancel: CancelToken) -> CampaignOutcome:
    """Flash the verified plan; the campaign stops at its next safe point once cancelled."""
    return campaign.run(phase_done_total(progress), cancel.event)


def _valid(value: bool | None) -> str:
    return {True: "valid", False: "INVALID (in its bootloader)", None: "?"}[value]
