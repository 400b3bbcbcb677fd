"""`workshop record` and `workshop monitor` with --capture-process, run as a user would."""

from __future__ import annotations

from pathlib import Path

import can
import pytest

from workshop_app.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_record_through_a_capture_process(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "sim.blf"
    code, stdout, err = _run(
        capsys, "record", str(out), "--capture-process", "--duration", "2", "--no-history"
    )
    assert code == 0, err
    written = int(stdout.split(" frames written")[0])
    assert written > 100
    assert "0 dropped" in stdout
    assert sum(1 for _ in can.LogReader(out)) == written


def test_monitor_through_a_capture_process(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "monitor", "--capture-process", "--duration", "2", "--interval", "0.5")
    assert code == 0, err
    final = out.split("--- final\n", 1)[1]
    assert "ENGINE_DATA" in final and "WHEEL_SPEEDS" in final


def test_a_bad_recording_path_is_one_plain_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _run(capsys, "record", str(tmp_path / "x.nope"), "--capture-process", "--duration", "1")
    assert code == 1
    assert "unknown log format" in err and "Traceback" not in err
