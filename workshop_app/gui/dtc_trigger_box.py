"""The Fault codes dock's "Catch an intermittent fault" box: a thin client of the core's
triggered capture (``DiagJobs.triggered_capture``), run through ``gui/workers.run_job``.

The job keeps the pre-trigger buffer (fed by the core with every captured batch), watches the
fault memories when asked, saves the recording and indexes it in the history; this box only
collects the settings and shows what the job reports. ``workshop dtc watch`` runs the same job.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workshop_app.core.capture.trigger import TriggerCapture, TriggerEvent, parse_signal_trigger
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.diag.jobs import DiagJobs
from workshop_app.core.diag.watch import DtcEvent
from workshop_app.core.history import default_recordings_dir
from workshop_app.core.jobs import JobProgress
from workshop_app.gui.workers import JobHandle, run_job

WATCH_SECONDS = 3.0  # between two reads of the fault memories


class TriggerBox(QGroupBox):
    trigger_saved = Signal(object)  # TriggerEvent
    dtc_event = Signal(float, str)  # (unix time, text) for plot markers
    _watched = Signal(object)  # DtcEvent, from the job's thread (queued to this one)

    def __init__(self, jobs: DiagJobs, databases: DatabaseSet, parent: QWidget | None = None) -> None:
        super().__init__("Catch an intermittent fault: save a recording", parent)
        self.jobs = jobs
        self.databases = databases
        self.watch_seconds = WATCH_SECONDS
        self.trigger: TriggerCapture | None = None
        self._handle: JobHandle | None = None
        self._watched.connect(self._on_watched, Qt.ConnectionType.QueuedConnection)

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

        tv = QVBoxLayout(self)
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

    def _on_arm_toggled(self, armed: bool) -> None:
        if armed:
            try:
                self.arm()
            except ValueError as exc:
                self.trigger_label.setText(str(exc))
                self._uncheck()
        else:
            self.disarm()

    def arm(self) -> None:
        """Start the triggered capture job with the box's settings (ValueError: what is wrong)."""
        capture = TriggerCapture(
            default_recordings_dir() / "triggers",
            pre_seconds=self.pre_spin.value(),
            post_seconds=self.post_spin.value(),
        )
        text = self.signal_edit.text().strip()
        if text:
            messages = [m for loaded in self.databases.databases for m in loaded.db.messages]
            limit = self.limit_spin.value()
            capture.add_signal_trigger(
                parse_signal_trigger(f"{text}{self.op_combo.currentText()}{limit!r}", messages)
            )
        watch = self.watch_check.isChecked()
        if not text and not watch:
            raise ValueError("choose a signal limit or 'when a fault code appears'")
        self.trigger = capture
        handle = run_job(
            self,
            self.jobs.triggered_capture,
            capture,
            watch_interval=self.watch_seconds if watch else None,
            on_new_fault=self._watched.emit,
            on_cleared=self._watched.emit,
        )
        handle.progressed.connect(self._on_progress)
        handle.finished.connect(self._on_finished)
        handle.failed.connect(self._on_failed)
        self._handle = handle
        self.arm_button.setText("Disarm")
        self.trigger_label.setText("Armed: waiting for the trigger…")

    def disarm(self) -> None:
        """Stop the job; a recording under way is saved with what it has."""
        if self._handle is not None:
            self._handle.cancel("disarmed")
        self.trigger_label.setText("")

    def close_job(self, timeout: float = 30.0) -> None:
        """Stop the job and wait for its thread (the window is closing)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.cancel("closing")
            handle.wait(timeout)
        self.trigger = None

    @property
    def running(self) -> bool:
        return self._handle is not None

    def _on_progress(self, p: JobProgress) -> None:
        if p.phase.startswith("armed: "):
            self.trigger_label.setText(f"Armed: waiting for {p.phase.removeprefix('armed: ')}…")
        elif p.phase.startswith("triggered"):
            self.trigger_label.setText(f"Triggered: {p.phase.removeprefix('triggered: ')}…")
        elif p.phase == "stored fault codes read":
            self.trigger_label.setText("Armed: stored fault codes read, watching for new ones…")
        else:
            self.trigger_label.setText(f"Armed: {p.phase}")

    def _on_watched(self, event: DtcEvent) -> None:
        text = f"{event.dtc.sae} {event.kind} on {event.ecu}"
        self.dtc_event.emit(event.time, text)
        if event.kind == "appeared" and self.watch_check.isChecked():
            self.trigger_label.setText(f"Triggered: {text}; saving the recording…")

    def _on_finished(self, event: TriggerEvent | None) -> None:
        self._handle = None
        self.trigger = None
        self._uncheck()
        if event is None:
            self.trigger_label.setText("")
            return
        frames = event.summary.frames_written if event.summary else 0
        self.trigger_label.setText(f"Saved {event.path} ({frames} frames): {event.reason}")
        self.trigger_saved.emit(event)

    def _on_failed(self, text: str) -> None:
        self._handle = None
        self.trigger = None
        self._uncheck()
        self.trigger_label.setText(f"Trigger stopped: {text}")

    def _uncheck(self) -> None:
        self.arm_button.blockSignals(True)
        self.arm_button.setChecked(False)
        self.arm_button.blockSignals(False)
        self.arm_button.setText("Arm trigger")
