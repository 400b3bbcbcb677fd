"""What a package says it holds, read without verifying (``workshop package inspect``).

Follows timestamp → snapshot → targets as a client would, so it shows what would be fetched.
Nothing here is trusted: ``workshop update check`` is the verification.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tuf.api.exceptions import DownloadHTTPError

from workshop_app.core.update.fetch import LocalPackageFetcher, PackageFetcher, open_package
from workshop_app.core.update.refusals import PACKAGE_UNREADABLE, PackageError, Refusal
from workshop_app.core.update.repository import DIRECTOR, IMAGE
from workshop_app.core.update.verify import METADATA_LIMITS


def _json(fetcher: PackageFetcher, relative: str, limit: int) -> dict[str, Any]:
    try:
        data = fetcher.read(relative, limit)
    except DownloadHTTPError as exc:
        raise PackageError(Refusal(PACKAGE_UNREADABLE, "missing from the package", relative)) from exc
    try:
        parsed = json.loads(data)
        signed = parsed["signed"]
        if not isinstance(signed, dict):
            raise TypeError("'signed' is not an object")
        return signed
    except (ValueError, KeyError, TypeError) as exc:
        raise PackageError(Refusal(PACKAGE_UNREADABLE, f"not TUF metadata: {exc}", relative)) from exc


def _repository(fetcher: PackageFetcher, repo: str) -> dict[str, Any]:
    base = f"{repo}/metadata/"
    timestamp = _json(fetcher, base + "timestamp.json", METADATA_LIMITS.timestamp_max_length)
    snapshot_version = int(timestamp["meta"]["snapshot.json"]["version"])
    snapshot = _json(fetcher, f"{base}{snapshot_version}.snapshot.json", METADATA_LIMITS.snapshot_max_length)
    targets_version = int(snapshot["meta"]["targets.json"]["version"])
    targets = _json(fetcher, f"{base}{targets_version}.targets.json", METADATA_LIMITS.targets_max_length)
    return {
        "timestamp": {"version": timestamp["version"], "expires": timestamp["expires"]},
        "snapshot": {"version": snapshot_version, "expires": snapshot["expires"]},
        "targets_version": targets_version,
        "targets_expires": targets["expires"],
        "targets": {
            name: {
                "length": t.get("length"),
                "sha256": t.get("hashes", {}).get("sha256"),
                "custom": t.get("custom", {}),
            }
            for name, t in sorted(targets.get("targets", {}).items())
        },
    }


def inspect_package(source: str | Path) -> dict[str, Any]:
    """Both repositories' current versions, expiry dates and targets with their custom fields."""
    fetcher = open_package(source)
    try:
        out: dict[str, Any] = {"source": str(source), "verified": False}
        for repo in (IMAGE, DIRECTOR):
            out[repo] = _repository(fetcher, repo)
        out["archive"] = isinstance(fetcher, LocalPackageFetcher) and not Path(source).is_dir()
        return out
    finally:
        fetcher.close()
