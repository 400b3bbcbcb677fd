"""Each panel follows a WorkshopSession itself: ``follow()`` subscribes it to what it shows, and
once its subscriptions are dropped (as ``MainWindow.closeEvent`` does) ticks no longer reach it.

Real parts: the simulated car feeding a real WorkshopSession, the demo DBC, a replayed log, real
widgets offscreen. Ticks are driven by the test (the window's bridge would drive them ~30 Hz).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.sim_workshop import simulated_workshop
from helpers.sim_workshop import tick_until as _tick_until
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QStatusBar

from workshop_app.core.sources.adapter import AdapterSource
from workshop_app.core.sources.base import SourceState
from workshop_app.core.sources.factory import SourceSpec
from workshop_app.core.sources.replay import ReplaySource
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.core.types import BusConfig, Frame
from workshop_app.core.workshop import Subscription, WorkshopSession
from workshop_app.gui.link_status import CLOUD_INTERFACE, LinkStatus
from workshop_app.gui.main_window import MainWindow
from workshop_app.gui.playback_bar import PlaybackBar
from workshop_app.gui.plot_panel import PlotPanel
from workshop_app.gui.signal_browser import SignalBrowser
from workshop_app.gui.transmit_panel import TransmitPanel

pytestmark = pytest.mark.gui

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture
def workshop() -> Iterator[WorkshopSession]:
    with simulated_workshop() as session:
        yield session


def _drop(workshop: WorkshopSession, subscriptions: list[Subscription]) -> None:
    for kind, fn in subscriptions:  # what MainWindow.closeEvent does with every panel's
        workshop.unsubscribe(kind, fn)


def _log(path: Path, n: int = 40, gap: float = 0.5) -> Path:
    path.write_text("".join(f"({1000 + i * gap:.6f}) can0 0C0#{i:02X}00\n" for i in range(n)))
    return path


def test_plot_panel_draws_on_the_ticks_it_follows(qtbot, workshop):
    panel = PlotPanel(workshop.capture)
    qtbot.addWidget(panel)
    panel.show()  # a hidden panel skips its redraws (test_plot_redraws)
    panel.add_signal("ENGINE_DATA", "EngineSpeed")
    curve = panel._plots[0].curves[0]

    def drawn() -> int:
        x, _ = panel.curve_item("ENGINE_DATA", "EngineSpeed").getData()
        return 0 if x is None else len(x)

    subscriptions = panel.follow(workshop)
    assert [kind for kind, _ in subscriptions] == ["stats"]
    _tick_until(workshop, lambda: drawn() >= 5, "the curve to be drawn from ticks")

    _drop(workshop, subscriptions)
    shown, seen = drawn(), curve.seen_total
    _tick_until(workshop, lambda: curve.series.total >= seen + 5, "the decoder to take more samples")
    assert drawn() == shown and curve.seen_total == seen  # nobody redrew it
    panel.clear()


def test_transmit_panel_lists_jobs_and_databases_on_the_ticks_it_follows(qtbot, workshop):
    panel = TransmitPanel(workshop.transmit, workshop.databases)
    qtbot.addWidget(panel)
    channel = workshop.transmit.default_channel
    messages = panel.message_combo.count()
    subscriptions = panel.follow(workshop)

    workshop.transmit.send_once(Frame(time.time(), 0x123, b"\x01", channel))
    assert panel.table.rowCount() == 0  # the table waits for the tick
    _tick_until(workshop, lambda: panel.table.rowCount() == 1, "the sent job in the table")
    workshop.databases.add(DATA / "dbc" / "tesla_can.dbc")
    _tick_until(workshop, lambda: panel.message_combo.count() > messages, "the new DBC's messages")
    with_tesla = panel.message_combo.count()

    _drop(workshop, subscriptions)
    workshop.transmit.send_once(Frame(time.time(), 0x124, b"\x02", channel))
    workshop.databases.remove(DATA / "dbc" / "tesla_can.dbc")
    _tick_until(workshop, lambda: len(workshop.transmit.jobs()) == 2, "the second job")
    workshop.tick()
    assert panel.table.rowCount() == 1 and panel.message_combo.count() == with_tesla


def test_playback_bar_shows_a_switched_to_log_and_moves_with_the_ticks(qtbot, workshop, tmp_path):
    bar = PlaybackBar()
    qtbot.addWidget(bar)
    subscriptions = bar.follow(workshop)
    assert bar.isHidden() and bar.source is None  # the simulator is no log

    source = workshop.switch_source(SourceSpec(replay=_log(tmp_path / "drive.log"), speed=1.0))
    assert isinstance(source, ReplaySource) and bar.source is source and not bar.isHidden()
    _tick_until(workshop, lambda: "/ 19.500 s" in bar.position_label.text(), "the log's length shown")
    source.pause()
    source.seek(source.start_time + 4.75)
    source.step(1)  # the frame 5 s in
    _tick_until(workshop, lambda: " 5.000 / 19.500" in bar.position_label.text(), "the bar to move")
    assert bar.play_button.text() == "Play"

    _drop(workshop, subscriptions)
    source.seek(source.start_time + 9.75)
    source.step(1)
    _tick_until(workshop, lambda: source.position - source.start_time >= 10.0, "the log to move on")
    assert " 5.000 / 19.500" in bar.position_label.text()
    workshop.switch_source(SimulatorSource(workshop.ring))
    assert bar.source is source and not bar.isHidden()  # the switch did not reach it either


def test_signal_browser_rebuilds_when_the_databases_change_between_ticks(qtbot, workshop):
    browser = SignalBrowser(workshop.databases)
    qtbot.addWidget(browser)
    assert browser.model.rowCount() == 1
    subscriptions = browser.follow(workshop)

    workshop.databases.add(DATA / "dbc" / "tesla_can.dbc")  # a script, the CLI: not the window
    assert browser.model.rowCount() == 1
    _tick_until(workshop, lambda: browser.model.rowCount() == 2, "the second database in the tree")

    _drop(workshop, subscriptions)
    workshop.databases.remove(DATA / "dbc" / "tesla_can.dbc")
    workshop.tick()
    workshop.tick()
    assert browser.model.rowCount() == 2


def test_link_status_names_the_source_the_ticks_find(qtbot, workshop):
    bar = QStatusBar()
    qtbot.addWidget(bar)
    status = LinkStatus(workshop, bar)
    subscriptions = status.follow(workshop)
    simulator = workshop.source.describe()
    _tick_until(workshop, lambda: status.label.text().startswith(simulator), "the simulator's name")

    channel = "follow-link-status"
    other = workshop.switch_source(AdapterSource(workshop.ring, BusConfig("virtual", channel)))
    assert status.label.text().startswith(simulator)  # the switch itself says nothing
    _tick_until(workshop, lambda: status.label.text().startswith(other.describe()), "the new source's name")

    _drop(workshop, subscriptions)
    other.stop()
    _tick_until(workshop, lambda: other.state is SourceState.STOPPED, "the source to stop")
    workshop.tick()
    assert not status.label.text().endswith("stopped")


def test_cloud_controls_show_a_cloud_link_on_the_windows_ticks(qtbot, tmp_path, workshop):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(workshop, settings=settings)
    qtbot.addWidget(window)
    label = window.cloud.link_label
    try:
        workshop.tick()
        assert label.isHidden()  # the simulator is no cloud link
        # A cloud link not yet opened (not started: no broker needed) shows its state "—".
        cloud = AdapterSource(workshop.ring, BusConfig(CLOUD_INTERFACE, "WSADEM5T2T0000421"))
        workshop.switch_source(cloud, start=False)
        workshop.tick()
        assert not label.isHidden() and label.text() == "cloud link —"

        _drop(workshop, window._subscriptions)
        workshop.switch_source(SimulatorSource(workshop.ring))
        workshop.tick()
        assert not label.isHidden() and label.text() == "cloud link —"
    finally:
        window.close()


def test_the_windows_trace_and_plots_never_redraw_in_the_same_tick(qtbot, tmp_path, workshop):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(workshop, settings=settings)
    qtbot.addWidget(window)
    window.show()
    panel, trace = window.plot_panel, window.trace_model
    panel.add_signal("ENGINE_DATA", "EngineSpeed")
    # Both due on every tick: they take turns (gui/redraw_turns.py) instead of sharing ticks.
    panel.redraw_interval = trace.repaint_interval = 0.0
    both = plots = repaints = 0
    try:
        deadline = time.monotonic() + 20.0
        while (plots < 10 or repaints < 10) and time.monotonic() < deadline:
            before = panel.redraws
            workshop.tick()
            drew, repainted = panel.redraws > before, bool(trace.last_repainted)
            plots, repaints, both = plots + drew, repaints + repainted, both + (drew and repainted)
            time.sleep(0.01)  # the car sends between ticks
        assert plots >= 10 and repaints >= 10
        assert both == 0
    finally:
        window.close()
