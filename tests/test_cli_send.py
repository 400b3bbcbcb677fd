"""`workshop send` in a subprocess against `workshop simulate --serve socketcand --parked`: the
simulated body ECU obeys BODY_COMMAND, counted and Ctrl-C-stopped periodic sends, plain errors."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import can
import pytest
from helpers.processes import ENV, free_port, simulator_process

from workshop_app.cli import main

BODY_COMMAND = 0x2B0


def _workshop(*argv: str) -> list[str]:
    return [sys.executable, "-m", "workshop_app", *argv]


@pytest.fixture
def sim_port() -> Iterator[int]:
    port = free_port()
    with simulator_process(port, "--parked") as sim:
        yield port
    assert sim.returncode == 0, sim.stderr_text


@pytest.fixture
def observer(sim_port: int) -> Iterator[can.BusABC]:
    """A third party on the simulator's bus (python-can's own socketcand client)."""
    bus = can.Bus(interface="socketcand", host="127.0.0.1", port=sim_port, channel="can0")
    yield bus
    bus.shutdown()


def _count_frames(bus: can.BusABC, arbitration_id: int, until: int, timeout: float = 30.0) -> int:
    """Read ``bus`` until ``until`` frames of ``arbitration_id`` came (or the bound passes)."""
    seen = 0
    deadline = time.monotonic() + timeout  # a bound on waiting, not a measurement
    while seen < until and time.monotonic() < deadline:
        msg = bus.recv(0.5)
        if msg is not None and msg.arbitration_id == arbitration_id:
            seen += 1
    return seen


def _send(port: int, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _workshop("send", "-i", "socketcand", "--port", str(port), *argv),
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )


def _lock_state(stdout: str) -> str:
    match = re.search(r"^\s+LockState\s+(.+)$", stdout, re.MULTILINE)
    assert match, stdout
    return match.group(1).strip()


def test_the_simulated_body_ecu_obeys_a_sent_body_command(sim_port, observer):
    for request, state in (("Lock", "Locked (1)"), ("Unlock", "Unlocked (0)"), ("Lock", "Locked (1)")):
        done = _send(
            sim_port,
            "--message",
            "BODY_COMMAND",
            "--signal",
            f"LockRequest={request}",
            "--show",
            "BODY_STATUS",
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("sent BODY_COMMAND (0x2B0): ")
        assert _lock_state(done.stdout) == state, request
    assert _count_frames(observer, BODY_COMMAND, 3) == 3  # each went over the shared bus


def test_raw_frame_counted_periodic_send(sim_port, observer):
    done = _send(sim_port, "2B0#0100", "--period", "0.01", "--count", "7")
    assert done.returncode == 0, done.stderr
    assert "sent 7 frame(s) of 0x2B0 every 10 ms (all sent); last data 01 00" in done.stdout
    assert _count_frames(observer, BODY_COMMAND, 8, timeout=3.0) == 7  # exactly 7, no eighth


def test_ctrl_c_stops_a_periodic_send_and_says_what_was_sent(sim_port, observer):
    proc = subprocess.Popen(
        _workshop(
            "send",
            "-i",
            "socketcand",
            "--port",
            str(sim_port),
            "--message",
            "BODY_COMMAND",
            "--signal",
            "LockRequest=Lock",
            "--period",
            "0.02",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        assert _count_frames(observer, BODY_COMMAND, 5) == 5  # it is sending
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    match = re.search(r"sent ([\d,]+) frame\(s\) of BODY_COMMAND \(0x2B0\) every 20 ms \(stopped\)", out)
    assert match, out
    sent = int(match.group(1).replace(",", ""))
    assert sent >= 5 and "Traceback" not in err
    assert 5 + _count_frames(observer, BODY_COMMAND, sent - 5 + 1, timeout=3.0) == sent


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["2B0#01", "--message", "BODY_COMMAND"], "not both"),
        ([], "give a frame"),
        (["--signal", "LockRequest=1"], "give a frame"),
        (["2B0#01", "--signal", "LockRequest=1"], "--signal needs --message"),
        (["2B0#01", "--count", "3"], "need --period"),
        (["2B0#1"], "two hex digits"),
        (["900#01"], "11-bit"),
        (["--message", "NOPE"], "no loaded database has a message named 'NOPE'"),
        (["--message", "BODY_COMMAND", "--signal", "LockRequest=Maybe"], "one of: "),
        (["--message", "BODY_COMMAND", "--signal", "Nope=1"], "has no signal Nope"),
        (["2B0#01", "--period", "0.0001"], "at least 1 ms"),
    ],
)
def test_bad_input_is_one_plain_line(capsys, argv, words):
    code = main(["send", *argv])
    err = capsys.readouterr().err
    assert code == 1 and words in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_bad_numbers_are_refused_where_parsed(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["send", "2B0#01", "--period", "0.1", "--count", "0"])
    assert exc.value.code == 2 and "--count" in capsys.readouterr().err


def test_a_can_fd_frame_goes_out_over_socketcand(sim_port):
    # Our socketcand client carries FD both ways (python-can's would drop the frame).
    fd_observer = can.Bus(interface="workshop-socketcand", host="127.0.0.1", port=sim_port, channel="can0")
    try:
        done = _send(sim_port, "18DAF110##1" + "A5" * 12)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "sent 0x18DAF110: " + " ".join(["A5"] * 12)
        got = None
        deadline = time.monotonic() + 30  # a bound on waiting, not a measurement
        while got is None and time.monotonic() < deadline:
            msg = fd_observer.recv(0.5)
            if msg is not None and msg.arbitration_id == 0x18DAF110:
                got = msg
        assert got is not None
        assert got.is_fd and got.bitrate_switch and got.is_extended_id and bytes(got.data) == b"\xa5" * 12
    finally:
        fd_observer.shutdown()


def test_default_is_the_simulated_car_which_locks_on_command():
    # No connection option: the built-in car in the same process; the drive has not begun
    # (it locks by itself only past 15 km/h), so Locked is the command's doing.
    done = subprocess.run(
        _workshop(
            "send", "--message", "BODY_COMMAND", "--signal", "LockRequest=Lock", "--show", "BODY_STATUS"
        ),
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )
    assert done.returncode == 0, done.stderr
    assert _lock_state(done.stdout) == "Locked (1)"
