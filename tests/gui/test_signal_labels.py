"""Signal labels: signals sharing a name are told apart in plots, and names in lists are never cut."""

from __future__ import annotations

from pathlib import Path

import pytest

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.factory import SourceSpec, make_source
from workshop_app.gui.log_view import LogAnalysisView
from workshop_app.gui.plot_panel import PlotPanel
from workshop_app.gui.signal_browser import SignalBrowser
from workshop_app.paths import demo_dbc_path

pytestmark = pytest.mark.gui

LONG = "CoolantTemperatureSensorSupplyVoltageFiltered"
DBC = f"""VERSION ""
NS_ :
BS_:
BU_: ECU
BO_ 256 ENGINE_A: 8 ECU
 SG_ Counter : 0|8@1+ (1,0) [0|255] "" Vector__XXX
 SG_ {LONG} : 8|16@1+ (0.001,0) [0|65.535] "V" Vector__XXX
BO_ 512 GEARBOX_B: 8 ECU
 SG_ Counter : 0|8@1+ (1,0) [0|255] "" Vector__XXX
 SG_ OilTemp : 8|8@1+ (1,-40) [-40|215] "degC" Vector__XXX
"""


def _demo_databases() -> DatabaseSet:
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    return dbs


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    dbc = tmp_path / "two_counters.dbc"
    dbc.write_text(DBC)
    lines = []
    for i in range(100):
        t = 10.0 + i * 0.01
        lines.append(f"({t:.6f}) can0 100#{i % 256:02X}{(5000 + i).to_bytes(2, 'little').hex()}0000000000\n")
        lines.append(f"({t + 0.005:.6f}) can0 200#{(i * 3) % 256:02X}78000000000000\n")
    log = tmp_path / "two_counters.log"
    log.write_text("".join(lines))
    return dbc, log


@pytest.fixture
def view(qtbot, files) -> LogAnalysisView:
    dbs = DatabaseSet()
    dbs.add(files[0])
    widget = LogAnalysisView(dbs)
    qtbot.addWidget(widget)
    widget.resize(1130, 480)  # the Log analysis dock's size in a 1440 x 900 window
    with qtbot.waitExposed(widget):
        widget.show()
    widget.open_log(files[1])
    qtbot.waitUntil(lambda: not widget.loading, timeout=20_000)
    assert widget.last_error is None, widget.last_error
    return widget


def _legend(view: LogAnalysisView, index: int) -> list[str]:
    legend = view.plot_items()[index].legend
    return [label.text for _, label in legend.items]


def test_signals_sharing_a_name_carry_their_message_name(qtbot, view):
    view.plot_signal("ENGINE_A", "Counter")
    view.plot_signal("GEARBOX_B", "Counter")
    view.plot_signal("GEARBOX_B", "OilTemp")
    assert _legend(view, 0) == ["ENGINE_A.Counter"]
    assert _legend(view, 1) == ["GEARBOX_B.Counter"]
    assert _legend(view, 2) == ["OilTemp (degC)"]  # a name of its own needs no message
    view.set_cursor(0.5)
    assert _legend(view, 0)[0].startswith("ENGINE_A.Counter: ")
    assert _legend(view, 1)[0].startswith("GEARBOX_B.Counter: ")
    view.set_range(0.1, 0.6)
    names = [view.stats_table.item(r, 0).text() for r in range(view.stats_table.rowCount())]
    assert names == ["ENGINE_A.Counter", "GEARBOX_B.Counter", "OilTemp (degC)"]


def test_signal_names_are_shown_whole(qtbot, view):
    table = view.signal_table
    header = table.horizontalHeader()
    needed = table.sizeHintForColumn(0)
    assert header.sectionSize(0) >= needed  # the longest name fits its column
    # ... and the column is on screen, not behind a scroll: the list is wide enough to show it.
    assert header.sectionViewportPosition(0) + header.sectionSize(0) <= table.viewport().width()
    names = {table.item(r, 0).text() for r in range(table.rowCount())}
    assert LONG in names


def test_live_plots_tell_apart_signals_sharing_a_name(qtbot, files):
    dbs = DatabaseSet()
    dbs.add(files[0])
    ring = FrameRing()
    session = CaptureSession(make_source(SourceSpec(replay=files[1], speed=0), ring), dbs)
    panel = PlotPanel(session)
    qtbot.addWidget(panel)
    panel.resize(900, 500)
    panel.show()
    session.start()
    try:
        panel.add_signal("ENGINE_A", "Counter")
        panel.add_signal("GEARBOX_B", "Counter", 0)
        panel.add_signal("GEARBOX_B", "OilTemp")

        def ticked() -> bool:
            session.tick()
            panel.refresh()
            return session.store.total_frames == 200

        qtbot.waitUntil(ticked, timeout=5000)
        assert panel.legend_texts(0) == ["ENGINE_A.Counter", "GEARBOX_B.Counter"]
        assert panel.legend_texts(1) == ["OilTemp (degC)"]
        panel.set_cursor(0.5)
        assert [t.split(":")[0] for t in panel.legend_texts(0)] == ["ENGINE_A.Counter", "GEARBOX_B.Counter"]
    finally:
        panel.clear()
        session.stop()


def test_signal_browser_shows_29_bit_ids_whole(qtbot):
    browser = SignalBrowser(_demo_databases())
    qtbot.addWidget(browser)
    browser.resize(300, 600)  # the Signals dock on first start
    browser.show()
    tree = browser.tree
    header = tree.header()
    ids = [tree.model().index(r, 1, tree.model().index(0, 0)).data() for r in range(15)]
    assert "0x18FF4A21" in ids
    assert header.sectionSize(1) >= tree.sizeHintForColumn(1)
    assert header.sectionSize(0) >= tree.sizeHintForColumn(0)  # message names too


def test_lists_fit_the_names_when_a_hidden_view_is_shown(qtbot, files):
    # A log opened while the Log analysis tab is behind another, then the dock made floating.
    dbs = DatabaseSet()
    dbs.add(files[0])
    view = LogAnalysisView(dbs)
    qtbot.addWidget(view)
    view.open_log(files[1])
    qtbot.waitUntil(lambda: not view.loading, timeout=20_000)
    view.resize(1400, 800)
    view.show()
    header = view.signal_table.horizontalHeader()
    qtbot.waitUntil(
        lambda: (
            header.sectionViewportPosition(0) + header.sectionSize(0) + header.sectionSize(1)
            <= view.signal_table.viewport().width()
        ),
        timeout=2000,
    )
    splitter = view._split
    splitter.splitterMoved.emit(200, 1)  # what a drag of the divider reports
    splitter.setSizes([200, 1200])
    chosen = splitter.sizes()[0]
    view.resize(1500, 800)
    qtbot.wait(50)
    assert splitter.sizes()[0] == chosen  # the user's choice stays
