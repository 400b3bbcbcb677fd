"""The Connect dialog's adapter page: interface, channel, bitrates, detection and the check.

A mixin of :class:`~workshop_app.gui.connect_dialog.ConnectDialog` (its widgets stay the
dialog's attributes): adapter detection, the adapter check and listen-only bitrate detection
are slow, so each runs through the dialog's ``_run_in_background`` (``gui/workers.run_job``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import can
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workshop_app.core.jobs import CancelToken
from workshop_app.core.sources.detect import quiet_detection
from workshop_app.core.sources.factory import SourceSpec
from workshop_app.core.sources.probe import check_adapter, detect_bitrate, supports_listen_only
from workshop_app.core.types import BusConfig

if TYPE_CHECKING:
    from workshop_app.gui.connect_dialog import Done

DETECT = "detect"  # bitrate combo entry that starts listen-only detection
_BITRATES = (1_000_000, 800_000, 500_000, 250_000, 125_000, 100_000, 83_333, 50_000, 33_333, 20_000)
_DATA_BITRATES = (1_000_000, 2_000_000, 4_000_000, 5_000_000, 8_000_000)
# Detection results that are not adapters a workshop would pick (multicast leaves loopback).
_HIDDEN_DETECTED = frozenset({"udp_multicast"})


def _detect_adapters(_cancel: CancelToken) -> list[dict[str, object]]:
    return quiet_detection()[0]


def rate_text(bitrate: int) -> str:
    if bitrate >= 1_000_000 and bitrate % 1_000_000 == 0:
        return f"{bitrate // 1_000_000} Mbit/s"
    return f"{bitrate / 1000:g} kbit/s"


class AdapterPageMixin:
    """The adapter page's widgets and handlers; the dialog supplies the helpers declared here."""

    if TYPE_CHECKING:
        _bitrate_before_detect: int

        def _page(self, title: str, text: str) -> tuple[QWidget, QVBoxLayout]: ...
        def _result_label(self) -> QLabel: ...
        def _show_result(self, label: QLabel, text: str, error: bool = False) -> None: ...
        def _show_check(self, label: QLabel, check: object, error: str | None) -> None: ...
        def result_spec(self) -> SourceSpec: ...
        def _run_in_background(self, fn: Callable[[CancelToken], object], on_done: Done) -> None: ...

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
            self.bitrate_combo.addItem(rate_text(rate), rate)
        self.bitrate_combo.addItem("Detect bitrate (listen-only)…", DETECT)
        self.bitrate_combo.setCurrentIndex(self.bitrate_combo.findData(500_000))
        self._bitrate_before_detect = self.bitrate_combo.currentIndex()
        self.bitrate_combo.activated.connect(self._on_bitrate_activated)
        form.addRow("Bitrate:", self.bitrate_combo)

        self.fd_check = QCheckBox("CAN FD")
        self.data_bitrate_combo = QComboBox()
        for rate in _DATA_BITRATES:
            self.data_bitrate_combo.addItem(rate_text(rate), rate)
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

    def _adapter_config(self) -> BusConfig:
        return self.result_spec().bus_config()

    def _set_adapter_busy(self, busy: bool, text: str = "") -> None:
        for widget in (self.detect_button, self.check_button, self.bitrate_combo, self.interface_combo):
            widget.setEnabled(not busy)
        if text:
            self._show_result(self.adapter_result, text)

    def _on_interface_changed(self, interface: str) -> None:
        interface = interface.strip()
        if interface:
            self.channel_edit.setPlaceholderText(SourceSpec(interface=interface).bus_config().channel)
        # Detection stays selectable everywhere; for interfaces without listen-only it
        # explains why it refuses, which a greyed-out entry could not.
        self.bitrate_combo.setItemData(
            self.bitrate_combo.findData(DETECT),
            "Listens at each common bitrate with the controller in listen-only mode"
            if supports_listen_only(interface)
            else "Not possible for this interface: python-can has no listen-only mode for it",
            Qt.ItemDataRole.ToolTipRole,
        )

    def _on_detect_clicked(self) -> None:
        self._set_adapter_busy(True, "Looking for adapters (a few seconds)…")
        self._run_in_background(_detect_adapters, self._on_detected)

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
        self._run_in_background(lambda _cancel: check_adapter(config), self._on_adapter_checked)

    def _on_adapter_checked(self, check: object, error: str | None) -> None:
        self._set_adapter_busy(False)
        self._show_check(self.adapter_result, check, error)

    def _on_bitrate_activated(self, index: int) -> None:
        if self.bitrate_combo.itemData(index) != DETECT:
            self._bitrate_before_detect = index
            return
        config = self._adapter_config()
        self._set_adapter_busy(True, "Listening at each bitrate (nothing is sent)…")

        self._run_in_background(
            lambda cancel: detect_bitrate(config, cancel=cancel.event), self._on_bitrate_detected
        )

    def _on_bitrate_detected(self, bitrate: object, error: str | None) -> None:
        self._set_adapter_busy(False)
        if isinstance(bitrate, int):
            index = self.bitrate_combo.findData(bitrate)
            if index < 0:
                index = self.bitrate_combo.count() - 1
                self.bitrate_combo.insertItem(index, rate_text(bitrate), bitrate)
            self.bitrate_combo.setCurrentIndex(index)
            self._bitrate_before_detect = index
            self._show_result(self.adapter_result, f"The bus runs at {rate_text(bitrate)}.")
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
