"""Pieces of the log analysis view: a plotted trace, and the read-only tables it lists logs in."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from workshop_app.core.decode.vectorized import DecodedSignal
from workshop_app.core.logs.analysis import PHASE_READ, RangeStats
from workshop_app.gui.plot_items import Lane, describe_value


@dataclass(eq=False)
class Trace:
    """One decoded signal of the log in its own lane of the view's PlotStack."""

    signal: DecodedSignal
    colour: str
    states: dict[float, str]  # physical value -> value-table name; empty for plain signals
    lane: Lane
    item: pg.PlotDataItem
    label: str  # the signal's name, "Message.Signal" when another message has one so named
    origin: float  # log time of the view's 0 s
    state_span: tuple[float, float] | None = None  # a log plot spans what the log holds

    @property
    def plot(self) -> pg.PlotItem:
        return self.lane.item

    @property
    def unit(self) -> str:
        return self.signal.unit

    @property
    def title(self) -> str:
        return f"{self.label} ({self.signal.unit})" if self.signal.unit else self.label

    def value_at(self, t_log: float) -> float | None:
        """Sample-and-hold: a CAN value holds until the next frame carrying it."""
        i = int(np.searchsorted(self.signal.timestamps, t_log, side="right")) - 1
        return None if i < 0 else float(self.signal.values[i])

    def describe(self, value: float) -> str:
        return describe_value(value, self.states, self.signal.unit)

    def reading(self, t: float) -> str:
        value = self.value_at(t + self.origin)
        return f"{self.label}: " + ("—" if value is None else self.describe(value))


def numeric_item(value: float | int, text: str) -> QTableWidgetItem:
    """A right-aligned cell that sorts by number, not by its text."""
    item = QTableWidgetItem(text)
    item.setData(Qt.ItemDataRole.UserRole, value)
    item.setData(Qt.ItemDataRole.DisplayRole, text)
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


def cell(table: QTableWidget, row: int, column: int) -> QTableWidgetItem:
    item = table.item(row, column)
    assert item is not None, f"empty cell {row},{column}"  # every cell is filled when a log is shown
    return item


def readonly_table(headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.verticalHeader().setVisible(False)
    table.verticalHeader().setDefaultSectionSize(22)
    table.horizontalHeader().setDefaultSectionSize(64)  # numbers are short; the name column stretches
    table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    table.setAlternatingRowColors(True)
    return table


def fit_columns(table: QTableWidget) -> None:
    """Each column as wide as its longest entry, the last one taking what is left.

    Names are what these lists are for: a stretched first column was squeezed by the others
    and cut long signal and message names.
    """
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    table.resizeColumnsToContents()
    header.setStretchLastSection(True)


def table_width(table: QTableWidget) -> int:
    """The width that shows every column of ``table`` whole, with its vertical scroll bar."""
    header = table.horizontalHeader()
    last = header.count() - 1
    columns = sum(header.sectionSize(c) for c in range(last))
    columns += max(table.sizeHintForColumn(last), header.sectionSizeHint(last))  # it stretches
    return columns + table.verticalScrollBar().sizeHint().width() + 2 * table.frameWidth() + 4


def rate_text(done: int, seconds: float, phase: str) -> str:
    if seconds <= 0 or done <= 0:
        return ""
    rate = done / seconds
    if phase == PHASE_READ:  # the readers count bytes, not frames, while reading
        return f"{rate / 1e6:.1f} MB/s"
    return f"{rate / 1e6:.2f} M frames/s" if rate >= 1e6 else f"{rate / 1e3:.0f} k frames/s"


def progress_text(phase: str, done: int, total: int, elapsed: float, done_at_start: int) -> tuple[int, str]:
    """(bar value of 1000, text) for a load's progress: phase, percent, rate and time left."""
    fraction = done / total if total > 0 else 0.0
    parts = [f"{phase.capitalize()} {fraction:.0%}"]
    rate = rate_text(done - done_at_start, elapsed, phase)
    if rate:
        parts.append(rate)
    progressed = (done - done_at_start) / total if total > 0 else 0.0
    if 0 < fraction < 1 and progressed > 0 and elapsed > 0.2:  # the first instants give noise
        parts.append(f"{elapsed * (1 - fraction) / progressed:.0f} s left")
    return round(fraction * 1000), " · ".join(parts)


def fill_stats_table(table: QTableWidget, rows: list[tuple[Trace, RangeStats]]) -> None:
    """One row per plotted signal (name in its curve's colour); hidden when there are none."""
    table.setVisible(bool(rows))
    table.setRowCount(len(rows))

    def number(value: float | None) -> QTableWidgetItem:
        return numeric_item(np.nan if value is None else value, "—" if value is None else f"{value:.6g}")

    for i, (trace, s) in enumerate(rows):
        name = QTableWidgetItem(trace.title)
        name.setForeground(QColor(trace.colour))
        table.setItem(i, 0, name)
        table.setItem(i, 1, numeric_item(s.count, f"{s.count:,}"))
        table.setItem(i, 2, number(s.min))
        table.setItem(i, 3, number(s.max))
        table.setItem(i, 4, number(s.mean))
    # Exactly as tall as its rows: the plots keep the rest of the height.
    rows_height = sum(table.rowHeight(r) for r in range(table.rowCount()))
    table.setFixedHeight(table.horizontalHeader().height() + rows_height + 2 * table.frameWidth())
