"""`workshop replay` onto a virtual bus and `workshop export`, run in-process as a user would."""

from __future__ import annotations

import csv
import uuid
from pathlib import Path

import can
import pytest

from workshop_app.cli import main
from workshop_app.core.logs.reader import read_columns

DATA = Path(__file__).resolve().parent / "data"
TESLA_LOG = DATA / "logs" / "savvycan_tesla_model_s_candump.log"
TESLA_DBC = DATA / "dbc" / "tesla_powertrain.dbc"


@pytest.fixture(scope="module")
def tesla_log() -> Path:
    assert TESLA_LOG.is_file(), f"test data missing: {TESLA_LOG}"
    return TESLA_LOG


@pytest.fixture
def channel() -> str:
    return f"cli-replay-{uuid.uuid4().hex[:8]}"


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _drain(bus: can.BusABC) -> list[can.Message]:
    out = []
    while (msg := bus.recv(0.2)) is not None:
        out.append(msg)
    return out


def test_replay_onto_virtual_bus(capsys, tesla_log, channel):
    columns = read_columns(tesla_log)
    mask = (columns.timestamp >= 167.0) & (columns.timestamp <= 168.0)  # log starts at 166 s
    with can.Bus(interface="virtual", channel=channel) as rx:
        code, out, err = _run(
            capsys, "replay", str(tesla_log), "-i", "virtual", "-c", channel, "--speed", "0",
            "--start", "1", "--end", "2",
        )  # fmt: skip
        got = _drain(rx)
    assert code == 0, err
    assert f"{int(mask.sum())} frames sent" in out and "max lateness" in out
    assert [m.arbitration_id for m in got] == columns.arbitration_id[mask].tolist()
    assert [bytes(m.data) for m in got] == [
        columns.payload[i, : columns.length[i]].tobytes() for i in mask.nonzero()[0]
    ]


def test_replay_with_a_channel_map(capsys, tmp_path, channel):
    log = tmp_path / "two.log"
    with can.Logger(log) as writer:
        for i in range(10):
            writer.on_message_received(
                can.Message(timestamp=10 + i * 0.01, arbitration_id=i, data=b"\x01", channel=f"can{i % 2}")
            )
    with can.Bus(interface="virtual", channel=channel) as rx:
        code, out, err = _run(
            capsys, "replay", str(log), "-i", "virtual", "--speed", "0", "--channel-map", f"can1={channel}"
        )
        got = _drain(rx)
    assert code == 0, err
    assert [m.arbitration_id for m in got] == [1, 3, 5, 7, 9]
    assert "5 frames of unmapped channels skipped" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--speed", "0"], "-i INTERFACE"),
        (["-i", "virtual", "-c", "x", "--start", "3", "--end", "1"], "--end is before --start"),
        (["-i", "virtual", "-c", "x", "--channel-map", "nonsense"], "LOGCHANNEL=BUSCHANNEL"),
    ],
)
def test_replay_bad_input_is_one_line_error(capsys, tesla_log, argv, message):
    code, _, err = _run(capsys, "replay", str(tesla_log), *argv)
    assert code == 1
    assert message in err and err.count("\n") == 1


def test_replay_missing_log_is_one_line_error(capsys, tmp_path):
    code, _, err = _run(capsys, "replay", str(tmp_path / "nope.log"), "-i", "virtual", "-c", "x")
    assert code == 1 and "no such file" in err and err.count("\n") == 1


def test_export_raw_frames_by_suffix(capsys, tmp_path, tesla_log):
    out_path = tmp_path / "part.blf"
    code, _, err = _run(capsys, "export", str(tesla_log), "-o", str(out_path), "--start", "2", "--end", "3")
    assert code == 0, err
    columns = read_columns(tesla_log)
    mask = (columns.timestamp >= 168.0) & (columns.timestamp <= 169.0)
    with can.LogReader(out_path) as reader:
        ids = [m.arbitration_id for m in reader]
    assert ids == columns.arbitration_id[mask].tolist()
    assert f"{len(ids)} frames written" in err


def test_export_signals_csv(capsys, tmp_path, tesla_log):
    out_path = tmp_path / "sig.csv"
    code, _, err = _run(
        capsys, "export", str(tesla_log), "--dbc", str(TESLA_DBC), "-o", str(out_path),
        "--signal", "DI_torque1.DI_torqueMotor", "--start", "1",
    )  # fmt: skip
    assert code == 0, err
    with out_path.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["timestamp", "message", "signal", "value", "label", "unit"]
    assert len(rows) > 1
    assert {(r[1], r[2]) for r in rows[1:]} == {("DI_torque1", "DI_torqueMotor")}
    assert all(float(r[0]) >= 167.0 for r in rows[1:])


def test_export_signals_mf4(capsys, tmp_path, tesla_log):
    from asammdf import MDF

    out_path = tmp_path / "sig.mf4"
    code, _, err = _run(
        capsys, "export", str(tesla_log), "--dbc", str(TESLA_DBC), "-o", str(out_path),
        "--signal", "DI_torque1.DI_torqueMotor",
    )  # fmt: skip
    assert code == 0, err
    count = int(err.split()[0])
    mdf = MDF(out_path)
    try:
        assert len(mdf.get("DI_torque1.DI_torqueMotor").samples) == count > 0
    finally:
        mdf.close()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--signal", "A.B"], "--signal needs --dbc"),
        (["--dbc", str(TESLA_DBC), "--signal", "nodot"], "MESSAGE.SIGNAL"),
        (["--dbc", str(TESLA_DBC), "--signal", "No.Such"], "No.Such"),
    ],
)
def test_export_bad_input_is_one_line_error(capsys, tmp_path, tesla_log, argv, message):
    code, _, err = _run(capsys, "export", str(tesla_log), "-o", str(tmp_path / "o.csv"), *argv)
    assert code == 1
    assert message in err and err.count("\n") == 1
