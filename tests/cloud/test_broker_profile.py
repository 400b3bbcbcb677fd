"""Cloud profiles on disk, their errors in one line, and a broker that cannot start."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import GARAGE1, CloudTrial

from workshop_app.core.cloud.broker import MosquittoBroker, acl_text
from workshop_app.core.cloud.errors import CloudError
from workshop_app.core.cloud.pki import CertificateAuthority, common_name
from workshop_app.core.cloud.profile import CloudProfile, default_workshop_profile, mqtt_client


def test_a_profile_round_trips_with_paths_relative_to_its_file(cloud: CloudTrial, tmp_path: Path) -> None:
    path = cloud.profile_paths[GARAGE1]
    loaded = CloudProfile.load(path)
    assert loaded == cloud.garage1
    raw = json.loads(path.read_text())
    assert raw["cert"] == "clients/garage-1.crt"  # inside the profile's folder: relative
    # The folder moved as a whole still works.
    moved = tmp_path / "elsewhere"
    cloud.folder.rename(moved)
    again = CloudProfile.load(moved / path.name)
    assert again.cert == (moved / "clients" / "garage-1.crt").resolve() and again.cert.is_file()
    assert again.grants and all(g.is_file() for g in again.grants)


def test_the_default_workshop_profile_lives_in_the_workshop_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WORKSHOP_HOME", str(tmp_path))
    assert default_workshop_profile() == tmp_path / "cloud" / "workshop.json"


GOOD: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 8883,
    "ca": "ca.crt",
    "cert": "garage-1.crt",
    "key": "garage-1.key",
    "client_id": "garage-1",
}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"port": 0}, "field 'port' must be between 1 and 65535"),
        ({"port": "8883"}, "field 'port' must be a number"),
        ({"ca": ""}, "field 'ca' must be a non-empty string"),
        ({"client_id": "Garage One"}, "field 'client_id': neither a VIN nor a workshop id"),
        ({"grants": "grant.json"}, "field 'grants' must be a list"),
        ({"insecure": True}, "unknown field 'insecure'"),
        ({"keepalive": 1}, "field 'keepalive' must be between 5 and 3600"),
    ],
)
def test_a_bad_field_is_named_with_the_file(tmp_path: Path, change: dict[str, Any], words: str) -> None:
    path = tmp_path / "workshop.json"
    path.write_text(json.dumps({**GOOD, **change}))
    with pytest.raises(CloudError) as err:
        CloudProfile.load(path)
    assert str(err.value).startswith(f"{path}: ") and words in str(err.value)


def test_a_missing_field_a_missing_file_and_bad_json_are_named(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({k: v for k, v in GOOD.items() if k != "key"}))
    with pytest.raises(CloudError, match="field 'key' must be"):
        CloudProfile.load(path)
    path.write_text("{")
    with pytest.raises(CloudError, match=r"p\.json: not JSON \(line 1"):
        CloudProfile.load(path)
    with pytest.raises(CloudError, match=r"nowhere\.json: no such cloud profile"):
        CloudProfile.load(tmp_path / "nowhere.json")


def test_certificates_that_do_not_load_are_named(cloud: CloudTrial, tmp_path: Path) -> None:
    missing = dataclasses.replace(cloud.garage1, cert=tmp_path / "gone.crt")
    with pytest.raises(CloudError, match=r"cert file .*gone\.crt does not exist"):
        mqtt_client(missing)
    other = CertificateAuthority.create(tmp_path / "other").issue_client(tmp_path / "other", GARAGE1)
    mismatched = dataclasses.replace(cloud.garage1, key=other.key)
    with pytest.raises(CloudError, match="certificate and key do not load or do not match"):
        mqtt_client(mismatched)
    garbage = tmp_path / "garbage.crt"
    garbage.write_text("not a certificate")
    with pytest.raises(CloudError, match=r"garbage\.crt: not a usable CA certificate"):
        mqtt_client(dataclasses.replace(cloud.garage1, ca=garbage))
    assert common_name(cloud.garage1.cert) == GARAGE1
    with pytest.raises(CloudError, match=r"garbage\.crt: not a readable PEM certificate"):
        common_name(garbage)


def test_a_broker_that_cannot_start_says_why(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        broker = MosquittoBroker(tmp_path / "broker", port)
        with pytest.raises(CloudError) as err:
            broker.start()
    assert not broker.running
    message = str(err.value)
    assert message.startswith("mosquitto exited at start") and "Address already in use" in message
    assert "\n" not in message


def test_the_access_list_refuses_names_that_are_not_workshop_ids() -> None:
    with pytest.raises(ValueError, match="is not a workshop id"):
        acl_text({"WSADEM5T2T0000421": []})  # a VIN can never be granted other vehicles


def test_a_broker_does_not_outlive_a_killed_owner(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from workshop_app.core.cloud.broker import MosquittoBroker\n"
        "broker = MosquittoBroker(Path(sys.argv[1]))\n"
        "broker.start()\n"
        "print(broker.port, flush=True)\n"
        "sys.stdin.read()\n"  # until the test closes the pipe, or kills us
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "broker")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        text=True,
    )
    try:
        assert owner.stdout is not None
        port = int(owner.stdout.readline())
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        owner.kill()  # SIGKILL: no teardown of ours runs
        owner.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except ConnectionRefusedError:
                break
            time.sleep(0.05)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait(10)
        for stream in (owner.stdin, owner.stdout):
            if stream is not None:
                stream.close()
