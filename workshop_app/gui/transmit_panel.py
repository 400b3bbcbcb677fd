"""TransmitPanel: send raw frames or DBC messages, once or periodically, and watch the jobs.

A thin client of the core's :class:`TransmitJobs` (the same jobs ``workshop send`` runs): the
panel edits and displays, the jobs own the frames and the one transmit thread. One-shot sends
go through ``gui/workers.run_job`` so a stalled adapter never freezes the window.
:meth:`TransmitPanel.refresh` re-reads the jobs on every tick of the workshop the panel
follows (:meth:`TransmitPanel.follow`), so the table follows the jobs without any signal per frame;
the message list follows the workshop's databases the same way. The parts: ``transmit_jobs_table.py``
(the table) and ``transmit_signal_editor.py`` (one signal's editor).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QRegularExpression, Qt
from PySide6.QtGui import QFontDatabase, QRegularExpressionValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workshop_app.core.decode.database import DatabaseSet, LoadedDatabase
from workshop_app.core.errors import WorkshopError
from workshop_app.core.jobs import CancelToken, ProgressFn
from workshop_app.core.session import CaptureStats
from workshop_app.core.transmit_encode import SignalValue, frame_signals, parse_hex_data
from workshop_app.core.transmit_jobs import JobStatus, TransmitJob, TransmitJobs
from workshop_app.core.types import Frame
from workshop_app.core.workshop import Subscription, WorkshopSession
from workshop_app.gui.transmit_jobs_table import (
    COL_CONTENT,
    COL_SENT,
    COL_STATUS,
    TransmitJobsTable,
    hex_bytes,
)
from workshop_app.gui.transmit_signal_editor import SignalEditor
from workshop_app.gui.workers import JobHandle, run_job

if TYPE_CHECKING:
    from cantools.database.can import Message

__all__ = [
    "COL_CONTENT",
    "COL_SENT",
    "COL_STATUS",
    "TAB_DBC",
    "TAB_RAW",
    "TransmitPanel",
    "parse_hex_data",
]

TAB_RAW, TAB_DBC = range(2)
_NOTICE_STYLE = "QLabel { background: #fff1e5; color: #8a4600; border: 1px solid #f0b37e; border-radius: 3px; padding: 6px; }"


def _call(send: Callable[[], None], *, progress: ProgressFn, cancel: CancelToken) -> None:
    """A plain send in the shape ``run_job`` calls (one frame: nothing to report or cancel)."""
    send()


class TransmitPanel(QWidget):
    """Jobs table on top, the frame/message editor below."""

    def __init__(self, jobs: TransmitJobs, databases: DatabaseSet, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.jobs = jobs
        self.databases = databases
        self._pending_sends: list[Callable[[], None]] = []
        self._send_handle: JobHandle | None = None
        self.sends_done = 0  # sends finished (sent or failed), for scripts and tests to wait on
        self._editors: dict[str, SignalEditor] = {}
        self._message: Message | None = None
        self._listed: list[LoadedDatabase] = []  # the databases the message list was filled from

        self.notice_label = QLabel()
        self.notice_label.setWordWrap(True)
        self.notice_label.setStyleSheet(_NOTICE_STYLE)
        self.notice_label.hide()

        self.table = TransmitJobsTable()
        self.table.cellClicked.connect(self._on_row_clicked)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self._button_states: list[tuple[int, JobStatus, bool]] | None = None  # as at the last update

        self.stop_button = QPushButton("Stop")
        self.resume_button = QPushButton("Resume")
        self.send_again_button = QPushButton("Send again")
        self.apply_button = QPushButton("Apply edits")
        self.apply_button.setToolTip("Put the editor's data or signal values into the selected job")
        self.remove_button = QPushButton("Remove")
        self.stop_button.clicked.connect(self._on_stop)
        self.resume_button.clicked.connect(self._on_resume)
        self.send_again_button.clicked.connect(self._on_send_again)
        self.apply_button.clicked.connect(self._on_apply)
        self.remove_button.clicked.connect(self._on_remove)
        job_buttons = QHBoxLayout()
        for button in (
            self.stop_button,
            self.resume_button,
            self.send_again_button,
            self.apply_button,
            self.remove_button,
        ):
            job_buttons.addWidget(button)
        job_buttons.addStretch(1)

        self.editor_tabs = QTabWidget()
        self.editor_tabs.addTab(self._build_raw_editor(), "Raw frame")
        self.editor_tabs.addTab(self._build_dbc_editor(), "DBC message")

        self.period_spin = QSpinBox()
        self.period_spin.setRange(1, 600_000)
        self.period_spin.setValue(100)
        self.period_spin.setSuffix(" ms")
        self.period_spin.setMinimumWidth(110)
        self.send_once_button = QPushButton("Send once")
        self.start_button = QPushButton("Start periodic")
        self.send_once_button.clicked.connect(self._on_send_once)
        self.start_button.clicked.connect(self._on_start_periodic)
        send_row = QHBoxLayout()
        send_row.addWidget(QLabel("Period:"))
        send_row.addWidget(self.period_spin)
        send_row.addStretch(1)
        send_row.addWidget(self.send_once_button)
        send_row.addWidget(self.start_button)

        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #d1242f")
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.hide()

        editor_group = QGroupBox("New frame")
        editor_layout = QVBoxLayout(editor_group)
        editor_layout.addWidget(self.editor_tabs)
        editor_layout.addLayout(send_row)
        editor_layout.addWidget(self.error_label)

        jobs_part = QWidget()
        jobs_layout = QVBoxLayout(jobs_part)
        jobs_layout.setContentsMargins(0, 0, 0, 0)
        jobs_layout.addWidget(self.notice_label)
        jobs_layout.addWidget(self.table, 1)
        jobs_layout.addLayout(job_buttons)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(jobs_part)
        self.splitter.addWidget(editor_group)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.splitter)

        self.reload_databases()
        self.refresh()

    # -- editors -------------------------------------------------------------------------------------
    def _build_raw_editor(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.id_edit = QLineEdit()
        self.id_edit.setPlaceholderText("7DF")
        self.id_edit.setFont(mono)
        self.id_edit.setValidator(
            QRegularExpressionValidator(QRegularExpression(r"(0[xX])?[0-9A-Fa-f]{0,8}"))
        )
        self.id_edit.setMaximumWidth(140)
        self.ext_check = QCheckBox("Extended (29-bit)")
        self.fd_check = QCheckBox("CAN FD")
        self.brs_check = QCheckBox("Bit rate switch")
        self.brs_check.setEnabled(False)
        self.fd_check.toggled.connect(self._on_fd_toggled)
        id_row = QHBoxLayout()
        id_row.addWidget(self.id_edit)
        id_row.addWidget(self.ext_check)
        id_row.addWidget(self.fd_check)
        id_row.addWidget(self.brs_check)
        id_row.addStretch(1)
        form.addRow("ID (hex):", id_row)
        self.data_edit = QLineEdit()
        self.data_edit.setPlaceholderText("02 01 0C")
        self.data_edit.setFont(mono)
        form.addRow("Data (hex):", self.data_edit)
        hint = QLabel("Classic CAN: up to 8 bytes. CAN FD: 0–8, 12, 16, 20, 24, 32, 48 or 64 bytes.")
        hint.setEnabled(False)
        form.addRow("", hint)
        return page

    def _build_dbc_editor(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        self.message_combo = QComboBox()
        self.message_combo.setMaxVisibleItems(20)
        self.message_combo.currentIndexChanged.connect(self._on_message_changed)
        top = QFormLayout()
        top.addRow("Message:", self.message_combo)
        layout.addLayout(top)
        self.signal_form_host = QWidget()
        self.signal_form = QFormLayout(self.signal_form_host)
        self.signal_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.signal_form_host)
        scroll.setMinimumHeight(140)
        layout.addWidget(scroll, 1)
        return page

    def reload_databases(self) -> None:
        """Fill the message list again (after databases were added or removed)."""
        current = self.message_combo.currentData()
        self._listed = self.databases.databases
        self.message_combo.blockSignals(True)
        self.message_combo.clear()
        seen: set[str] = set()
        messages = [m for entry in self._listed for m in entry.db.messages]
        for message in sorted(messages, key=lambda m: m.name.lower()):
            if message.name in seen:
                continue  # the scheduler resolves a name to the first database that has it
            seen.add(message.name)
            width = 8 if message.is_extended_frame else 3
            self.message_combo.addItem(f"{message.name}  (0x{message.frame_id:0{width}X})", message.name)
        self.message_combo.blockSignals(False)
        index = self.message_combo.findData(current)
        self.message_combo.setCurrentIndex(max(index, 0) if self.message_combo.count() else -1)
        self._on_message_changed()

    def _find_message(self, name: str) -> Message | None:
        for entry in self.databases.databases:
            try:
                return entry.db.get_message_by_name(name)
            except KeyError:
                continue
        return None

    def _on_message_changed(self, _index: int = 0) -> None:
        while self.signal_form.rowCount():
            self.signal_form.removeRow(0)
        self._editors = {}
        name = self.message_combo.currentData()
        self._message = self._find_message(name) if name else None
        if self._message is None:
            self.signal_form.addRow(QLabel("No database loaded: add a DBC when connecting."))
            return
        for signal in self._message.signals:
            editor = SignalEditor(signal)
            self._editors[signal.name] = editor
            label = QLabel(signal.name)
            if signal.comment:
                label.setToolTip(signal.comment)
                editor.widget.setToolTip(signal.comment)
            self.signal_form.addRow(label, editor.field)
            if signal.is_multiplexer:
                # only the signals of the selected multiplexer page are sent
                widget = editor.widget
                if isinstance(widget, QComboBox):
                    widget.currentIndexChanged.connect(self._update_multiplexed)
                elif isinstance(widget, QDoubleSpinBox):
                    widget.valueChanged.connect(self._update_multiplexed)
        self._update_multiplexed()

    def _update_multiplexed(self) -> None:
        if self._message is None or not self._message.is_multiplexed():
            return
        try:
            active = {s.name for s in frame_signals(self._message, self._signal_values(all_signals=True))}
        except WorkshopError:
            active = {s.name for s in self._message.signals if s.is_multiplexer}
        for name, editor in self._editors.items():
            # rows of other multiplexer pages are hidden: they are not in this frame
            self.signal_form.setRowVisible(editor.field, name in active)

    def _signal_values(self, all_signals: bool = False) -> dict[str, SignalValue]:
        values = {name: e.value() for name, e in self._editors.items() if e.role is None or all_signals}
        if all_signals or self._message is None:
            return values
        active = {s.name for s in frame_signals(self._message, values)}
        return {name: value for name, value in values.items() if name in active}

    def _on_fd_toggled(self, on: bool) -> None:
        self.brs_check.setEnabled(on)
        if not on:
            self.brs_check.setChecked(False)

    def _raw_frame(self) -> Frame:
        text = self.id_edit.text().strip().removeprefix("0x").removeprefix("0X")
        if not text:
            raise WorkshopError("enter the frame id in hex, e.g. 7DF")
        arbitration_id = int(text, 16)  # the validator lets only hex digits through
        try:
            data = parse_hex_data(self.data_edit.text())
        except ValueError as exc:
            raise WorkshopError(str(exc)) from None
        return Frame(
            0.0,
            arbitration_id,
            data,
            self.jobs.default_channel,
            self.ext_check.isChecked(),
            self.fd_check.isChecked(),
            self.brs_check.isChecked(),
        )

    def _editor_job(self, period: float | None) -> TransmitJob:
        if self.editor_tabs.currentIndex() == TAB_RAW:
            return TransmitJob(frame=self._raw_frame(), period=period)
        if self._message is None:
            raise WorkshopError("no DBC message chosen")
        return TransmitJob(message=self._message.name, values=self._signal_values(), period=period)

    # -- table ---------------------------------------------------------------------------------------
    @property
    def scheduler(self) -> TransmitJobs:
        """The transmit jobs (the name the window used before ``jobs``)."""
        return self.jobs

    def follow(self, workshop: WorkshopSession) -> list[Subscription]:
        """Show the jobs on every tick of ``workshop``, and its databases once they change."""
        return [workshop.subscribe("stats", self._on_stats)]

    def _on_stats(self, _stats: CaptureStats) -> None:
        # A database added or removed (the window, a script) replaces the set's entries: one
        # identity comparison per tick, the message list is rebuilt only then.
        if list(map(id, self.databases.databases)) != list(map(id, self._listed)):
            self.reload_databases()
        self.refresh()

    def refresh(self) -> None:
        """Show the jobs and their notice (cheap when nothing changed)."""
        notice = self.jobs.notice
        if notice:
            self.notice_label.setText(f"⚠ {notice}. Reconnect, then select the jobs and press Resume.")
        self.notice_label.setVisible(bool(notice))
        jobs = self.jobs.jobs()
        self.table.show_jobs(jobs)
        # The buttons follow the selection (their own signal) and the jobs' states: asking the
        # selection on every tick of a busy window cost more than the rest of the panel.
        states = [(j.job_id, j.status, j.is_periodic) for j in jobs]
        if states != self._button_states:
            self._button_states = states
            self._update_buttons()

    def selected_job_ids(self) -> list[int]:
        return self.table.selected_job_ids()

    def _update_buttons(self) -> None:
        jobs = {j.job_id: j for j in self.jobs.jobs()}
        chosen = [jobs[i] for i in self.selected_job_ids() if i in jobs]
        self.stop_button.setEnabled(any(j.status is JobStatus.RUNNING for j in chosen))
        self.resume_button.setEnabled(
            any(j.is_periodic and j.status is not JobStatus.RUNNING for j in chosen)
        )
        self.send_again_button.setEnabled(bool(chosen))
        self.apply_button.setEnabled(len(chosen) == 1)
        self.remove_button.setEnabled(bool(chosen))

    def _on_row_clicked(self, row: int, _column: int) -> None:
        """Load the clicked job into the editor, so it can be changed and applied."""
        job_id = self.table.job_id_at(row)
        if job_id is None:
            return
        try:
            job = self.jobs.job(job_id)
        except WorkshopError:
            return
        if job.period is not None:
            self.period_spin.setValue(max(1, round(job.period * 1000)))
        if job.frame is not None:
            self.editor_tabs.setCurrentIndex(TAB_RAW)
            self.id_edit.setText(f"{job.frame.arbitration_id:X}")
            self.ext_check.setChecked(job.frame.is_extended)
            self.fd_check.setChecked(job.frame.is_fd)
            self.brs_check.setChecked(job.frame.bitrate_switch)
            self.data_edit.setText(hex_bytes(job.frame.data))
        elif job.message is not None:
            self.editor_tabs.setCurrentIndex(TAB_DBC)
            index = self.message_combo.findData(job.message)
            if index >= 0:
                self.message_combo.setCurrentIndex(index)
            for name, value in job.values.items():
                if name in self._editors:
                    self._editors[name].set_value(value)
            self._update_multiplexed()

    # -- actions -------------------------------------------------------------------------------------
    def _act(self, action: str, fn: object) -> bool:
        """Run a scheduler call; show a failure in plain words below the editor."""
        try:
            fn()  # type: ignore[operator]
        except (WorkshopError, ValueError) as exc:
            self.error_label.setText(f"{action}: {exc}")
            self.error_label.show()
            return False
        self.error_label.hide()
        self.refresh()
        return True

    def _on_send_once(self) -> None:
        holder: list[TransmitJob] = []
        if not self._act("Send failed", lambda: holder.append(self._editor_job(None))):
            return  # the editor's own mistakes are shown at once
        job = holder[0]
        same = self._same_one_shot(job)

        def send() -> None:
            if same is not None:
                self.jobs.trigger(same)  # one row per distinct frame, its count goes up
            elif job.frame is not None:
                self.jobs.send_once(job.frame)
            else:
                assert job.message is not None
                self.jobs.send_signals_once(job.message, job.values)

        self._send_off_thread(send)

    def _send_off_thread(self, send: Callable[[], None]) -> None:
        """Queue a send for the worker thread: a bus or server that stalls must not freeze the window.

        Sends run one at a time in the order clicked, so frames leave in that order too.
        """
        self._pending_sends.append(send)
        if self._send_handle is None:
            self._start_next_send()

    def _start_next_send(self) -> None:
        if not self._pending_sends:
            self._send_handle = None
            return
        handle = run_job(self, _call, self._pending_sends.pop(0))
        handle.finished.connect(lambda _result: self._on_send_done(handle, None))
        handle.failed.connect(lambda message: self._on_send_done(handle, message))
        self._send_handle = handle

    def _on_send_done(self, handle: JobHandle, error: str | None) -> None:
        handle.deleteLater()
        if error is None:
            self.error_label.hide()
        else:
            self.error_label.setText(f"Send failed: {error}")
            self.error_label.show()
        self.refresh()
        self.sends_done += 1
        self._start_next_send()

    @property
    def sending(self) -> bool:
        """A send is queued or on its way (tests and scripts wait for ``sends_done`` then)."""
        return self._send_handle is not None

    def wait_for_sends(self, timeout: float = 5.0) -> bool:
        """Block until queued sends are out (closing the window); True if none is left running."""
        handle = self._send_handle
        self._pending_sends.clear()
        return handle is None or handle.wait(timeout)

    def _same_one_shot(self, job: TransmitJob) -> int | None:
        for existing in self.jobs.jobs():
            if existing.is_periodic:
                continue
            if job.frame is not None and existing.frame == job.frame:
                return existing.job_id
            if job.message is not None and (existing.message, existing.values) == (job.message, job.values):
                return existing.job_id
        return None

    def _on_start_periodic(self) -> None:
        period = self.period_spin.value() / 1000.0
        self._act("Could not start", lambda: self.jobs.start_periodic(self._editor_job(period)))

    def _on_stop(self) -> None:
        def stop() -> None:
            for job_id in self.selected_job_ids():
                self.jobs.stop(job_id)

        self._act("Could not stop", stop)

    def _on_resume(self) -> None:
        def resume() -> None:
            for job in self.jobs.jobs():
                if job.job_id in self.selected_job_ids() and job.is_periodic:
                    self.jobs.resume(job.job_id)

        self._act("Could not resume", resume)

    def _on_send_again(self) -> None:
        ids = self.selected_job_ids()

        def send() -> None:
            for job_id in ids:
                self.jobs.trigger(job_id)

        self._send_off_thread(send)

    def _on_apply(self) -> None:
        ids = self.selected_job_ids()
        if len(ids) != 1:
            return

        def apply() -> None:
            job = self.jobs.job(ids[0])
            period = self.period_spin.value() / 1000.0 if job.is_periodic else None
            if job.frame is not None:
                frame = self._raw_frame()
                if (frame.arbitration_id, frame.is_extended, frame.is_fd) != (
                    job.arbitration_id,
                    job.is_extended,
                    job.is_fd,
                ):
                    raise WorkshopError("only the data and period can change; start a new job for another id")
                self.jobs.update(job.job_id, data=frame.data, period=period)
            else:
                if self._message is None or self._message.name != job.message:
                    raise WorkshopError(f"choose message {job.message} in the editor to change its values")
                self.jobs.update(job.job_id, self._signal_values(), period=period)

        self._act("Could not apply", apply)

    def _on_remove(self) -> None:
        def remove() -> None:
            for job_id in self.selected_job_ids():
                self.jobs.remove(job_id)

        self._act("Could not remove", remove)
