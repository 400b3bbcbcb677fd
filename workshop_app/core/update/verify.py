"""Verification of an update package for one car, before any programming request.

Both repositories are refreshed with ``tuf.ngclient.Updater`` from the workshop's trusted
metadata (kept per repository in the data folder), then Uptane's rule and the car's facts are
checked. The answer is a :class:`Verification`: either the :class:`FlashImage` s to program, or
refusals with a code and plain words (never both).

Example::

    store = TrustStore()                      # $WORKSHOP_HOME/update
    store.trust(image_root, director_root)    # once, from files the manufacturer handed over
    result = verify_package(Path("pkg.tar"), VehicleFacts(vin, {"ECM": EcuFacts(...)}), store=store)
    if result.ok: flash(result.images)
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, Root, TargetFile, Targets
from tuf.api.serialization.json import CanonicalJSONSerializer
from tuf.ngclient import Updater, UpdaterConfig

from workshop_app.core.errors import WorkshopError
from workshop_app.core.history.location import workshop_home
from workshop_app.core.update import refusals as R
from workshop_app.core.update.fetch import PackageFetcher, open_package
from workshop_app.core.update.image import FlashImage
from workshop_app.core.update.imagefile import BINARY, read_segments
from workshop_app.core.update.refusals import PackageError, Refusal
from workshop_app.core.update.repository import DIRECTOR, IMAGE, VIN_PATTERN, safe_target_name

# Metadata caps, far below tuf's defaults: a workshop package names a few dozen images.
METADATA_LIMITS = UpdaterConfig(
    root_max_length=256 * 1024,
    timestamp_max_length=16 * 1024,
    snapshot_max_length=1024 * 1024,
    targets_max_length=4 * 1024 * 1024,
)
MAX_IMAGE_BYTES = 64 * 1024 * 1024
_SIGNED_BY = re.compile(r"^(\S+) was signed by")


@dataclass(frozen=True, slots=True)
class EcuFacts:
    """What one ECU reported before the update (the flash job reads these from the car)."""

    hardware: str
    bootloader: str
    software_version: str
    release_counter: int


@dataclass(frozen=True, slots=True)
class VehicleFacts:
    vin: str
    ecus: Mapping[str, EcuFacts]


@dataclass(frozen=True, slots=True)
class Change:
    ecu: str
    target_name: str
    from_version: str
    to_version: str
    from_counter: int
    to_counter: int
    size: int
    downgrade_granted: bool = False


@dataclass(frozen=True, slots=True)
class Verification:
    images: tuple[FlashImage, ...] = ()
    changes: tuple[Change, ...] = ()
    refusals: tuple[Refusal, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.refusals and bool(self.images)

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.refusals]


# Highest release counter this workshop has recorded per ECU of the car (history/audit).
RecordedHighest = Callable[[str, str], int | None] | Mapping[str, int]


def version_key(version: str) -> tuple[int, ...]:
    """Versions compare by their numbers in order: "BL-02.10" > "BL-02.9", "1.10" > "1.9"."""
    return tuple(int(n) for n in re.findall(r"\d+", version))


class TrustStore:
    """The workshop's trusted metadata: the roots the user trusted once, and tuf's caches."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or workshop_home() / "update"

    def root_file(self, repo: str) -> Path:
        return self.folder / f"{repo}-root.json"

    def metadata_dir(self, repo: str) -> Path:
        path = self.folder / "metadata" / repo
        path.mkdir(parents=True, exist_ok=True)
        return path

    def trust(self, image_root: Path, director_root: Path) -> None:
        """Take these root files as the trust anchors (replacing earlier ones and their caches)."""
        checked = {IMAGE: _read_root(image_root), DIRECTOR: _read_root(director_root)}
        self.folder.mkdir(parents=True, exist_ok=True)
        for repo, data in checked.items():
            for cached in self.metadata_dir(repo).glob("*.json"):
                cached.unlink()
            self.root_file(repo).write_bytes(data)

    def trusted(self) -> bool:
        return self.root_file(IMAGE).is_file() and self.root_file(DIRECTOR).is_file()

    def bootstrap(self, repo: str) -> bytes | None:
        """None once tuf has a cached root (possibly rotated since): tuf then starts from that."""
        if (self.metadata_dir(repo) / "root.json").is_file():
            return None
        try:
            return self.root_file(repo).read_bytes()
        except OSError:
            raise PackageError(
                Refusal(
                    R.NOT_TRUSTED,
                    "no trusted root for this repository yet: run workshop update trust with the "
                    "root files the manufacturer gave you (never taken from a package)",
                    str(self.root_file(repo)),
                )
            ) from None


