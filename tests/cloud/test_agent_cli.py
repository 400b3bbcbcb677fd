"""`workshop cloud agent` as a user runs it: a second process beside the simulated car.

A broker that is down at start is retried with one plain line, the car comes online when the
broker does, and SIGTERM stops it cleanly: "offline" published, counters printed, exit 0.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from helpers.agent_rig import observer, wait_until

from workshop_app.cli import main
from workshop_app.core.cloud.agent import CloudAgent
from workshop_app.core.cloud.pki import CertificateAuthority
from workshop_app.core.sources.factory import SourceSpec

VIN = "WSADEM5T2T0000421"


class Lines:
    """A pipe read on a thread of its own, line by line, with a condition to wait on."""

    def __init__(self, stream) -> None:  # type: ignore[no-untyped-def]
        self.lines: list[str] = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, args=(stream,), name="test-pipe", daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def wait_for(self, text: str, timeout: float = 30.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: any(text in line for line in self.lines), timeout)

    @property
    def text(self) -> str:
        with self.cond:
            return "\n".join(self.lines)


def test_agent_waits_for_the_broker_and_stops_cleanly_on_sigterm(cloud, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cloud.broker.stop()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workshop_app",
            "cloud",
            "agent",
            "--profile",
            str(cloud.profile_paths[VIN]),
            "--health-interval",
            "0",
            "--buffer-frames",
            "50000",
            "--history",
            str(tmp_path / "agent.db"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    out, err = Lines(proc.stdout), Lines(proc.stderr)
    try:
        assert err.wait_for("nothing listens there"), err.text
        cloud.broker.start()
        with observer(cloud.garage1, VIN) as obs:
            assert obs.wait(lambda: any(b'"online"' in s for s in obs.states), timeout=30), err.text
            assert obs.wait(lambda: len(obs.frames) > 100)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
            assert obs.wait(lambda: any(b'"offline"' in s for s in obs.states))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out.thread.join(5)
        err.thread.join(5)
    assert "Traceback" not in err.text
    assert f"agent for {VIN} on simulated vehicle" in out.text
    assert (
        f"workshop cloud agent: broker 127.0.0.1:{cloud.broker.port}: nothing listens there "
        "(is the broker running?); retrying"
    ) in err.lines
    assert "connected to 127.0.0.1" in err.text
    (summary,) = [line for line in out.lines if line.startswith("stopped")]
    assert summary.startswith("stopped (SIGTERM): frames sent ") and ", dropped 0;" in summary


def test_agent_with_a_missing_profile_says_so_in_one_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["cloud", "agent", "--profile", str(tmp_path / "nope.json")]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"workshop cloud: error: {tmp_path / 'nope.json'}: no such cloud profile"


def test_agent_told_of_a_broker_it_cannot_trust_says_why_and_keeps_the_bus(cloud, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    other_ca = CertificateAuthority.create(tmp_path / "other").cert_path
    lines: list[str] = []
    agent = CloudAgent(
        dataclasses.replace(cloud.vehicle, ca=other_ca),
        SourceSpec(),
        health_interval=0,
        on_event=lines.append,
    )
    agent.start()
    try:
        assert wait_until(lambda: any("retrying" in line for line in lines)), lines
        assert wait_until(lambda: agent.pump.buffered > 100)  # frames wait for a broker it trusts
        assert not agent.connected
    finally:
        agent.stop()
    assert f"its certificate is not trusted by {other_ca}" in lines[0] and lines[0].endswith("; retrying")


def test_agent_with_a_missing_ecu_description_says_so_before_starting(cloud, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    profile = str(cloud.profile_paths[VIN])
    assert main(["cloud", "agent", "--profile", profile, "--spec", str(tmp_path / "car.json")]) == 1
    err = capsys.readouterr().err
    assert (
        err.strip()
        == f"workshop cloud: error: {tmp_path / 'car.json'}: cannot read (No such file or directory)"
    )
