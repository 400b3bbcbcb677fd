"""SignalBrowser on the demo database: tree, search, double-click and drag payload."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from workshop_app.core.decode.database import DatabaseSet
from workshop_app.gui.signal_browser import SIGNAL_MIME_TYPE, SignalBrowser
from workshop_app.paths import demo_dbc_path

pytestmark = pytest.mark.gui


@pytest.fixture
def browser(qtbot):
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    widget = SignalBrowser(dbs)
    qtbot.addWidget(widget)
    widget.resize(700, 500)
    widget.show()
    return widget


def _row_texts(browser: SignalBrowser, index) -> list[str]:
    model = browser.proxy
    return [model.index(index.row(), col, index.parent()).data() for col in range(model.columnCount())]


def test_tree_lists_messages_and_signals_with_details(browser):
    proxy = browser.proxy
    assert proxy.rowCount() == 1
    database = proxy.index(0, 0)
    assert database.data() == "demo_vehicle.dbc"
    messages = [proxy.index(r, 0, database).data() for r in range(proxy.rowCount(database))]
    assert {"ENGINE_DATA", "TRANSMISSION", "WHEEL_SPEEDS", "LIGHT_STATUS"} <= set(messages)

    transmission = proxy.index(messages.index("TRANSMISSION"), 0, database)
    name, ident, _unit, _range, _scale, details = _row_texts(browser, transmission)
    assert (name, ident) == ("TRANSMISSION", "0x1A0")
    assert "8 B" in details and "20 ms" in details

    gear = browser.index_of_signal("TRANSMISSION", "GearSelector")
    _name, _id, unit, span, scale, details = _row_texts(browser, gear)
    assert (unit, span, scale) == ("", "0 .. 15", "1, 0")
    assert "3=D" in details
    assert "PRNDL" in gear.data(Qt.ItemDataRole.ToolTipRole)
    assert "3 = D" in gear.data(Qt.ItemDataRole.ToolTipRole)

    speed = browser.index_of_signal("ENGINE_DATA", "EngineSpeed")
    assert _row_texts(browser, speed)[2:5] == ["rpm", "0 .. 16383.75", "0.25, 0"]


@pytest.mark.parametrize(
    ("text", "expected", "absent"),
    [
        (
            "gear",
            {("TRANSMISSION", "GearSelector"), ("TRANSMISSION", "GearActual")},
            ("ENGINE_DATA", "EngineSpeed"),
        ),
        (
            "0x1a0",
            {("TRANSMISSION", "GearSelector"), ("TRANSMISSION", "TurbineSpeed")},
            ("ENGINE_DATA", "EngineSpeed"),
        ),
        (
            "RPM",
            {("ENGINE_DATA", "EngineSpeed"), ("TRANSMISSION", "TurbineSpeed")},
            ("TRANSMISSION", "GearSelector"),
        ),
        ("prndl", {("TRANSMISSION", "GearSelector")}, ("TRANSMISSION", "GearActual")),
        (
            "wheel_speeds",
            {("WHEEL_SPEEDS", "WheelSpeedFL"), ("WHEEL_SPEEDS", "WheelSpeedRR")},
            ("ABS_STATUS", "VehicleSpeed"),
        ),
    ],
)
def test_search_filters_by_name_id_unit_and_comment(qtbot, browser, text, expected, absent):
    everything = set(browser.visible_signals())
    qtbot.keyClicks(browser.search_edit, text)
    shown = set(browser.visible_signals())
    assert expected <= shown
    assert absent not in shown
    assert len(shown) < len(everything)
    # Parents of matches stay visible, expanded, so the match can be seen.
    index = browser.index_of_signal(*sorted(expected)[0])
    assert index.isValid()
    assert browser.tree.isExpanded(index.parent()) and browser.tree.isExpanded(index.parent().parent())
    browser.search_edit.clear()
    assert set(browser.visible_signals()) == everything


def test_search_without_match_shows_nothing(qtbot, browser):
    qtbot.keyClicks(browser.search_edit, "no such thing anywhere")
    assert browser.visible_signals() == []
    assert browser.proxy.rowCount() == 0


def test_double_click_on_a_signal_emits_its_names(qtbot, browser):
    browser.set_search_text("GearSelector")
    index = browser.index_of_signal("TRANSMISSION", "GearSelector")
    browser.tree.scrollTo(index)
    rect = browser.tree.visualRect(index)
    with qtbot.waitSignal(browser.signal_activated, timeout=2000) as blocker:
        # QTest's double click sends only the second press; a user's first click comes before it.
        qtbot.mouseClick(browser.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(browser.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args == ["TRANSMISSION", "GearSelector"]


def test_double_click_on_a_message_emits_nothing(qtbot, browser):
    message = browser.index_of_signal("TRANSMISSION", "GearSelector").parent()
    rect = browser.tree.visualRect(message)
    with qtbot.assertNotEmitted(browser.signal_activated):
        qtbot.mouseClick(browser.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(browser.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_signal_rows_drag_as_the_signal_mime_type(browser):
    index = browser.index_of_signal("LIGHT_STATUS", "LowBeam")
    assert browser.proxy.flags(index) & Qt.ItemFlag.ItemIsDragEnabled
    mime = browser.proxy.mimeData([index, index.siblingAtColumn(2)])
    assert bytes(mime.data(SIGNAL_MIME_TYPE).data()).decode() == "LIGHT_STATUS\tLowBeam"
    message = index.parent()
    assert not browser.proxy.flags(message) & Qt.ItemFlag.ItemIsDragEnabled


def test_reload_follows_the_database_set(browser):
    browser.set_search_text("gear")
    browser.databases.remove(demo_dbc_path())
    browser.reload()
    assert browser.proxy.rowCount() == 0
    browser.databases.add(demo_dbc_path(), channel="can1")
    browser.reload()
    assert ("TRANSMISSION", "GearSelector") in browser.visible_signals()  # the search still applies
    assert ("ENGINE_DATA", "EngineSpeed") not in browser.visible_signals()
    assert "channel can1" in browser.proxy.index(0, 5).data()
