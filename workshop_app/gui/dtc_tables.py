"""The Fault codes dock's tables: a scan's network and codes, and the details of one row.

Pure rendering of the core's scan dataclasses into QTableWidgets; no diagnostics here.
"""

from __future__ import annotations

from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from workshop_app.core.diag.dtc import Dtc
from workshop_app.core.diag.model import EcuResult, EcuState, ScanResult

STATE_COLOURS = {
    EcuState.OK: ("#1a7f37", "OK"),
    EcuState.FAULTS: ("#d1242f", "Faults"),
    EcuState.MISSING: ("#6e7781", "Missing"),
    EcuState.UNEXPECTED: ("#b26a00", "Unexpected"),
    EcuState.ERROR: ("#b26a00", "Error"),
}
NETWORK_COLUMNS = ("ECU", "Address", "State", "DTCs", "Description")
DTC_COLUMNS = ("ECU", "Code", "UDS", "Description", "Status", "Occurrences")
SCAN_COLUMNS = ("Scan", "Started", "Label", "DTCs", "km")


def item(text: str, colour: str | None = None, bold: bool = False) -> QTableWidgetItem:
    cell = QTableWidgetItem(text)
    if colour:
        cell.setForeground(QBrush(QColor(colour)))
    if bold:
        font = cell.font()
        font.setBold(True)
        cell.setFont(font)
    return cell


def make_table(columns: tuple[str, ...]) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(columns)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setAlternatingRowColors(True)
    table.verticalHeader().setDefaultSectionSize(22)
    table.horizontalHeader().setStretchLastSection(True)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    return table


def fill_network(table: QTableWidget, result: ScanResult) -> None:
    """One row per ECU: name, address, state (tinted), number of codes, description."""
    table.setRowCount(len(result.ecus))
    for row, e in enumerate(result.ecus):
        colour, word = STATE_COLOURS[e.state]
        table.setItem(row, 0, item(e.name, bold=True))
        table.setItem(row, 1, item(e.address))
        state = item(word, colour, bold=True)
        tint = QColor(colour)
        tint.setAlpha(40)
        state.setBackground(QBrush(tint))
        table.setItem(row, 2, state)
        table.setItem(row, 3, item(str(len(e.dtcs)) if e.responded else "–", colour if e.dtcs else None))
        table.setItem(row, 4, item(e.description))


def fill_codes(table: QTableWidget, result: ScanResult) -> list[tuple[EcuResult, Dtc]]:
    """One row per fault code; returns the (ECU, code) of each row."""
    rows = [(e, d) for e in result.ecus for d in e.dtcs]
    table.setRowCount(len(rows))
    for row, (e, d) in enumerate(rows):
        colour = "#d1242f" if d.confirmed else "#b26a00"
        table.setItem(row, 0, item(e.name))
        table.setItem(row, 1, item(d.sae, colour, bold=True))
        table.setItem(row, 2, item(d.hex))
        table.setItem(row, 3, item(d.description or "(no description)"))
        table.setItem(row, 4, item(d.status_text()))
        occ = d.occurrence_count()
        table.setItem(row, 5, item("" if occ is None else str(occ)))
    return rows


def ecu_details(e: EcuResult) -> list[tuple[str, str]]:
    items = [("State", STATE_COLOURS[e.state][1]), ("Address", e.address)]
    items += list(e.identification.items())
    items += [(v.name, v.text()) for v in e.live]
    items += [("Problem", p) for p in e.problems]
    return items


def dtc_details(d: Dtc) -> list[tuple[str, str]]:
    items = [("UDS code", d.hex), ("Status", f"0x{d.status:02X}: {d.status_text()}")]
    for record, values in sorted(d.snapshots.items()):
        items += [(f"Freeze frame {record}: {v.name}", v.text()) for v in values]
    for _record, values in sorted(d.extended.items()):
        items += [(v.name, v.text()) for v in values]
    return items


def fill_details(table: QTableWidget, items: list[tuple[str, str]]) -> None:
    table.setRowCount(len(items))
    for row, (k, v) in enumerate(items):
        table.setItem(row, 0, item(k))
        table.setItem(row, 1, item(v))
