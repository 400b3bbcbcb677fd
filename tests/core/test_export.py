"""Exporting part of a log: raw frames to python-can formats, decoded signals to CSV."""

from __future__ import annotations

import csv
import threading
from pathlib import Path

import can
import numpy as np
import pytest

from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.decode.vectorized import decode_columns
from workshop_app.core.errors import LogFileError
from workshop_app.core.logs.columns import FrameColumns
from workshop_app.core.logs.export import SIGNAL_HEADER, export_frames, export_signals_csv
from workshop_app.core.logs.reader import read_columns

DATA = Path(__file__).resolve().parents[1] / "data"
TESLA_LOG = DATA / "logs" / "savvycan_tesla_model_s_candump.log"
TESLA_DBC = DATA / "dbc" / "tesla_powertrain.dbc"


@pytest.fixture(scope="module")
def tesla() -> FrameColumns:
    assert TESLA_LOG.is_file(), f"test data missing: {TESLA_LOG}"
    return read_columns(TESLA_LOG)


@pytest.fixture(scope="module")
def tesla_dbs() -> DatabaseSet:
    assert TESLA_DBC.is_file(), f"test data missing: {TESLA_DBC}"
    dbs = DatabaseSet()
    dbs.add(TESLA_DBC)
    return dbs


@pytest.fixture
def written_blf(tmp_path) -> Path:
    """A BLF written by python-can: 60 frames 50 ms apart, standard and extended ids."""
    path = tmp_path / "source.blf"
    with can.Logger(path) as writer:
        for i in range(60):
            writer.on_message_received(
                can.Message(
                    timestamp=1_700_000_000.0 + i * 0.05,
                    arbitration_id=0x100 + i if i % 3 else 0x18FF0000 + i,
                    is_extended_id=not i % 3,
                    data=bytes([i, 0xA5, i ^ 0xFF])[: 1 + i % 3],
                    channel=0,
                )
            )
    return path


def _read_back(path: Path) -> list[can.Message]:
    with can.LogReader(path) as reader:
        return list(reader)


@pytest.mark.parametrize("suffix", [".blf", ".asc", ".log", ".trc", ".mf4", ".csv"])
def test_raw_range_round_trips_through_every_format(tmp_path, written_blf, suffix):
    columns = read_columns(written_blf)
    t0 = float(columns.timestamp[0])
    start, end = t0 + 0.5, t0 + 1.5  # rows 10..30
    out = tmp_path / f"part{suffix}"
    result = export_frames(columns, out, start=start, end=end)
    expected = columns.to_messages(10, 31)
    assert result.frames_written == len(expected) == 21 and result.frames_rejected == 0
    got = _read_back(out)
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.arbitration_id == e.arbitration_id
        assert g.is_extended_id == e.is_extended_id
        assert bytes(g.data) == bytes(e.data)
    # Some formats store times relative to the file start: compare the spacing.
    got_t = np.array([m.timestamp for m in got])
    exp_t = np.array([m.timestamp for m in expected])
    assert np.allclose(got_t - got_t[0], exp_t - exp_t[0], atol=1e-3)


def test_raw_export_of_real_candump_keeps_channels(tmp_path, tesla):
    out = tmp_path / "tesla_part.log"
    result = export_frames(tesla, out, start=168.0, end=169.0)
    mask = (tesla.timestamp >= 168.0) & (tesla.timestamp <= 169.0)
    assert result.frames_written == int(mask.sum()) > 0
    got = _read_back(out)
    assert [m.arbitration_id for m in got] == tesla.arbitration_id[mask].tolist()
    assert {m.channel for m in got} == {"vcan0"}
    assert all(168.0 <= m.timestamp <= 169.0 for m in got)


def test_raw_export_reports_frames_the_format_cannot_hold(tmp_path):
    columns = FrameColumns.from_messages(
        [
            can.Message(timestamp=1.0, arbitration_id=1, data=b"\x01"),
            can.Message(timestamp=2.0, arbitration_id=2, is_fd=True, data=bytes(12)),
        ]
    )
    result = export_frames(columns, tmp_path / "x.trc")
    assert result.frames_written == 1 and result.frames_rejected == 1 and "TRC" in (result.limitation or "")


