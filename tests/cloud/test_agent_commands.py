"""Signed remote commands on the simulated car through the broker: lock, unlock, lights.

The result is what the car then reports in its own status frames; every command the agent
refuses (replayed, expired, tampered, for another VIN, outside the owner's grant) leaves the
bus untouched, which a separate connection on the car's bus checks.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from helpers.agent_rig import BusSpy, Observer, observer, wait_until

from workshop_app.core.cloud import messages
from workshop_app.core.cloud.agent import CloudAgent
from workshop_app.core.cloud.signing import (
    generate_signing_key,
    load_private_key,
    load_public_key,
    make_grant,
    next_counter,
    sign_command,
)
from workshop_app.core.sources.factory import SourceSpec
from workshop_app.core.sources.simulator import SimulatorSource

VIN = "WSADEM5T2T0000421"
VIN2 = "WSADEM5T2T0000422"
BODY_COMMAND = 0x2B0


@dataclasses.dataclass
class Keys:
    owner: Any
    owner_pub: Path
    workshop: Any
    workshop_pub: Any

    def grant(self, scopes: list[str], vin: str = VIN, ttl: float = 3600) -> dict[str, Any]:
        return make_grant(self.owner, vin, self.workshop_pub, scopes, ttl)

    def command(self, action: str, args: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        grant = kw.pop("grant", None) or self.grant(["remote"])
        return sign_command(
            self.workshop, grant, kw.pop("vin", VIN), action, args or {}, next_counter(), kw.pop("ttl", 60)
        )


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    owner_pub = generate_signing_key(tmp_path / "owner.key")
    workshop_pub = generate_signing_key(tmp_path / "workshop.key")
    return Keys(
        load_private_key(tmp_path / "owner.key"),
        owner_pub,
        load_private_key(tmp_path / "workshop.key"),
        load_public_key(workshop_pub),
    )


@contextmanager
def car_online(cloud, keys: Keys, **options: Any) -> Iterator[tuple[CloudAgent, Observer, BusSpy]]:  # type: ignore[no-untyped-def]
    profile = dataclasses.replace(cloud.vehicle, owner_key=keys.owner_pub)
    # Time nearly still: the car stays parked (it would lock itself when driving off).
    agent = CloudAgent(profile, SourceSpec(sim_time_scale=1e-6), health_interval=0, **options)
    assert isinstance(agent.source, SimulatorSource)
    spy = BusSpy(agent.source.virtual_channel)
    try:
        with observer(cloud.garage1, VIN) as obs:
            agent.start()
            try:
                assert agent.wait_connected(10)
                yield agent, obs, spy
            finally:
                agent.stop()
    finally:
        spy.close()


def send(obs: Observer, command: dict[str, Any]) -> dict[str, Any]:
    return obs.final_reply(obs.request(messages.encode("command", command=command)))


def body_commands(spy: BusSpy) -> list[bytes]:
    with spy.lock:
        return [bytes(m.data) for m in spy.frames if m.arbitration_id == BODY_COMMAND]


def test_lock_unlock_and_lights_change_the_car_and_report_what_it_says(cloud, keys: Keys) -> None:  # type: ignore[no-untyped-def]
    with car_online(cloud, keys) as (agent, obs, spy):
        locked = send(obs, keys.command("lock"))
        unlocked = send(obs, keys.command("unlock"))
        lights = send(obs, keys.command("lights", {"mode": "LowBeam"}))
        high = send(obs, keys.command("lights", {"mode": "HighBeam"}))
        bad_mode = send(obs, keys.command("lights", {"mode": "Disco"}))
        assert wait_until(lambda: len(body_commands(spy)) == 4)
        assert agent.source.vehicle is not None
        state = agent.source.vehicle.model.state
        assert state.low_beam and state.high_beam and not state.locked
    assert (locked["kind"], locked["ok"], locked["code"]) == ("result", True, "done")
    assert locked["data"] == {"LockState": "Locked", "confirmed_by": "BODY_STATUS"}
    assert locked["message"] == "LockState is Locked"
    assert unlocked["ok"] is True and unlocked["data"]["LockState"] == "Unlocked"
    assert lights["ok"] is True and lights["data"] == {
        "LowBeam": "On",
        "HighBeam": "Off",
        "confirmed_by": "LIGHT_STATUS",
    }
    assert high["ok"] is True and high["message"] == "LowBeam is On, HighBeam is On"
    assert bad_mode["ok"] is False and bad_mode["code"] == "bad-args"


def test_a_redelivered_command_runs_once_and_gets_the_same_answer(cloud, keys: Keys) -> None:  # type: ignore[no-untyped-def]
    with car_online(cloud, keys) as (_agent, obs, spy):
        command = keys.command("lock")
        first = send(obs, command)
        again = send(obs, command)  # new correlation, same signed command: the guard's memory
        assert wait_until(lambda: len(body_commands(spy)) >= 1)
        assert len(body_commands(spy)) == 1
    assert first["ok"] is True
    assert {k: again[k] for k in ("ok", "code", "data")} == {k: first[k] for k in ("ok", "code", "data")}


def test_replayed_expired_tampered_foreign_and_ungranted_commands_are_refused(cloud, keys: Keys) -> None:  # type: ignore[no-untyped-def]
    with car_online(cloud, keys) as (_agent, obs, spy):
        older = keys.command("unlock")
        assert send(obs, keys.command("lock"))["ok"] is True
        replayed = send(obs, older)  # signed before the last accepted one: its counter is behind
        short = keys.command("unlock", ttl=0.05)
        assert wait_until(lambda: time.time() > short["expires"] + 0.01)
        expired = send(obs, short)
        tampered = keys.command("lights", {"mode": "LowBeam"})
        tampered["args"]["mode"] = "HighBeam"
        foreign = keys.command("unlock", vin=VIN2, grant=keys.grant(["remote"], vin=VIN2))
        ungranted = keys.command("flash", {"url": "http://127.0.0.1:1/pkg"})  # a "remote" grant only
        results = [send(obs, c) for c in (tampered, foreign, ungranted)]
        assert wait_until(lambda: len(body_commands(spy)) >= 1)
        assert len(body_commands(spy)) == 1  # only the lock went on the bus
    codes = [r["code"] for r in (replayed, expired, *results)]
    assert codes == ["replay", "expired", "bad_signature", "foreign_vin", "scope"]
    assert all(
        r["kind"] == "result" and r["ok"] is False and r["message"] for r in (replayed, expired, *results)
    )
