"""`workshop dtc history` and `workshop dtc report`: stored scans, timelines and customer reports."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from workshop_app.commands.dtc_text import comparison_lines, scan_lines
from workshop_app.commands.history import history_path
from workshop_app.core.diag.model import ScanLabel, ScanResult
from workshop_app.core.errors import WorkshopError
from workshop_app.core.history import HistoryStore
from workshop_app.core.history.records import ScanSummary


def _open(args: argparse.Namespace) -> HistoryStore:
    path = history_path(args)
    if not path.exists():
        raise WorkshopError(f"{path}: no history yet (run `workshop dtc scan` first)")
    return HistoryStore(path)


def summary_lines(rows: list[ScanSummary]) -> list[str]:
    lines = [
        f"{'id':>5}  {'started (local time)':<19}  {'label':<11}  {'VIN':<17}  {'DTCs':>4}  {'km':>9}  connection"
    ]
    for r in rows:
        km = f"{r.mileage_km:,.0f}" if r.mileage_km is not None else "-"
        lines.append(
            f"{r.id:>5}  {r.started.astimezone():%Y-%m-%d %H:%M:%S}  {r.label.value or '-':<11}  "
            f"{r.vin or '-':<17}  {r.dtc_count:>4}  {km:>9}  {r.connection}"
        )
    return lines


def run_history(args: argparse.Namespace) -> int:
    with _open(args) as store:
        if args.scan is not None:
            result = store.scan(args.scan)
            cmp = store.compare_with_previous(args.scan)
            if args.json:
                out = result.to_json()
                if cmp is not None:
                    out["since_previous"] = {
                        k: [[e, d.sae] for e, d in getattr(cmp, k)] for k in ("new", "gone", "still")
                    }
                print(json.dumps(out, indent=1))
                return 0
            print("\n".join(scan_lines(result)))
            if cmp is not None:
                print("\nSince the previous scan of this vehicle:")
                print("\n".join(comparison_lines(cmp)))
            return 0
        if args.timeline:
            if not args.vin:
                raise WorkshopError("--timeline needs --vin")
            entries = store.timeline(args.vin)
            if args.json:
                print(
                    json.dumps(
                        [{"time": e.time, "kind": e.kind, "id": e.id, "text": e.text} for e in entries],
                        indent=1,
                    )
                )
            else:
                for e in entries:
                    print(f"{e.when.astimezone():%Y-%m-%d %H:%M:%S}  {e.kind:<9}  {e.text}")
            return 0
        rows = store.scans(args.vin, args.limit if args.limit > 0 else None)
        if args.json:
            print(json.dumps([r.as_dict() for r in rows], indent=1, default=str))
        else:
            print("\n".join(summary_lines(rows)))
    return 0


def _pick_after(store: HistoryStore, scan: ScanResult) -> ScanResult | None:
    """The post-repair scan that followed a pre-repair one (the clear flow stores both)."""
    if scan.label is not ScanLabel.PRE_REPAIR or scan.scan_id is None:
        return None
    later = [
        r for r in store.scans(scan.vin or None) if r.started_epoch > scan.started and r.id != scan.scan_id
    ]
    later.sort(key=lambda r: r.started_epoch)
    if later and later[0].label is ScanLabel.POST_REPAIR:
        return store.scan(later[0].id)
    return None


def run_report(args: argparse.Namespace) -> int:
    from workshop_app.core.diag.report import report_html

    with _open(args) as store:
        if args.scan is not None:
            scan = store.scan(args.scan)
        else:
            rows = store.scans(limit=1)
            if not rows:
                raise WorkshopError("the history has no scans yet")
            scan = store.scan(rows[0].id)
            # The latest scan after a clear is the "after"; report the pair.
            if scan.label is ScanLabel.POST_REPAIR:
                before = store.previous_scan(rows[0].id)
                if before is not None and before.label is ScanLabel.PRE_REPAIR:
                    scan = before
        after = store.scan(args.after) if args.after is not None else _pick_after(store, scan)
        comparison = (
            None if after is not None else store.compare_with_previous(scan.scan_id) if scan.scan_id else None
        )
    html = report_html(scan, after=after, workshop=args.workshop, comparison=comparison)
    out: Path = args.output
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() in (".html", ".htm"):
        out.write_text(html, encoding="utf-8")
    elif out.suffix.lower() == ".pdf":
        from workshop_app.report_pdf import write_report_pdf

        write_report_pdf(html, out)
    else:
        raise WorkshopError(f"{out}: the report is written as .pdf or .html")
    print(
        f"report of scan {scan.scan_id}" + (f" (after: scan {after.scan_id})" if after else "") + f": {out}",
        file=sys.stderr,
    )
    return 0
