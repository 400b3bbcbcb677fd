"""The publisher side: a package folder holding an image repository and a director repository.

Layout (see docs/updates.md)::

    PACKAGE/keys/                       private keys (never shipped; ``publish --archive`` leaves them out)
    PACKAGE/image/metadata/             1.root.json, N.targets.json, N.snapshot.json, timestamp.json
    PACKAGE/image/targets/<sha256>.<name>   ECU image files (TUF consistent-snapshot names)
    PACKAGE/director/metadata/          the director's TUF metadata; its targets are named <VIN>/<name>

Unversioned ``root.json``, ``targets.json`` and ``snapshot.json`` beside the versioned files are the
publisher's working copies (``root.json`` is also the file a workshop trusts once).
"""

from __future__ import annotations

import hashlib
import re
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp
from tuf.api.serialization.json import JSONSerializer

from workshop_app.core.errors import WorkshopError
from workshop_app.core.update.imagefile import BINARY, image_format, read_segments
from workshop_app.core.update.keys import ROLES, generate_keys, load_signers

IMAGE = "image"
DIRECTOR = "director"
# Target names are one plain file name: no folders, no "..", nothing a file system could misread.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
VIN_PATTERN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")
_SERIALIZER = JSONSerializer(compact=False)
# A timestamp says "nothing newer exists"; it is kept short so a withheld update shows as a freeze.
TIMESTAMP_DAYS = 7.0


def safe_target_name(name: str) -> bool:
    return bool(SAFE_NAME.match(name)) and ".." not in name


@dataclass(frozen=True, slots=True)
class Dependency:
    ecu: str
    min_version: str

    @classmethod
    def parse(cls, text: str) -> Dependency:
        ecu, sep, version = text.partition(">=")
        if not sep or not ecu.strip() or not version.strip():
            raise WorkshopError(f"dependency {text!r}: write it as ECU>=VERSION, e.g. TCM>=2.1")
        return cls(ecu.strip(), version.strip())


def _utc_in(days: float) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0)


