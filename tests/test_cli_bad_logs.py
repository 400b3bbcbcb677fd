"""Damaged, wrong and impossible logs through `workshop decode/export/dtc trace/replay`, as a user runs them."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import can
import pytest

from workshop_app.cli import main
from workshop_app.core.logs.reader import read_log


@pytest.fixture(scope="module")
def tesla(shared_data: Path) -> tuple[Path, Path]:
    return (
        shared_data / "logs" / "savvycan_tesla_model_s_candump.log",
        shared_data / "dbc" / "tesla_powertrain.dbc",
    )


@pytest.fixture
def cut_blf(tmp_path: Path, tesla: tuple[Path, Path]) -> tuple[Path, int]:
    """The Tesla drive as a BLF (python-can's writer, as a recording) cut in half, and how
    many frames python-can's BLFReader recovers from it."""
    whole = tmp_path / "drive.blf"
    with can.BLFWriter(whole) as writer:
        for msg in can.LogReader(tesla[0]):
            writer.on_message_received(msg)
    data = whole.read_bytes()
    cut = tmp_path / "cut.blf"
    cut.write_bytes(data[: len(data) // 2])
    recovered = 0
    try:
        for _ in can.BLFReader(cut):
            recovered += 1
    except Exception:
        pass
    assert recovered > 0
    return cut, recovered


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, list[str]]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err.splitlines()


def _one_warning(err: list[str], command: str, path: Path) -> str:
    warnings = [line for line in err if line.startswith(f"workshop {command}: warning:")]
    assert len(warnings) == 1, err
    assert str(path) in warnings[0] and "at byte " in warnings[0]
    return warnings[0]


def test_decode_summary_of_a_cut_blf(capsys, cut_blf, tesla):
    cut, theirs = cut_blf
    code, out, err = _run(capsys, "decode", str(cut), "--dbc", str(tesla[1]), "--summary")
    assert code == 0
    _one_warning(err, "decode", cut)
    frames = int(out.split(":")[1].split("frames")[0].replace(",", ""))
    assert frames >= theirs
    assert ", 1 damaged place skipped;" in out  # the count on the summary line too
    code, out, err = _run(capsys, "decode", str(cut), "--dbc", str(tesla[1]), "--summary", "--json")
    assert code == 0 and '"damaged_places": 1' in out


def test_decode_csv_of_a_cut_blf_and_strict(capsys, tmp_path, cut_blf, tesla):
    cut, _ = cut_blf
    out_csv = tmp_path / "out.csv"
    code, _, err = _run(capsys, "decode", str(cut), "--dbc", str(tesla[1]), "-o", str(out_csv))
    assert code == 0
    _one_warning(err, "decode", cut)
    with out_csv.open() as fh:
        assert len(list(csv.reader(fh))) > 100
    refused = tmp_path / "refused.csv"
    code, _, err = _run(capsys, "decode", str(cut), "--dbc", str(tesla[1]), "-o", str(refused), "--strict")
    assert code == 1
    assert len(err) == 1 and err[0].startswith("workshop decode: error: ") and "--strict" in err[0]
    assert not refused.exists()


def test_export_and_dtc_trace_of_a_cut_blf(capsys, tmp_path, cut_blf):
    cut, theirs = cut_blf
    out = tmp_path / "part.asc"
    code, _, err = _run(capsys, "export", str(cut), "-o", str(out))
    assert code == 0
    _one_warning(err, "export", cut)
    assert len(read_log(out).frames) >= theirs
    code, _, err = _run(capsys, "dtc", "trace", str(cut))
    assert code == 0
    _one_warning(err, "dtc trace", cut)
    code, _, err = _run(capsys, "dtc", "trace", str(cut), "--strict")
    assert code == 1 and len(err) == 1 and "at byte" in err[0]


def test_replay_of_a_cut_blf(capsys, cut_blf):
    cut, theirs = cut_blf
    channel = f"bad-logs-{random.randrange(1 << 30)}"
    with can.Bus(interface="virtual", channel=channel) as listener:
        code, out, err = _run(capsys, "replay", str(cut), "-i", "virtual", "-c", channel, "--speed", "0")
        assert code == 0
        _one_warning(err, "replay", cut)
        sent = int(out.split(" frames sent")[0])
        assert sent >= theirs
        received = 0
        while listener.recv(timeout=0) is not None:
            received += 1
        assert received == sent
    code, _, err = _run(capsys, "replay", str(cut), "-i", "virtual", "-c", channel, "--strict")
    assert code == 1


@pytest.mark.parametrize("suffix", [".asc", ".log", ".trc", ".blf", ".mf4"])
def test_wrong_file_is_one_printable_line(capsys, tmp_path, tesla, suffix):
    junk = tmp_path / f"photo{suffix}"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n\x1b[31m" + random.Random(3).randbytes(3000))
    for argv in (
        ["decode", str(junk), "--dbc", str(tesla[1]), "--summary"],
        ["export", str(junk), "-o", str(tmp_path / "x.asc")],
        ["dtc", "trace", str(junk)],
    ):
        code, _, err = _run(capsys, *argv)
        assert code != 0, argv
        assert len(err) == 1 and " is not a" in err[0] and "log (" in err[0], err
        assert all(32 <= ord(ch) < 127 or ch == "…" for ch in err[0]), err[0]


def test_directory_is_not_a_log(capsys, tmp_path, tesla):
    folder = tmp_path / "drive.blf"
    folder.mkdir()
    code, _, err = _run(capsys, "decode", str(folder), "--dbc", str(tesla[1]), "--summary")
    assert code == 1 and err == [f"workshop decode: error: {folder} is a directory, not a log"]


def test_impossible_frames_rejected_counted_and_never_exported(capsys, tmp_path):
    log = tmp_path / "odd.log"
    log.write_text(
        "(1.000000) can0 123#1122\n"
        "(1.100000) can0 123#" + "00" * 20 + "\n"
        "(1.200000) can0 124#33\n"
        "(1.300000) can0 FFFFFFF0#00\n"  # error-class bit set: an error frame, kept
        "(1.400000) can0 5FFFFFFF#00\n"  # SocketCAN's RTR bit inside the id
    )
    out = tmp_path / "odd.asc"
    code, _, err = _run(capsys, "export", str(log), "-o", str(out))
    assert code == 0
    warning = [line for line in err if "warning" in line]
    assert len(warning) == 1 and "2 impossible frames rejected" in warning[0] and f"{log}:2:" in warning[0]
    back = read_log(out)
    assert not back.notes
    assert [f for f in back.frames.length.tolist()] == [2, 1, 0]  # 0: the error frame
    text = out.read_text()
    assert " d 14 " not in text and "1FFFFFFF" not in text
    code, _, err = _run(capsys, "export", str(log), "-o", str(tmp_path / "strict.asc"), "--strict")
    assert code == 1 and f"{log}:2:" in err[-1]


def test_record_refuses_txt(capsys, tmp_path):
    code, _, err = _run(capsys, "record", str(tmp_path / "drive.txt"), "--duration", "0.2", "--no-history")
    assert code == 1
    assert len(err) == 1 and "'.txt'" in err[0] and ".log" in err[0] and ".asc" in err[0]
    assert not (tmp_path / "drive.txt").exists()
