"""`workshop cloud vehicles` in its own process against the real broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from conftest import GARAGE1, GARAGE2, VIN, VIN2, CloudTrial

from workshop_app.core.cloud import topics
from workshop_app.core.history.fleet_store import FleetStore

WORKSHOP = [sys.executable, "-m", "workshop_app"]


def _run(*args: str, home) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WORKSHOP_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    # The bound keeps a hung child from hanging the suite; it is not a measurement.
    return subprocess.run(
        [*WORKSHOP, "cloud", "vehicles", *args], capture_output=True, text=True, env=env, timeout=60
    )


def _health(vin: str, when: float, battery: float, dtcs: list[dict[str, object]]) -> bytes:
    doc = {"v": 1, "vin": vin, "time": when, "interval": 60.0, "dtc_count": len(dtcs), "dtcs": dtcs}
    doc |= {"battery_v": battery, "odometer_km": 48211.3, "software": {"ECM": "SW 0412"}}
    return json.dumps(doc).encode()


def _publish(client, vin: str, leaf: str, payload: bytes) -> None:
    # Retained: the command starts listening after these were sent.
    client.publish(topics.vehicle_topic(vin, leaf), payload, qos=1, retain=True).wait_for_publish(10)


def test_vehicles_json_lists_the_granted_car_and_stores_its_health(cloud: CloudTrial, tmp_path):
    car = cloud.connect(cloud.vehicle)
    _publish(car, VIN, topics.STATE, b'{"state": "online", "time": 1733500000.0}')
    misfire = {"ecu": "ECM", "code": "P0302", "status": 0xAF, "description": "Cylinder 2 misfire"}
    _publish(car, VIN, topics.HEALTH, _health(VIN, 1733500010.0, 11.6, [misfire]))
    other = cloud.connect(cloud.vehicle2)
    _publish(other, VIN2, topics.STATE, b'{"state": "online"}')
    history = tmp_path / "history.db"

    done = _run(
        "--json",
        "--wait",
        "1",
        "--cloud-profile",
        str(cloud.profile_paths[GARAGE1]),
        "--history",
        str(history),
        home=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["vin"] for r in rows] == [VIN]  # VIN2 is not granted to garage-1
    row = rows[0]
    assert row["online"] is True and row["state"] == "online"
    assert row["dtc_count"] == 1 and row["dtcs"] == ["ECM:P0302"] and row["mil"] is True
    assert row["battery_v"] == 11.6 and row["software"] == {"ECM": "SW 0412"}
    assert row["reasons"] == ["warning lamp (MIL) on", "1 fault code", "battery low: 11.6 V"]
    with FleetStore(history) as store:
        assert [r.time for r in store.history(VIN)] == [1733500010.0]

    table = _run(
        "--wait",
        "1",
        "--cloud-profile",
        str(cloud.profile_paths[GARAGE1]),
        "--history",
        str(history),
        home=tmp_path,
    )
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:4] == ["VIN", "state", "last", "seen"]
    assert lines[1].startswith(VIN) and "11.6 V" in lines[1] and "battery low" in lines[1]


def test_a_workshop_granted_nothing_lists_nothing(cloud: CloudTrial, tmp_path):
    car = cloud.connect(cloud.vehicle)
    _publish(car, VIN, topics.STATE, b'{"state": "online"}')
    done = _run(
        "--json", "--wait", "0.5", "--cloud-profile", str(cloud.profile_paths[GARAGE2]), home=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_a_broker_that_is_gone_is_one_plain_line(cloud: CloudTrial, tmp_path):
    cloud.broker.stop()
    done = _run("--wait", "0.5", "--cloud-profile", str(cloud.profile_paths[GARAGE1]), home=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert (
        lines[0].startswith("workshop cloud vehicles: broker 127.0.0.1:")
        and "nothing listens there" in lines[0]
    )


def test_a_missing_or_broken_profile_is_one_plain_line(tmp_path):
    missing = _run("--cloud-profile", str(tmp_path / "nope.json"), home=tmp_path)
    assert missing.returncode == 1
    assert (
        missing.stderr.strip() == f"workshop cloud vehicles: {tmp_path / 'nope.json'}: no such cloud profile"
    )
    broken = tmp_path / "broken.json"
    broken.write_text('{"host": "127.0.0.1"', encoding="utf-8")
    done = _run("--cloud-profile", str(broken), home=tmp_path)
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1
    assert str(broken) in done.stderr and "Traceback" not in done.stderr
    bad_wait = _run("--wait", "nan", home=tmp_path)
    assert bad_wait.returncode == 2 and "--wait" in bad_wait.stderr


def test_ctrl_c_while_listening_prints_what_was_heard(cloud: CloudTrial, tmp_path):
    car = cloud.connect(cloud.vehicle)
    _publish(car, VIN, topics.STATE, b'{"state": "online"}')
    env = {**os.environ, "WORKSHOP_HOME": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    args = ["--json", "--wait", "600", "--cloud-profile", str(cloud.profile_paths[GARAGE1])]
    proc = subprocess.Popen(
        [*WORKSHOP, "cloud", "vehicles", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        # Once subscribed it says so, and names each car as it is first heard (either may come first).
        lines = sorted(proc.stderr.readline() for _ in range(2))
        assert lines[0].startswith("Listening to 127.0.0.1:") and "as garage-1" in lines[0]
        assert lines[1] == f"heard {VIN}\n"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert [r["vin"] for r in json.loads(out)] == [VIN]
