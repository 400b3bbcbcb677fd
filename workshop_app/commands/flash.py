"""`workshop update flash|resume`: program one ECU from an image file, or finish an interrupted flash.

For now the image is a plain file (Intel HEX, S-record, raw binary with --address) whose version
and release counter are given on the command line; the verified-package route is `update check`.
Every attempt is journalled and audited in the history database (see `workshop audit`).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workshop_app import cli_values as values
from workshop_app.core.errors import WorkshopError

if TYPE_CHECKING:  # the parser is built for every command: the flash stack loads only to flash
    from workshop_app.core.diag.client import EcuAddress
    from workshop_app.core.diag.ecu_spec import VehicleSpec
    from workshop_app.core.sources.base import FrameSource
    from workshop_app.core.update.flash import FlashResult
    from workshop_app.core.update.image import FlashImage
    from workshop_app.core.update.journal import JournalEntry

AddOptions = Callable[[argparse.ArgumentParser], None]


def add_arguments(usub: argparse._SubParsersAction, add_source_options: AddOptions) -> None:
    """`update flash` and `update resume` (cli.py calls this with its connection options)."""
    p = usub.add_parser("flash", help="program one ECU from an image file (journalled, audited)")
    p.set_defaults(command="flash")
    p.add_argument("--image", type=Path, required=True, help="Intel HEX, Motorola S-record or raw binary")
    p.add_argument("--ecu", required=True, help="ECU name in the vehicle description (e.g. ECM)")
    p.add_argument(
        "--sw-version", required=True, help="software version the ECU reports afterwards (≤ 8 ASCII)"
    )
    p.add_argument(
        "--release", type=values.non_negative_int, required=True, help="release counter written with it"
    )
    p.add_argument("--address", type=values.address, help="load address of a raw binary image")
    _common(p, add_source_options)
    p = usub.add_parser("resume", help="finish a flash the tool did not end (killed, cancelled, lost link)")
    p.set_defaults(command="flash")
    p.add_argument("--ecu", help="the ECU (default: the most recent unfinished flash)")
    _common(p, add_source_options)


def _common(p: argparse.ArgumentParser, add_source_options: AddOptions) -> None:
    p.add_argument("--vin", help="the car's VIN for journal and audit (default: read from the ECU)")
    p.add_argument("--spec", type=Path, help="vehicle description (default: the demo vehicle)")
    p.add_argument("--algorithm", default="demo", help="seed/key algorithm (default: demo)")
    p.add_argument(
        "--max-message",
        type=values.transfer_message,
        metavar="BYTES",
        help="longest TransferData message, within what the ECU offers (default 4095, what every ISO-TP carries; "
        "ECUs with ISO 15765-2:2016 long messages take more: fewer blocks, a faster CAN FD flash)",
    )
    p.add_argument("--history", type=Path, help="history database (default: the workshop's)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_source_options(p)


def image_from_file(path: Path, ecu: str, version: str, release: int, address: int | None) -> FlashImage:
    from workshop_app.core.update.image import FlashImage
    from workshop_app.core.update.imagefile import read_segments

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WorkshopError(f"{path}: cannot read the image ({exc.strerror or exc})") from exc
    if not version.isascii() or len(version) > 8:
        raise WorkshopError(f"--sw-version {version!r}: at most 8 ASCII characters (DID 0xF189)")
    if not 0 <= release <= 0xFFFFFFFF:
        raise WorkshopError(f"--release {release}: must fit 32 bits (DID 0xF1B0)")
    return FlashImage(
        ecu=ecu,
        target_name=path.name,
        target_hash=hashlib.sha256(data).hexdigest(),
        segments=read_segments(data, str(path), address),
        software_version=version,
        release_counter=release,
    )


class _Bar:
    """One self-rewriting progress line on stderr: phase, bytes, %, rate, time left."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.t0 = time.monotonic()
        self.first: int | None = None
        self.last = 0.0

    def __call__(self, phase: str, done: int, total: int) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if phase == "download" and done < total and now - self.last < 0.2:
            return
        self.last = now
        if phase != "download" or not total:
            print(f"\r{phase:<24}{'':<50}", end="\n" if phase == "done" else "", file=sys.stderr, flush=True)
            return
        if self.first is None:
            self.first, self.t0 = done, now
        rate = (done - self.first) / max(1e-6, now - self.t0)
        left = (total - done) / rate if rate > 0 else 0.0
        print(
            f"\rdownload {done:>10,} / {total:,} B {100 * done / total:5.1f} % {rate / 1024:7.1f} kB/s "
            f"{left:5.0f} s left",
            end="",
            file=sys.stderr,
            flush=True,
        )


