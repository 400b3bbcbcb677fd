"""ConnectDialog offscreen: each page gives the right SourceSpec, problems show in plain words."""

from __future__ import annotations

import logging
import uuid

import can
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QDialog

from workshop_app.core.sim.socketcand_server import SocketcandServer
from workshop_app.core.sources.factory import SourceSpec
from workshop_app.gui.connect_dialog import (
    PAGE_ADAPTER,
    PAGE_REPLAY,
    PAGE_SIMULATOR,
    PAGE_SOCKETCAND,
    ConnectDialog,
)
from workshop_app.paths import demo_dbc_path

pytestmark = pytest.mark.gui


@pytest.fixture
def dialog(qtbot):
    dlg = ConnectDialog([demo_dbc_path()])
    qtbot.addWidget(dlg)
    dlg.show()
    yield dlg
    dlg.wait_for_workers()


def _accepted(dlg: ConnectDialog) -> bool:
    dlg.connect_button.click()
    return dlg.result() == QDialog.DialogCode.Accepted


def test_simulator_is_one_click(dialog):
    assert dialog.page == PAGE_SIMULATOR
    assert _accepted(dialog)
    assert dialog.result_spec() == SourceSpec()
    assert dialog.result_spec().is_simulator


def test_adapter_page_gives_interface_channel_and_bitrates(dialog):
    dialog.set_page(PAGE_ADAPTER)
    dialog.interface_combo.setCurrentText("pcan")
    assert dialog.channel_edit.placeholderText() == "PCAN_USBBUS1"
    dialog.channel_edit.setText("PCAN_USBBUS2")
    dialog.bitrate_combo.setCurrentIndex(dialog.bitrate_combo.findData(250_000))
    dialog.fd_check.setChecked(True)
    dialog.data_bitrate_combo.setCurrentIndex(dialog.data_bitrate_combo.findData(4_000_000))
    assert _accepted(dialog)
    assert dialog.result_spec() == SourceSpec(
        interface="pcan", channel="PCAN_USBBUS2", bitrate=250_000, data_bitrate=4_000_000, fd=True
    )


def test_adapter_page_defaults(dialog):
    dialog.set_page(PAGE_ADAPTER)
    dialog.interface_combo.setCurrentText("kvaser")
    dialog.bitrate_combo.setCurrentIndex(dialog.bitrate_combo.findData(None))
    spec = dialog.result_spec()
    assert spec == SourceSpec(interface="kvaser")  # no channel typed: the interface's default
    assert spec.bus_config().channel == "0"


def test_socketcand_page(dialog):
    dialog.set_page(PAGE_SOCKETCAND)
    dialog.host_edit.setText("192.168.7.2")
    dialog.port_spin.setValue(29537)
    dialog.socketcand_channel_edit.setText("vcan1")
    assert _accepted(dialog)
    assert dialog.result_spec() == SourceSpec(
        interface="socketcand", channel="vcan1", host="192.168.7.2", port=29537
    )


def test_replay_page(dialog, tmp_path):
    log = tmp_path / "drive.log"
    log.write_text("(1000.000000) can0 123#0102\n")
    dialog.set_page(PAGE_REPLAY)
    dialog.replay_edit.setText(str(log))
    dialog.speed_spin.setValue(0)  # as fast as possible
    dialog.loop_check.setChecked(True)
    assert dialog.speed_spin.text() == "as fast as possible"
    assert _accepted(dialog)
    assert dialog.result_spec() == SourceSpec(replay=log, speed=0.0, loop=True)


def test_replay_problems_are_shown_in_the_dialog(dialog, tmp_path):
    dialog.set_page(PAGE_REPLAY)
    assert not _accepted(dialog)
    assert dialog.error_label.isVisible() and "Choose a log file" in dialog.error_label.text()
    dialog.replay_edit.setText(str(tmp_path / "missing.blf"))
    assert not _accepted(dialog)
    assert "There is no file" in dialog.error_label.text()
    notes = tmp_path / "notes.pdf"
    notes.write_bytes(b"%PDF")
    dialog.replay_edit.setText(str(notes))
    assert not _accepted(dialog)
    assert "not a log format" in dialog.error_label.text()
    dialog.set_page(PAGE_SIMULATOR)  # another page clears the message
    assert not dialog.error_label.isVisible()


