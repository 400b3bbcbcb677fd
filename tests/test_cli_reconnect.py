"""Commands against servers that misbehave: one that never greets, one that dies and comes back.

Every process here is real: `workshop simulate --serve socketcand` killed with SIGKILL and
started again on the same port, `workshop monitor|record|dtc scan` as separate processes.
"""

from __future__ import annotations

import io
import itertools
import re
import signal
import socket
import subprocess
import threading
from pathlib import Path

import can
import pytest
from helpers.processes import ENV, WORKSHOP, free_port
from helpers.waiting import wait_for

from workshop_app.core.history.store import HistoryStore
from workshop_app.core.sources.reconnect import ReconnectPolicy

# A lost link is reopened no sooner than one retry interval later: every gap is at least that.
RETRY_S = ReconnectPolicy().retry_interval
WRITE_BUFFER = io.DEFAULT_BUFFER_SIZE  # what a log writer may hold before the file grows


class Output:
    """Collects a process's lines on a reader thread, so a test can wait for one of them."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), name="output-reader", daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.lines)

    def join(self) -> None:
        self._thread.join(10)


class Workshop:
    """One `workshop …` process with both outputs collected."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*WORKSHOP, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
        )
        self.out = Output(self.proc.stdout)
        self.err = Output(self.proc.stderr)

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        self.out.join()
        self.err.join()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait(10)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def _start_simulator(port: int) -> Workshop:
    sim = Workshop("simulate", "--serve", "socketcand", "--port", str(port), "-c", f"sim-{port}", "--no-ecus")
    wait_for(lambda: _listening(port), 20, "the simulator to listen")
    return sim


@pytest.mark.parametrize(
    "command",
    [
        ["monitor", "--duration", "30"],
        ["record", "{tmp}/out.blf", "--no-history", "--duration", "30"],
        ["dtc", "scan", "--no-history"],
    ],
    ids=["monitor", "record", "dtc-scan"],
)
def test_a_server_that_never_greets_is_a_plain_error(command, silent_port, tmp_path):
    args = [part.format(tmp=tmp_path) for part in command]
    run = Workshop(*args, "-i", "socketcand", "--port", str(silent_port))
    try:
        code = run.wait(20)  # a bound: before the deadline existed this never returned
    finally:
        run.kill()
    err = run.err.text()
    assert code == 1, err
    assert f"socketcand server 127.0.0.1:{silent_port} accepted but did not greet within 3 s" in err
    assert "Traceback" not in err


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _frames_seen(out: Output) -> int:
    counts = [int(m.group(1)) for m in re.finditer(r"\| (\d+) frames,", out.text())]
    return counts[-1] if counts else 0


def test_monitor_reports_the_gap_and_runs_on_when_the_server_restarts():
    port = free_port()
    sim = _start_simulator(port)
    mon = Workshop(
        "monitor", "-i", "socketcand", "--port", str(port), "--interval", "0.3", "--duration", "60"
    )
    try:
        wait_for(lambda: _frames_seen(mon.out) > 0, 20, "frames before the loss")
        sim.kill()
        wait_for(lambda: "link lost" in mon.out.text(), 10, "the loss to be reported")
        wait_for(lambda: "reconnecting… (gap" in mon.out.text(), 10, "the gap on the status line")
        sim = _start_simulator(port)
        wait_for(lambda: "link back after a gap of" in mon.out.text(), 15, "the return to be reported")
        before = _frames_seen(mon.out)
        wait_for(lambda: _frames_seen(mon.out) > before, 10, "frames after the return")
        assert mon.proc.poll() is None  # still running
        mon.proc.send_signal(signal.SIGINT)
        assert mon.wait(10) == 0
    finally:
        mon.kill()
        sim.kill()
    out = mon.out.text()
    gap = float(re.search(r"link back after a gap of ([\d.]+) s", out).group(1))
    assert gap >= RETRY_S  # the first attempt to reopen comes one retry interval after the loss
    shown = [float(g) for g in re.findall(r"reconnecting… \(gap ([\d.]+) s\)", out)]
    assert shown == sorted(shown) and gap >= shown[-1]  # the gap grew on screen until it ended
    assert f"socketcand 127.0.0.1:{port} can0: link lost (connection lost" in out
    assert "1 link gap(s)" in mon.err.text()
    assert "Traceback" not in mon.err.text()


