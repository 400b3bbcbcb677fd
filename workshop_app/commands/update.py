"""`workshop update trust|check`: trust a manufacturer's roots once; verify a package for a car.

``check`` verifies everything the flash would, and prints what would change; it sends nothing
to the car. The car's facts come from a JSON file or ``--ecu`` options; the highest release
counter this workshop flashed to the car comes from the history (``--history``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from workshop_app.core.errors import WorkshopError
from workshop_app.core.update.image import FlashImage
from workshop_app.core.update.verify import EcuFacts, TrustStore, VehicleFacts, verify_package


def note_interrupted(db: Path) -> None:
    """Audit, once, every flash whose process died (kill -9, power cut) and say what can be done.

    Every update command and the audit listing call this first, so a killed attempt that is never
    resumed still has its row in the audit trail.
    """
    from workshop_app.core.history.audit import AuditTrail
    from workshop_app.core.update.journal import FlashJournal

    if not db.is_file():  # nothing was ever flashed with this history
        return
    with FlashJournal(db) as journal, AuditTrail(db) as audit:
        for e in journal.record_interrupted(audit):
            source = e.package_source or e.image_path or "?"
            print(
                f"{db}: the flash of {e.ecu} on {e.vin or 'an unknown car'} (journal entry {e.id}, from "
                f"{source}) was interrupted at step {e.step!r} after {e.bytes_done:,} of {e.total_bytes:,} "
                "bytes; recorded in the audit trail as interrupted. `workshop update resume` continues it, "
                "installing or flashing it again restarts it.",
                file=sys.stderr,
            )


def _trust(args: argparse.Namespace) -> int:
    store = TrustStore()
    store.trust(args.image_root, args.director_root)
    print(
        f"trusted: image root {args.image_root}, director root {args.director_root} (kept in {store.folder})"
    )
    return 0


def _ecu_option(text: str) -> tuple[str, EcuFacts]:
    parts = text.split(":")
    if len(parts) != 5:
        raise WorkshopError(f"--ecu {text!r}: write NAME:HARDWARE:BOOTLOADER:VERSION:RELEASE_COUNTER")
    name, hardware, boot, version, counter = parts
    try:
        return name, EcuFacts(hardware, boot, version, int(counter))
    except ValueError:
        raise WorkshopError(f"--ecu {text!r}: the release counter is a whole number") from None


def _facts_file(path: Path) -> tuple[str, dict[str, EcuFacts]]:
    try:
        data = json.loads(path.read_text())
        ecus = {
            name: EcuFacts(
                str(e["hardware"]),
                str(e["bootloader"]),
                str(e["software_version"]),
                int(e["release_counter"]),
            )
            for name, e in data.get("ecus", {}).items()
        }
        return str(data.get("vin", "")), ecus
    except OSError as exc:
        raise WorkshopError(f"{path}: cannot read: {exc.strerror}") from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WorkshopError(
            f"{path}: not a car facts file ({exc}); expected "
            '{"vin": ..., "ecus": {"ECM": {"hardware", "bootloader", "software_version", "release_counter"}}}'
        ) from exc


def _check(args: argparse.Namespace) -> int:
    from workshop_app.commands.history import history_path
    from workshop_app.core.update.campaign import recorded_counters

    vin, ecus = _facts_file(args.facts) if args.facts else ("", {})
    ecus.update(_ecu_option(e) for e in args.ecu)
    vin = args.vin or vin
    if not vin:
        raise WorkshopError("name the car: --vin VIN (or a facts file with a vin)")
    # As install and the window do: never below what this workshop already flashed to that car.
    db = history_path(args)
    result = verify_package(args.package, VehicleFacts(vin, ecus), recorded_highest=recorded_counters(db))
    if args.json:
        print(
            json.dumps(
                {
                    "package": str(args.package),
                    "vin": vin,
                    "ok": result.ok,
                    "refusals": [dataclasses.asdict(r) for r in result.refusals],
                    "changes": [dataclasses.asdict(c) for c in result.changes],
                    "images": [_image(i) for i in result.images],
                },
                indent=2,
            )
        )
    elif result.ok:
        print(f"{args.package}: verified for {vin}; would flash:")
        for c in result.changes:
            grant = " (downgrade granted by the director)" if c.downgrade_granted else ""
            print(
                f"  {c.ecu}: {c.from_version} -> {c.to_version}, release {c.from_counter} -> {c.to_counter}, "
                f"{c.size} bytes from {c.target_name}{grant}"
            )
    else:
        print(f"workshop update check: {args.package}: refused for {vin}:", file=sys.stderr)
        for r in result.refusals:
            print(f"  [{r.code}] {r}", file=sys.stderr)
    return 0 if result.ok else 2


def _image(image: FlashImage) -> dict[str, Any]:
    return {
        "ecu": image.ecu,
        "target": image.target_name,
        "sha256": image.target_hash,
        "software_version": image.software_version,
        "release_counter": image.release_counter,
        "crc32": image.crc32(),
        "segments": [{"address": s.address, "length": len(s.data)} for s in image.segments],
    }


ACTIONS = {"trust": _trust, "check": _check}


def run(args: argparse.Namespace) -> int:
    from workshop_app.commands.history import history_path

    note_interrupted(history_path(args))
    return ACTIONS[args.update_action](args)
