"""`workshop package init|add|assign|sign|publish|inspect`: the publisher's side of update packages.

Used by a manufacturer (and the tests) to build signed packages; never needed to flash a car.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from workshop_app.core.update.keys import load_signers
from workshop_app.core.update.repository import DIRECTOR, IMAGE, Dependency, PackageRepository


def _address(text: str | None) -> int | None:
    return None if text is None else int(text, 0)


def _init(args: argparse.Namespace) -> int:
    repo = PackageRepository.init(
        args.dir, threshold=args.threshold, expires_days=args.expires, keys_dir=args.keys
    )
    print(f"{args.dir}: image and director repositories made, {args.threshold} key(s) per role")
    print(f"private keys: {repo.keys_dir} (keep them off the package and away from workshops)")
    print(f"give workshops these roots once: {repo.trusted_root(IMAGE)} and {repo.trusted_root(DIRECTOR)}")
    return 0


def _add(args: argparse.Namespace) -> int:
    repo = PackageRepository(args.dir, keys_dir=args.keys)
    name = repo.add_image(
        args.image,
        ecu=args.ecu,
        version=args.version,
        release_counter=args.release_counter,
        hardware=[h for h in args.hardware.split(",")],
        min_bootloader=args.min_bootloader or "",
        depends=[Dependency.parse(d) for d in args.depends],
        address=_address(args.address),
        name=args.name,
    )
    print(
        f"{name}: added for {args.ecu} {args.version} (release counter {args.release_counter}); run publish"
    )
    return 0


def _assign(args: argparse.Namespace) -> int:
    repo = PackageRepository(args.dir, keys_dir=args.keys)
    for path in repo.assign(args.vin, args.targets, allow_downgrade=args.allow_downgrade):
        print(f"director: {path}")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    repo = PackageRepository(args.dir, keys_dir=args.keys)
    version = repo.rotate_keys(args.repository, args.role)
    print(f"{args.repository} {args.role}: new keys in {repo.keys_dir}, root version {version}; run publish")
    return 0


def _publish(args: argparse.Namespace) -> int:
    repo = PackageRepository(args.dir, keys_dir=args.keys)
    for repository in (IMAGE, DIRECTOR):
        for role in ("targets", "snapshot", "timestamp"):
            have = len(load_signers(repo.keys_dir, repository, role))
            root = json.loads((args.dir / repository / "metadata" / "root.json").read_text())
            need = root["signed"]["roles"][role]["threshold"]
            if have < need:
                print(
                    f"workshop package: warning: {repository} {role}: {have} key(s) for a threshold of {need}; "
                    "workshops will refuse it",
                    file=sys.stderr,
                )
    versions = repo.publish(expires_days=args.expires)
    for repository, version in versions.items():
        print(f"{repository}: timestamp version {version}")
    if getattr(args, "archive", None):
        print(f"archive: {repo.archive(args.archive)}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from workshop_app.core.update.inspect import inspect_package

    info = inspect_package(args.package)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['source']} (not verified: workshop update check verifies)")
    for repository in (IMAGE, DIRECTOR):
        r: dict[str, Any] = info[repository]
        print(
            f"{repository}: timestamp v{r['timestamp']['version']} (expires {r['timestamp']['expires']}), "
            f"snapshot v{r['snapshot']['version']}, targets v{r['targets_version']} (expires {r['targets_expires']})"
        )
        for name, t in r["targets"].items():
            c = t["custom"]
            if repository == IMAGE:
                depends = ", ".join(f"{d['ecu']}>={d['min_version']}" for d in c.get("depends", [])) or "none"
                print(
                    f"  {name}: {t['length']} bytes, ECU {c.get('ecu')} {c.get('software_version')} "
                    f"(release {c.get('release_counter')}), hardware {','.join(c.get('hardware', []))}, "
                    f"bootloader >= {c.get('min_bootloader') or 'any'}, depends {depends}"
                )
            else:
                grant = ", downgrade allowed" if c.get("allow_downgrade") else ""
                print(f"  {name}: ECU {c.get('ecu')}{grant}")
    return 0


ACTIONS = {
    "init": _init,
    "add": _add,
    "assign": _assign,
    "rotate": _rotate,
    "sign": _publish,
    "publish": _publish,
    "inspect": _inspect,
}


def run(args: argparse.Namespace) -> int:
    return ACTIONS[args.package_action](args)
