"""`workshop history [recordings|vehicles]`: what the workshop recorded, and for which cars."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from workshop_app.core.history import (
    HistoryError,
    HistoryStore,
    RecordingRow,
    VehicleRow,
    default_history_path,
    format_bytes,
)


def history_path(args: argparse.Namespace) -> Path:
    """``--history PATH`` or the default location (``$WORKSHOP_HOME`` / XDG data folder)."""
    chosen = getattr(args, "history", None)
    return Path(chosen).expanduser() if chosen else default_history_path()


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def recording_lines(rows: list[RecordingRow]) -> list[str]:
    lines = [
        f"{'id':>5}  {'started (local time)':<19}  {'duration':>9}  {'frames':>11}  {'dropped':>7}  "
        f"{'format':<8}  {'size':>9}  {'source':<30}  path"
    ]
    for r in rows:
        started = r.started.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        lines.append(
            f"{r.id:>5}  {started:<19}  {r.duration_s:>7.1f} s  {r.frames:>11,}  {r.dropped:>7,}  "
            f"{r.format:<8}  {format_bytes(r.size_bytes):>9}  {_clip(r.source, 30):<30}  {r.path}"
        )
    return lines


def vehicle_lines(rows: list[VehicleRow]) -> list[str]:
    lines = [f"{'id':>5}  {'VIN':<17}  {'make':<12}  {'model':<14}  {'year':>4}  {'plate':<10}  added"]
    for v in rows:
        lines.append(
            f"{v.id:>5}  {v.vin or '-':<17}  {v.make or '':<12}  {v.model or '':<14}  "
            f"{v.year or '':>4}  {v.plate or '':<10}  {v.created.astimezone():%Y-%m-%d}"
        )
    return lines


def run(args: argparse.Namespace) -> int:
    path = history_path(args)
    what = args.what
    limit = args.limit if args.limit and args.limit > 0 else None
    if not path.exists():
        # Listing must not create a history file as a side effect.
        if args.json:
            print("[]")
        else:
            print(f"no history yet: {path} does not exist", file=sys.stderr)
        return 0
    with HistoryStore(path) as store:
        if what == "vehicles":
            vehicles = store.vehicles(limit=limit)
            dicts, lines = [v.as_dict() for v in vehicles], vehicle_lines(vehicles)
        else:
            vehicle_id = None
            if args.vin:
                vehicle = store.find_vehicle(args.vin)
                if vehicle is None:
                    raise HistoryError(f"{path}: no vehicle with VIN {args.vin}")
                vehicle_id = vehicle.id
            recordings = store.recordings(limit=limit, vehicle_id=vehicle_id)
            dicts, lines = [r.as_dict() for r in recordings], recording_lines(recordings)
    if args.json:
        print(json.dumps(dicts, indent=2))
    elif not dicts:
        print(f"no {what} in {path}", file=sys.stderr)
    else:
        print("\n".join(lines))
    return 0
