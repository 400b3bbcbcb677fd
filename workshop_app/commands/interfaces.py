"""`workshop interfaces`: the CAN adapters python-can can see on this machine."""

from __future__ import annotations

import argparse
import json

import can


def run(args: argparse.Namespace) -> int:
    # Probing every backend can be slow; detect only through interfaces that implement it.
    found = can.detect_available_configs()
    configs = [{str(k): str(v) for k, v in cfg.items()} for cfg in found]
    if args.json:
        print(json.dumps({"detected": configs, "supported": sorted(can.VALID_INTERFACES)}, indent=2))
        return 0
    if configs:
        print("Detected adapters:")
        for cfg in configs:
            extra = ", ".join(f"{k}={v}" for k, v in cfg.items() if k not in ("interface", "channel"))
            print(
                f"  {cfg.get('interface')}  channel={cfg.get('channel')}" + (f"  ({extra})" if extra else "")
            )
    else:
        print("No adapters detected.")
    print("Interfaces python-can supports (use with -i/--interface):")
    print("  " + ", ".join(sorted(can.VALID_INTERFACES)))
    print("The built-in simulated vehicle needs no adapter: omit -i.")
    return 0