def _read_root(path: Path) -> bytes:
    try:
        data = path.read_bytes()
        md = Metadata[Root].from_bytes(data)
    except OSError as exc:
        raise WorkshopError(f"{path}: cannot read: {exc.strerror}") from exc
    except Exception as exc:
        raise WorkshopError(f"{path}: not TUF root metadata: {exc}") from exc
    if not isinstance(md.signed, Root):
        raise WorkshopError(f"{path}: this is {md.signed.type} metadata, not a root")
    try:
        md.signed.verify_delegate(Root.type, md.signed_bytes, md.signatures)
    except tuf_errors.UnsignedMetadataError as exc:
        raise WorkshopError(f"{path}: the root is not signed by its own keys: {exc}") from exc
    return data


def verify_package(
    source: str | Path,
    vehicle: VehicleFacts,
    *,
    store: TrustStore | None = None,
    recorded_highest: RecordedHighest | None = None,
    max_image_bytes: int = MAX_IMAGE_BYTES,
) -> Verification:
    """Verify the package at ``source`` (folder, archive or http(s) URL) for ``vehicle``.

    ``max_image_bytes`` caps a target's signed length before anything is downloaded.
    """
    store = store or TrustStore()
    try:
        fetcher = open_package(source)
    except PackageError as exc:
        return Verification(refusals=(exc.refusal,))
    try:
        with tempfile.TemporaryDirectory(prefix="workshop-update-") as scratch:
            return _verify(fetcher, vehicle, store, recorded_highest, Path(scratch), max_image_bytes)
    except PackageError as exc:
        return Verification(refusals=(exc.refusal,))
    finally:
        fetcher.close()


