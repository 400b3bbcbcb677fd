"""`workshop interfaces` in a real process: no driver noise, stable lines, reasons on request."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers.processes import ENV, WORKSHOP


def _interfaces(*extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in ENV.items() if not k.startswith("CAN_")}
    return subprocess.run(
        [*WORKSHOP, "interfaces", *extra], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_interfaces_prints_no_driver_noise_and_the_same_lines_every_run():
    first, second = _interfaces(), _interfaces()
    assert first.returncode == 0 and second.returncode == 0
    # python-can logs a warning for every driver it cannot load; none of that reaches the user
    assert first.stderr == "" and second.stderr == ""
    assert first.stdout == second.stdout  # no per-run channel names such as virtual channel-1081
    lines = first.stdout.splitlines()
    assert len(lines) == len(set(lines))
    assert "channel-" not in first.stdout
    assert sum("udp_multicast" in line for line in lines) <= 2  # software list + supported list
    assert "virtual" in first.stdout and "--verbose" in first.stdout


def test_interfaces_verbose_says_why_drivers_are_missing():
    result = _interfaces("--verbose")
    assert result.returncode == 0 and result.stderr == ""
    reasons = json.loads(_interfaces("--json").stdout)["driver_messages"]
    # NI-CAN exists for Windows only: off Windows its driver always says so
    assert sys.platform == "win32" or "nican" in reasons
    for name, lines in reasons.items():
        for line in lines:
            assert f"  {name}: {line}" in result.stdout.splitlines()


def test_interfaces_json_is_stable_and_deduplicated():
    result = _interfaces("--json")
    assert result.returncode == 0 and result.stderr == ""
    data = json.loads(result.stdout)
    detected = [(d["interface"], d["channel"]) for d in data["detected"]]
    assert len(detected) == len(set(detected))
    assert all(d["interface"] not in ("virtual", "udp_multicast") for d in data["detected"])
    assert {s["interface"] for s in data["software"]} == {"virtual", "udp_multicast"}
    assert all(isinstance(line, str) and line for lines in data["driver_messages"].values() for line in lines)
