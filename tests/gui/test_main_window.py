"""The main window on the simulated vehicle, with real widgets offscreen."""

from __future__ import annotations

import can
import pytest
from PySide6.QtCore import QSettings

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.history.store import HistoryStore
from workshop_app.core.logs.playback import PlaybackSource
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.base import SourceState
from workshop_app.core.sources.factory import SourceSpec
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.core.types import Frame
from workshop_app.gui.main_window import MainWindow
from workshop_app.gui.trace_model import COL_DATA, COL_NAME
from workshop_app.paths import demo_dbc_path

pytestmark = pytest.mark.gui


def _window(qtbot, tmp_path) -> MainWindow:
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    history = HistoryStore(tmp_path / "history.db")
    win = MainWindow(CaptureSession(SimulatorSource(FrameRing()), dbs), settings=settings, history=history)
    qtbot.addWidget(win)
    win.show()
    win.start()
    return win


@pytest.fixture
def window(qtbot, tmp_path):
    win = _window(qtbot, tmp_path)
    yield win
    win.close()
    win.history.close()


def _row_of(model, name: str) -> int:
    return next(r for r in range(model.rowCount()) if model.index(r, COL_NAME).data() == name)


def test_trace_fills_with_named_messages_and_expandable_signals(qtbot, window):
    model = window.trace_model
    qtbot.waitUntil(lambda: model.rowCount() >= 14, timeout=5000)
    names = {model.index(r, COL_NAME).data() for r in range(model.rowCount())}
    assert {"ENGINE_DATA", "WHEEL_SPEEDS", "BODY_STATUS", "ESC_DYNAMICS_FD"} <= names
    row = _row_of(model, "ENGINE_DATA")
    parent = model.index(row, 0)
    children = {
        model.index(r, COL_NAME, parent).data(): model.index(r, COL_DATA, parent).data()
        for r in range(model.rowCount(parent))
    }
    assert "EngineSpeed" in children and children["EngineSpeed"].endswith("rpm")
    window.trace_view.expand(parent)
    qtbot.waitUntil(lambda: float(model.index(row, 4).data()) > 50, timeout=3000)  # 10 ms cycle
    gear = model.index(_row_of(model, "TRANSMISSION"), 0)
    labels = {
        model.index(r, COL_NAME, gear).data(): model.index(r, COL_DATA, gear).data()
        for r in range(model.rowCount(gear))
    }
    assert labels["GearSelector"].startswith(("P", "R", "N", "D"))  # value-table label shown


def test_status_bar_shows_rate_and_bus_load(qtbot, window):
    def load() -> float | None:
        text = window.load_label.text()
        return float(text.split()[-1].rstrip("%")) if "bus load" in text and "%" in text else None

    # The demo car on 500 kbit/s, once its engine runs (the first second is key-on traffic only;
    # a loaded machine takes longer to get there, so this waits for the value, not a time).
    qtbot.waitUntil(lambda: (value := load()) is not None and 3 < value < 40, timeout=20_000)
    assert "frames/s" in window.rate_label.text()
    assert "dropped 0" in window.dropped_label.text()


def test_filter_matches_message_and_signal_names(qtbot, window):
    model = window.trace_model
    qtbot.waitUntil(lambda: model.rowCount() >= 14, timeout=5000)
    qtbot.keyClicks(window.filter_edit, "wheelspeedfl")
    visible = [
        model.index(r, COL_NAME).data()
        for r in range(model.rowCount())
        if not window.trace_view.isRowHidden(r, model.index(-1, -1))
    ]
    assert visible == ["WHEEL_SPEEDS"]
    window.filter_edit.clear()
    assert not any(window.trace_view.isRowHidden(r, model.index(-1, -1)) for r in range(model.rowCount()))


def test_bit_view_follows_selection(qtbot, window):
    model = window.trace_model
    qtbot.waitUntil(lambda: model.rowCount() >= 14, timeout=5000)
    window.trace_view.setCurrentIndex(model.index(_row_of(model, "ENGINE_DATA"), 0))
    stats = window.bit_view.stats
    assert stats is not None and stats.arbitration_id == 0x0C0
    qtbot.waitUntil(lambda: sum(window.bit_view.stats.bit_flips) > 0, timeout=3000)  # the rolling counter


def test_chronological_trace_scrolls_and_pauses(qtbot, window):
    window.trace_tabs.setCurrentIndex(1)
    chrono = window.chrono_model
    qtbot.waitUntil(lambda: chrono.rowCount() > 200, timeout=5000)
    window.pause_button.click()
    frozen = chrono.rowCount()
    qtbot.wait(300)
    assert chrono.rowCount() == frozen
    assert chrono.skipped_while_paused > 0
    window.pause_button.click()
    qtbot.waitUntil(lambda: chrono.rowCount() != frozen, timeout=3000)


