"""ConnectDialog: choose where frames come from, and which signal databases decode them.

Pages: the simulated vehicle, a python-can adapter, a socketcand server, a log file replay.
Slow work (adapter detection, the adapter check, listen-only bitrate detection, the server
check) runs through ``gui/workers.run_job``; its result comes back on the GUI thread. Every
problem is shown in plain words inside the dialog. The adapter page lives in
``connect_adapter.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import can
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QStackedWidget,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workshop_app.core.errors import WorkshopError
from workshop_app.core.jobs import CancelToken, ProgressFn
from workshop_app.core.logfiles import READABLE_SUFFIXES, log_suffix
from workshop_app.core.sources.factory import SOCKETCAND_PORT, SourceSpec
from workshop_app.core.sources.probe import AdapterCheck, check_adapter, friendly_error
from workshop_app.gui.cloud_page import CloudVehicleForm
from workshop_app.gui.connect_adapter import DETECT, AdapterPageMixin
from workshop_app.gui.workers import JobHandle, run_job

PAGE_SIMULATOR, PAGE_ADAPTER, PAGE_SOCKETCAND, PAGE_REPLAY = range(4)
PAGE_CLOUD = 4
ALL_CHANNELS = "all"
_LOG_FILTER = "CAN logs (" + " ".join(f"*{s} *{s}.gz" for s in READABLE_SUFFIXES) + ");;All files (*)"
_DBC_FILTER = "Signal databases (*.dbc *.kcd *.sym *.arxml);;All files (*)"
_ERROR_STYLE = "color: #d1242f"

RecentDbc = Path | str | tuple[Path | str, str | None]


Done = Callable[[object, "str | None"], None]


class ConnectDialog(AdapterPageMixin, QDialog):
    """Pick a source and databases; read the choice with :meth:`result_spec` and :meth:`result_databases`."""

    def __init__(
        self,
        recent_dbcs: Sequence[RecentDbc] = (),
        parent: QWidget | None = None,
        *,
        channels: Sequence[str] = ("can0", "can1"),
        cloud_vins: Sequence[str] = (),
        cloud_profile: Path | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Connect")
        self.setMinimumSize(720, 560)
        self._channels = [c for c in channels if c and c != ALL_CHANNELS]
        self._jobs: list[JobHandle] = []
        self._bitrate_before_detect = 0

        self.page_list = QListWidget()
        self.page_list.setIconSize(QSize(24, 24))
        self.page_list.setFixedWidth(190)
        self.page_list.setSpacing(2)
        style = self.style()
        for text, icon in (
            ("Simulated vehicle", QStyle.StandardPixmap.SP_ComputerIcon),
            ("Adapter", QStyle.StandardPixmap.SP_DriveHDIcon),
            ("socketcand server", QStyle.StandardPixmap.SP_DriveNetIcon),
            ("Log file replay", QStyle.StandardPixmap.SP_FileIcon),
            ("Cloud vehicle", QStyle.StandardPixmap.SP_DirLinkIcon),
        ):
            QListWidgetItem(style.standardIcon(icon), text, self.page_list)
        self.pages = QStackedWidget()
        self.pages.addWidget(self._build_simulator_page())
        self.pages.addWidget(self._build_adapter_page())
        self.pages.addWidget(self._build_socketcand_page())
        self.pages.addWidget(self._build_replay_page())
        self.pages.addWidget(self._build_cloud_page(cloud_vins, cloud_profile))
        self.page_list.currentRowChanged.connect(self._on_page_changed)

        top = QHBoxLayout()
        top.addWidget(self.page_list)
        top.addWidget(self.pages, 1)

        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(_ERROR_STYLE)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.hide()

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.connect_button = self.buttons.addButton("Connect", QDialogButtonBox.ButtonRole.AcceptRole)
        self.connect_button.setDefault(True)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(top, 1)
        layout.addWidget(self._build_dbc_group())
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)

        for entry in recent_dbcs:
            path, channel = entry if isinstance(entry, tuple) else (entry, None)
            self.add_dbc(Path(path), channel)
        self.page_list.setCurrentRow(PAGE_SIMULATOR)

    # -- pages ------------------------------------------------------------------------------------
    def _page(self, title: str, text: str) -> tuple[QWidget, QVBoxLayout]:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(12, 4, 4, 4)
        heading = QLabel(title)
        font = heading.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        heading.setFont(font)
        layout.addWidget(heading)
        intro = QLabel(text)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        return page, layout

    def _build_simulator_page(self) -> QWidget:
        page, layout = self._page(
            "Simulated vehicle",
            "The built-in demo car: engine, gearbox, brakes, steering, body and climate ECUs on one "
            "CAN FD bus, with diagnostics. No adapter needed — press Connect.",
        )
        layout.addStretch(1)
        return page

    def _build_socketcand_page(self) -> QWidget:
        page, layout = self._page(
            "socketcand server",
            "A CAN bus shared over the network by socketcand (or a workshop_app simulator).",
        )
        form = QFormLayout()
        self.host_edit = QLineEdit("127.0.0.1")
        self.port_spin = QSpinBox()
        self.port_spin.setRange(1, 65535)
        self.port_spin.setValue(SOCKETCAND_PORT)
        self.port_spin.setMinimumWidth(120)
        self.port_spin.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.socketcand_channel_edit = QLineEdit("can0")
        form.addRow("Host:", self.host_edit)
        form.addRow("Port:", self.port_spin)
        form.addRow("Bus name:", self.socketcand_channel_edit)
        layout.addLayout(form)
        self.server_check_button = QPushButton("Check server")
        self.server_check_button.clicked.connect(self._on_server_check_clicked)
        row = QHBoxLayout()
        row.addWidget(self.server_check_button)
        row.addStretch(1)
        layout.addLayout(row)
        self.server_result = self._result_label()
        layout.addWidget(self.server_result)
        layout.addStretch(1)
        return page

    def _build_replay_page(self) -> QWidget:
        page, layout = self._page(
            "Log file replay",
            "Play a recorded log (ASC, BLF, candump, TRC, CSV, MF4) as if it came from the car.",
        )
        form = QFormLayout()
        self.replay_edit = QLineEdit()
        self.replay_edit.setPlaceholderText("Choose a log file…")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_log)
        row = QHBoxLayout()
        row.addWidget(self.replay_edit, 1)
        row.addWidget(browse)
        form.addRow("File:", row)
        self.speed_spin = QDoubleSpinBox()
        self.speed_spin.setRange(0.0, 100.0)
        self.speed_spin.setDecimals(2)
        self.speed_spin.setSingleStep(0.5)
        self.speed_spin.setValue(1.0)
        self.speed_spin.setSuffix(" ×")
        self.speed_spin.setSpecialValueText("as fast as possible")
        self.speed_spin.setMinimumWidth(180)
        self.speed_spin.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        form.addRow("Speed:", self.speed_spin)
        self.loop_check = QCheckBox("Start again at the end")
        form.addRow("", self.loop_check)
        layout.addLayout(form)
        layout.addStretch(1)
        return page

    def _build_cloud_page(self, vins: Sequence[str], profile: Path | None) -> QWidget:
        page, layout = self._page(
            "Cloud vehicle",
            "A connected car reached through the workshop's MQTT broker: its agent sends the bus "
            "and answers diagnostics (docs/cloud.md). Only vehicles granted to this workshop answer.",
        )
        self.cloud_form = CloudVehicleForm(vins, profile)
        layout.addWidget(self.cloud_form)
        layout.addStretch(1)
        return page

    def _build_dbc_group(self) -> QGroupBox:
        group = QGroupBox("Signal databases")
        self.dbc_table = QTableWidget(0, 2)
        self.dbc_table.setHorizontalHeaderLabels(["File", "Channel"])
        self.dbc_table.verticalHeader().setVisible(False)
        self.dbc_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.dbc_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.dbc_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(1, 140)
        self.dbc_table.setMinimumHeight(100)
        self.dbc_table.setMaximumHeight(150)
        add = QPushButton("Add…")
        add.clicked.connect(self._on_add_dbc)
        self.remove_dbc_button = QPushButton("Remove")
        self.remove_dbc_button.clicked.connect(self._on_remove_dbc)
        buttons = QVBoxLayout()
        buttons.addWidget(add)
        buttons.addWidget(self.remove_dbc_button)
        buttons.addStretch(1)
        layout = QHBoxLayout(group)
        layout.addWidget(self.dbc_table, 1)
        layout.addLayout(buttons)
        return group

    def _result_label(self) -> QLabel:
        label = QLabel()
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        label.setStyleSheet("QLabel { padding: 6px; border: 1px solid palette(mid); border-radius: 3px; }")
        label.hide()
        return label

    # -- public API -------------------------------------------------------------------------------
    @property
    def page(self) -> int:
        return self.pages.currentIndex()

    def set_page(self, page: int) -> None:
        self.page_list.setCurrentRow(page)

    def add_dbc(self, path: Path, channel: str | None = None, checked: bool = True) -> None:
        """Add a database row; ``channel`` None means all channels."""
        row = self.dbc_table.rowCount()
        self.dbc_table.insertRow(row)
        item = QTableWidgetItem(path.name)
        item.setData(Qt.ItemDataRole.UserRole, str(path))
        item.setToolTip(str(path))
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        self.dbc_table.setItem(row, 0, item)
        combo = QComboBox()
        combo.setEditable(True)  # any channel name the source will use
        combo.addItem(ALL_CHANNELS)
        combo.addItems(self._channels)
        combo.setCurrentText(channel or ALL_CHANNELS)
        self.dbc_table.setCellWidget(row, 1, combo)

    def result_spec(self) -> SourceSpec:
        """The source the user chose (valid after the dialog was accepted)."""
        page = self.page
        if page == PAGE_ADAPTER:
            fd = self.fd_check.isChecked()
            return SourceSpec(
                interface=self.interface_combo.currentText().strip(),
                channel=self.channel_edit.text().strip() or None,
                bitrate=self._chosen_bitrate(),
                data_bitrate=self.data_bitrate_combo.currentData() if fd else None,
                fd=fd,
            )
        if page == PAGE_SOCKETCAND:
            return SourceSpec(
                interface="socketcand",
                channel=self.socketcand_channel_edit.text().strip() or "can0",
                host=self.host_edit.text().strip() or "127.0.0.1",
                port=self.port_spin.value(),
            )
        if page == PAGE_CLOUD:
            return self.cloud_form.spec()
        if page == PAGE_REPLAY:
            return SourceSpec(
                replay=Path(self.replay_edit.text().strip()),
                speed=self.speed_spin.value(),
                loop=self.loop_check.isChecked(),
            )
        return SourceSpec()

    def result_databases(self) -> list[tuple[Path, str | None]]:
        """The ticked databases, each with its channel (None: all channels)."""
        result: list[tuple[Path, str | None]] = []
        for row in range(self.dbc_table.rowCount()):
            item = self.dbc_table.item(row, 0)
            if item.checkState() is not Qt.CheckState.Checked:
                continue
            combo = self.dbc_table.cellWidget(row, 1)
            assert isinstance(combo, QComboBox)
            channel = combo.currentText().strip()
            result.append(
                (
                    Path(item.data(Qt.ItemDataRole.UserRole)),
                    None if channel in ("", ALL_CHANNELS) else channel,
                )
            )
        return result

    @property
    def busy(self) -> bool:
        """True while a detection or check runs in the background."""
        return any(job.running for job in self._jobs)

    def wait_for_workers(self, timeout: float = 10.0) -> None:
        """Join the background threads (for shutdown and tests)."""
        for job in list(self._jobs):
            job.wait(timeout)

    # -- accepting ---------------------------------------------------------------------------------
    def accept(self) -> None:
        problem = self._validate()
        if problem:
            self._show_error(problem)
            return
        super().accept()

    def done(self, result: int) -> None:
        for job in self._jobs:
            job.cancel()
        super().done(result)

    def closeEvent(self, event: QCloseEvent) -> None:
        for job in self._jobs:
            job.cancel()
        super().closeEvent(event)

    def _validate(self) -> str | None:
        page = self.page
        if page == PAGE_ADAPTER:
            interface = self.interface_combo.currentText().strip()
            if not interface:
                return "Choose an interface."
            if interface not in can.VALID_INTERFACES:
                return f"python-can has no interface called {interface!r}; pick one from the list."
            if self.bitrate_combo.currentData() == DETECT:
                return "Wait for the bitrate detection to finish, or choose a bitrate."
        elif page == PAGE_SOCKETCAND:
            if not self.host_edit.text().strip():
                return "Enter the host name or address of the socketcand server."
            name = self.socketcand_channel_edit.text().strip()
            if any(ch.isspace() or ch in "<>" for ch in name):
                return "The bus name may not contain spaces or angle brackets."
        elif page == PAGE_CLOUD:
            problem = self.cloud_form.problem()
            if problem:
                return problem
        elif page == PAGE_REPLAY:
            text = self.replay_edit.text().strip()
            if not text:
                return "Choose a log file to replay."
            if not Path(text).is_file():
                return f"There is no file {text}."
            if log_suffix(Path(text)) not in READABLE_SUFFIXES:
                return (
                    f"{Path(text).name} is not a log format this tool reads ({', '.join(READABLE_SUFFIXES)})."
                )
        for path, _channel in self.result_databases():
            if not path.is_file():
                return f"The database file {path} does not exist any more; remove it or add it again."
        return None

    def _show_error(self, text: str | None) -> None:
        self.error_label.setText(text or "")
        self.error_label.setVisible(bool(text))

    # -- background work -----------------------------------------------------------------------
    def _run_in_background(self, fn: Callable[[CancelToken], object], on_done: Done) -> None:
        """Run ``fn(cancel)`` through run_job; ``on_done(result, error)`` on the GUI thread."""

        def job(*, progress: ProgressFn, cancel: CancelToken) -> object:
            try:
                return fn(cancel)
            except Exception as exc:  # shown in the dialog in plain words, never raised into Qt
                raise WorkshopError(friendly_error(exc)) from exc

        job.__name__ = "connect-check"
        handle = run_job(self, job)
        handle.finished.connect(lambda result: self._on_job_ended(handle, on_done, result, None))
        handle.failed.connect(lambda error: self._on_job_ended(handle, on_done, None, error))
        self._jobs.append(handle)

    def _on_job_ended(self, handle: JobHandle, on_done: Done, result: object, error: str | None) -> None:
        if handle in self._jobs:
            self._jobs.remove(handle)
        handle.deleteLater()
        if not handle.cancelled:  # the dialog was closed: nobody wants the answer
            on_done(result, error)

    def _show_result(self, label: QLabel, text: str, error: bool = False) -> None:
        label.setText(text)
        label.setStyleSheet(
            "QLabel { padding: 6px; border: 1px solid palette(mid); border-radius: 3px; %s }"
            % (_ERROR_STYLE + ";" if error else "")
        )
        label.show()

    # -- handlers --------------------------------------------------------------------------------
    def _on_page_changed(self, row: int) -> None:
        self.pages.setCurrentIndex(row)
        self._show_error(None)

    def _on_server_check_clicked(self) -> None:
        spec = SourceSpec(
            interface="socketcand",
            channel=self.socketcand_channel_edit.text().strip() or "can0",
            host=self.host_edit.text().strip() or "127.0.0.1",
            port=self.port_spin.value(),
        )
        config = spec.bus_config()
        self.server_check_button.setEnabled(False)
        self._show_result(self.server_result, f"Checking {config.describe()}…")

        def done(check: object, error: str | None) -> None:
            self.server_check_button.setEnabled(True)
            self._show_check(self.server_result, check, error)

        self._run_in_background(lambda _cancel: check_adapter(config), done)

    def _show_check(self, label: QLabel, check: object, error: str | None) -> None:
        if error or not isinstance(check, AdapterCheck):
            self._show_result(label, f"The check failed: {error}", error=True)
            return
        self._show_result(label, check.summary(), error=not check.opened)

    def _on_browse_log(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Replay a log file", self.replay_edit.text(), _LOG_FILTER)
        if path:
            self.replay_edit.setText(path)

    def _on_add_dbc(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Add signal databases", "", _DBC_FILTER)
        for path in paths:
            self.add_dbc(Path(path))

    def _on_remove_dbc(self) -> None:
        rows = sorted({index.row() for index in self.dbc_table.selectedIndexes()}, reverse=True)
        for row in rows:
            self.dbc_table.removeRow(row)
