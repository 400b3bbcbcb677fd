"""A signed remote flash of the simulated ECM, from a package served over real HTTP on 127.0.0.1.

The agent verifies the package itself against its own trust store, flashes locally, reports
progress and the result through the broker, and audits the attempt in its own history; with
remote flashing left off (the default) the same signed command is refused — and audited too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from helpers.agent_rig import Observer, observer
from helpers.http_folder import http_folder
from helpers.sim_packages import build_sim_package, trusting

from workshop_app.core.cloud import messages
from workshop_app.core.cloud.agent import CloudAgent
from workshop_app.core.cloud.messages import EcuRoute
from workshop_app.core.cloud.signing import (
    generate_signing_key,
    load_private_key,
    load_public_key,
    make_grant,
    next_counter,
    sign_command,
)
from workshop_app.core.history.audit import AuditTrail
from workshop_app.core.sources.factory import SourceSpec
from workshop_app.core.sources.simulator import SimulatorSource

VIN = "WSADEM5T2T0000421"


@dataclasses.dataclass
class Signed:
    owner_pub: Path
    command: Any

    @classmethod
    def make(cls, tmp: Path) -> Signed:
        owner_pub = generate_signing_key(tmp / "owner.key")
        workshop_pub = generate_signing_key(tmp / "workshop.key")
        grant = make_grant(
            load_private_key(tmp / "owner.key"), VIN, load_public_key(workshop_pub), ["flash"], 3600
        )
        workshop = load_private_key(tmp / "workshop.key")

        def command(args: dict[str, Any]) -> dict[str, Any]:
            return sign_command(workshop, grant, VIN, "flash", args, next_counter(), 120)

        return cls(owner_pub, command)


@contextmanager
def car_online(cloud, signed: Signed, **options: Any) -> Iterator[tuple[CloudAgent, Observer]]:  # type: ignore[no-untyped-def]
    profile = dataclasses.replace(cloud.vehicle, owner_key=signed.owner_pub)
    # Time nearly still: parked, engine off — the state a flash needs.
    agent = CloudAgent(profile, SourceSpec(sim_time_scale=1e-6), health_interval=0, **options)
    assert isinstance(agent.source, SimulatorSource)
    with observer(cloud.garage1, VIN) as obs:
        agent.start()
        try:
            assert agent.wait_connected(10) and agent.source.ecus is not None
            for name in ("ECM", "BCM"):
                agent.source.ecus.ecu(name).bootloader.timing.erase_seconds = 0.05  # type: ignore[union-attr]
            yield agent, obs
        finally:
            agent.stop()


def _flash(obs: Observer, command: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    corr = obs.request(messages.encode("command", command=command))
    final = obs.final_reply(corr, timeout=60)
    return final, obs.replies[corr]


def test_remote_flash_is_refused_unless_enabled_and_the_refusal_is_audited(cloud, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    signed = Signed.make(tmp_path)
    history = tmp_path / "agent-history.db"
    with car_online(cloud, signed, history=history) as (_agent, obs):
        final, _ = _flash(obs, signed.command({"url": "http://127.0.0.1:9/pkg", "ecu": "ECM"}))
    assert (final["ok"], final["code"]) == (False, "remote-flash-off")
    assert "--allow-remote-flash" in final["message"]
    with AuditTrail(history) as audit:
        (row,) = audit.rows()
    assert (row.entry.vin, row.entry.ecu, row.entry.result) == (VIN, "ECM", "refused")
    assert "garage-1" in row.entry.error


@pytest.mark.parametrize("tamper", [False, True])
def test_signed_remote_flash_of_the_ecm_from_an_http_package(cloud, tmp_path: Path, tamper: bool) -> None:  # type: ignore[no-untyped-def]
    signed = Signed.make(tmp_path)
    pkg = tmp_path / "pkg"
    repo = build_sim_package(pkg)
    store = trusting(repo, tmp_path / "agent-trust")
    if tamper:  # one bit of the image changed after signing: the agent's own check must refuse it
        (image,) = (pkg / "image/targets").glob("*.ECM-SW0500.bin")
        data = bytearray(image.read_bytes())
        data[100] ^= 1
        image.write_bytes(bytes(data))
    history = tmp_path / "agent-history.db"
    with (
        http_folder(pkg) as url,
        car_online(cloud, signed, history=history, allow_remote_flash=True, trust_dir=store.folder) as (
            _a,
            obs,
        ),
    ):
        final, replies = _flash(obs, signed.command({"url": url, "ecu": "ECM"}))
        version = obs.final_reply(
            obs.request(messages.uds_request(EcuRoute(0x7E0, 0x7E8), b"\x22\xf1\x89", 2.0))
        )
    with AuditTrail(history) as audit:
        rows = audit.rows()
    if tamper:
        assert (final["ok"], final["code"]) == (False, "package-refused")
        assert bytes.fromhex(version["data"])[3:].rstrip() == b"SW 0412"
        assert [r.entry.result for r in rows] == ["refused"]
        return
    assert (final["ok"], final["code"]) == (True, "done"), final
    assert final["data"]["flashes"] == [
        {"ecu": "ECM", "result": "success", "from": "SW 0412", "to": "SW 0500", "error": ""}
    ]
    progress = [r for r in replies if r["kind"] == "result" and r["ok"] is None]
    assert progress and progress[0]["code"] == "verified"
    assert bytes.fromhex(version["data"])[3:].rstrip() == b"SW 0500"
    assert [(r.entry.vin, r.entry.ecu, r.entry.result) for r in rows] == [(VIN, "ECM", "success")]


def test_while_a_remote_flash_runs_other_requests_are_told_the_car_is_busy(cloud, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    signed = Signed.make(tmp_path)
    pkg = tmp_path / "pkg"
    store = trusting(build_sim_package(pkg), tmp_path / "agent-trust")
    with (
        http_folder(pkg) as url,
        car_online(cloud, signed, allow_remote_flash=True, trust_dir=store.folder) as (agent, obs),
    ):
        assert isinstance(agent.source, SimulatorSource) and agent.source.ecus is not None
        agent.source.ecus.ecu("ECM").bootloader.timing.erase_seconds = 2.0  # type: ignore[union-attr]
        flash = obs.request(messages.encode("command", command=signed.command({"url": url})))
        assert obs.wait(lambda: any(r.get("code") == "verified" for r in obs.replies.get(flash, [])))
        busy = obs.final_reply(
            obs.request(messages.uds_request(EcuRoute(0x7E0, 0x7E8), b"\x22\xf1\x90", 2.0))
        )
        pong = obs.final_reply(obs.request(messages.encode("ping", sent=1.0)))
        final = obs.final_reply(flash, timeout=60)
    assert (busy["kind"], busy["code"]) == ("error", "busy") and "remote flash" in busy["message"]
    assert pong["kind"] == "pong"  # pings are answered by the network thread, flash or not
    assert (final["ok"], final["code"]) == (True, "done")