def test_monitor_with_no_reconnect_ends_on_a_lost_server():
    port = free_port()
    sim = _start_simulator(port)
    mon = Workshop("monitor", "-i", "socketcand", "--port", str(port), "--no-reconnect", "--duration", "60")
    try:
        wait_for(lambda: _frames_seen(mon.out) > 0, 20, "frames")
        sim.kill()
        code = mon.wait(10)
    finally:
        mon.kill()
        sim.kill()
    assert code == 1
    assert "workshop monitor: error: connection lost" in mon.err.text()
    assert "link lost" not in mon.out.text()


def test_record_keeps_its_file_through_the_gap_and_indexes_it(tmp_path: Path):
    port = free_port()
    out_file = tmp_path / "drive.log"
    history = tmp_path / "history.db"
    sim = _start_simulator(port)
    rec = Workshop(
        "record", str(out_file), "-i", "socketcand", "--port", str(port), "--history", str(history)
    )
    try:
        wait_for(lambda: "recording socketcand" in rec.err.text(), 20, "recording to start")
        wait_for(lambda: _size(out_file) > 0, 20, "frames in the file before the loss")
        sim.kill()
        wait_for(lambda: "link lost" in rec.err.text(), 10, "the loss to be reported")
        sim = _start_simulator(port)
        wait_for(lambda: "link back after a gap of" in rec.err.text(), 15, "the return")
        # More than the writer's buffer (frames from before the loss) must arrive after the return.
        back = _size(out_file)
        wait_for(lambda: _size(out_file) > back + 4 * WRITE_BUFFER, 20, "frames in the file after the return")
        rec.proc.send_signal(signal.SIGINT)
        code = rec.wait(10)
    finally:
        rec.kill()
        sim.kill()
    out, err = rec.out.text(), rec.err.text()
    assert code == 0, err
    assert "1 link gap(s)" in out and "  gap " in out

    stamps = [m.timestamp for m in can.LogReader(str(out_file))]
    assert stamps, "the file has frames"
    jumps = [b - a for a, b in itertools.pairwise(stamps)]
    biggest = max(jumps)
    assert biggest >= RETRY_S  # the hole where the server was down
    at = jumps.index(biggest)
    assert at > 0 and at < len(stamps) - 2  # frames on both sides of it, in one file

    rid = int(re.search(r"recording id (\d+)", out).group(1))
    with HistoryStore(history) as store:
        gaps = store.recording_gaps(rid)
    assert len(gaps) == 1
    assert gaps[0].seconds() >= RETRY_S and "connection lost" in gaps[0].reason
    assert abs(gaps[0].seconds() - biggest) < 1.5  # the indexed gap is the file's hole


def test_a_scan_fails_plainly_when_the_link_is_lost_under_it(tmp_path):
    port = free_port()
    sim = Workshop("simulate", "--serve", "socketcand", "--port", str(port), "-c", f"sim-{port}")
    wait_for(lambda: _listening(port), 20, "the simulator to listen")
    err_file = tmp_path / "stderr.txt"
    with err_file.open("w") as err_out:
        # The progress line is rewritten with carriage returns: read it from a file, not by lines.
        scan = subprocess.Popen(
            [*WORKSHOP, "dtc", "scan", "-i", "socketcand", "--port", str(port), "--no-history"],
            stdout=subprocess.PIPE,
            stderr=err_out,
            text=True,
            env=ENV,
        )
        try:
            wait_for(lambda: "reading ECM" in err_file.read_text(), 30, "the scan to reach the ECUs")
            sim.kill()
            out, _ = scan.communicate(timeout=30)
        finally:
            if scan.poll() is None:
                scan.kill()
                scan.communicate()
            sim.kill()
    err = err_file.read_text()
    assert scan.returncode == 1, err
    assert f"workshop dtc: error: socketcand 127.0.0.1:{port} can0: connection lost during the scan (" in err
    assert "Traceback" not in err
    assert "Scan " not in out  # no half result printed as if it were the car's state
