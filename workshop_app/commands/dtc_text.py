"""Scans and scan comparisons as terminal lines (shared by `workshop dtc` and its history)."""

from __future__ import annotations

import time

from workshop_app.core.diag.model import EcuState, ScanComparison, ScanLabel, ScanResult

STATE_WORDS = {
    EcuState.OK: "OK",
    EcuState.FAULTS: "FAULTS",
    EcuState.MISSING: "MISSING",
    EcuState.UNEXPECTED: "UNEXPECTED",
    EcuState.ERROR: "ERROR",
}


def scan_lines(result: ScanResult) -> list[str]:
    """A scan as terminal lines: the network at a glance, then each ECU's identity and DTCs."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(result.started))
    head = f"Scan {when}"
    if result.label is not ScanLabel.NONE:
        head += f" [{result.label.value}]"
    lines = [head + f" — {result.vehicle or 'vehicle'} VIN {result.vin or '?'}"]
    if result.vin_warnings:
        lines.append(f"Warning: {result.vin!r} is not a valid VIN: {'; '.join(result.vin_warnings)}")
    if result.mileage_km is not None:
        lines.append(f"Odometer {result.mileage_km:,.1f} km")
    lines.append(
        f"{len(result.ecus)} ECUs, {result.dtc_count} fault codes, {result.seconds:.2f} s ({result.connection})"
    )
    lines.append("")
    for e in result.ecus:
        count = f"{len(e.dtcs)} DTC" + ("" if len(e.dtcs) == 1 else "s")
        lines.append(f"  {e.name:<6} {e.address:<24} {STATE_WORDS[e.state]:<10} {count:<7} {e.description}")
    for e in result.ecus:
        if not e.responded:
            continue
        lines.append("")
        lines.append(f"{e.name} — {e.description} ({e.address}, {e.seconds:.2f} s)")
        for key, value in e.identification.items():
            lines.append(f"    {key:<26} {value}")
        for v in e.live:
            lines.append(f"    {v.name:<26} {v.text()}")
        for d in e.dtcs:
            occ = d.occurrence_count()
            lines.append(f"  {d.sae:<9} {d.hex}  {d.description or '(no description)'}")
            lines.append(
                f"            status 0x{d.status:02X}: {d.status_text()}"
                + (f"; occurred {occ}×" if occ else "")
            )
            for record, values in sorted(d.snapshots.items()):
                shown = ", ".join(f"{v.name} {v.text()}" for v in values)
                lines.append(f"            freeze frame {record}: {shown}")
        for p in e.problems:
            lines.append(f"    ! {p}")
    if result.obd_dtcs:
        lines.append("")
        lines.append("OBD-II (emission-related) codes:")
        for d in result.obd_dtcs:
            lines.append(f"  {d.sae:<9} {d.status_text():<28}  {d.description}")
    return lines


def comparison_lines(cmp: ScanComparison) -> list[str]:
    lines = []
    for title, items in (("gone", cmp.gone), ("still present", cmp.still), ("new", cmp.new)):
        for ecu, d in items:
            lines.append(f"  {title:<14} {ecu:<6} {d.sae:<9} {d.description}")
    return lines or ["  no fault codes before or after"]
