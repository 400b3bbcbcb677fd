"""`workshop dtc watch` in a subprocess on the simulated vehicle: new faults, triggers, Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from helpers.processes import ENV, WORKSHOP, free_port, simulator_process
from helpers.waiting import wait_until

from workshop_app.cli import main
from workshop_app.core.diag.ecu_spec import demo_vehicle_spec
from workshop_app.core.history import HistoryStore
from workshop_app.core.logs.reader import read_columns


class _Watch:
    """The command running, its stderr in a file (read while it runs), stdout piped."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.err_path = tmp_path / "stderr.txt"
        self._err = self.err_path.open("w")
        self.proc = subprocess.Popen(
            [*WORKSHOP, "dtc", "watch", "--interval", "0.3", *args],
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
            env=ENV,
        )

    def err(self) -> str:
        return self.err_path.read_text()

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.communicate()
            self._err.close()
        return self.proc.returncode, out, self.err()


def test_a_new_fault_is_printed_and_the_recording_around_it_saved_and_indexed(tmp_path):
    history = tmp_path / "h.db"
    record = tmp_path / "caught.blf"
    watch = _Watch(
        tmp_path,
        *("--fault", "misfire_cyl2", "--on-new-fault", "--before", "1", "--after", "0.5"),
        *("--record", str(record), "--history", str(history)),
    )
    code, out, err = watch.finish()  # ends by itself once the recording is saved
    assert code == 0, err
    assert "stored fault codes read" in err and "simulated fault injected: misfire_cyl2" in err
    lines = out.splitlines()
    assert any("appeared" in line and "ECM" in line and "P0302" in line for line in lines), out
    assert lines[-1].startswith(f"saved {record} (") and "fault code P0302 appeared on ECM" in lines[-1]
    cols = read_columns(record)
    assert len(cols) > 100  # the car's traffic around the fault
    vin = demo_vehicle_spec().vin
    with HistoryStore(history) as store:
        kinds = [e.kind for e in store.timeline(vin)]
        notes = [r.notes or "" for r in store.recordings()]
    assert sorted(kinds) == ["dtc", "recording"], kinds  # the recording starts --before earlier
    assert notes == ["trigger: fault code P0302 appeared on ECM"]
    assert "Traceback" not in err


def test_a_signal_trigger_saves_the_recording(tmp_path):
    record = tmp_path / "hot.asc"
    watch = _Watch(
        tmp_path,
        *("--trigger", "ENGINE_TEMPS.CoolantTemp>-100", "--before", "1", "--after", "0.5"),
        *("--record", str(record), "--no-history"),
    )
    code, out, err = watch.finish()
    assert code == 0, err
    assert "armed: ENGINE_TEMPS.CoolantTemp > -100" in err
    assert f"saved {record}" in out and "ENGINE_TEMPS.CoolantTemp > -100 (value" in out
    assert len(read_columns(record)) > 10


def test_ctrl_c_stops_the_watch_cleanly(tmp_path):
    watch = _Watch(tmp_path, "--trigger", "ENGINE_TEMPS.CoolantTemp>500", "--no-history")
    try:
        wait_until(lambda: "stored fault codes read" in watch.err(), 60, "the first read of the fault codes")
        watch.proc.send_signal(signal.SIGINT)
    finally:
        code, out, err = watch.finish()
    assert code == 0, err
    assert "stopped before the trigger fired: nothing recorded" in err and "watch stopped" in err
    assert "Traceback" not in err and out == ""


def test_bad_watch_options_are_one_plain_line(capsys, tmp_path):
    for args, expected in [
        (["--trigger", "NOPE.X>1"], "--trigger: no message 'NOPE' in the loaded databases"),
        (["--trigger", "ENGINE_TEMPS.CoolantTemp=5"], "is not MESSAGE.Signal>VALUE"),
        (["--trigger", "ENGINE_TEMPS.Nope>5"], "--trigger: ENGINE_TEMPS has no signal 'Nope'"),
        (["--trigger", "ENGINE_TEMPS.CoolantTemp>nan"], "must be a finite number"),
        (["--record", str(tmp_path / "x.blf")], "--record needs --trigger or --on-new-fault"),
    ]:
        assert main(["dtc", "watch", "--no-history", *args]) == 1
        err = capsys.readouterr().err
        assert err.startswith("workshop dtc: error: ") and expected in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_lost_link_ends_the_watch_with_one_line(tmp_path):
    port = free_port()
    with simulator_process(port) as sim:
        watch = _Watch(tmp_path, "-i", "socketcand", "--port", str(port), "--no-history")
        try:
            wait_until(lambda: "stored fault codes read" in watch.err(), 60, "the first read over socketcand")
            sim.kill()
        finally:
            code, _out, err = watch.finish()
    assert code == 1, err
    assert f"workshop dtc: error: socketcand 127.0.0.1:{port}" in err
    assert "connection lost during the fault watch" in err and "Traceback" not in err
