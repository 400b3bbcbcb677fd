"""`workshop cloud broker`: a trial folder that works as written, and a broker run in the foreground."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from conftest import GARAGE1, GARAGE2, VIN, VIN2, Received

from workshop_app.cli import main
from workshop_app.core.cloud import topics
from workshop_app.core.cloud.broker import MosquittoBroker, free_port
from workshop_app.core.cloud.profile import CloudProfile, mqtt_client
from workshop_app.core.cloud.signing import (
    CommandGuard,
    load_grant,
    load_private_key,
    next_counter,
    sign_command,
)

REPO = Path(__file__).resolve().parents[2]


class Clients:
    """Connected paho clients, all stopped at teardown."""

    def __init__(self) -> None:
        self.clients: list[mqtt.Client] = []

    def connect(self, profile: CloudProfile, received: Received | None = None) -> mqtt.Client:
        client = mqtt_client(profile)
        ready = threading.Event()
        reasons: list[Any] = []
        client.on_connect = lambda c, u, f, reason, p: (reasons.append(reason), ready.set())
        if received is not None:
            client.on_message = lambda c, u, m: received.add(m)
        self.clients.append(client)
        client.connect(profile.host, profile.port, keepalive=30)
        client.loop_start()
        assert ready.wait(10) and not reasons[0].is_failure, f"{profile.client_id} did not connect"
        return client

    @staticmethod
    def subscribe(client: mqtt.Client, topic: str) -> None:
        acked = threading.Event()
        client.on_subscribe = lambda *a: acked.set()
        client.subscribe(topic, 1)
        assert acked.wait(10), f"no SUBACK for {topic}"

    def close(self) -> None:
        for client in self.clients:
            client.disconnect()
            client.loop_stop()


@pytest.fixture
def clients() -> Iterator[Clients]:
    made = Clients()
    yield made
    made.close()


def trial_args(folder: Path, port: int) -> list[str]:
    return [
        "cloud", "broker", "--dir", str(folder), "--port", str(port),
        "--vin", VIN, "--vin", VIN2, "--workshop", GARAGE1, "--workshop", GARAGE2,
        "--grant", f"{GARAGE1}:{VIN}",
    ]  # fmt: skip


def test_the_trial_folder_works_as_written(
    tmp_path: Path, clients: Clients, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    assert main(trial_args(tmp_path, port)) == 0
    out = capsys.readouterr().out
    assert "workshops/garage-1/workshop.json" in out and f"{GARAGE2} may reach: no vehicle" in out
    for key in tmp_path.rglob("*.key"):
        assert key.stat().st_mode & 0o777 == 0o600, key

    car = CloudProfile.load(tmp_path / "vehicles" / VIN / "agent.json")
    garage = CloudProfile.load(tmp_path / "workshops" / GARAGE1 / "workshop.json")
    other = CloudProfile.load(tmp_path / "workshops" / GARAGE2 / "workshop.json")
    assert (car.port, car.client_id, garage.client_id) == (port, VIN, GARAGE1)

    broker = MosquittoBroker(tmp_path / "broker", port, {GARAGE1: [VIN]})
    broker.start()
    try:
        seen, unseen = Received(), Received()
        for profile, got in ((garage, seen), (other, unseen)):
            clients.subscribe(clients.connect(profile, got), topics.all_vehicles(topics.STATE))
        vehicle = clients.connect(car)
        info = vehicle.publish(topics.vehicle_topic(VIN, topics.STATE), b"online", qos=1)
        info.wait_for_publish(10)
        assert seen.wait_for(1)
    finally:
        clients.close()
        broker.stop()
    assert unseen.topics() == []

    # The workshop's signing key and the owner's grant make a command the car accepts.
    assert garage.signing_key is not None and car.owner_key is not None and car.data_dir is not None
    grant = load_grant(garage.grants[0])
    command = sign_command(load_private_key(garage.signing_key), grant, VIN, "lock", {}, next_counter(), 30)
    guard = CommandGuard(VIN, car.owner_key, car.data_dir / "guard.json")
    assert guard.check(command).ok
    assert other.grants == ()


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--vin", "WSADEM5T2T000042I"], "is not a VIN"),
        (["--workshop", "GARAGE"], "is not a workshop id"),
        (["--grant", "garage-1"], "expected ID:VIN"),
        (["--grant", f"garage-1:{VIN2}"], f"{VIN2} is not one of the vehicles"),
        (["--grant-days", "400"], "a grant lasts between"),
    ],
)
def test_bad_input_is_one_plain_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], words: str
) -> None:
    assert main(["cloud", "broker", "--dir", str(tmp_path), *extra]) == 1
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_run_keeps_mosquitto_in_the_foreground_until_stopped(tmp_path: Path, clients: Clients) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "workshop_app", *trial_args(tmp_path, port), "--run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    lines: list[str] = []
    cond = threading.Condition()

    def read() -> None:  # a thread, so a line waiting in the pipe's buffer is never missed
        assert proc.stdout is not None
        for line in proc.stdout:
            with cond:
                lines.append(line)
                cond.notify_all()

    reader = threading.Thread(target=read, name="broker-cli-output")
    reader.start()
    try:
        with cond:
            cond.wait_for(
                lambda: any("listening on" in line for line in lines) or proc.poll() is not None, 30
            )
        assert any(f"listening on 127.0.0.1:{port}" in line for line in lines), "".join(lines)
        clients.connect(CloudProfile.load(tmp_path / "workshops" / GARAGE1 / "workshop.json"))
        clients.close()

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        reader.join(10)
        assert "mosquitto stopped" in lines[-1]
        with pytest.raises(ConnectionRefusedError):  # and mosquitto went with it
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        if proc.poll() is None:
            proc.terminate()  # its own teardown stops mosquitto; a kill is the last resort
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        reader.join(10)


def test_a_written_trial_is_run_as_written_and_never_silently_reissued(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from workshop_app.core.cloud.broker import read_trial

    port = free_port()
    assert main(trial_args(tmp_path, port)) == 0
    capsys.readouterr()
    handed_out = (tmp_path / "workshops" / GARAGE2 / f"{GARAGE2}.crt").read_bytes()
    # What `--run` on the folder serves: the port and grants written, not the defaults.
    assert read_trial(tmp_path / "broker") == (port, {GARAGE1: [VIN], GARAGE2: []})
    # Writing the folder again without naming anything would re-issue every certificate.
    assert main(["cloud", "broker", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "already holds a trial" in err and "--run" in err
    assert (tmp_path / "workshops" / GARAGE2 / f"{GARAGE2}.crt").read_bytes() == handed_out