def test_layout_and_theme_persist_between_runs(qtbot, tmp_path):
    first = _window(qtbot, tmp_path)
    first.bits_dock.hide()
    first.set_theme("dark")
    first.close()
    first.history.close()
    second = _window(qtbot, tmp_path)
    try:
        assert second.bits_dock.isHidden()
        assert second.theme == "dark"
    finally:
        second.set_theme("light")
        second.close()
        second.history.close()


def test_signal_activation_plots_it(qtbot, window):
    window.signal_browser.signal_activated.emit("ENGINE_DATA", "EngineSpeed")
    series = window.session.decoder.subscribe("ENGINE_DATA", "EngineSpeed")
    qtbot.waitUntil(lambda: len(series) > 20, timeout=4000)


def test_switching_source_and_bad_connection_keep_the_window_alive(qtbot, window, tmp_path):
    log = tmp_path / "short.log"
    log.write_text("".join(f"({i * 0.01:.6f}) can0 0C0#0000000000000000\n" for i in range(50)))
    assert window.connect_spec(SourceSpec(replay=log, speed=0))
    qtbot.waitUntil(lambda: window.session.source.state is SourceState.FINISHED, timeout=5000)
    qtbot.waitUntil(lambda: window.session.store.total_frames == 50, timeout=3000)
    assert "end of log" in window.source_label.text()
    assert not window.connect_spec(SourceSpec(interface="no_such_adapter", channel="x"))
    assert "no_such_adapter" in window.statusBar().currentMessage()
    assert window.connect_simulator()
    qtbot.waitUntil(lambda: window.trace_model.rowCount() >= 14, timeout=5000)


def test_transmit_from_the_window_reaches_the_bus(qtbot, window):
    source = window.session.source
    with can.Bus(interface="virtual", channel=source.virtual_channel) as peer:
        window.scheduler.send_once(Frame(0, 0x2B0, b"\x01\x00", "can0", False))
        got = None
        for _ in range(200):
            got = peer.recv(0.05)
            if got is not None and got.arbitration_id == 0x2B0:
                break
        assert got is not None and got.arbitration_id == 0x2B0


def test_window_screenshot(qtbot, window, tmp_path):
    qtbot.waitUntil(lambda: window.trace_model.rowCount() >= 14, timeout=5000)
    path = tmp_path / "main.png"
    assert window.grab().save(str(path))
    assert path.stat().st_size > 20_000


def test_open_log_analyses_it_and_plays_it_into_the_trace(qtbot, window, shared_data):
    log = shared_data / "logs" / "savvycan_tesla_model_s_candump.log"
    window.add_database(shared_data / "dbc" / "tesla_powertrain.dbc")
    window.open_log(log)
    qtbot.waitUntil(lambda: isinstance(window.session.source, PlaybackSource), timeout=10_000)
    bar = window.playback_bar
    assert bar.isVisible() and window.session.source.duration > 7.9
    assert window.session.store.total_frames == 0  # paused at the start
    bar.step_button.click()
    qtbot.waitUntil(lambda: window.session.store.total_frames == 1, timeout=3000)
    bar.speed_combo.setCurrentIndex(bar.speed_combo.count() - 1)  # 100x
    bar.play_button.click()
    qtbot.waitUntil(lambda: window.session.source.finished.is_set(), timeout=10_000)
    qtbot.waitUntil(lambda: window.session.store.total_frames == 12_974, timeout=3000)
    qtbot.waitUntil(lambda: window.trace_model.rowCount() == 180, timeout=3000)
    names = {window.trace_model.index(r, COL_NAME).data() for r in range(window.trace_model.rowCount())}
    assert "DI_torque2" in names


def test_expanded_messages_repaint_their_signal_rows_only_while_on_screen(qtbot, window):
    model, view = window.trace_model, window.trace_view
    qtbot.waitUntil(lambda: model.rowCount() >= 14, timeout=5000)
    view.expandAll()  # every message's signals open: the last messages are far below the fold
    first, last = window._shown_messages()
    assert first == 0 and last < model.rowCount() - 1
    repainted: set[int] = set()  # messages whose signal rows were repainted
    rows: set[int] = set()  # message rows repainted

    def on_changed(top_left, bottom_right, _roles=()) -> None:
        if top_left.parent().isValid():
            repainted.add(top_left.parent().row())
        else:
            rows.update(range(top_left.row(), bottom_right.row() + 1))

    model.dataChanged.connect(on_changed)
    try:
        qtbot.waitUntil(lambda: bool(repainted & set(range(first, last + 1))), timeout=5000)
        # Rows scrolled away are not repainted (they are painted afresh when shown).
        assert not repainted & set(range(last + 1, model.rowCount()))
        rows.clear()
        qtbot.waitUntil(lambda: bool(rows), timeout=5000)
        assert max(rows) <= last
        view.scrollToBottom()
        repainted.clear()
        first, last = window._shown_messages()
        assert last == model.rowCount() - 1 and first > 0
        qtbot.waitUntil(lambda: bool(repainted & set(range(first, last + 1))), timeout=5000)
        assert not repainted & set(range(first))
    finally:
        model.dataChanged.disconnect(on_changed)
