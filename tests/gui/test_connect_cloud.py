"""Connecting the window to a cloud vehicle: the dialog's choice, and the whole way through the
Fleet dock to live frames, with the real agent on the simulated car and a real broker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.fleet_broker import FleetBroker
from PySide6.QtCore import QSettings, Qt

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.cloud.agent import CloudAgent
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.history.fleet_store import FleetStore
from workshop_app.core.history.store import HistoryStore
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.factory import SourceSpec
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.gui.connect_dialog import PAGE_CLOUD, ConnectDialog
from workshop_app.gui.fleet_panel import COL_VIN
from workshop_app.gui.main_window import MainWindow
from workshop_app.paths import demo_dbc_path

pytestmark = pytest.mark.gui

VIN = "WSADEM5T2T0000421"
OTHER = "WSADEM5T2T0000422"
WAIT_MS = 20_000


def _shots(tmp_path: Path) -> Path:
    return Path(os.environ.get("WORKSHOP_SCREENSHOTS", tmp_path))


@pytest.fixture
def profile_file(tmp_path: Path) -> Path:
    path = tmp_path / "cloud" / "workshop.json"
    path.parent.mkdir()
    path.write_text("{}", encoding="utf-8")  # the dialog checks it exists; the bus reads it
    return path


def test_the_cloud_choice_gives_the_workshop_cloud_spec(qtbot, profile_file, tmp_path):
    dialog = ConnectDialog(cloud_vins=[VIN, OTHER], cloud_profile=profile_file)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.set_page(PAGE_CLOUD)
    form = dialog.cloud_form
    assert [form.vin_combo.itemText(i) for i in range(form.vin_combo.count())] == [VIN, OTHER]
    assert form.vin == VIN  # the fleet's first (most attention) is proposed
    dialog.grab().save(str(_shots(tmp_path) / "connect_cloud.png"))
    form.vin_combo.setCurrentIndex(1)
    dialog.connect_button.click()
    assert dialog.result() == ConnectDialog.DialogCode.Accepted
    assert dialog.result_spec() == SourceSpec(
        interface="workshop-cloud", channel=OTHER, cloud_profile=profile_file
    )


def test_a_typed_vin_is_checked_and_problems_are_said_in_the_dialog(qtbot, profile_file, tmp_path):
    dialog = ConnectDialog(cloud_profile=tmp_path / "missing.json")
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.set_page(PAGE_CLOUD)
    dialog.cloud_form.vin_combo.setCurrentText("wsadem5t2t0000421")
    dialog.connect_button.click()
    assert dialog.result() != ConnectDialog.DialogCode.Accepted
    assert dialog.error_label.text() == f"There is no cloud profile {tmp_path / 'missing.json'}."
    dialog.cloud_form.profile_edit.setText(str(profile_file))
    dialog.cloud_form.vin_combo.setCurrentText("WSADEM5T2T000042I")  # I is not a VIN letter
    dialog.connect_button.click()
    assert "is not a VIN" in dialog.error_label.text()
    dialog.cloud_form.vin_combo.setCurrentText("wsadem5t2t0000421")  # typed in lower case
    dialog.connect_button.click()
    assert dialog.result() == ConnectDialog.DialogCode.Accepted
    assert dialog.result_spec().channel == VIN


@pytest.fixture
def car(tmp_path: Path) -> Iterator[tuple[FleetBroker, CloudAgent]]:
    """The simulated car with its real cloud agent, on a broker granting garage-1 this car."""
    fleet = FleetBroker(tmp_path / "fleet", [VIN]).start()
    agent = CloudAgent(fleet.profiles[VIN], SourceSpec(), health_interval=1.0, history=tmp_path / "car.db")
    agent.start()
    try:
        yield fleet, agent
    finally:
        agent.stop()
        fleet.close()


@pytest.fixture
def window(qtbot, tmp_path: Path) -> Iterator[MainWindow]:
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    history = HistoryStore(tmp_path / "history.db")
    win = MainWindow(CaptureSession(SimulatorSource(FrameRing()), dbs), settings=settings, history=history)
    qtbot.addWidget(win)
    win.show()
    win.start()
    yield win
    win.close()
    history.close()


def test_fleet_dock_to_live_frames_with_the_link_in_the_status_bar(qtbot, car, window, tmp_path):
    fleet, _agent = car
    profile = fleet.garage.save(tmp_path / "garage-1.json")
    window.cloud.set_profile_path(profile)
    assert not window.cloud.link_label.isVisible()  # the simulator is no cloud link
    window.cloud.show_fleet()
    panel = window.cloud.fleet_panel
    # The agent's first health summary (a quick scan of the car) fills the row.
    qtbot.waitUntil(
        lambda: panel.vins() == [VIN] and panel.model.rows[0].battery_v is not None, timeout=WAIT_MS
    )
    row = panel.model.rows[0]
    assert row.online and row.software and not row.health_from_history
    with FleetStore(tmp_path / "history.db") as stored:
        assert stored.latest(VIN) is not None

    rect = panel.view.visualRect(panel.model.index(0, COL_VIN))
    # A real double click: the press, then the double-click event (Qt checks both hit the row).
    qtbot.mouseClick(panel.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(panel.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    source = window.session.source
    assert getattr(source, "config", None) is not None and source.config.interface == "workshop-cloud"
    assert source.config.channel == VIN
    # The car's own frames arrive through the broker and are decoded by the trace.
    qtbot.waitUntil(lambda: window.session.stats.frames > 100, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.cloud.link_label.text().endswith(" ms"), timeout=WAIT_MS)
    text = window.cloud.link_label.text()
    assert text.startswith("cloud link connected · ") and window.cloud.link_label.isVisible()
    window.grab().save(str(_shots(tmp_path) / "window_cloud.png"))
    panel.grab().save(str(_shots(tmp_path) / "fleet_live.png"))

    # The broker goes away: the status bar and the fleet line say so; both come back on their own.
    fleet.broker.stop()
    qtbot.waitUntil(
        lambda: window.cloud.link_label.text().startswith("cloud link reconnecting"), timeout=WAIT_MS
    )
    assert "#b26a00" in window.cloud.link_label.styleSheet()
    qtbot.waitUntil(lambda: "reconnecting" in panel.status_label.text(), timeout=WAIT_MS)
    window.grab().save(str(_shots(tmp_path) / "window_cloud_reconnecting.png"))
    fleet.broker.start()  # the same port
    qtbot.waitUntil(
        lambda: window.cloud.link_label.text().startswith("cloud link connected"), timeout=WAIT_MS
    )
    qtbot.waitUntil(lambda: "1 online" in panel.status_label.text(), timeout=WAIT_MS)


def test_fleet_without_a_profile_says_how_to_get_one(qtbot, window, tmp_path):
    window.cloud.set_profile_path(tmp_path / "nowhere.json")
    window.cloud.show_fleet()
    assert window.cloud.fleet_dock.isVisible()
    text = window.cloud.fleet_panel.status_label.text()
    assert text.startswith(f"{tmp_path / 'nowhere.json'}: no such cloud profile")
    assert "Choose cloud profile" in text and "workshop cloud broker --dir" in text
    assert window.cloud.fleet_panel.watcher is None
