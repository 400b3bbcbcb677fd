"""The customer report of a scan: one self-contained HTML page, printable on A4.

The same HTML is shown in a browser and rendered to PDF by Qt's QTextDocument
(workshop_app/report_pdf.py), which understands only a subset of HTML and CSS. So the layout
is built from tables with ``cellpadding``, ``bgcolor`` and ``width`` attributes plus a few
simple style rules, which both render alike; nothing is loaded from outside the page.
Every text taken from a vehicle or a user is escaped: an ECU may report anything.
"""

from __future__ import annotations

import html
from datetime import datetime

from workshop_app.core.diag.dtc import Dtc, SnapshotValue
from workshop_app.core.diag.model import (
    EcuResult,
    EcuState,
    ScanComparison,
    ScanLabel,
    ScanResult,
    compare_scans,
)

# Colours: (text, background) pairs that stay readable in black-and-white print too.
RED = ("#b71c1c", "#fdecea")
AMBER = ("#8a5300", "#fff4e0")
GREEN = ("#1b5e20", "#e8f5e9")
GREY = ("#455a64", "#eceff1")
ACCENT = "#1f3a5f"
RULE = "#c5ccd3"

_LABEL_TITLES = {
    ScanLabel.NONE: "Vehicle check",
    ScanLabel.PRE_REPAIR: "Check before repair",
    ScanLabel.POST_REPAIR: "Check after repair",
}

# Identification fields customers and parts counters ask for, found by words in the ECU's own key
# names (which differ between makes: "Spare part number", "ECU software version", ...).
_ID_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Part number", ("part",)),
    ("Software version", ("software", "sw ")),
    ("Hardware version", ("hardware", "hw ")),
    ("Serial number", ("serial",)),
    ("Supplier", ("supplier", "manufacturer", "vendor")),
)

