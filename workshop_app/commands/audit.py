"""`workshop audit [--vin V] [--json]` lists flash attempts; `workshop audit verify` checks the chain."""

from __future__ import annotations

import argparse
import json
import sys


def run(args: argparse.Namespace) -> int:
    from workshop_app.commands.history import history_path
    from workshop_app.core.history.audit import AuditTrail

    db = history_path(args)
    if args.action != "verify":  # a flash killed and never resumed is listed as interrupted
        from workshop_app.commands.update import note_interrupted

        note_interrupted(db)
    with AuditTrail(db) as trail:
        if args.action == "verify":
            check = trail.verify()
            if args.json:
                print(
                    json.dumps(
                        {
                            "ok": check.ok,
                            "rows": check.rows,
                            "broken_at": check.broken_at,
                            "reason": check.reason,
                        }
                    )
                )
            elif check.ok:
                count = f"{check.rows} row" + ("" if check.rows == 1 else "s")
                print(f"{db}: audit trail intact ({count}, hash chain verified)")
            else:
                print(f"{db}: audit trail BROKEN at {check.reason}", file=sys.stderr)
            return 0 if check.ok else 1
        rows = trail.rows(args.vin)
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2))
        return 0
    if not rows:
        print("no flash attempts recorded" + (f" for VIN {args.vin}" if args.vin else ""))
        return 0
    print(
        f"{'id':>4}  {'when (UTC)':<23}  {'user':<10}  {'VIN':<17}  {'ECU':<5}  {'from → to':<21}  {'result':<9}  {'s':>6}  error"
    )
    for r in rows:
        e = r.entry
        versions = f"{e.from_version or '?'} → {e.to_version or '?'}"
        print(
            f"{r.id:>4}  {e.time[:23]:<23}  {e.user[:10]:<10}  {e.vin or '?':<17}  {e.ecu:<5}  {versions:<21}  "
            f"{e.result:<9}  {e.duration_s:>6.1f}  {e.error}"
        )
    return 0
