"""The first window a new user sees: default plots, dock sizes, a saved layout winning over both."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.plot_layout import default_plot_signals
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.gui.main_window import MainWindow
from workshop_app.paths import demo_dbc_path

pytestmark = pytest.mark.gui

KEY_SIGNALS = {
    ("ENGINE_DATA", "EngineSpeed"),
    ("ABS_STATUS", "VehicleSpeed"),
    ("ENGINE_TEMPS", "CoolantTemp"),
    ("BATTERY_STATUS", "BatteryVoltage"),
}


def _open(qtbot, settings_path: Path, dbc: Path | None = None) -> MainWindow:
    dbs = DatabaseSet()
    dbs.add(dbc or demo_dbc_path())
    settings = QSettings(str(settings_path), QSettings.Format.IniFormat)
    win = MainWindow(CaptureSession(SimulatorSource(FrameRing()), dbs), settings=settings)
    qtbot.addWidget(win)
    win.resize(1440, 900)
    win.show()
    win.start()
    return win


def _plotted(win: MainWindow) -> set[tuple[str, str]]:
    return {key for plot in win.plot_panel.signals() for key in plot}


def _points(item) -> int:
    x, _ = item.getData()
    return 0 if x is None else len(x)


def _curves_with_data(win: MainWindow) -> int:
    panel = win.plot_panel
    return sum(
        1
        for index, plot in enumerate(panel.signals())
        for message, signal in plot
        if _points(panel.curve_item(message, signal, index)) > 1
    )


def test_demo_database_names_its_key_signals() -> None:
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    groups = default_plot_signals(dbs)
    assert {key for group in groups for key in group} == KEY_SIGNALS
    assert groups[0] == (("ENGINE_DATA", "EngineSpeed"),)  # ordered by the attribute's value


def test_a_database_without_the_attribute_names_none(tmp_path: Path) -> None:
    dbc = tmp_path / "plain.dbc"
    dbc.write_text(
        'VERSION ""\nNS_ :\nBS_:\nBU_: ECU\n'
        'BO_ 256 SPEED: 8 ECU\n SG_ EngineSpeed : 0|16@1+ (1,0) [0|65535] "rpm" Vector__XXX\n'
    )
    dbs = DatabaseSet()
    dbs.add(dbc)
    assert default_plot_signals(dbs) == ()


def test_first_start_plots_key_signals_moving(qtbot, tmp_path):
    # How fast is measured by benchmarks/first_window.py; here only that they come and move.
    win = _open(qtbot, tmp_path / "fresh.ini")
    try:
        assert _plotted(win) == KEY_SIGNALS
        assert win.plots_dock.isVisible() and not win.plots_dock.visibleRegion().isEmpty()
        qtbot.waitUntil(lambda: _curves_with_data(win) >= 3, timeout=20_000)
        engine = win.plot_panel.curve_item("ENGINE_DATA", "EngineSpeed", 0)
        newest = float(engine.getData()[0][-1])
        qtbot.waitUntil(lambda: float(engine.getData()[0][-1]) > newest + 0.2, timeout=20_000)  # moving
    finally:
        win.close()


def test_first_start_docks_are_sized_to_their_content(qtbot, tmp_path):
    win = _open(qtbot, tmp_path / "fresh.ini")
    try:
        qtbot.waitUntil(lambda: _curves_with_data(win) >= 3, timeout=20_000)
        tree = win.signal_browser.tree
        row_height = tree.rowHeight(tree.model().index(0, 0))
        assert row_height > 0
        assert tree.viewport().height() // row_height >= 14  # the demo database's messages fit
        # The bit grid shows all eight bytes of a classic frame without scrolling.
        assert win.bit_view.height() >= win.bit_view.sizeHint().height()
        # The plots fill their dock: no big empty "drop here" area under them.
        panel = win.plot_panel
        filled = sum(item.height() for item in panel.plot_items())
        assert filled >= 0.8 * panel.canvas.viewport().height()
        # The trace keeps room for every message of the demo car.
        trace = win.trace_view
        assert trace.viewport().height() >= 14 * trace.sizeHintForRow(0)
    finally:
        win.close()


def test_a_saved_layout_wins_over_the_defaults(qtbot, tmp_path):
    ini = tmp_path / "kept.ini"
    first = _open(qtbot, ini)
    first.plot_panel.clear()
    first.plot_panel.add_signal("TRANSMISSION", "GearSelector")
    first.bits_dock.hide()
    first.close()
    second = _open(qtbot, ini)
    try:
        assert second.plot_panel.signals() == [[("TRANSMISSION", "GearSelector")]]
        assert second.bits_dock.isHidden()
    finally:
        second.close()
    third_ini = tmp_path / "emptied.ini"
    third = _open(qtbot, third_ini)
    third.plot_panel.clear()  # a user who wants no plots keeps none
    third.close()
    fourth = _open(qtbot, third_ini)
    try:
        assert fourth.plot_panel.plot_count == 0
    finally:
        fourth.close()


def test_unknown_database_opens_with_no_plots(qtbot, tmp_path):
    dbc = tmp_path / "plain.dbc"
    dbc.write_text(
        'VERSION ""\nNS_ :\nBS_:\nBU_: ECU\n'
        'BO_ 192 ENGINE_DATA: 8 ECU\n SG_ EngineSpeed : 0|16@1+ (0.25,0) [0|16383] "rpm" Vector__XXX\n'
    )
    win = _open(qtbot, tmp_path / "fresh.ini", dbc)
    try:
        assert win.plot_panel.plot_count == 0
    finally:
        win.close()


def test_a_damaged_saved_layout_falls_back_to_the_defaults_and_says_so(qtbot, tmp_path):
    ini = tmp_path / "damaged.ini"
    settings = QSettings(str(ini), QSettings.Format.IniFormat)
    settings.setValue("plots/layout", '{"format": "workshop-plot-layout", "version": 1, "plots": [')
    settings.sync()
    win = _open(qtbot, ini)
    try:
        assert _plotted(win) == KEY_SIGNALS
        message = win.statusBar().currentMessage()
        assert "Saved plots not restored" in message and str(ini) in message and "line 1" in message
    finally:
        win.close()
