"""TransmitPanel offscreen, sending on a python-can virtual bus."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import can
import cantools
import pytest
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.sources.adapter import AdapterSource
from workshop_app.core.transmit_jobs import JobStatus, TransmitJobs
from workshop_app.core.types import BusConfig
from workshop_app.gui.transmit_panel import (
    COL_CONTENT,
    COL_SENT,
    COL_STATUS,
    TAB_DBC,
    TAB_RAW,
    TransmitPanel,
    parse_hex_data,
)
from workshop_app.paths import demo_dbc_path

pytestmark = pytest.mark.gui


@pytest.fixture
def channel() -> str:
    return f"panel-{uuid.uuid4().hex}"


@pytest.fixture
def car(channel: str) -> Iterator[can.BusABC]:
    bus = can.Bus(interface="virtual", channel=channel)
    yield bus
    bus.shutdown()


@pytest.fixture
def source(channel: str) -> Iterator[AdapterSource]:
    src = AdapterSource(FrameRing(), BusConfig("virtual", channel, fd=True))
    src.start()
    yield src
    src.stop()


@pytest.fixture
def panel(qtbot, source) -> Iterator[TransmitPanel]:
    databases = DatabaseSet()
    databases.add(demo_dbc_path())
    jobs = TransmitJobs(source, databases)
    widget = TransmitPanel(jobs, databases)
    qtbot.addWidget(widget)
    widget.resize(900, 640)
    widget.show()
    yield widget
    jobs.close()


@pytest.fixture(scope="module")
def dbc() -> cantools.database.can.Database:
    return cantools.database.load_file(str(demo_dbc_path()), strict=False)


def _recent(bus: can.BusABC, seconds: float) -> list[can.Message]:
    """Frames queued so far and arriving within ``seconds``."""
    got: list[can.Message] = []
    deadline = time.monotonic() + seconds
    while (msg := bus.recv(max(0.0, deadline - time.monotonic()))) is not None:
        got.append(msg)
    return got


def _send(qtbot, panel: TransmitPanel, button) -> None:
    """Click a send button and wait for the send it queued (sends run off the GUI thread)."""
    before = panel.sends_done
    button.click()
    if not panel.sending:
        return  # refused by the editor at once, nothing queued
    qtbot.waitUntil(lambda: panel.sends_done > before, timeout=5000)


def _choose_message(panel: TransmitPanel, name: str) -> None:
    panel.editor_tabs.setCurrentIndex(TAB_DBC)
    panel.message_combo.setCurrentIndex(panel.message_combo.findData(name))


def _pick(panel: TransmitPanel, signal: str, label: str) -> None:
    combo = panel._editors[signal].widget
    assert isinstance(combo, QComboBox)
    combo.setCurrentIndex(next(i for i in range(combo.count()) if combo.itemText(i).startswith(label)))


def test_raw_frame_is_sent_and_listed(qtbot, panel, car):
    panel.editor_tabs.setCurrentIndex(TAB_RAW)
    panel.id_edit.setText("7DF")
    panel.data_edit.setText("02 01 0C")
    _send(qtbot, panel, panel.send_once_button)
    got = car.recv(1.0)
    assert got is not None and got.arbitration_id == 0x7DF and bytes(got.data) == b"\x02\x01\x0c"
    assert panel.table.rowCount() == 1
    assert panel.table.item(0, COL_CONTENT).text() == "02 01 0C"
    assert panel.table.item(0, COL_STATUS).text() == "sent"

    _send(qtbot, panel, panel.send_once_button)  # the same frame again: same row, count goes up
    assert car.recv(1.0) is not None
    assert panel.table.rowCount() == 1 and panel.table.item(0, COL_SENT).text() == "2"
    assert not panel.error_label.isVisible()


def test_fd_frame_from_the_raw_editor(qtbot, panel, car):
    panel.id_edit.setText("18DAF110")
    panel.ext_check.setChecked(True)
    panel.fd_check.setChecked(True)
    panel.brs_check.setChecked(True)
    panel.data_edit.setText("00112233445566778899AABB")
    _send(qtbot, panel, panel.send_once_button)
    got = car.recv(1.0)
    assert got is not None and got.is_fd and got.bitrate_switch and got.is_extended_id and len(got.data) == 12


def test_mistakes_are_shown_in_plain_words(qtbot, panel, car):
    panel.id_edit.setText("800")
    panel.data_edit.setText("01")
    _send(qtbot, panel, panel.send_once_button)
    assert panel.error_label.isVisible() and "11-bit" in panel.error_label.text()
    panel.id_edit.setText("100")
    panel.data_edit.setText("0G")
    _send(qtbot, panel, panel.send_once_button)
    assert "hex bytes" in panel.error_label.text()
    panel.data_edit.setText("00 11 22 33 44 55 66 77 88")
    _send(qtbot, panel, panel.send_once_button)
    assert "at most 8 bytes" in panel.error_label.text()
    assert car.recv(0.1) is None and panel.table.rowCount() == 0


def test_dbc_message_periodic_with_value_table_stop_and_apply(qtbot, panel, car, dbc):
    _choose_message(panel, "BODY_COMMAND")
    _pick(panel, "LockRequest", "Unlock")
    panel.period_spin.setValue(20)
    panel.start_button.click()
    assert not panel.error_label.isVisible(), panel.error_label.text()
    got = car.recv(1.0)
    assert got is not None and got.arbitration_id == 0x2B0
    assert str(dbc.decode_message(0x2B0, got.data)["LockRequest"]) == "Unlock"
    qtbot.waitUntil(lambda: panel.refresh() or int(panel.table.item(0, COL_SENT).text()) >= 3, timeout=3000)
    assert panel.table.item(0, COL_STATUS).text() == "running"
    assert "LockRequest=2" in panel.table.item(0, COL_CONTENT).text()

    # click the job, change a value in the editor, apply: the next frames carry it
    panel.table.selectRow(0)
    panel.table.cellClicked.emit(0, 0)
    _pick(panel, "LockRequest", "Lock")
    panel.apply_button.click()
    assert not panel.error_label.isVisible(), panel.error_label.text()
    count = panel.jobs.jobs()[0].count
    qtbot.waitUntil(lambda: panel.jobs.jobs()[0].count >= count + 2, timeout=5000)

    panel.stop_button.click()  # when it returns, every frame of the job has left
    assert panel.jobs.jobs()[0].status is JobStatus.STOPPED
    frames = _recent(car, 0.0)
    assert str(dbc.decode_message(0x2B0, frames[-1].data)["LockRequest"]) == "Lock"
    panel.refresh()
    assert panel.table.item(0, COL_STATUS).text() == "stopped"
    assert car.recv(0.1) is None

    panel.remove_button.click()
    assert panel.table.rowCount() == 0


def test_multiplexer_page_decides_which_signals_are_sent(qtbot, panel, car, dbc):
    _choose_message(panel, "ENGINE_STATUS_MUX")
    form = panel.signal_form
    assert form.isRowVisible(panel._editors["ManifoldPressure"].field)
    _pick(panel, "EngStatusPage", "Fuel")
    assert not form.isRowVisible(panel._editors["ManifoldPressure"].field)
    assert form.isRowVisible(panel._editors["Lambda"].field)
    spin = panel._editors["Lambda"].widget
    assert isinstance(spin, QDoubleSpinBox)
    assert (spin.minimum(), spin.maximum(), spin.decimals()) == (0.0, 6.5535, 4)  # from the DBC
    spin.setValue(1.02)
    _send(qtbot, panel, panel.send_once_button)
    decoded = dbc.decode_message(960, car.recv(1.0).data, decode_choices=False)
    assert decoded["EngStatusPage"] == 2 and decoded["Lambda"] == pytest.approx(1.02)


def test_disconnect_is_shown(qtbot, panel, source, car):
    panel.id_edit.setText("123")
    panel.data_edit.setText("01 02")
    panel.period_spin.setValue(10)
    panel.start_button.click()
    assert car.recv(1.0) is not None
    source.stop()
    qtbot.waitUntil(
        lambda: panel.refresh() or panel.table.item(0, COL_STATUS).text() == "stopped: disconnected",
        timeout=3000,
    )
    assert panel.notice_label.isVisible() and "stopped" in panel.notice_label.text()
    assert "is stopped" in panel.table.item(0, COL_STATUS).toolTip()
    panel.table.selectRow(0)
    panel.resume_button.click()  # still disconnected: a plain message, no exception
    assert "not connected" in panel.error_label.text()


def test_parse_hex_data():
    assert parse_hex_data("02 01 0c") == b"\x02\x01\x0c"
    assert parse_hex_data("02010C") == b"\x02\x01\x0c"
    assert parse_hex_data("2,1,c") == b"\x02\x01\x0c"
    assert parse_hex_data("") == b""
    for bad in ("123", "0G", "100 2"):
        with pytest.raises(ValueError):
            parse_hex_data(bad)


def test_a_stalled_adapter_does_not_freeze_the_window(qtbot, panel, source, car, monkeypatch):
    # A driver whose send blocks (full TX queue, a server that stopped reading): the click
    # returns at once and the window keeps running; the frame leaves when the driver does.
    import threading

    release = threading.Event()
    bus_send = source.bus.send

    def stalled_send(msg, timeout=None):
        release.wait(10)
        bus_send(msg, timeout)

    monkeypatch.setattr(source.bus, "send", stalled_send)
    panel.editor_tabs.setCurrentIndex(TAB_RAW)
    panel.id_edit.setText("123")
    panel.data_edit.setText("01")
    started = time.monotonic()
    panel.send_once_button.click()
    assert time.monotonic() - started < 0.5
    ticks = []
    qtbot.waitUntil(lambda: ticks.append(1) or len(ticks) > 5, timeout=2000)  # the event loop runs
    assert panel.table.rowCount() == 0 and car.recv(0.05) is None
    release.set()
    qtbot.waitUntil(lambda: panel.sends_done == 1, timeout=5000)
    got = car.recv(1.0)
    assert got is not None and got.arbitration_id == 0x123
    assert panel.table.rowCount() == 1


def test_counter_and_checksum_are_filled_per_frame(qtbot, panel, car, dbc):
    from workshop_app.core.sim.demo_vehicle import xor8

    _choose_message(panel, "ENGINE_DATA")
    counter = panel._editors["EngineData_Counter"]
    assert not counter.widget.isEnabled() and counter.role == "rolling counter"
    panel._editors["EngineSpeed"].set_value(2000.0)
    panel.period_spin.setValue(5)
    panel.start_button.click()
    assert not panel.error_label.isVisible(), panel.error_label.text()
    qtbot.waitUntil(lambda: panel.jobs.jobs()[0].count >= 18, timeout=5000)
    panel.jobs.stop(panel.jobs.jobs()[0].job_id)
    frames = [m for m in _recent(car, 0.1) if m.arbitration_id == 0xC0]
    assert len(frames) >= 18
    counters = [dbc.decode_message(0xC0, m.data, decode_choices=False)["EngineData_Counter"] for m in frames]
    assert counters[:18] == [i % 16 for i in range(18)]
    assert all(m.data[7] == xor8(m.data, 7) for m in frames)
    assert "EngineData_Counter" not in panel.jobs.jobs()[0].values
