"""CommandGuard: every refusal, the duplicate path, and memory across a restart of the agent."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from workshop_app.core.cloud.errors import CloudError
from workshop_app.core.cloud.signing import (
    CommandGuard,
    canonical,
    generate_signing_key,
    load_grant,
    load_private_key,
    load_public_key,
    make_grant,
    next_counter,
    save_grant,
    sign_command,
)

VIN = "WSADEM5T2T0000421"
OTHER_VIN = "WSADEM5T2T0000422"


class Keys:
    def __init__(self, folder: Path) -> None:
        self.owner = load_private_key(self._make(folder / "owner.key"))
        self.workshop = load_private_key(self._make(folder / "garage-1.signing.key"))
        self.stranger = Ed25519PrivateKey.generate()
        self.state = folder / "data" / "guard.json"

    @staticmethod
    def _make(path: Path) -> Path:
        generate_signing_key(path)
        return path

    def grant(self, **kw: Any) -> dict[str, Any]:
        args: dict[str, Any] = {
            "owner_private_key": self.owner,
            "vin": VIN,
            "workshop_public_key": self.workshop.public_key(),
            "scopes": ["remote", "flash"],
            "ttl_s": 3600.0,
        }
        args.update(kw)
        return make_grant(**args)

    def command(self, action: str = "lock", grant: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        args: dict[str, Any] = {
            "workshop_private_key": self.workshop,
            "grant": grant if grant is not None else self.grant(),
            "vin": VIN,
            "action": action,
            "args": {},
            "counter": next_counter(),
            "ttl_s": 60.0,
        }
        args.update(kw)
        return sign_command(**args)

    def guard(self) -> CommandGuard:
        return CommandGuard(VIN, self.owner.public_key(), self.state)


def resign(key: Ed25519PrivateKey, document: dict[str, Any]) -> dict[str, Any]:
    document["sig"] = key.sign(canonical(document)).hex()
    return document


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path)


def test_a_good_command_is_accepted_and_keys_are_private_files(keys: Keys, tmp_path: Path) -> None:
    verdict = keys.guard().check(keys.command("unlock"))
    assert (verdict.ok, verdict.code, verdict.duplicate_of) == (True, "ok", None)
    assert (tmp_path / "owner.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "data" / "guard.json").stat().st_mode & 0o777 == 0o600
    load_public_key(tmp_path / "owner.pub")


def test_a_tampered_command_is_refused(keys: Keys) -> None:
    command = keys.command("lights", args={"on": False})
    command["args"]["on"] = True
    verdict = keys.guard().check(command)
    assert (verdict.ok, verdict.code) == (False, "bad_signature")
    assert "tampered" in verdict.reason


def test_a_tampered_grant_is_refused_even_if_the_workshop_signs_it(keys: Keys) -> None:
    command = keys.command("flash", grant=keys.grant(scopes=["remote"]))
    command["grant"]["scopes"] = ["flash", "remote"]  # the workshop widens its own grant...
    resign(keys.workshop, command)  # ...and signs the result with its valid key
    verdict = keys.guard().check(command)
    assert (verdict.ok, verdict.code) == (False, "bad_signature")
    assert "grant" in verdict.reason


def test_a_grant_from_someone_else_than_the_owner_is_refused(keys: Keys) -> None:
    command = keys.command(grant=keys.grant(owner_private_key=keys.stranger))
    assert keys.guard().check(command).code == "unknown_owner"


def test_an_expired_grant_is_refused(keys: Keys) -> None:
    grant = keys.grant(ttl_s=30.0)
    command = keys.command(grant=grant)
    verdict = keys.guard().check(command, now=grant["expires"] + 1)
    assert (verdict.ok, verdict.code) == (False, "grant_expired")


def test_a_grant_for_another_car_is_refused(keys: Keys) -> None:
    assert keys.guard().check(keys.command(grant=keys.grant(vin=OTHER_VIN))).code == "grant_vin"


def test_a_grant_for_another_workshop_key_is_refused(keys: Keys) -> None:
    grant = keys.grant(workshop_public_key=keys.stranger.public_key())
    assert keys.guard().check(keys.command(grant=grant)).code == "grant_workshop"


def test_an_action_outside_the_granted_scopes_is_refused(keys: Keys) -> None:
    guard = keys.guard()
    verdict = guard.check(keys.command("flash", grant=keys.grant(scopes=["remote"])))
    assert (verdict.ok, verdict.code) == (False, "scope")
    assert "'flash'" in verdict.reason
    assert guard.check(keys.command("lock", grant=keys.grant(scopes=["flash"]))).code == "scope"
    assert guard.check(keys.command("self-destruct")).code == "unknown_action"


def test_an_expired_command_is_refused(keys: Keys) -> None:
    command = keys.command(ttl_s=5.0)
    verdict = keys.guard().check(command, now=command["expires"] + 0.5)
    assert (verdict.ok, verdict.code) == (False, "expired")


def test_commands_from_the_future_or_valid_too_long_are_refused(keys: Keys) -> None:
    guard = keys.guard()
    command = keys.command()
    assert guard.check(command, now=command["issued"] - 3600).code == "not_yet_valid"
    command = keys.command()
    command["expires"] = command["issued"] + 86400
    assert guard.check(resign(keys.workshop, command)).code == "too_long"


def test_a_command_for_another_car_is_refused(keys: Keys) -> None:
    command = keys.command(vin=OTHER_VIN)
    verdict = keys.guard().check(command)
    assert (verdict.ok, verdict.code) == (False, "foreign_vin")
    assert OTHER_VIN in verdict.reason


def test_a_replayed_nonce_is_refused(keys: Keys) -> None:
    guard = keys.guard()
    first = keys.command()
    assert guard.check(first).ok
    again = copy.deepcopy(first)
    again["counter"] = next_counter()  # fresh counter, same nonce, validly signed
    verdict = guard.check(resign(keys.workshop, again))
    assert (verdict.ok, verdict.code) == (False, "replay")
    assert "nonce" in verdict.reason


def test_a_counter_not_above_the_last_is_refused(keys: Keys) -> None:
    guard = keys.guard()
    older, newer = keys.command(), keys.command()
    assert guard.check(newer).ok
    verdict = guard.check(older)
    assert (verdict.ok, verdict.code) == (False, "replay")
    assert "counter" in verdict.reason


def test_an_identical_redelivery_runs_once_and_gets_the_same_answer(keys: Keys) -> None:
    guard = keys.guard()
    command = keys.command("lock")
    assert guard.check(command).ok
    # Delivered again while it runs: not run, nothing to answer yet.
    assert guard.check(copy.deepcopy(command)).code == "in_progress"
    result = {"ok": True, "code": "done", "message": "locked", "data": {"LockState": 1}}
    guard.remember(command, result)
    verdict = guard.check(copy.deepcopy(command))
    assert (verdict.ok, verdict.code, verdict.duplicate_of) == (False, "duplicate", result)


def test_the_guard_remembers_across_a_restart(keys: Keys) -> None:
    first = keys.guard()
    ran, running = keys.command("lock"), keys.command("unlock")
    assert first.check(ran).ok
    first.remember(ran, {"ok": True, "code": "done"})
    assert first.check(running).ok  # the agent dies before it finishes this one
    older = keys.command()
    newest = keys.command()
    assert first.check(newest).ok

    restarted = keys.guard()
    assert restarted.check(copy.deepcopy(ran)).duplicate_of == {"ok": True, "code": "done"}
    assert restarted.check(copy.deepcopy(running)).code == "in_progress"
    assert restarted.check(older).code == "replay"
    assert restarted.check(keys.command()).ok


@pytest.mark.parametrize(
    "document",
    [None, [], "lock", {"type": "command"}, {"type": "grant"}],
    ids=["null", "list", "string", "empty-command", "grant-not-command"],
)
def test_malformed_documents_are_refused_in_plain_words(keys: Keys, document: Any) -> None:
    verdict = keys.guard().check(document)
    assert (verdict.ok, verdict.code) == (False, "malformed")
    assert verdict.reason


@pytest.mark.parametrize(
    ("field", "value"),
    [("counter", "1"), ("counter", True), ("expires", float("nan")), ("workshop_key", "zz"), ("args", [])],
)
def test_malformed_fields_are_refused(keys: Keys, field: str, value: Any) -> None:
    command = keys.command()
    command[field] = value
    assert keys.guard().check(command).code == "malformed"


def test_an_unreadable_guard_state_stops_the_agent_with_one_line(keys: Keys) -> None:
    keys.state.parent.mkdir(parents=True, exist_ok=True)
    keys.state.write_text("{not json")
    with pytest.raises(CloudError, match=r"guard\.json: command guard state unreadable"):
        keys.guard()


def test_grants_round_trip_through_a_file_and_bad_files_are_named(keys: Keys, tmp_path: Path) -> None:
    grant = keys.grant()
    path = save_grant(tmp_path / "grant.json", grant)
    assert load_grant(path) == json.loads(json.dumps(grant))
    (tmp_path / "bad.json").write_text('{"type": "grant"}')
    with pytest.raises(CloudError, match=r"bad\.json: not a grant"):
        load_grant(tmp_path / "bad.json")
    with pytest.raises(CloudError, match=r"nothing\.key: no such signing key"):
        load_private_key(tmp_path / "nothing.key")