def test_databases_with_channels(qtbot, tmp_path):
    other = tmp_path / "chassis.dbc"
    other.write_text(demo_dbc_path().read_text())
    dlg = ConnectDialog([demo_dbc_path(), (other, "can1")], channels=["can0", "can1", "can2"])
    qtbot.addWidget(dlg)
    assert dlg.result_databases() == [(demo_dbc_path(), None), (other, "can1")]

    combo = dlg.dbc_table.cellWidget(0, 1)
    assert isinstance(combo, QComboBox)
    assert [combo.itemText(i) for i in range(combo.count())] == ["all", "can0", "can1", "can2"]
    combo.setCurrentText("can2")
    dlg.add_dbc(tmp_path / "extra.dbc", "body")
    dlg.dbc_table.item(2, 0).setCheckState(Qt.CheckState.Unchecked)  # listed but not used
    assert dlg.result_databases() == [(demo_dbc_path(), "can2"), (other, "can1")]

    dlg.dbc_table.selectRow(1)
    dlg.remove_dbc_button.click()
    assert dlg.result_databases() == [(demo_dbc_path(), "can2")]


def test_a_vanished_database_is_reported(qtbot, tmp_path):
    dlg = ConnectDialog([tmp_path / "gone.dbc"])
    qtbot.addWidget(dlg)
    assert not _accepted(dlg)
    assert "does not exist any more" in dlg.error_label.text()


def test_unknown_interface_check_shows_plain_words(qtbot, dialog):
    dialog.set_page(PAGE_ADAPTER)
    dialog.interface_combo.setCurrentText("no_such_adapter")
    dialog.check_button.click()
    qtbot.waitUntil(lambda: dialog.check_button.isEnabled(), timeout=5000)
    text = dialog.adapter_result.text()
    assert "Could not open no_such_adapter" in text and "not installed" in text
    assert "Traceback" not in text
    assert not _accepted(dialog)
    assert "no interface called 'no_such_adapter'" in dialog.error_label.text()


def test_bitrate_detection_refused_for_virtual(qtbot, dialog):
    dialog.set_page(PAGE_ADAPTER)
    dialog.interface_combo.setCurrentText("virtual")
    before = dialog.bitrate_combo.currentData()
    index = dialog.bitrate_combo.findData("detect")
    dialog.bitrate_combo.setCurrentIndex(index)
    dialog.bitrate_combo.activated.emit(index)  # as a user's pick does
    qtbot.waitUntil(lambda: dialog.check_button.isEnabled() and not dialog.busy, timeout=5000)
    assert "listen-only" in dialog.adapter_result.text()
    assert dialog.bitrate_combo.currentData() == before  # back to what it was


def test_check_server_against_a_running_server(qtbot, dialog):
    channel = f"dialog-{uuid.uuid4().hex}"
    with can.Bus(interface="virtual", channel=channel) as handle:
        server = SocketcandServer(handle, port=0)
        server.start()
        try:
            dialog.set_page(PAGE_SOCKETCAND)
            dialog.port_spin.setValue(server.address[1])
            dialog.server_check_button.click()
            qtbot.waitUntil(lambda: dialog.server_check_button.isEnabled(), timeout=5000)
        finally:
            server.stop()
    assert dialog.server_result.text().startswith("Opened socketcand 127.0.0.1:")


def test_detect_adapters_lists_a_virtual_bus(qtbot, dialog):
    channel = f"dialog-{uuid.uuid4().hex}"
    with can.Bus(interface="virtual", channel=channel):
        dialog.set_page(PAGE_ADAPTER)
        dialog.detect_button.click()
        assert not dialog.detect_button.isEnabled()  # the GUI thread is free meanwhile
        qtbot.waitUntil(lambda: dialog.detect_button.isEnabled(), timeout=15000)
    items = [dialog.detected_list.item(i) for i in range(dialog.detected_list.count())]
    mine = [item for item in items if channel in item.text()]
    assert mine, [item.text() for item in items]
    dialog.detected_list.itemClicked.emit(mine[0])
    assert dialog.interface_combo.currentText() == "virtual"
    assert dialog.channel_edit.text() == channel


def test_detect_adapters_prints_no_driver_noise(qtbot, dialog, caplog):
    # Missing drivers are the normal case on a workshop PC: their warnings must not reach the
    # console handlers (the terminal the window was started from).
    caplog.set_level(logging.DEBUG)
    dialog.set_page(PAGE_ADAPTER)
    dialog.detect_button.click()
    qtbot.waitUntil(lambda: dialog.detect_button.isEnabled(), timeout=15000)
    noise = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert noise == []