def test_raw_export_cancel_and_bad_suffix(tmp_path, tesla):
    cancel = threading.Event()
    cancel.set()
    result = export_frames(tesla, tmp_path / "none.blf", cancel=cancel)
    assert result.cancelled and result.frames_written == 0
    with pytest.raises(LogFileError):
        export_frames(tesla, tmp_path / "x.unknown")


def _read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == SIGNAL_HEADER
    return rows[1:]


def test_signals_csv_of_a_range_equals_decoded_values_in_that_range(tmp_path, tesla, tesla_dbs):
    full = decode_columns(tesla, tesla_dbs)
    start, end = 168.0, 170.0
    out = tmp_path / "signals.csv"
    count = export_signals_csv(tesla, out, databases=tesla_dbs, start=start, end=end)
    rows = _read_csv(out)
    assert count == len(rows) > 0
    times = [float(r[0]) for r in rows]
    assert times == sorted(times)

    got: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for ts, message, signal, value, _label, unit in rows:
        got.setdefault((message, signal), []).append((float(ts), float(value)))
        assert unit == full.signals[(message, signal)].unit
    expected = {}
    for key, sig in full.signals.items():
        keep = (sig.timestamps >= start) & (sig.timestamps <= end)
        if keep.any():
            expected[key] = list(zip(sig.timestamps[keep].tolist(), sig.values[keep].tolist(), strict=True))
    assert got.keys() == expected.keys()
    for key, values in expected.items():
        # The CSV stores times to the microsecond and values exactly (repr).
        assert [v for _, v in got[key]] == [v for _, v in values], key
        assert np.allclose([t for t, _ in got[key]], [t for t, _ in values], atol=1e-6)


def test_signals_csv_from_a_result_with_a_signal_subset(tmp_path, tesla, tesla_dbs):
    full = decode_columns(tesla, tesla_dbs)
    picked = sorted(full.signals)[:2]
    out = tmp_path / "subset.csv"
    export_signals_csv(full, out, signals=picked)
    rows = _read_csv(out)
    assert {(r[1], r[2]) for r in rows} == set(picked)
    assert len(rows) == sum(len(full.signals[k]) for k in picked)
    with pytest.raises(LogFileError, match=r"NoSuch\.Signal"):
        export_signals_csv(full, tmp_path / "bad.csv", signals=[("NoSuch", "Signal")])
    with pytest.raises(ValueError):
        export_signals_csv(tesla, tmp_path / "bad.csv")


def test_signals_csv_writes_choice_labels(tmp_path, tesla, tesla_dbs):
    full = decode_columns(tesla, tesla_dbs)
    with_choices = [k for k, s in full.signals.items() if s.choices and len(s)]
    assert with_choices
    key = with_choices[0]
    out = tmp_path / "labels.csv"
    export_signals_csv(full, out, signals=[key])
    sig = full.signals[key]
    for row, value in zip(_read_csv(out), sig.values.tolist(), strict=True):
        assert row[4] == sig.choices.get(int(value), "")


def test_signals_mf4_of_a_range_reads_back_with_asammdf(tmp_path, tesla, tesla_dbs):
    from asammdf import MDF

    from workshop_app.core.logs.export import export_signals_mf4

    full = decode_columns(tesla, tesla_dbs)
    start, end = 168.0, 170.0
    out = tmp_path / "signals.mf4"
    count = export_signals_mf4(tesla, out, databases=tesla_dbs, start=start, end=end)
    expected = {}
    for (message, signal), sig in full.signals.items():
        keep = (sig.timestamps >= start) & (sig.timestamps <= end)
        if keep.any():
            expected[f"{message}.{signal}"] = (sig.timestamps[keep], sig.values[keep], sig.unit)
    assert count == sum(len(v[0]) for v in expected.values())
    mdf = MDF(out)
    try:
        origin = mdf.header.start_time.timestamp()
        names = {ch.name for g in mdf.groups for ch in g.channels if ch.name != "time"}
        assert names == set(expected)
        for name, (t, v, unit) in expected.items():
            back = mdf.get(name)
            np.testing.assert_array_equal(back.samples, v)  # values exactly
            assert np.allclose(back.timestamps + origin, t, atol=1e-6)
            assert back.unit == unit
    finally:
        mdf.close()
    with pytest.raises(LogFileError, match="no decoded values"):
        export_signals_mf4(tesla, tmp_path / "empty.mf4", databases=tesla_dbs, start=1e12)
