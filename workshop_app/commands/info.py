"""`workshop info DB`: messages, signals and every loading warning of a signal database."""

from __future__ import annotations

import argparse
import json
from typing import Any

from workshop_app.core.decode.database import LoadedDatabase, load_database


def describe(loaded: LoadedDatabase, with_signals: bool) -> dict[str, Any]:
    messages = []
    for m in sorted(loaded.db.messages, key=lambda m: m.frame_id):
        entry: dict[str, Any] = {
            "name": m.name,
            "id": m.frame_id,
            "extended": m.is_extended_frame,
            "fd": bool(m.is_fd),
            "length": m.length,
            "cycle_time_ms": m.cycle_time,
            "senders": list(m.senders),
            "multiplexed": m.is_multiplexed(),
            "signal_count": len(m.signals),
        }
        if with_signals:
            entry["signals"] = [
                {
                    "name": s.name,
                    "start": s.start,
                    "length": s.length,
                    "byte_order": s.byte_order,
                    "signed": s.is_signed,
                    "float": s.is_float,
                    "scale": s.scale,
                    "offset": s.offset,
                    "minimum": s.minimum,
                    "maximum": s.maximum,
                    "unit": s.unit,
                    "choices": {int(k): str(v) for k, v in (s.choices or {}).items()},
                    "multiplexer_ids": s.multiplexer_ids,
                }
                for s in m.signals
            ]
        messages.append(entry)
    return {
        "file": str(loaded.path),
        "messages": len(loaded.db.messages),
        "signals": sum(len(m.signals) for m in loaded.db.messages),
        "nodes": [n.name for n in loaded.db.nodes],
        "warnings": [{"line": w.line, "message": w.message, "text": str(w)} for w in loaded.warnings],
        "message_list": messages,
    }


def run(args: argparse.Namespace) -> int:
    loaded = load_database(args.database)
    info = describe(loaded, args.signals)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(
        f"{info['file']}: {info['messages']} messages, {info['signals']} signals, {len(info['nodes'])} nodes"
    )
    for m in info["message_list"]:
        ident = f"0x{m['id']:08X}" if m["extended"] else f"0x{m['id']:03X}"
        flags = " FD" if m["fd"] else ""
        flags += " mux" if m["multiplexed"] else ""
        cycle = f"{m['cycle_time_ms']} ms" if m["cycle_time_ms"] else "-"
        print(
            f"  {ident:>10}  {m['name']:<32} {m['length']:>2} B  {cycle:>8}  {m['signal_count']:>3} signals{flags}"
        )
        for s in m.get("signals", []):
            unit = f" [{s['unit']}]" if s["unit"] else ""
            print(f"      {s['name']}{unit}  start {s['start']} len {s['length']} {s['byte_order']}")
    if info["warnings"]:
        print(f"{len(info['warnings'])} warning(s) while loading:")
        for w in info["warnings"]:
            print(f"  {w['text']}")
    return 0
