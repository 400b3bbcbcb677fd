"""ConnectDialog: choose where frames come from, and which signal databases decode them.

Pages: the simulated vehicle, a python-can adapter, a socketcand server, a log file replay.
Slow work (adapter detection, the adapter check, listen-only bitrate detection) runs on a
short-lived Python thread per request; its result comes back to the GUI thread as a queued Qt
signal. Every problem is shown in plain words inside the dialog.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import can
from PySide6.QtCore import QObject, QSize, Qt, Signal
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

from workshop_app.core.logfiles import READABLE_SUFFIXES, log_suffix
from workshop_app.core.sources.detect import quiet_detection
from workshop_app.core.sources.factory import SOCKETCAND_PORT, SourceSpec
from workshop_app.core.sources.probe import (
    AdapterCheck,
    check_adapter,
    detect_bitrate,
    friendly_error,
    supports_listen_only,
)
from workshop_app.core.types import BusConfig
from workshop_app.gui.cloud_page import CloudVehicleForm

PAGE_SIMULATOR, PAGE_ADAPTER, PAGE_SOCKETCAND, PAGE_REPLAY = range(4)
PAGE_CLOUD = 4
ALL_CHANNELS = "all"
_DETECT = "detect"  # bitrate combo entry that starts listen-only detection
_BITRATES = (1_000_000, 800_000, 500_000, 250_000, 125_000, 100_000, 83_333, 50_000, 33_333, 20_000)
_DATA_BITRATES = (1_000_000, 2_000_000, 4_000_000, 5_000_000, 8_000_000)
# Detection results that are not adapters a workshop would pick (multicast leaves loopback).
_HIDDEN_DETECTED = frozenset({"udp_multicast"})
_LOG_FILTER = "CAN logs (" + " ".join(f"*{s} *{s}.gz" for s in READABLE_SUFFIXES) + ");;All files (*)"
_DBC_FILTER = "Signal databases (*.dbc *.kcd *.sym *.arxml);;All files (*)"
_ERROR_STYLE = "color: #d1242f"

RecentDbc = Path | str | tuple[Path | str, str | None]


def _detect_adapters(_cancel: threading.Event) -> list[dict[str, object]]:
    return quiet_detection()[0]


def _rate_text(bitrate: int) -> str:
    if bitrate >= 1_000_000 and bitrate % 1_000_000 == 0:
        return f"{bitrate // 1_000_000} Mbit/s"
    return f"{bitrate / 1000:g} kbit/s"


Done = Callable[[object, "str | None"], None]


class _Worker(QObject):
    """Runs one callable on a named Python thread and reports back through ``finished``.

    ``finished`` is connected queued to a slot of the dialog, so ``on_done`` always runs on
    the GUI thread.
    """

    finished = Signal(object, object, object)  # (worker, result, plain-words error or None)

    def __init__(
        self, name: str, fn: Callable[[threading.Event], object], on_done: Done, parent: QObject
    ) -> None:
        super().__init__(parent)
        self.cancel = threading.Event()
        self.on_done = on_done
        self._fn = fn
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            result, error = self._fn(self.cancel), None
        except Exception as exc:  # shown in the dialog, never raised into Qt
            result, error = None, friendly_error(exc)
        # RuntimeError: the dialog was deleted meanwhile; nobody is waiting for the answer.
        with contextlib.suppress(RuntimeError):
            self.finished.emit(self, result, error)


class ConnectDialog(QDialog):
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
        self._workers: list[_Worker] = []
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

    def _build_adapter_page(self) -> QWidget:
        page, layout = self._page(
            "Adapter",
            "A CAN interface on this computer (USB, PCIe, serial) through python-can.",
        )
        form = QFormLayout()
        self.interface_combo = QComboBox()
        self.interface_combo.setEditable(True)  # plug-in interfaces may be registered later
        self.interface_combo.addItems(sorted(can.VALID_INTERFACES))
        self.interface_combo.setCurrentText("pcan" if "pcan" in can.VALID_INTERFACES else "socketcan")
        self.interface_combo.currentTextChanged.connect(self._on_interface_changed)
        self.detect_button = QPushButton("Detect adapters")
        self.detect_button.setToolTip("Ask every installed driver which adapters are present")
        self.detect_button.clicked.connect(self._on_detect_clicked)
        row = QHBoxLayout()
        row.addWidget(self.interface_combo, 1)
        row.addWidget(self.detect_button)
        form.addRow("Interface:", row)

        self.detected_list = QListWidget()
        self.detected_list.setMaximumHeight(90)
        self.detected_list.itemActivated.connect(self._on_detected_chosen)
        self.detected_list.itemClicked.connect(self._on_detected_chosen)
        self.detected_list.hide()
        form.addRow("", self.detected_list)

        self.channel_edit = QLineEdit()
        form.addRow("Channel:", self.channel_edit)

        self.bitrate_combo = QComboBox()
        self.bitrate_combo.addItem("Interface default", None)
        for rate in _BITRATES:
            self.bitrate_combo.addItem(_rate_text(rate), rate)
        self.bitrate_combo.addItem("Detect bitrate (listen-only)…", _DETECT)
        self.bitrate_combo.setCurrentIndex(self.bitrate_combo.findData(500_000))
        self._bitrate_before_detect = self.bitrate_combo.currentIndex()
        self.bitrate_combo.activated.connect(self._on_bitrate_activated)
        form.addRow("Bitrate:", self.bitrate_combo)

        self.fd_check = QCheckBox("CAN FD")
        self.data_bitrate_combo = QComboBox()
        for rate in _DATA_BITRATES:
            self.data_bitrate_combo.addItem(_rate_text(rate), rate)
        self.data_bitrate_combo.setCurrentIndex(self.data_bitrate_combo.findData(2_000_000))
        self.data_bitrate_combo.setEnabled(False)
        self.fd_check.toggled.connect(self.data_bitrate_combo.setEnabled)
        fd_row = QHBoxLayout()
        fd_row.addWidget(self.fd_check)
        fd_row.addWidget(QLabel("Data bitrate:"))
        fd_row.addWidget(self.data_bitrate_combo, 1)
        form.addRow("", fd_row)
        layout.addLayout(form)

        self.check_button = QPushButton("Check adapter")
        self.check_button.setToolTip("Open the adapter, listen half a second, and report (sends nothing)")
        self.check_button.clicked.connect(self._on_check_clicked)
        check_row = QHBoxLayout()
        check_row.addWidget(self.check_button)
        check_row.addStretch(1)
        layout.addLayout(check_row)
        self.adapter_result = self._result_label()
        layout.addWidget(self.adapter_result)
        layout.addStretch(1)
        self._on_interface_changed(self.interface_combo.currentText())
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
        return any(w.thread.is_alive() for w in self._workers)

    def wait_for_workers(self, timeout: float = 10.0) -> None:
        """Join the background threads (for shutdown and tests)."""
        for worker in list(self._workers):
            worker.thread.join(timeout)

    # -- accepting ---------------------------------------------------------------------------------
    def accept(self) -> None:
        problem = self._validate()
        if problem:
            self._show_error(problem)
            return
        super().accept()

    def done(self, result: int) -> None:
        for worker in self._workers:
            worker.cancel.set()
        super().done(result)

    def closeEvent(self, event: QCloseEvent) -> None:
        for worker in self._workers:
            worker.cancel.set()
        super().closeEvent(event)

    def _validate(self) -> str | None:
        page = self.page
        if page == PAGE_ADAPTER:
            interface = self.interface_combo.currentText().strip()
            if not interface:
                return "Choose an interface."
            if interface not in can.VALID_INTERFACES:
                return f"python-can has no interface called {interface!r}; pick one from the list."
            if self.bitrate_combo.currentData() == _DETECT:
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
    def _run_in_background(self, name: str, fn: Callable[[threading.Event], object], on_done: Done) -> None:
        worker = _Worker(name, fn, on_done, self)
        worker.finished.connect(self._on_worker_finished, Qt.ConnectionType.QueuedConnection)
        self._workers.append(worker)
        worker.start()

    def _on_worker_finished(self, worker: _Worker, result: object, error: str | None) -> None:
        worker.thread.join(1.0)  # it has emitted: only its return is left
        if worker in self._workers:
            self._workers.remove(worker)
        worker.deleteLater()
        if not worker.cancel.is_set():  # the dialog was closed: nobody wants the answer
            worker.on_done(result, error)

    def _adapter_config(self) -> BusConfig:
        return self.result_spec().bus_config()

    def _set_adapter_busy(self, busy: bool, text: str = "") -> None:
        for widget in (self.detect_button, self.check_button, self.bitrate_combo, self.interface_combo):
            widget.setEnabled(not busy)
        if text:
            self._show_result(self.adapter_result, text)

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

    def _on_interface_changed(self, interface: str) -> None:
        interface = interface.strip()
        if interface:
            self.channel_edit.setPlaceholderText(SourceSpec(interface=interface).bus_config().channel)
        # Detection stays selectable everywhere; for interfaces without listen-only it
        # explains why it refuses, which a greyed-out entry could not.
        self.bitrate_combo.setItemData(
            self.bitrate_combo.findData(_DETECT),
            "Listens at each common bitrate with the controller in listen-only mode"
            if supports_listen_only(interface)
            else "Not possible for this interface: python-can has no listen-only mode for it",
            Qt.ItemDataRole.ToolTipRole,
        )

    def _on_detect_clicked(self) -> None:
        self._set_adapter_busy(True, "Looking for adapters (a few seconds)…")
        self._run_in_background("connect-detect-adapters", _detect_adapters, self._on_detected)

    def _on_detected(self, configs: object, error: str | None) -> None:
        self._set_adapter_busy(False)
        if error:
            self._show_result(self.adapter_result, f"Detection failed: {error}", error=True)
            return
        found = [c for c in (configs or []) if c.get("interface") not in _HIDDEN_DETECTED]  # type: ignore[union-attr]
        self.detected_list.clear()
        for config in found:
            text = f"{config.get('interface')}  ·  {config.get('channel')}"
            item = QListWidgetItem(text, self.detected_list)
            item.setData(Qt.ItemDataRole.UserRole, dict(config))
        self.detected_list.setVisible(bool(found))
        if found:
            self._show_result(self.adapter_result, f"Found {len(found)} adapter(s); click one to use it.")
        else:
            self._show_result(
                self.adapter_result,
                "No adapter found. Is it plugged in and its driver installed? "
                "You can still enter the interface and channel by hand.",
            )

    def _on_detected_chosen(self, item: QListWidgetItem) -> None:
        config = item.data(Qt.ItemDataRole.UserRole) or {}
        self.interface_combo.setCurrentText(str(config.get("interface", "")))
        self.channel_edit.setText(str(config.get("channel", "")))

    def _on_check_clicked(self) -> None:
        config = self._adapter_config()
        self._set_adapter_busy(True, f"Checking {config.describe()}…")
        self._run_in_background(
            "connect-check-adapter", lambda _cancel: check_adapter(config), self._on_adapter_checked
        )

    def _on_adapter_checked(self, check: object, error: str | None) -> None:
        self._set_adapter_busy(False)
        self._show_check(self.adapter_result, check, error)

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

        self._run_in_background("connect-check-server", lambda _cancel: check_adapter(config), done)

    def _show_check(self, label: QLabel, check: object, error: str | None) -> None:
        if error or not isinstance(check, AdapterCheck):
            self._show_result(label, f"The check failed: {error}", error=True)
            return
        self._show_result(label, check.summary(), error=not check.opened)

    def _on_bitrate_activated(self, index: int) -> None:
        if self.bitrate_combo.itemData(index) != _DETECT:
            self._bitrate_before_detect = index
            return
        config = self._adapter_config()
        self._set_adapter_busy(True, "Listening at each bitrate (nothing is sent)…")

        self._run_in_background(
            "connect-detect-bitrate",
            lambda cancel: detect_bitrate(config, cancel=cancel),
            self._on_bitrate_detected,
        )

    def _on_bitrate_detected(self, bitrate: object, error: str | None) -> None:
        self._set_adapter_busy(False)
        if isinstance(bitrate, int):
            index = self.bitrate_combo.findData(bitrate)
            if index < 0:
                index = self.bitrate_combo.count() - 1
                self.bitrate_combo.insertItem(index, _rate_text(bitrate), bitrate)
            self.bitrate_combo.setCurrentIndex(index)
            self._bitrate_before_detect = index
            self._show_result(self.adapter_result, f"The bus runs at {_rate_text(bitrate)}.")
            return
        self.bitrate_combo.setCurrentIndex(self._bitrate_before_detect)
        if error:
            self._show_result(self.adapter_result, error, error=True)
        else:
            self._show_result(
                self.adapter_result,
                "No bitrate fitted: no clean traffic at any common bitrate. Is the ignition on and "
                "the adapter on the right pins?",
                error=True,
            )

    def _chosen_bitrate(self) -> int | None:
        data = self.bitrate_combo.currentData()
        return data if isinstance(data, int) else None

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
