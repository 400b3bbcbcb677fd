"""`workshop interfaces`: the CAN adapters python-can can see on this machine."""

from __future__ import annotations

import argparse
import json

from workshop_app.core.sources.detect import SOFTWARE_BUSES, detect_adapters


def run(args: argparse.Namespace) -> int:
    report = detect_adapters()
    verbose = bool(getattr(args, "verbose", False))
    if args.json:
        data = {
            "detected": [
                {"interface": a.interface, "channel": a.channel, **dict(a.details)} for a in report.adapters
            ],
            "software": [{"interface": name, "use": SOFTWARE_BUSES[name]} for name in report.software],
            "supported": list(report.supported),
            "driver_messages": {name: list(lines) for name, lines in sorted(report.driver_messages.items())},
        }
        print(json.dumps(data, indent=2))
        return 0
    if report.adapters:
        print("Detected adapters:")
        for adapter in report.adapters:
            extra = ", ".join(f"{k}={v}" for k, v in adapter.details)
            print(f"  {adapter.interface}  channel={adapter.channel}" + (f"  ({extra})" if extra else ""))
    else:
        print("No adapters or socketcand servers detected.")
    print("Software buses, no adapter needed:")
    for name in report.software:
        print(f"  {name}: {SOFTWARE_BUSES[name]}")
    print("Interfaces python-can supports (use with -i/--interface):")
    print("  " + ", ".join(report.supported))
    if verbose:
        print("What the drivers said while loading:")
        for name, lines in sorted(report.driver_messages.items()):
            for line in lines:
                print(f"  {name}: {line}")
    elif report.driver_messages:
        count = len(report.driver_messages)
        print(
            f"{count} interface(s) lack a driver or a library they use here; `--verbose` shows their messages."
        )
    print("The built-in simulated vehicle needs no adapter: omit -i.")
    return 0
