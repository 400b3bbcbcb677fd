"""The Fault codes dock: scan, network view, details, clear, report and triggers, on the simulator."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QTimer
from test_main_window import _window

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.diag.ecu_spec import demo_vehicle_spec
from workshop_app.core.diag.model import ScanLabel
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.core.workshop import WorkshopSession
from workshop_app.gui.dtc_panel import DtcPanel
from workshop_app.paths import demo_dbc_path

pytestmark = pytest.mark.gui


@pytest.fixture
def window(qtbot, tmp_path):
    win = _window(qtbot, tmp_path)
    win.session.source.ecus.set_confirm_seconds(0.3)
    yield win
    win.close()
    win.history.close()


def _texts(table, column: int) -> list[str]:
    return [table.item(r, column).text() for r in range(table.rowCount())]


def test_scan_shows_network_and_codes_then_clear_after_repair(qtbot, window, tmp_path):
    panel = window.dtc_panel
    assert panel.sim_box.isVisibleTo(panel)
    vehicle = window.session.source.vehicle
    faults = ["coolant_sensor_open", "wheel_speed_fl_dropout"]
    for name in faults:
        vehicle.inject_fault(name)
    assert window.session.source.ecus.wait_confirmed(faults, timeout=20)  # the ECUs detect and confirm
    window.plot_panel.add_signal("ENGINE_TEMPS", "CoolantTemp")
    panel.label_combo.setCurrentIndex(1)  # pre-repair
    with qtbot.waitSignal(panel.scan_finished, timeout=60_000) as blocker:
        panel.scan_button.click()
        assert panel.busy and not panel.scan_button.isEnabled()  # the GUI thread is free meanwhile
    result = blocker.args[0]
    assert result.label is ScanLabel.PRE_REPAIR and result.scan_id is not None
    assert _texts(panel.network_table, 0) == ["ECM", "TCM", "ABS", "BCM", "GW"]
    assert _texts(panel.network_table, 2) == ["Faults", "OK", "Faults", "OK", "OK"]
    assert _texts(panel.network_table, 3) == ["1", "0", "1", "0", "0"]
    assert _texts(panel.dtc_table, 1) == ["P0118", "C0035"]
    assert "2 fault codes" in panel.status_label.text()
    panel.dtc_table.selectRow(0)
    details = dict(zip(_texts(panel.detail_table, 0), _texts(panel.detail_table, 1), strict=True))
    assert details["Freeze frame 1: Coolant temperature"] == "-40 °C"
    panel.network_table.selectRow(0)
    details = dict(zip(_texts(panel.detail_table, 0), _texts(panel.detail_table, 1), strict=True))
    assert details["VIN"] == window.vehicle_spec.vin
    # The codes are marked on the plot timeline.
    assert [text for _, text in window.plot_panel.event_markers] == ["P0118 ECM", "C0035 ABS"]
    window.grab().save(str(tmp_path / "scan.png"))

    panel.write_report(tmp_path / "before.html")
    assert "P0118" in (tmp_path / "before.html").read_text(encoding="utf-8")

    panel.repair_button.click()
    with qtbot.waitSignal(panel.clear_finished, timeout=90_000) as blocker:
        assert panel.clear()
    assert all(o.done for o in blocker.args[0])
    assert panel.dtc_table.rowCount() == 0
    assert _texts(panel.network_table, 2) == ["OK"] * 5
    assert "2 codes gone" in panel.status_label.text()
    labels = [r.label.value for r in window.history.scans()]
    assert labels == ["post-repair", "pre-repair", "pre-repair"]
    pdf = panel.write_report(tmp_path / "after.pdf")
    assert pdf.read_bytes().startswith(b"%PDF")
    # The vehicle's history: every scan, newest first, and the clears on the timeline.
    assert _texts(panel.scans_table, 2) == ["post-repair", "pre-repair", "pre-repair"]
    assert _texts(panel.scans_table, 3) == ["0", "2", "2"]
    events = _texts(panel.timeline_table, 1)
    assert sum("Cleared" in e for e in events) == 5 and sum(e.startswith("Scan") for e in events) == 3
    # The clears sit between the pre-repair scan and the post-repair scan that followed them.
    kinds = [e.kind for e in window.history.timeline(result.vin)]
    assert kinds == ["scan", "scan", *["clear"] * 5, "scan"], kinds
    panel.scans_table.cellDoubleClicked.emit(2, 0)  # the first scan, before the clear
    assert _texts(panel.dtc_table, 1) == ["P0118", "C0035"]
    assert "Stored scan" in panel.status_label.text()


def test_trigger_saves_a_recording_when_a_code_appears(qtbot, window):
    panel = window.dtc_panel
    panel.watch_check.setChecked(True)
    panel.pre_spin.setValue(2)
    panel.post_spin.setValue(1)
    panel.trigger_box.watch_seconds = 0.3
    panel.arm_button.setChecked(True)
    assert panel.trigger is not None, panel.trigger_label.text()
    # The watch's first read learns the (empty) fault memory.
    qtbot.waitUntil(lambda: "stored fault codes read" in panel.trigger_label.text(), timeout=30_000)
    window.session.source.vehicle.inject_fault("misfire_cyl2")
    with qtbot.waitSignal(panel.trigger_saved, timeout=30_000) as blocker:
        pass
    event = blocker.args[0]
    assert "P0302" in event.reason and event.path.exists()
    assert event.summary.frames_written > 100  # ~3 s of the simulated car's traffic
    rows = window.history.recordings()
    assert rows and "trigger: fault code P0302" in (rows[0].notes or "")
    assert not panel.arm_button.isChecked()


def test_scan_on_a_replayed_log_explains_why_not(qtbot, window, tmp_path):
    log = tmp_path / "x.log"
    log.write_text("(1.0) can0 123#00\n")
    from workshop_app.core.sources.factory import SourceSpec

    window.connect_spec(SourceSpec(replay=log))
    assert not window.dtc_panel.start_scan()
    assert "live connection" in window.dtc_panel.status_label.text()
    assert not window.dtc_panel.sim_box.isVisibleTo(window.dtc_panel)


def test_on_a_workshop_session_the_session_feeds_the_trigger(qtbot, tmp_path):
    """Given the WorkshopSession, the dock uses its diagnostics; the session's ticks alone feed them."""
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    session = WorkshopSession(SimulatorSource(FrameRing()), dbs, vehicle_spec=demo_vehicle_spec())
    panel = DtcPanel(session, session.vehicle_spec)
    qtbot.addWidget(panel)
    timer = QTimer()
    timer.timeout.connect(session.tick)  # the window's tick; nobody calls panel.feed
    session.start()
    timer.start(30)
    try:
        assert panel.jobs is session.diagnostics
        panel.signal_edit.setText("ENGINE_TEMPS.CoolantTemp")
        panel.limit_spin.setValue(-40)  # the car is warmer than that from its first frame
        panel.pre_spin.setValue(1)
        panel.post_spin.setValue(0.5)
        with qtbot.waitSignal(panel.trigger_saved, timeout=30_000) as blocker:
            panel.arm_button.setChecked(True)
        event = blocker.args[0]
        assert "ENGINE_TEMPS.CoolantTemp > -40" in event.reason and event.path.exists()
        assert event.summary.frames_written > 10
        assert "Saved" in panel.trigger_label.text() and not panel.arm_button.isChecked()
        panel.grab().save(str(tmp_path / "trigger.png"))
    finally:
        timer.stop()
        panel.close_diag()
        session.close()