def _open_source(args: argparse.Namespace) -> FrameSource:
    from workshop_app.commands.common import source_spec
    from workshop_app.core.sources.factory import make_source
    from workshop_app.core.sources.reconnect import NO_RECONNECT

    # No reconnecting under a flash: a gap is a lost answer the job must see as such.
    source = make_source(replace(source_spec(args), reconnect=NO_RECONNECT))
    source.start()
    return source


def _address(spec: VehicleSpec, ecu: str) -> EcuAddress:
    from workshop_app.core.diag.client import EcuAddress

    try:
        return EcuAddress.of(spec.ecu(ecu))
    except (KeyError, ValueError) as exc:
        names = ", ".join(e.name for e in spec.ecus)
        raise WorkshopError(f"--ecu {ecu!r}: not in the vehicle description ({names})") from exc


def _report(args: argparse.Namespace, result: FlashResult) -> int:
    if args.json:
        print(json.dumps(dataclasses.asdict(result), indent=2))
    else:
        words = {"success": "flashed", "failed": "FAILED", "refused": "REFUSED", "cancelled": "CANCELLED"}
        print(
            f"{result.ecu}: {words.get(result.result, result.result)} {result.from_version or '?'} → "
            f"{result.to_version} in {result.seconds:.1f} s ({result.bytes_sent:,} of {result.total_bytes:,} bytes sent)"
        )
        for note in result.notes:
            print(f"  note: {note}")
        if result.error:
            print(f"  {result.error}", file=sys.stderr)
        if result.result in ("failed", "cancelled") and result.journal_id is not None:
            print(
                "  the journal keeps the state: `workshop update resume` continues or restarts it",
                file=sys.stderr,
            )
    return 0 if result.ok else (130 if result.result == "cancelled" else 1)


def run(args: argparse.Namespace) -> int:
    from workshop_app.commands.common import run_until_stopped
    from workshop_app.commands.history import history_path
    from workshop_app.commands.update import note_interrupted
    from workshop_app.core.diag.ecu_spec import demo_vehicle_spec, load_vehicle_spec
    from workshop_app.core.history.audit import AuditTrail
    from workshop_app.core.update.flash import FlashJob, FlashOptions
    from workshop_app.core.update.journal import FlashJournal

    spec = load_vehicle_spec(args.spec) if args.spec else demo_vehicle_spec()
    db = history_path(args)
    note_interrupted(db)
    entry: JournalEntry | None = None
    with FlashJournal(db) as journal, AuditTrail(db) as audit:
        if args.update_action == "resume":
            entries = journal.open_entries(args.ecu)
            if not entries:
                which = f" for {args.ecu}" if args.ecu else ""
                raise WorkshopError(f"{db}: no unfinished flash{which} in the journal")
            entry = entries[0]
            if entry.package_source is not None:
                from workshop_app.commands.install import resume_package

                journal.close()  # the update workflow opens its own
                audit.close()
                return resume_package(args, entry, spec, db)
            if not entry.image_path:
                raise WorkshopError(
                    f"journal entry {entry.id}: no image file recorded; flash again with --image"
                )
            image = _reload(entry)
        else:
            image = image_from_file(args.image, args.ecu, args.sw_version, args.release, args.address)
        address = _address(spec, image.ecu)
        options = FlashOptions(
            vin=args.vin or "",
            algorithm=args.algorithm,
            image_path=str(Path(entry.image_path if entry else args.image).resolve()),
            image_address=entry.image_address if entry else args.address,
            fd=bool(args.fd or args.data_bitrate),
            **_longest(args),
        )
        source = _open_source(args)
        try:
            bus, notifier = source.bus, getattr(source, "notifier", None)
            if bus is None or notifier is None:
                raise WorkshopError(f"{source.describe()}: flashing needs a live connection")
            job = FlashJob(
                bus, notifier, address, image, journal=journal, audit=audit, options=options, resume=entry
            )
            result = run_until_stopped("flash", lambda cancel: job.run(_Bar(args.json), cancel))
        finally:
            source.stop()
    return _report(args, result)


def _reload(entry: JournalEntry) -> FlashImage:
    """The journalled image, read again and checked to be the very bytes that were being written."""
    path = Path(entry.image_path)
    image = image_from_file(path, entry.ecu, entry.to_version, entry.release_counter, entry.image_address)
    if image.target_hash != entry.target_hash:
        raise WorkshopError(
            f"{path}: changed since the interrupted flash (SHA-256 {image.target_hash[:12]}…, "
            f"journal {entry.target_hash[:12]}…); flash again with --image"
        )
    return image


def _longest(args: argparse.Namespace) -> dict[str, Any]:
    """``--max-message`` for FlashOptions when given (its own default is 4095 bytes)."""
    return {"max_message": args.max_message} if args.max_message is not None else {}