def _verify(
    fetcher: PackageFetcher,
    vehicle: VehicleFacts,
    store: TrustStore,
    recorded_highest: RecordedHighest | None,
    scratch: Path,
    max_image_bytes: int,
) -> Verification:
    updaters = {}
    for repo in (IMAGE, DIRECTOR):
        updaters[repo] = _refreshed(fetcher, store, repo, scratch)
    director_targets = _trusted_targets(store, DIRECTOR)
    image_targets = _trusted_targets(store, IMAGE)
    # Names become file names and URLs: anything but "<VIN>/<plain name>" and "<plain name>" is refused.
    for name in director_targets:
        vin_part, _, base = name.partition("/")
        if not (VIN_PATTERN.match(vin_part) and safe_target_name(base)):
            raise PackageError(
                Refusal(R.PATH_TRAVERSAL, f"target name {name!r} is not <VIN>/<file name>", DIRECTOR)
            )
    for name in image_targets:
        if not safe_target_name(name):
            raise PackageError(
                Refusal(R.PATH_TRAVERSAL, f"target name {name!r} is not a plain file name", IMAGE)
            )
    mine = {p: t for p, t in director_targets.items() if p.startswith(vehicle.vin + "/")}
    if not mine and _delegates(store):
        # Per-VIN roles (core/update/delegation.py): tuf walks the delegation to this car's role
        # only, for each image the maker released; other cars' roles are never fetched.
        for name in image_targets:
            found = _guarded(
                partial(updaters[DIRECTOR].get_targetinfo, f"{vehicle.vin}/{name}"),
                fetcher,
                store,
                DIRECTOR,
                "metadata",
            )
            if found is not None:
                mine[found.path] = found
    if not mine:
        raise PackageError(
            Refusal(R.NO_DIRECTOR_TARGETS, f"the director assigns nothing to VIN {vehicle.vin}")
        )

    refusals: list[Refusal] = []
    chosen: list[tuple[str, TargetFile, TargetFile]] = []
    for path, directed in sorted(mine.items()):
        name = path.split("/", 1)[1]
        image = _guarded(partial(updaters[IMAGE].get_targetinfo, name), fetcher, store, IMAGE, "metadata")
        ecu = str(directed.custom.get("ecu", ""))
        if image is None:
            refusals.append(
                Refusal(R.NOT_IN_IMAGE_REPOSITORY, "the image repository has no such target", name)
            )
            continue
        # Uptane: the director (this car) and the image repository (the maker) must name the same bytes.
        if image.length != directed.length or image.hashes != directed.hashes:
            refusals.append(
                Refusal(
                    R.DIRECTOR_MISMATCH,
                    f"director and image repository disagree (length {directed.length} vs {image.length}, "
                    "or hashes differ)",
                    name,
                )
            )
            continue
        if image.custom.get("ecu") != ecu:
            refusals.append(
                Refusal(
                    R.DIRECTOR_MISMATCH,
                    f"director says ECU {ecu}, image repository {image.custom.get('ecu')}",
                    name,
                )
            )
            continue
        problem = _custom_problem(image)
        if problem:
            refusals.append(Refusal(R.METADATA_INVALID, problem, name))
            continue
        if any(ecu == other for other, _, _ in chosen):
            refusals.append(Refusal(R.DIRECTOR_MISMATCH, f"the director assigns two images to {ecu}", name))
            continue
        if image.length > max_image_bytes:
            refusals.append(
                Refusal(R.IMAGE_TOO_LARGE, f"declares {image.length} bytes (limit {max_image_bytes})", name)
            )
            continue
        chosen.append((ecu, directed, image))

    planned = {ecu: image for ecu, _, image in chosen}
    for ecu, directed, image in chosen:
        refusals.extend(_car_checks(ecu, directed, image, vehicle, planned, recorded_highest))
    if refusals:
        return Verification(refusals=tuple(refusals))

    images, changes = [], []
    for ecu, directed, image in chosen:
        local = scratch / "targets" / image.hashes["sha256"]
        _guarded(
            partial(updaters[IMAGE].download_target, image, str(local)),
            fetcher,
            store,
            IMAGE,
            "target",
        )
        custom = image.custom
        address = custom.get("address") if custom.get("format") == BINARY else None
        segments = read_segments(local.read_bytes(), image.path, address)
        flash = FlashImage(
            ecu=ecu,
            target_name=image.path,
            target_hash=image.hashes["sha256"],
            segments=segments,
            software_version=str(custom["software_version"]),
            release_counter=int(custom["release_counter"]),
            min_bootloader=str(custom.get("min_bootloader", "")),
            hardware=tuple(custom.get("hardware", ())),
        )
        facts = vehicle.ecus[ecu]
        images.append(flash)
        changes.append(
            Change(
                ecu,
                image.path,
                facts.software_version,
                flash.software_version,
                facts.release_counter,
                flash.release_counter,
                flash.size,
                downgrade_granted=directed.custom.get("allow_downgrade") is True
                and flash.release_counter < facts.release_counter,
            )
        )
    return Verification(images=tuple(images), changes=tuple(changes))


def _custom_problem(image: TargetFile) -> str:
    """What is wrong with a target's signed custom fields (signed, yet maybe made by a faulty tool)."""
    c = image.custom if isinstance(image.custom, dict) else {}
    if "sha256" not in image.hashes:
        return "the target has no SHA-256 hash"
    if not isinstance(c.get("ecu"), str) or not isinstance(c.get("software_version"), str):
        return "custom fields 'ecu' and 'software_version' must be text"
    if not isinstance(c.get("release_counter"), int) or c["release_counter"] < 0:
        return "custom field 'release_counter' must be a whole number from 0"
    hardware = c.get("hardware")
    if not isinstance(hardware, list) or not all(isinstance(h, str) for h in hardware):
        return "custom field 'hardware' must be a list of hardware numbers"
    depends = c.get("depends", [])
    if not isinstance(depends, list) or not all(
        isinstance(d, dict) and isinstance(d.get("ecu"), str) and isinstance(d.get("min_version"), str)
        for d in depends
    ):
        return "custom field 'depends' must list {ecu, min_version} pairs"
    if c.get("format") == BINARY and not isinstance(c.get("address"), int):
        return "a raw binary target needs an integer 'address'"
    return ""


