"""The chronological trace keeps its rows as columns and turns a row into text when painted."""

from __future__ import annotations

import uuid

import pytest

from workshop_app.core.capture.column_ring import ColumnRing
from workshop_app.core.capture.columns import FrameColumns
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.sources.adapter import AdapterSource
from workshop_app.core.types import BusConfig, Frame
from workshop_app.core.workshop import WorkshopSession
from workshop_app.gui.chrono_model import ChronoModel
from workshop_app.paths import demo_dbc_path

pytestmark = pytest.mark.gui


def _session(ring: ColumnRing | None = None) -> tuple[WorkshopSession, str]:
    channel = f"chrono-{uuid.uuid4().hex[:8]}"
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    source = AdapterSource(ring or ColumnRing(), BusConfig("virtual", channel))
    return WorkshopSession(source, dbs), channel


def _ident(dbs: DatabaseSet, name: str) -> int:
    for loaded in dbs.databases:
        return int(loaded.db.get_message_by_name(name).frame_id)
    raise AssertionError(name)


def test_rows_show_the_columns_and_old_rows_fall_off(qtbot):
    session, channel = _session()
    chrono = ChronoModel(session, capacity=50)
    chrono.follow(session)
    engine = _ident(session.databases, "ENGINE_DATA")
    frames = [Frame(100.0 + i, engine if i % 2 else 0x7E8, bytes([i, 0xAB]), channel) for i in range(80)]
    frames[-1] = Frame(
        179.0, 0x18DAF110, bytes(range(16)), channel, is_extended=True, is_fd=True, is_rx=False
    )
    session.capture.ring.push_columns(FrameColumns.from_frames(frames[:30]))
    session.tick()
    assert chrono.rowCount() == 30
    session.capture.ring.push_columns(FrameColumns.from_frames(frames[30:]))
    session.tick()
    assert chrono.rowCount() == 50  # the capacity: the 30 oldest rows fell off the top
    assert chrono.frame(0) == frames[30] and chrono.frame(49) == frames[79]

    def text(row: int) -> list[str]:
        return [chrono.index(row, c).data() for c in range(chrono.columnCount())]

    assert text(0) == ["30.000000", channel, "Rx", "7E8", "", "2", "1E AB"]
    assert text(1)[3:5] == [f"{engine:03X}", "ENGINE_DATA"]
    last = text(49)
    assert last[2:4] == ["Tx", "18DAF110"] and last[5] == "16"


def test_the_filter_keeps_matching_streams_and_pause_counts(qtbot):
    session, channel = _session()
    chrono = ChronoModel(session)
    chrono.follow(session)
    engine = _ident(session.databases, "ENGINE_DATA")
    batch = [Frame(float(i), (engine, 0x7E8, 0x123)[i % 3], b"\x00", channel) for i in range(30)]
    chrono.name_filter = "engine"
    session.capture.ring.push_columns(FrameColumns.from_frames(batch))
    session.tick()
    assert chrono.rowCount() == 10 and {chrono.frame(r).arbitration_id for r in range(10)} == {engine}
    chrono.name_filter = "7e"  # by id, in hex
    session.capture.ring.push_columns(FrameColumns.from_frames(batch))
    session.tick()
    assert chrono.rowCount() == 20 and chrono.frame(19).arbitration_id == 0x7E8

    chrono.paused = True
    session.capture.ring.push_columns(FrameColumns.from_frames(batch))
    session.tick()
    assert chrono.rowCount() == 20 and chrono.skipped_while_paused == 30
    chrono.clear()
    assert chrono.rowCount() == 0
