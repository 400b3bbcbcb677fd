"""LogAnalysisView on the real Tesla log: load in the background, tables, plots, range, markers."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import Qt

from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.logs.analysis import LoadedLog, MarkerSet, range_statistics
from workshop_app.core.logs.columns import FrameColumns
from workshop_app.gui.log_view import LogAnalysisView

pytestmark = pytest.mark.gui

DATA = Path(__file__).resolve().parents[1] / "data"
TESLA_LOG = DATA / "logs" / "savvycan_tesla_model_s_candump.log"
TESLA_DBC = DATA / "dbc" / "tesla_powertrain.dbc"


@pytest.fixture
def view(qtbot) -> LogAnalysisView:
    assert TESLA_DBC.is_file() and TESLA_LOG.is_file(), f"test data missing under {DATA}"
    dbs = DatabaseSet()
    dbs.add(TESLA_DBC)
    widget = LogAnalysisView(dbs)
    qtbot.addWidget(widget)
    widget.resize(1200, 760)
    with qtbot.waitExposed(widget):
        widget.show()
    return widget


@pytest.fixture
def tesla_log(tmp_path: Path) -> Path:
    # A copy, so the markers file lands in tmp_path and not beside the test data.
    copy = tmp_path / TESLA_LOG.name
    copy.write_bytes(TESLA_LOG.read_bytes())
    return copy


def load(qtbot, view: LogAnalysisView, path: Path) -> LoadedLog:
    with qtbot.waitSignal(view.loaded, timeout=20_000) as blocker:
        view.open_log(path)
    assert not view.loading
    return blocker.args[0]


def curve_data(view: LogAnalysisView, message: str, signal: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = view.curve_item(message, signal).getOriginalDataset()
    return x, y


def test_open_fills_tables_and_plots_whole_signal(qtbot, view, tesla_log):
    log = load(qtbot, view, tesla_log)
    assert len(log.columns) == 12_974 and log.result.decoded_frames == 2_423
    assert view.message_table.rowCount() > 0
    counts = [int(view.message_table.item(r, 2).data(0x0100)) for r in range(view.message_table.rowCount())]
    assert sum(counts) == 12_974
    assert view.signal_table.rowCount() == len(log.result.signals)
    assert "12,974 frames" in view.title_label.text()

    view.signal_filter.setText("motorrpm")
    assert view.visible_signals() == [("DI_torque1", "DI_motorRPM")]
    view.signal_filter.clear()
    assert len(view.visible_signals()) == len(log.result.signals)

    view.plot_signal("DI_torque1", "DI_motorRPM")
    view.plot_signal("DI_torque2", "DI_gear")  # a value table: steps and state names on the axis
    decoded = log.result.signals[("DI_torque1", "DI_motorRPM")]
    x, y = curve_data(view, "DI_torque1", "DI_motorRPM")
    np.testing.assert_array_equal(y, decoded.values)
    np.testing.assert_allclose(x, decoded.timestamps - view.time_origin)
    item = view.curve_item("DI_torque1", "DI_motorRPM")
    assert item.opts["autoDownsample"] and item.opts["downsampleMethod"] == "peak"
    assert item.opts["clipToView"]
    gear_plot = view.plot_items()[1]
    assert view.curve_item("DI_torque2", "DI_gear").opts["stepMode"] == "right"
    ticks = gear_plot.getAxis("left")._tickLevels
    assert ticks and any(label for _, label in ticks[0])
    assert gear_plot.getViewBox().linkedView(0) is view.plot_items()[0].getViewBox()


def test_double_click_plots_the_signal(qtbot, view, tesla_log):
    load(qtbot, view, tesla_log)
    view.signal_filter.setText("DI_vehicleSpeed")
    (key,) = view.visible_signals()
    row = next(r for r in range(view.signal_table.rowCount()) if not view.signal_table.isRowHidden(r))
    view.signal_table.itemActivated.emit(view.signal_table.item(row, 2))
    assert view.plotted == [key]


def test_range_stats_and_cursor_values(qtbot, view, tesla_log):
    log = load(qtbot, view, tesla_log)
    keys = [("DI_torque1", "DI_motorRPM"), ("DI_torque2", "DI_vehicleSpeed")]
    for key in keys:
        view.plot_signal(*key)
    view.set_range(2.0, 5.5)
    stats = view.range_stats()
    assert set(stats) == set(keys)
    for key in keys:
        expected = range_statistics(log.result.signals[key], view.time_origin + 2.0, view.time_origin + 5.5)
        assert stats[key] == expected and expected.count > 0
    assert view.stats_table.rowCount() == 2 and not view.stats_table.isHidden()

    view.set_cursor(3.0)
    values = view.cursor_values()
    for key in keys:
        s = log.result.signals[key]
        i = np.searchsorted(s.timestamps, view.time_origin + 3.0, side="right") - 1
        assert values[key] == s.values[i]
    assert view.cursor_label.text() == "Cursor at 3.000 s · range 2.000 s – 5.500 s (3.500 s)"
    view.set_cursor(-1.0)  # before the first sample: nothing to show
    assert set(view.cursor_values().values()) == {None}

    view.fit_all()
    lo, hi = view.x_range()
    assert lo <= 0.0 and hi >= log.columns.timestamp.max() - view.time_origin


def test_markers_are_listed_saved_and_jump(qtbot, view, tesla_log):
    load(qtbot, view, tesla_log)
    view.plot_signal("DI_torque1", "DI_motorRPM")
    view.add_marker(4.0, "pedal pressed")
    view.add_marker(1.5, "start")
    assert view.marker_list.count() == 2
    assert "start" in view.marker_list.item(0).text()
    saved = MarkerSet.load(tesla_log).list()
    assert [(round(m.t - view.time_origin, 6), m.note) for m in saved] == [
        (1.5, "start"),
        (4.0, "pedal pressed"),
    ]
    view.marker_list.itemActivated.emit(view.marker_list.item(1))
    assert view.cursor_time() == pytest.approx(4.0)
    lo, hi = view.x_range()
    assert lo < 4.0 < hi

    other = LogAnalysisView(view.databases)  # a fresh view finds the markers beside the log
    qtbot.addWidget(other)
    load(qtbot, other, tesla_log)
    assert other.marker_list.count() == 2


def test_play_in_trace_emits_the_columns(qtbot, view, tesla_log):
    log = load(qtbot, view, tesla_log)
    assert view.play_button.isEnabled()
    with qtbot.waitSignal(view.playback_requested) as blocker:
        view.play_button.click()
    assert isinstance(blocker.args[0], FrameColumns) and blocker.args[0] is log.columns


def _big_log(path: Path, frames: int) -> Path:
    t = 1_700_000_000.0 + np.arange(frames) * 0.0005
    ids = np.array([0x108, 0x118, 0x20A, 0x3D2])[np.arange(frames) % 4]
    lines = [
        f"({ts:.6f}) can0 {i:03X}#0011223344556677\n" for ts, i in zip(t.tolist(), ids.tolist(), strict=True)
    ]
    path.write_text("".join(lines))
    return path


def test_cancel_on_a_big_log_leaves_no_thread(qtbot, view, tmp_path):
    big = _big_log(tmp_path / "big.log", 300_000)
    with qtbot.waitSignal(view.load_failed, timeout=20_000):
        view.open_log(big)
        assert view.loading and view._progress_widget.isVisible()
        view.cancel()
    assert not view.loading
    assert "cancelled" in view.message_label.text()
    assert not view._progress_widget.isVisible()
    assert not [t for t in threading.enumerate() if t.name.startswith("workshop-")]


def test_progress_shows_phase_percent_and_rate(qtbot, view, tmp_path):
    big = _big_log(tmp_path / "big.log", 300_000)
    formats: list[str] = []
    view.progress_bar.valueChanged.connect(lambda _v: formats.append(view.progress_bar.format()))
    load(qtbot, view, big)
    assert any(f.startswith("Reading ") and "MB/s" in f for f in formats)
    assert any(f.startswith("Decoding ") for f in formats)


def test_corrupt_log_shows_file_and_line(qtbot, view, tmp_path):
    lines = TESLA_LOG.read_text().splitlines()[:40]
    lines[29] = "(166.5) vcan0 garbage"
    bad = tmp_path / "corrupt.log"
    bad.write_text("\n".join(lines) + "\n")
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        view.open_log(bad)
    text = view.message_label.text()
    assert view.message_label.isVisibleTo(view)
    assert "could not be read" in text and "corrupt.log:30" in text and "39 frames kept" in text
    assert view.log is not None and len(view.log.columns) == 39  # every good frame stays browsable
    assert view.signal_table.rowCount() == len(view.log.result.signals) > 0


def test_screenshot(qtbot, view, tesla_log):
    load(qtbot, view, tesla_log)
    view.plot_signal("DI_torque1", "DI_motorRPM")
    view.plot_signal("DI_torque2", "DI_vehicleSpeed")
    view.plot_signal("DI_torque2", "DI_gear")
    view.set_range(3.0, 5.0)
    view.set_cursor(2.0)
    view.add_marker(6.0, "launch")
    qtbot.wait(50)
    assert view.grab().save("/tmp/logview.png")


def test_zoom_fit_all_and_click_places_cursor(qtbot, view, tesla_log):
    load(qtbot, view, tesla_log)
    view.plot_signal("DI_torque1", "DI_motorRPM")
    view.plot_signal("DI_torque2", "DI_vehicleSpeed")
    whole = view.x_range()
    box = view.plot_items()[0].getViewBox()
    box.scaleBy(x=0.25, center=(4.0, 0.0))  # what a wheel turn does, time axis only
    lo, hi = view.x_range()
    assert hi - lo < (whole[1] - whole[0]) / 2
    assert view.plot_items()[1].getViewBox().viewRange()[0] == pytest.approx([lo, hi])  # linked x
    view.fit_all()
    assert view.x_range() == pytest.approx(whole)

    qtbot.wait(20)  # let the layout settle before mapping the scene to the screen
    scene_point = box.mapViewToScene(pg.Point(3.0, 0.0))
    widget_point = view.canvas.mapFromScene(scene_point)
    qtbot.mouseClick(view.canvas.viewport(), Qt.MouseButton.LeftButton, pos=widget_point)
    assert view.cursor_time() == pytest.approx(3.0, abs=0.1)
    assert all(value is not None for value in view.cursor_values().values())


def test_closing_during_a_load_stops_the_thread(qtbot, view, tmp_path):
    big = _big_log(tmp_path / "big.log", 300_000)
    view.open_log(big)
    assert any(t.name == "workshop-log-load" for t in threading.enumerate())
    view.close()
    assert not view.loading
    assert not [t for t in threading.enumerate() if t.name.startswith("workshop-")]