def _refreshed(fetcher: PackageFetcher, store: TrustStore, repo: str, scratch: Path) -> Updater:
    bootstrap = store.bootstrap(repo)

    def make() -> Updater:
        updater = Updater(
            str(store.metadata_dir(repo)),
            f"{fetcher.base_url}{repo}/metadata/",
            str(scratch / "targets"),
            f"{fetcher.base_url}{repo}/targets/",
            fetcher=fetcher,
            config=METADATA_LIMITS,
            bootstrap=bootstrap,
        )
        updater.refresh()
        return updater

    updater: Updater = _guarded(make, fetcher, store, repo, "metadata")
    return updater


def _trusted_targets(store: TrustStore, repo: str) -> dict[str, TargetFile]:
    # tuf writes a role's file to the metadata folder only after verifying it: safe to read here.
    path = store.metadata_dir(repo) / "targets.json"
    md = Metadata[Targets].from_file(str(path))
    return dict(md.signed.targets)


def _delegates(store: TrustStore) -> bool:
    path = store.metadata_dir(DIRECTOR) / "targets.json"
    return Metadata[Targets].from_file(str(path)).signed.delegations is not None


def _guarded(
    call: Callable[[], Any], fetcher: PackageFetcher, store: TrustStore, repo: str, phase: str
) -> Any:
    try:
        return call()
    except PackageError:
        raise
    except tuf_errors.DownloadError as exc:
        if isinstance(exc.__cause__, PackageError):
            raise exc.__cause__ from None
        raise PackageError(_refusal(exc, fetcher, store, repo, phase)) from exc
    except (tuf_errors.RepositoryError, ValueError) as exc:
        raise PackageError(_refusal(exc, fetcher, store, repo, phase)) from exc


def _refusal(exc: Exception, fetcher: PackageFetcher, store: TrustStore, repo: str, phase: str) -> Refusal:
    where = f"{repo} repository"
    text = str(exc)
    if isinstance(exc, tuf_errors.DownloadLengthMismatchError):
        if phase == "target":
            return Refusal(R.ENDLESS_DATA, f"a target is longer than its signed length ({text})", where)
        return Refusal(R.OVERSIZED_METADATA, f"metadata larger than allowed ({text})", where)
    if isinstance(exc, tuf_errors.DownloadHTTPError) and exc.status_code == 404:
        return Refusal(R.PACKAGE_UNREADABLE, f"a file is missing: {text}", where)
    if isinstance(exc, tuf_errors.DownloadError):
        return Refusal(R.PACKAGE_UNREADABLE, f"could not read the package: {text}", where)
    if isinstance(exc, tuf_errors.LengthOrHashMismatchError):
        if phase == "target":
            return Refusal(R.HASH_MISMATCH, f"an image's bytes are not the ones signed ({text})", where)
        return Refusal(R.MIX_AND_MATCH, f"metadata files from different releases ({text})", where)
    if isinstance(exc, tuf_errors.ExpiredMetadataError):
        return Refusal(R.EXPIRED, f"metadata expired, updates may be withheld (freeze): {text}", where)
    if isinstance(exc, tuf_errors.BadVersionNumberError):
        if text.startswith("Expected") and ("snapshot version" in text or " v" in text.split(",")[0]):
            return Refusal(R.MIX_AND_MATCH, f"metadata files from different releases: {text}", where)
        return Refusal(R.ROLLBACK, f"older metadata than this workshop already trusts: {text}", where)
    if isinstance(exc, tuf_errors.UnsignedMetadataError):
        return _signature_refusal(text, fetcher, store, repo)
    return Refusal(R.METADATA_INVALID, f"invalid metadata: {text}", where)