class PackageRepository:
    """A package folder the publisher builds and signs. Every change is written at once."""

    def __init__(self, folder: Path, keys_dir: Path | None = None) -> None:
        self.folder = folder
        self.keys_dir = keys_dir or folder / "keys"
        if not (self._meta(IMAGE) / "root.json").is_file():
            raise WorkshopError(f"{folder}: no package here (make one with workshop package init)")

    # -- creation ----------------------------------------------------------------------------

    @classmethod
    def init(
        cls, folder: Path, threshold: int = 1, expires_days: float = 365, keys_dir: Path | None = None
    ) -> PackageRepository:
        """Make both repositories with ``threshold`` fresh keys per role, each signed at version 1."""
        if threshold < 1:
            raise WorkshopError("the threshold is at least 1")
        keys = keys_dir or folder / "keys"
        for repo in (IMAGE, DIRECTOR):
            if (folder / repo / "metadata" / "root.json").exists():
                raise WorkshopError(f"{folder / repo}: a repository is already here; refusing to replace it")
        for repo in (IMAGE, DIRECTOR):
            meta = folder / repo / "metadata"
            meta.mkdir(parents=True, exist_ok=True)
            if repo == IMAGE:
                (folder / repo / "targets").mkdir(exist_ok=True)
            root = Root(expires=_utc_in(expires_days))
            signers: dict[str, list[CryptoSigner]] = {}
            for role in ROLES:
                signers[role] = generate_keys(keys, repo, role, threshold)
                for signer in signers[role]:
                    root.add_key(signer.public_key, role)
                root.roles[role].threshold = threshold
            roles: dict[str, Any] = {
                "root": root,
                "targets": Targets(expires=_utc_in(expires_days)),
                "snapshot": Snapshot(expires=_utc_in(expires_days)),
                "timestamp": Timestamp(expires=_utc_in(expires_days)),
            }
            for role, signed in roles.items():
                md = Metadata(signed)
                for signer in signers[role]:
                    md.sign(signer, append=True)
                _write(meta, role, md)
        return cls(folder, keys)

    # -- targets -----------------------------------------------------------------------------

    def add_image(
        self,
        image: Path,
        *,
        ecu: str,
        version: str,
        release_counter: int,
        hardware: Iterable[str],
        min_bootloader: str = "",
        depends: Iterable[Dependency] = (),
        address: int | None = None,
        name: str | None = None,
        allow_unsafe_name: bool = False,
    ) -> str:
        """Add (or replace) an ECU image target; returns its target name. Sign with :meth:`publish`.

        ``allow_unsafe_name`` exists only to build hostile packages in tests.
        """
        try:
            data = image.read_bytes()
        except OSError as exc:
            raise WorkshopError(f"{image}: cannot read the image: {exc.strerror}") from exc
        segments = read_segments(data, str(image), address)  # refuse what the workshop could not read
        hardware = [h.strip() for h in hardware if h.strip()]
        if not hardware:
            raise WorkshopError("name at least one allowed hardware number (--hardware)")
        if release_counter < 0:
            raise WorkshopError("the release counter is a whole number from 0")
        # Versions are what ECUs report ("SW 0500"): the default name keeps them readable but safe.
        default = re.sub(r"[^A-Za-z0-9._+-]+", "_", f"{ecu}-{version}").strip("._") or "image"
        target_name = name or f"{default}{image.suffix.lower() or '.bin'}"
        if not allow_unsafe_name and not safe_target_name(target_name):
            raise WorkshopError(f"target name {target_name!r}: use letters, digits, '.', '_', '+' and '-'")
        custom: dict[str, Any] = {
            "ecu": ecu,
            "hardware": hardware,
            "min_bootloader": min_bootloader,
            "software_version": version,
            "release_counter": release_counter,
            "depends": [{"ecu": d.ecu, "min_version": d.min_version} for d in depends],
            "format": image_format(data),
            "segments": [[s.address, len(s.data)] for s in segments],
        }
        if custom["format"] == BINARY:
            custom["address"] = address
        target = TargetFile.from_data(target_name, data, ["sha256"])
        target.unrecognized_fields["custom"] = custom
        digest = hashlib.sha256(data).hexdigest()
        (self.folder / IMAGE / "targets" / f"{digest}.{quote(target_name, safe='')}").write_bytes(data)
        md = self._load(IMAGE, "targets")
        md.signed.targets[target_name] = target
        self._sign_targets(IMAGE, md)
        return target_name

    def assign(self, vin: str, targets: Iterable[str], allow_downgrade: Iterable[str] = ()) -> list[str]:
        """The director's word: VIN ``vin`` gets these image targets (replacing earlier ones).

        ``allow_downgrade`` names ECUs allowed a lower release counter: the grant is signed with
        the director's targets keys as the custom field ``allow_downgrade``.
        """
        if not VIN_PATTERN.match(vin):
            raise WorkshopError(f"VIN {vin!r}: 17 characters, letters (no I, O, Q) and digits")
        image_targets = self._load(IMAGE, "targets").signed.targets
        downgrade = set(allow_downgrade)
        md = self._load(DIRECTOR, "targets")
        for path in [p for p in md.signed.targets if p.startswith(vin + "/")]:
            del md.signed.targets[path]
        assigned = []
        for name in targets:
            image = image_targets.get(name)
            if image is None:
                raise WorkshopError(f"{self._meta(IMAGE) / 'targets.json'}: no target named {name!r}")
            ecu = image.custom["ecu"]
            entry = TargetFile(image.length, dict(image.hashes), f"{vin}/{name}")
            entry.unrecognized_fields["custom"] = {"ecu": ecu, "allow_downgrade": ecu in downgrade}
            md.signed.targets[entry.path] = entry
            assigned.append(entry.path)
        self._sign_targets(DIRECTOR, md)
        return assigned

    # -- signing -----------------------------------------------------------------------------

    def publish(
        self,
        expires_days: float | None = None,
        *,
        timestamp_expires: datetime | None = None,
        repositories: Iterable[str] = (IMAGE, DIRECTOR),
    ) -> dict[str, int]:
        """New snapshot and timestamp (and re-signed targets when ``expires_days`` is given).

        Returns the timestamp version per repository. ``timestamp_expires`` overrides the
        timestamp's expiry (tests build frozen packages with a date in the past).
        """
        versions = {}
        for repo in repositories:
            if expires_days is not None:
                targets = self._load(repo, "targets")
                targets.signed.expires = _utc_in(expires_days)
                self._sign_targets(repo, targets)
            targets_version = self._load(repo, "targets").signed.version
            snapshot = self._load(repo, "snapshot")
            snapshot.signed.meta["targets.json"] = MetaFile(version=targets_version)
            self._bump(repo, snapshot, _utc_in(expires_days) if expires_days is not None else None)
            timestamp = self._load(repo, "timestamp")
            timestamp.signed.snapshot_meta = MetaFile(version=snapshot.signed.version)
            self._bump(repo, timestamp, timestamp_expires or _utc_in(expires_days or TIMESTAMP_DAYS))
            versions[repo] = timestamp.signed.version
        return versions

    def rotate_keys(self, repo: str, role: str, count: int | None = None) -> int:
        """Replace a role's keys (a lost or leaked key); returns the new root version.

        The new root is signed by the old root keys and, for the root role, the new ones too (TUF's
        rule for clients to follow a rotation). Old key files move to ``keys/retired/``. Run
        :meth:`publish` afterwards so the role is signed with its new keys.
        """
        if role not in ROLES:
            raise WorkshopError(f"role {role!r}: one of {', '.join(ROLES)}")
        md = self._load(repo, "root")
        root = md.signed
        old_root_signers = load_signers(self.keys_dir, repo, "root")
        count = count or root.roles[role].threshold
        if count < root.roles[role].threshold:
            raise WorkshopError(
                f"{count} key(s) cannot meet the {role} threshold of {root.roles[role].threshold}"
            )
        for keyid in list(root.roles[role].keyids):
            root.revoke_key(keyid, role)
        retired = self.keys_dir / "retired"
        retired.mkdir(exist_ok=True)
        for path in sorted(self.keys_dir.glob(f"{repo}-{role}-*.pem")):
            path.rename(retired / f"{path.stem}-root{root.version}.pem")
        for signer in generate_keys(self.keys_dir, repo, role, count):
            root.add_key(signer.public_key, role)
        root.version += 1
        md.signatures.clear()
        new_root_signers = load_signers(self.keys_dir, repo, "root") if role == "root" else []
        for signer in old_root_signers + new_root_signers:
            md.sign(signer, append=True)
        _write(self._meta(repo), "root", md)
        if role == "targets":
            self._sign_targets(repo, self._load(repo, "targets"))
        return int(root.version)

    def archive(self, destination: Path) -> Path:
        """Write the shippable package (both repositories, no keys) as a .tar or .tar.gz file."""
        gz = destination.name.endswith((".tar.gz", ".tgz"))
        with tarfile.open(destination, "w:gz") if gz else tarfile.open(destination, "w") as tar:
            for repo in (IMAGE, DIRECTOR):
                for path in sorted((self.folder / repo).rglob("*")):
                    if path.is_file():
                        tar.add(path, arcname=path.relative_to(self.folder).as_posix(), recursive=False)
        return destination

    def trusted_root(self, repo: str) -> Path:
        """The root file a workshop trusts once (``workshop update trust``)."""
        return self._meta(repo) / "1.root.json"

    # -- internals ---------------------------------------------------------------------------

    def _meta(self, repo: str) -> Path:
        return self.folder / repo / "metadata"

    def _load(self, repo: str, role: str) -> Metadata[Any]:
        path = self._meta(repo) / f"{role}.json"
        try:
            return Metadata.from_file(str(path))
        except Exception as exc:  # tuf raises several unrelated types for a bad file
            raise WorkshopError(f"{path}: not readable TUF metadata: {exc}") from exc

    def _sign_targets(self, repo: str, md: Metadata[Any]) -> None:
        self._bump(repo, md, None)

    def _bump(self, repo: str, md: Metadata[Any], expires: datetime | None) -> None:
        role = md.signed.type
        md.signed.version += 1
        if expires is not None:
            md.signed.expires = expires
        signers = load_signers(self.keys_dir, repo, role)
        if not signers:
            raise WorkshopError(f"{self.keys_dir}: no {repo} {role} key to sign with")
        md.signatures.clear()
        for signer in signers:
            md.sign(signer, append=True)
        _write(self._meta(repo), role, md)


def _write(folder: Path, role: str, md: Metadata[Any]) -> None:
    data = md.to_bytes(_SERIALIZER)
    if role != "timestamp":
        # Consistent snapshots: clients fetch N.<role>.json, so an old file is never overwritten.
        (folder / f"{md.signed.version}.{role}.json").write_bytes(data)
    (folder / f"{role}.json").write_bytes(data)


def load_json_metadata(data: bytes, where: str) -> Metadata[Any]:
    try:
        return Metadata.from_bytes(data)
    except Exception as exc:
        raise WorkshopError(f"{where}: not readable TUF metadata: {exc}") from exc