_STYLE = f"""
@page {{ size: A4; margin: 15mm; }}
body {{ font-family: 'Helvetica', 'Arial', 'DejaVu Sans', sans-serif; font-size: 10pt; color: #1a1a1a; }}
h2 {{ font-size: 13pt; color: {ACCENT}; margin-top: 16px; margin-bottom: 6px; }}
h3 {{ font-size: 11pt; margin-top: 14px; margin-bottom: 4px; }}
p {{ margin-top: 4px; margin-bottom: 4px; }}
table.grid {{ border-collapse: collapse; border-color: {RULE}; }}
th {{ text-align: left; font-weight: bold; background-color: #eef1f4; }}
.muted {{ color: #5f6b76; }}
.small {{ font-size: 8.5pt; }}
.code {{ font-family: 'DejaVu Sans Mono', 'Consolas', monospace; }}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _when(epoch: float) -> str:
    """Local time as customers read it (the workshop's own clock)."""
    return datetime.fromtimestamp(epoch).astimezone().strftime("%d %b %Y, %H:%M")


def _km(km: float | None) -> str:
    return f"{km:,.0f} km" if km is not None else "not recorded"


def _ecu_title(ecu: EcuResult) -> str:
    return f"{ecu.description} ({ecu.name})" if ecu.description else ecu.name


def _badge(text: str, colours: tuple[str, str]) -> str:
    fg, bg = colours
    return (
        f'<table cellspacing="0" cellpadding="3" style="border-collapse: collapse"><tr>'
        f'<td bgcolor="{bg}" style="background-color: {bg}; color: {fg}; font-weight: bold">'
        f"&nbsp;{_e(text)}&nbsp;</td></tr></table>"
    )


def _state(ecu: EcuResult) -> tuple[str, tuple[str, str]]:
    state = ecu.state
    if state is EcuState.OK:
        return "No faults found", GREEN
    if state is EcuState.FAULTS:
        n = len(ecu.dtcs)
        return f"{n} fault{'s' if n != 1 else ''} found", RED
    if state is EcuState.MISSING:
        return "Did not respond", AMBER
    if state is EcuState.UNEXPECTED:
        return "Not listed for this vehicle", AMBER
    return "Check incomplete", AMBER


def _severity(dtc: Dtc) -> tuple[str, tuple[str, str]]:
    """The one thing a customer needs to know about a code's status."""
    if dtc.mil:
        return "Warning lamp on", RED
    if dtc.confirmed:
        return "Confirmed fault", RED
    if dtc.pending:
        return "Intermittent (pending)", AMBER
    if dtc.status & 0x01:
        return "Failing now", RED
    return "Stored", GREY


def _identification_rows(ecu: EcuResult) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    used: set[str] = set()
    for title, words in _ID_FIELDS:
        for key, value in ecu.identification.items():
            if key not in used and any(w in f"{key.lower()} " for w in words):
                rows.append((title, value))
                used.add(key)
                break
    # Anything else the ECU told us, except the VIN that heads the report.
    rows += [(k, v) for k, v in ecu.identification.items() if k not in used and k.strip().upper() != "VIN"]
    return rows


def _snapshot_block(dtc: Dtc) -> str:
    if not any(dtc.snapshots.values()):
        return ""
    parts = ['<p class="small muted"><b>Conditions when the fault was recorded</b></p>']
    several = len(dtc.snapshots) > 1
    for record, values in dtc.snapshots.items():
        if not values:
            continue
        if several:
            parts.append(f'<p class="small muted">Record {record}</p>')
        parts.append(
            '<table class="grid small" border="1" cellspacing="0" cellpadding="3" width="70%">'
            + "".join(_snapshot_row(v) for v in values)
            + "</table>"
        )
    return "".join(parts)


def _snapshot_row(v: SnapshotValue) -> str:
    return f'<tr><td width="55%">{_e(v.name)}</td><td align="right"><b>{_e(v.text())}</b></td></tr>'


def _dtc_table(dtcs: list[Dtc]) -> str:
    head = (
        "<thead><tr>"
        '<th width="11%">Code</th><th width="11%">Fault ID</th><th width="36%">Description</th>'
        '<th width="28%">Status</th>'
        '<th width="14%" align="right" nowrap="nowrap" style="white-space: nowrap">Times seen</th>'
        "</tr></thead>"
    )
    rows = []
    for d in dtcs:
        summary, (fg, bg) = _severity(d)
        count = d.occurrence_count()
        rows.append(
            f'<tr><td bgcolor="{bg}" style="background-color: {bg}"><b class="code" style="color: {fg}">'
            f"{_e(d.sae)}</b></td>"
            f'<td class="code small">{_e(d.hex)}</td>'
            f"<td>{_e(d.description or 'No description available')}</td>"
            f'<td><b style="color: {fg}">{_e(summary)}</b><br/>'
            f'<span class="small muted">{_e(d.status_text())}</span></td>'
            f'<td align="right">{count if count is not None else "–"}</td></tr>'
        )
        snapshot = _snapshot_block(d)
        if snapshot:
            rows.append(f'<tr><td></td><td colspan="4">{snapshot}</td></tr>')
    return f'<table class="grid" border="1" cellspacing="0" cellpadding="5" width="100%">{head}{"".join(rows)}</table>'


def _ecu_section(ecu: EcuResult) -> str:
    text, colours = _state(ecu)
    parts = [
        '<table width="100%" cellspacing="0" cellpadding="0" style="margin-top: 14px"><tr>'
        f'<td><h3 style="margin-top: 0px">{_e(_ecu_title(ecu))}</h3></td>'
        f'<td align="right">{_badge(text, colours)}</td></tr></table>'
    ]
    ident = _identification_rows(ecu)
    if ident:
        cells = "".join(
            f'<tr><td width="30%" class="muted">{_e(k)}</td><td class="code">{_e(v)}</td></tr>'
            for k, v in ident
        )
        parts.append(f'<table class="small" cellspacing="0" cellpadding="2" width="100%">{cells}</table>')
    if ecu.state is EcuState.MISSING:
        parts.append(
            '<p class="muted">This control unit did not answer. It may be switched off, without power, '
            "or not fitted to this vehicle.</p>"
        )
    elif ecu.problems:
        notes = "; ".join(ecu.problems)
        parts.append(f'<p class="small muted">Note: {_e(notes)}</p>')
    if ecu.dtcs:
        parts.append(_dtc_table(ecu.dtcs))
    # One outer table per ECU: the PDF writer moves a table that would straddle a page break to
    # the next page, so a heading is not left alone at the foot of a page.
    return f'<table width="100%" cellspacing="0" cellpadding="0"><tr><td>{"".join(parts)}</td></tr></table>'


def _summary(scan: ScanResult) -> str:
    with_faults = sum(1 for e in scan.ecus if e.dtcs)
    missing = [e for e in scan.ecus if not e.responded]
    every_dtc = [d for e in scan.ecus for d in e.dtcs] + scan.obd_dtcs
    mil = any(d.mil for d in every_dtc)
    tiles = (
        ("Control units checked", str(len(scan.ecus)), GREY),
        ("With faults", str(with_faults), RED if with_faults else GREEN),
        ("Fault codes", str(scan.dtc_count), RED if scan.dtc_count else GREEN),
        ("Engine warning lamp", "ON" if mil else "off", RED if mil else GREEN),
    )
    cells = "".join(
        f'<td width="25%" align="center" bgcolor="{bg}" style="background-color: {bg}">'
        f'<span class="small muted">{_e(title)}</span><br/>'
        f'<span style="font-size: 16pt; font-weight: bold; color: {fg}">{_e(value)}</span></td>'
        for title, value, (fg, bg) in tiles
    )
    if scan.dtc_count:
        sentence = (
            f"We found {scan.dtc_count} fault code{'s' if scan.dtc_count != 1 else ''} in {with_faults} of "
            f"{len(scan.ecus)} control units."
        )
    else:
        sentence = f"No fault codes were stored in the {len(scan.ecus)} control units checked."
    if mil:
        sentence += " A fault has switched on (or asked for) a warning lamp on the dashboard."
    if missing:
        names = ", ".join(_ecu_title(e) for e in missing)
        sentence += f" Did not respond: {names}."
    return (
        "<h2>Summary</h2>"
        f'<table width="100%" cellspacing="6" cellpadding="8"><tr>{cells}</tr></table>'
        f"<p>{_e(sentence)}</p>"
    )


def _comparison_section(
    comparison: ScanComparison, scan: ScanResult, after: ScanResult | None, descriptions: dict[str, str]
) -> str:
    rows: list[str] = []
    groups = (
        (comparison.gone, "Cleared – no longer reported", GREEN),
        (comparison.still, "Still present", RED),
        (comparison.new, "New since the first check", AMBER),
    )
    for items, verdict, (fg, bg) in groups:
        for ecu, d in items:
            rows.append(
                f'<tr><td class="code"><b>{_e(d.sae)}</b></td><td>{_e(descriptions.get(ecu, ecu))}</td>'
                f"<td>{_e(d.description or 'No description available')}</td>"
                f'<td bgcolor="{bg}" style="background-color: {bg}; color: {fg}"><b>{_e(verdict)}</b></td></tr>'
            )
    if after is not None:
        intro = (
            f"First check: {_when(scan.started)}. Second check: {_when(after.started)}"
            + (f" at {_km(after.mileage_km)}" if after.mileage_km is not None else "")
            + "."
        )
    else:
        intro = "Compared with the vehicle's previous check."
    counts = (
        f"{len(comparison.gone)} cleared, {len(comparison.still)} still present, {len(comparison.new)} new."
    )
    if not rows:
        body = '<p class="muted">No fault codes in either check.</p>'
    else:
        body = (
            '<table class="grid" border="1" cellspacing="0" cellpadding="5" width="100%"><thead><tr>'
            '<th width="11%">Code</th><th width="24%">Control unit</th><th width="37%">Description</th>'
            '<th width="28%">Result</th></tr></thead>' + "".join(rows) + "</table>"
        )
    return f"<h2>Before and after</h2><p>{_e(intro)} {_e(counts)}</p>{body}"


def report_html(
    scan: ScanResult,
    *,
    after: ScanResult | None = None,
    workshop: str = "",
    comparison: ScanComparison | None = None,
) -> str:
    """The customer report of ``scan`` as one self-contained HTML document.

    ``after`` is a later scan of the same car (after clearing codes or a repair): the report then
    lists each code as cleared, still present or new. ``comparison`` gives that list ready made
    (e.g. from ``HistoryStore.compare_with_previous``); without ``after`` it is still shown.
    """
    if comparison is None and after is not None:
        comparison = compare_scans(scan, after)
    title = _LABEL_TITLES[scan.label]
    vehicle_rows = [
        ("Vehicle", scan.vehicle or "Not identified"),
        ("VIN", scan.vin or "Not read"),
        *([("", "Warning: not a valid VIN: " + "; ".join(scan.vin_warnings))] if scan.vin_warnings else []),
        ("Mileage", _km(scan.mileage_km)),
        ("Date of check", _when(scan.started)),
    ]
    vehicle = "".join(
        f'<tr><td width="22%" class="muted">{_e(k)}</td><td><b>{_e(v)}</b></td></tr>' for k, v in vehicle_rows
    )
    header = (
        f'<table width="100%" cellspacing="0" cellpadding="10" bgcolor="{ACCENT}" style="background-color: {ACCENT}">'
        '<tr><td style="color: #ffffff">'
        f'<span style="font-size: 18pt; font-weight: bold">{_e(workshop or "Vehicle diagnostics")}</span><br/>'
        f'<span style="font-size: 11pt">Diagnostic report – {_e(title)}</span></td>'
        f'<td align="right" style="color: #ffffff">{_e(_when(scan.started))}</td></tr></table>'
        f'<table width="100%" cellspacing="0" cellpadding="3" style="margin-top: 10px">{vehicle}</table>'
    )
    sections = [header, _summary(scan)]
    if comparison is not None:
        descriptions = {e.name: _ecu_title(e) for e in (after or scan).ecus}
        descriptions.update({e.name: _ecu_title(e) for e in scan.ecus if e.name not in descriptions})
        sections.append(_comparison_section(comparison, scan, after, descriptions))
    sections.append("<h2>Control units</h2>")
    # Faults first: that is what the customer came for; then the rest in scan order.
    ordered = sorted(scan.ecus, key=lambda e: 0 if e.dtcs else 1 if not e.responded else 2)
    sections += [_ecu_section(e) for e in ordered]
    if scan.obd_dtcs:
        sections.append("<h2>Emission-related codes (OBD)</h2>" + _dtc_table(scan.obd_dtcs))
    sections.append(
        '<p class="small muted" style="margin-top: 18px">Fault codes tell which system noticed a problem '
        "and under what conditions; they do not always name the faulty part. Codes marked "
        "“intermittent (pending)” were seen once and are being watched by the vehicle. "
        "Times seen is counted by the control unit itself.</p>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>'
        f"<title>{_e(title)} – {_e(scan.vin or scan.vehicle or 'vehicle')}</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(sections)}</body></html>\n"
    )