def _signature_refusal(text: str, fetcher: PackageFetcher, store: TrustStore, repo: str) -> Refusal:
    """Tell an unknown key, a bad signature and too few signatures apart (tuf says only 'n/m')."""
    where = f"{repo} repository"
    match = _SIGNED_BY.match(text)
    role = match.group(1) if match else ""
    served = [
        (url, data)
        for url, data in fetcher.metadata_served.items()
        if f"/{repo}/metadata/" in url and re.search(rf"(^|/|\d\.){re.escape(role)}\.json$", url)
    ]
    try:
        trusted_root = Metadata[Root].from_file(str(store.metadata_dir(repo) / "root.json")).signed
        url, data = served[-1]
        md = Metadata.from_bytes(data)
        delegation = trusted_root.roles[role]
    except Exception:
        return Refusal(R.THRESHOLD_NOT_MET, f"not signed by enough trusted keys: {text}", where)
    payload = CanonicalJSONSerializer().serialize(md.signed)
    unknown = bad = 0
    for keyid, signature in md.signatures.items():
        if keyid not in delegation.keyids:
            unknown += 1
            continue
        try:
            trusted_root.keys[keyid].verify_signature(signature, payload)
        except Exception:
            bad += 1
    name = url.rsplit("/", 1)[-1]
    if bad:
        return Refusal(
            R.BAD_SIGNATURE, f"{bad} signature(s) do not match the content: altered after signing", name
        )
    if unknown:
        return Refusal(R.UNKNOWN_KEY, f"signed by {unknown} key(s) the trusted root does not name", name)
    return Refusal(
        R.THRESHOLD_NOT_MET,
        f"{len(md.signatures)} valid signature(s), {delegation.threshold} required",
        name,
    )


def _car_checks(
    ecu: str,
    directed: TargetFile,
    image: TargetFile,
    vehicle: VehicleFacts,
    planned: Mapping[str, TargetFile],
    recorded_highest: RecordedHighest | None,
) -> list[Refusal]:
    facts = vehicle.ecus.get(ecu)
    name = image.path
    if facts is None:
        return [Refusal(R.UNKNOWN_ECU, f"the car reported no ECU {ecu}", name)]
    custom = image.custom
    out = []
    allowed = [str(h) for h in custom.get("hardware", [])]
    # ASCII DIDs come padded with spaces or NULs.
    hardware = facts.hardware.strip(" \x00")
    if hardware not in allowed:
        out.append(
            Refusal(
                R.HARDWARE_NOT_ALLOWED,
                f"{ecu} hardware {hardware!r} is not among {', '.join(allowed)}",
                name,
            )
        )
    minimum = str(custom.get("min_bootloader", ""))
    if minimum and version_key(facts.bootloader) < version_key(minimum):
        out.append(
            Refusal(
                R.BOOTLOADER_TOO_OLD, f"{ecu} bootloader {facts.bootloader} is older than {minimum}", name
            )
        )
    new_counter = int(custom.get("release_counter", -1))
    recorded = _recorded(recorded_highest, vehicle.vin, ecu)
    floor = max(facts.release_counter, recorded if recorded is not None else -1)
    # The grant must come from the director (signed for this VIN), never from the image repository.
    if new_counter < floor and directed.custom.get("allow_downgrade") is not True:
        seen = "the ECU reports" if floor == facts.release_counter else "this workshop has recorded"
        out.append(
            Refusal(
                R.RELEASE_ROLLBACK,
                f"{ecu} release counter {new_counter} is lower than {floor} ({seen}) and no downgrade is granted",
                name,
            )
        )
    for dep in custom.get("depends", []):
        other, needed = str(dep.get("ecu")), str(dep.get("min_version"))
        if other in planned:
            have: str | None = str(planned[other].custom.get("software_version", ""))
        else:
            other_facts = vehicle.ecus.get(other)
            have = other_facts.software_version if other_facts else None
        if have is None or version_key(have) < version_key(needed):
            out.append(
                Refusal(
                    R.DEPENDENCY_NOT_MET,
                    f"{ecu} needs {other} at {needed} or later; {other} has {have or 'nothing reported'}",
                    name,
                )
            )
    return out


def _recorded(recorded: RecordedHighest | None, vin: str, ecu: str) -> int | None:
    if recorded is None:
        return None
    if isinstance(recorded, Mapping):
        return recorded.get(ecu)
    return recorded(vin, ecu)
