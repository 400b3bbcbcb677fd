"""The Fleet dock offscreen, fed by a FleetWatcher on a real broker (mutual TLS, ACL)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.fleet_broker import FleetBroker, dtc, health, publish
from PySide6.QtCore import Qt

from workshop_app.core.cloud import topics
from workshop_app.core.cloud.fleet import FleetWatcher
from workshop_app.gui.fleet_panel import (
    COL_BATTERY,
    COL_DTCS,
    COL_REASONS,
    COL_STATE,
    COL_VIN,
    FleetPanel,
    row_colour,
)

pytestmark = pytest.mark.gui

VIN1, VIN2, VIN3 = "WSADEM5T2T0000421", "WSADEM5T2T0000422", "WSADEM5T2T0000423"
WAIT_MS = 10_000


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[FleetBroker]:
    trial = FleetBroker(tmp_path / "fleet", [VIN1, VIN2, VIN3]).start()
    try:
        yield trial
    finally:
        trial.close()


@pytest.fixture
def panel(qtbot, fleet: FleetBroker) -> Iterator[FleetPanel]:
    widget = FleetPanel()
    qtbot.addWidget(widget)
    widget.resize(1100, 260)
    widget.show()
    widget.set_watcher(FleetWatcher(fleet.garage))
    assert widget.watcher is not None
    qtbot.waitUntil(lambda: widget.watcher is not None and widget.watcher.connected, timeout=WAIT_MS)
    yield widget
    widget.stop()


def _cell(
    panel: FleetPanel, row: int, col: int, role: Qt.ItemDataRole = Qt.ItemDataRole.DisplayRole
) -> object:
    return panel.model.index(row, col).data(role)


def test_rows_arrive_live_in_attention_order_and_a_double_click_asks_to_connect(
    qtbot, fleet, panel, tmp_path
):
    healthy, weak, faulty = (fleet.connect(vin) for vin in (VIN1, VIN2, VIN3))
    publish(healthy, VIN1, topics.HEALTH, health(VIN1, 1.0, battery_v=12.6, software={"ECM": "SW 0412"}))
    publish(weak, VIN2, topics.HEALTH, health(VIN2, 1.0, battery_v=11.5))
    publish(faulty, VIN3, topics.HEALTH, health(VIN3, 1.0, dtcs=[dtc("ECM", "P0302", 0xAF)], battery_v=12.4))
    # Nothing polls for these rows: they come through the watcher's on_change and the bridge.
    qtbot.waitUntil(lambda: panel.model.rowCount() == 3, timeout=WAIT_MS)
    assert panel.vins() == [VIN3, VIN2, VIN1]
    assert _cell(panel, 0, COL_STATE) == "online"
    assert _cell(panel, 0, COL_DTCS) == "1"
    assert _cell(panel, 1, COL_BATTERY) == "11.5 V"
    assert _cell(panel, 0, COL_REASONS) == "warning lamp (MIL) on; 1 fault code"
    tooltip = str(_cell(panel, 0, COL_VIN, Qt.ItemDataRole.ToolTipRole))
    assert "warning lamp (MIL) on" in tooltip and "ECM:P0302" in tooltip
    assert [row_colour(r) for r in panel.model.rows] == ["#d1242f", "#b26a00", "#1a7f37"]
    assert "3 vehicle(s), 3 online, 2 need attention" in panel.status_label.text()

    # The faulty car drops off the network: still first, now offline with its fault.
    publish(faulty, VIN3, topics.STATE, b'{"state": "offline"}')
    qtbot.waitUntil(lambda: _cell(panel, 0, COL_STATE) == "offline", timeout=WAIT_MS)
    assert _cell(panel, 0, COL_REASONS).startswith("offline with 1 fault code")

    shots = Path(os.environ.get("WORKSHOP_SCREENSHOTS", tmp_path))
    panel.grab().save(str(shots / "fleet_panel.png"))

    # Double-click the weak car's row → the window is asked to connect to that VIN, once.
    rect = panel.view.visualRect(panel.model.index(1, COL_VIN))
    asked: list[str] = []
    panel.vehicle_activated.connect(asked.append)
    qtbot.mouseClick(panel.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(panel.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert asked == [VIN2]
    panel.view.setFocus()
    qtbot.keyClick(panel.view, Qt.Key.Key_Up)
    qtbot.keyClick(panel.view, Qt.Key.Key_Return)
    assert asked == [VIN2, VIN3]
    panel.view.selectRow(1)
    assert panel.selected_vin() == VIN2
    assert panel.connect_button.isEnabled()
    with qtbot.waitSignal(panel.vehicle_activated, timeout=WAIT_MS) as signal:
        panel.connect_button.click()
    assert signal.args == [VIN2]


def test_the_selection_follows_its_vehicle_when_the_order_changes(qtbot, fleet, panel):
    first, second = fleet.connect(VIN1), fleet.connect(VIN2)
    publish(first, VIN1, topics.HEALTH, health(VIN1, 1.0, battery_v=11.0))
    publish(second, VIN2, topics.HEALTH, health(VIN2, 1.0, battery_v=12.7))
    qtbot.waitUntil(lambda: panel.vins() == [VIN1, VIN2], timeout=WAIT_MS)
    panel.view.selectRow(1)
    assert panel.selected_vin() == VIN2
    publish(second, VIN2, topics.HEALTH, health(VIN2, 2.0, dtcs=[dtc("ABS", "C0035", 0x08)]))
    qtbot.waitUntil(lambda: panel.vins() == [VIN2, VIN1], timeout=WAIT_MS)
    assert panel.selected_vin() == VIN2


def test_a_profile_whose_files_are_missing_says_so_in_the_panel(qtbot, fleet, tmp_path):
    from dataclasses import replace

    widget = FleetPanel()
    qtbot.addWidget(widget)
    widget.set_watcher(FleetWatcher(replace(fleet.garage, key=tmp_path / "gone.key")))
    assert widget.watcher is None
    assert widget.status_label.text().startswith("Cloud: ")
    assert "gone.key" in widget.status_label.text() and "\n" not in widget.status_label.text()


def test_a_car_gone_quiet_turns_to_not_heard_from_without_any_message(qtbot, fleet):
    now = [1_000_000.0]
    widget = FleetPanel()
    qtbot.addWidget(widget)
    widget.set_watcher(FleetWatcher(fleet.garage, clock=lambda: now[0]))
    try:
        qtbot.waitUntil(lambda: widget.watcher is not None and widget.watcher.connected, timeout=WAIT_MS)
        car = fleet.connect(VIN1)
        publish(car, VIN1, topics.HEALTH, health(VIN1, now[0], battery_v=12.6))  # interval 60 s
        qtbot.waitUntil(lambda: _cell(widget, 0, COL_STATE) == "online", timeout=WAIT_MS)
        now[0] += 3 * 60 + 1  # three health intervals of silence: only the panel's timer can notice
        qtbot.waitUntil(
            lambda: str(_cell(widget, 0, COL_STATE)).startswith("not heard from since"), timeout=WAIT_MS
        )
        assert widget.model.rows[0].reasons == (widget.model.rows[0].state_text,)
        assert "0 online" in widget.status_label.text()
    finally:
        widget.stop()
