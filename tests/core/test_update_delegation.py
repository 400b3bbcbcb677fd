"""Per-VIN director roles (core/update/delegation.py): a car's client fetches only its own role.

Real parts: packages signed with Ed25519 keys made here, python-tuf's client walking the
delegation, the demo car's ECM flashed over a python-can virtual bus.
"""

from __future__ import annotations

import json
from pathlib import Path

from helpers.sim_packages import SPEC, VIN, build_sim_package, sim_car, trusting
from tuf.api.metadata import Metadata, MetaFile, TargetFile, Targets

from workshop_app.core.update.campaign import UpdateCampaign
from workshop_app.core.update.delegation import assign_per_vin, role_key_name
from workshop_app.core.update.keys import load_signers
from workshop_app.core.update.repository import DIRECTOR
from workshop_app.core.update.verify import EcuFacts, VehicleFacts, verify_package

OTHER = "WDD2220461A000001"
ECM_FACTS = {"ECM": EcuFacts("HW H13", "BL-02.01", "SW 0412", 1)}


def _codes(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.code for r in result.refusals]


def test_each_car_in_its_own_role_and_only_that_role_is_fetched(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    repo = build_sim_package(pkg, size=16 * 1024)
    assert assign_per_vin(repo, VIN, ["ECM-SW0500.bin"]) == [f"{VIN}/ECM-SW0500.bin"]
    assign_per_vin(repo, OTHER, ["ECM-SW0500.bin"], allow_downgrade=["ECM"])
    repo.publish()
    top = json.loads((pkg / "director/metadata/targets.json").read_text())["signed"]
    assert top["targets"] == {}  # the top-level file names no car's images any more
    assert {r["name"]: r["paths"] for r in top["delegations"]["roles"]} == {
        VIN: [f"{VIN}/*"],
        OTHER: [f"{OTHER}/*"],
    }
    store = trusting(repo, tmp_path / "trust")
    result = verify_package(pkg, VehicleFacts(VIN, dict(ECM_FACTS)), store=store)
    assert result.ok, result.refusals
    (change,) = result.changes
    assert (change.ecu, change.to_version, change.downgrade_granted) == ("ECM", "SW 0500", False)
    fetched = {p.name for p in store.metadata_dir(DIRECTOR).iterdir()}
    assert f"{VIN}.json" in fetched and f"{OTHER}.json" not in fetched
    # The other car's role carries its own downgrade grant, signed for that car only.
    older = {"ECM": EcuFacts("HW H13", "BL-02.01", "SW 0600", 3)}
    other = verify_package(pkg, VehicleFacts(OTHER, dict(older)), store=trusting(repo, tmp_path / "t2"))
    assert other.ok and other.changes[0].downgrade_granted, other.refusals
    mine = verify_package(pkg, VehicleFacts(VIN, dict(older)), store=trusting(repo, tmp_path / "t3"))
    assert _codes(mine) == ["release_counter_rollback"]

    # And the car is flashed from it, read over UDS as the workshop does.
    with sim_car(tmp_path / "flash") as car:
        campaign = UpdateCampaign(
            car.bus, car.notifier, pkg, spec=SPEC, store=store, history=tmp_path / "h.db"
        )
        assert campaign.prepare().ok
        outcome = campaign.run()
        assert outcome.ok, outcome.error
        assert car.net.ecu("ECM").flash.software_version == "SW 0500"  # type: ignore[union-attr]


def test_an_edited_car_role_is_refused(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    repo = build_sim_package(pkg)
    assign_per_vin(repo, VIN, ["ECM-SW0500.bin"])
    repo.publish()
    role_file = pkg / "director/metadata" / f"1.{VIN}.json"
    data = json.loads(role_file.read_text())
    data["signed"]["targets"][f"{VIN}/ECM-SW0500.bin"]["custom"]["allow_downgrade"] = True
    role_file.write_text(json.dumps(data))  # a grant added after signing
    result = verify_package(pkg, VehicleFacts(VIN, dict(ECM_FACTS)), store=trusting(repo, tmp_path / "trust"))
    # tuf checks a delegated role against its delegating role's keys: no valid signature left.
    assert _codes(result) == ["threshold_not_met"] and VIN in result.refusals[0].message


def test_one_cars_key_cannot_assign_images_to_another_car(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    repo = build_sim_package(pkg)
    assign_per_vin(repo, VIN, [])  # this car gets nothing
    assign_per_vin(repo, OTHER, ["ECM-SW0500.bin"])
    # The other car's role, signed with its own key, also claims an image for this car.
    meta = pkg / "director/metadata"
    md = Metadata[Targets].from_file(str(meta / f"{OTHER}.json"))
    md.signed.version += 1
    own = md.signed.targets[f"{OTHER}/ECM-SW0500.bin"]
    forged = TargetFile(own.length, dict(own.hashes), f"{VIN}/ECM-SW0500.bin")
    forged.unrecognized_fields["custom"] = {"ecu": "ECM", "allow_downgrade": False}
    md.signed.targets[forged.path] = forged
    md.signatures.clear()
    for signer in load_signers(repo.keys_dir, DIRECTOR, role_key_name(OTHER)):
        md.sign(signer, append=True)
    (meta / f"{md.signed.version}.{OTHER}.json").write_bytes(md.to_bytes())
    snapshot = Metadata.from_file(str(meta / "snapshot.json"))
    snapshot.signed.meta[f"{OTHER}.json"] = MetaFile(version=md.signed.version)
    (meta / "snapshot.json").write_bytes(snapshot.to_bytes())
    repo.publish()
    result = verify_package(pkg, VehicleFacts(VIN, dict(ECM_FACTS)), store=trusting(repo, tmp_path / "trust"))
    assert _codes(result) == ["no_targets_for_vehicle"], result.refusals
