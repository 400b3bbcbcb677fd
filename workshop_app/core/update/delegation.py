"""Per-VIN director roles: each car's assignments in its own delegated TUF targets role.

With one top-level director targets file every car's client downloads every car's assignments.
Here the top-level director targets delegates ``<VIN>/*`` to a role named after the VIN, signed
with that role's own key; a workshop's client (``tuf.ngclient.Updater.get_targetinfo``) fetches only
the role of the car it asks for, and a key that signs one car's role can assign nothing to another
car (TUF enforces the delegated path pattern).

::

    repo = PackageRepository(folder)
    assign_per_vin(repo, "WDD2220461A000001", ["ECM-2.1.hex"])   # then repo.publish()

Keys: ``keys/director-vin-<VIN>-1.pem`` (made on first use). The snapshot working copy learns the
role's version here; ``publish`` signs it with the next snapshot and timestamp.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tuf.api.metadata import DelegatedRole, Delegations, Metadata, MetaFile, TargetFile, Targets

from workshop_app.core.errors import WorkshopError
from workshop_app.core.update.keys import generate_keys, load_signers
from workshop_app.core.update.repository import DIRECTOR, IMAGE, VIN_PATTERN, PackageRepository

ROLE_EXPIRY_OF = "targets"  # a car's role expires with the director's top-level targets


def role_key_name(vin: str) -> str:
    return f"vin-{vin}"


def assign_per_vin(
    repo: PackageRepository, vin: str, targets: Iterable[str], allow_downgrade: Iterable[str] = ()
) -> list[str]:
    """The director's word for one car in its own role: ``vin`` gets these image targets.

    Replaces that car's earlier assignments (top-level or delegated). Returns the target paths
    (``<VIN>/<image target>``). Run ``repo.publish()`` afterwards so clients see it.
    """
    if not VIN_PATTERN.match(vin):
        raise WorkshopError(f"VIN {vin!r}: 17 characters, letters (no I, O, Q) and digits")
    image_targets = repo._load(IMAGE, "targets").signed.targets
    downgrade = set(allow_downgrade)
    top = repo._load(DIRECTOR, "targets")
    for path in [p for p in top.signed.targets if p.startswith(vin + "/")]:
        del top.signed.targets[path]  # a car is assigned in one place only

    signers = load_signers(repo.keys_dir, DIRECTOR, role_key_name(vin))
    if not signers:
        signers = generate_keys(repo.keys_dir, DIRECTOR, role_key_name(vin), 1)
    delegations = top.signed.delegations or Delegations(keys={}, roles={})
    if delegations.roles is None:
        raise WorkshopError(f"{repo._meta(DIRECTOR) / 'targets.json'}: hash-bin delegations are not ours")
    old = delegations.roles.get(vin)
    for keyid in old.keyids if old else []:
        delegations.keys.pop(keyid, None)
    for signer in signers:
        delegations.keys[signer.public_key.keyid] = signer.public_key
    delegations.roles[vin] = DelegatedRole(
        name=vin,
        keyids=[s.public_key.keyid for s in signers],
        threshold=len(signers),
        terminating=True,  # no other role may answer for this car's paths
        paths=[f"{vin}/*"],
    )
    top.signed.delegations = delegations

    role_file = repo._meta(DIRECTOR) / f"{vin}.json"
    version = 1
    if role_file.is_file():
        version = Metadata[Targets].from_file(str(role_file)).signed.version + 1
    role = Targets(version=version, expires=top.signed.expires)
    assigned = []
    for name in targets:
        image = image_targets.get(name)
        if image is None:
            raise WorkshopError(f"{repo._meta(IMAGE) / 'targets.json'}: no target named {name!r}")
        ecu = image.custom["ecu"]
        entry = TargetFile(image.length, dict(image.hashes), f"{vin}/{name}")
        entry.unrecognized_fields["custom"] = {"ecu": ecu, "allow_downgrade": ecu in downgrade}
        role.targets[entry.path] = entry
        assigned.append(entry.path)
    md: Metadata[Any] = Metadata(role)
    for signer in signers:
        md.sign(signer, append=True)
    data = md.to_bytes()
    # Consistent snapshots: clients fetch N.<VIN>.json; the plain name is the working copy.
    (repo._meta(DIRECTOR) / f"{version}.{vin}.json").write_bytes(data)
    role_file.write_bytes(data)

    snapshot = repo._load(DIRECTOR, "snapshot")
    snapshot.signed.meta[f"{vin}.json"] = MetaFile(version=version)
    # The working copy only: publish() bumps, signs and writes the numbered snapshot.
    (repo._meta(DIRECTOR) / "snapshot.json").write_bytes(snapshot.to_bytes())
    repo._sign_targets(DIRECTOR, top)
    return assigned
