"""Offline log analysis on a real Tesla log: load + decode, summaries, range statistics, markers."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.logs.analysis import (
    PHASE_DECODE,
    PHASE_READ,
    LoadCancelled,
    LoadedLog,
    Marker,
    MarkerError,
    MarkerSet,
    load_and_decode,
    markers_path,
    message_summary,
    range_statistics,
)

DATA = Path(__file__).resolve().parents[1] / "data"
TESLA_LOG = DATA / "logs" / "savvycan_tesla_model_s_candump.log"
TESLA_DBC = DATA / "dbc" / "tesla_powertrain.dbc"


@pytest.fixture(scope="module")
def databases() -> DatabaseSet:
    assert TESLA_DBC.is_file(), f"test data missing: {TESLA_DBC}"
    dbs = DatabaseSet()
    dbs.add(TESLA_DBC)
    return dbs


@pytest.fixture(scope="module")
def tesla(databases: DatabaseSet) -> LoadedLog:
    assert TESLA_LOG.is_file(), f"test data missing: {TESLA_LOG}"
    return load_and_decode(TESLA_LOG, databases)


def test_load_and_decode_counts_and_reports_both_phases(databases: DatabaseSet) -> None:
    calls: list[tuple[str, int, int]] = []
    log = load_and_decode(TESLA_LOG, databases, progress=lambda *a: calls.append(a))
    assert len(log.columns) == 12_974
    assert log.result.frames == 12_974
    assert log.result.decoded_frames == 2_423
    assert log.path == TESLA_LOG
    assert log.load_seconds >= 0 and log.decode_seconds >= 0
    phases = [c[0] for c in calls]
    # Reading comes first, then decoding; each phase ends complete.
    assert phases.index(PHASE_DECODE) > phases.index(PHASE_READ)
    assert set(phases) == {PHASE_READ, PHASE_DECODE}
    last = {phase: (done, total) for phase, done, total in calls}
    assert last[PHASE_READ] == (TESLA_LOG.stat().st_size,) * 2
    assert last[PHASE_DECODE] == (12_974, 12_974)


def test_message_summary_counts_sum_to_the_frame_count(tesla: LoadedLog, databases: DatabaseSet) -> None:
    rows = message_summary(tesla.columns, databases)
    assert sum(r.count for r in rows) == tesla.result.frames == 12_974
    named = [r for r in rows if r.name is not None]
    assert named and any(r.name is None for r in rows)
    # The decoded frame count is what the known messages carry.
    assert sum(r.count for r in named) == tesla.result.decoded_frames + tesla.result.undecodable_frames
    for r in rows:
        mask = (tesla.columns.arbitration_id == r.arbitration_id) & (
            ((tesla.columns.flags & 1) != 0) == r.extended
        )
        ts = tesla.columns.timestamp[mask]
        assert r.count == len(ts)
        assert r.first == ts.min() and r.last == ts.max()
        expected = (len(ts) - 1) / (ts.max() - ts.min()) if ts.max() > ts.min() else 0.0
        assert r.rate_hz == pytest.approx(expected)


def test_range_statistics_equal_numpy(tesla: LoadedLog) -> None:
    signal = max(tesla.result.signals.values(), key=len)
    t = signal.timestamps
    t0, t1 = float(t[len(t) // 4]), float(t[3 * len(t) // 4])
    stats = range_statistics(signal, t0, t1)
    picked = signal.values[(t >= t0) & (t <= t1)]
    assert stats.count == len(picked) > 0
    assert stats.min == picked.min() and stats.max == picked.max()
    assert stats.mean == pytest.approx(float(np.mean(picked)))
    assert range_statistics(signal, t1, t0) == stats  # order of the ends does not matter
    empty = range_statistics(signal, float(t[-1]) + 1, float(t[-1]) + 2)
    assert (empty.count, empty.min, empty.max, empty.mean) == (0, None, None, None)


def test_markers_round_trip_beside_the_log(tmp_path: Path) -> None:
    log = tmp_path / "drive.log"
    log.write_text("")
    markers = MarkerSet(log)
    b = markers.add(12.5, "brake pressed")
    a = markers.add(3.25, "start — ünïcode")
    assert markers.list() == [a, b]  # kept in time order
    path = markers.save()
    assert path == markers_path(log) == tmp_path / "drive.log.markers.json"
    again = MarkerSet.load(log)
    assert again.list() == [Marker(3.25, "start — ünïcode"), Marker(12.5, "brake pressed")]
    again.remove(again.list()[0])
    again.save()
    assert MarkerSet.load(log).list() == [Marker(12.5, "brake pressed")]
    assert MarkerSet.load(tmp_path / "other.log").list() == []  # no file: no markers


@pytest.mark.parametrize("text", ["{not json", json.dumps({"markers": [{"note": "no time"}]}), "[1, 2]"])
def test_bad_marker_file_names_the_file(tmp_path: Path, text: str) -> None:
    log = tmp_path / "drive.log"
    markers_path(log).write_text(text)
    with pytest.raises(MarkerError, match=r"drive\.log\.markers\.json"):
        MarkerSet.load(log)


def test_cancel_while_reading_stops_and_keeps_partial(databases: DatabaseSet) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(LoadCancelled, match="cancelled") as info:
        load_and_decode(TESLA_LOG, databases, cancel=cancel)
    assert info.value.partial is None  # cancelled before the first chunk: nothing read


def test_cancel_while_decoding_keeps_the_frames(databases: DatabaseSet) -> None:
    cancel = threading.Event()

    def progress(phase: str, done: int, total: int) -> None:
        if phase == PHASE_DECODE:
            cancel.set()

    with pytest.raises(LoadCancelled, match="decoding cancelled") as info:
        load_and_decode(TESLA_LOG, databases, progress=progress, cancel=cancel)
    partial = info.value.partial
    assert isinstance(partial, LoadedLog)
    assert len(partial.columns) == 12_974
    assert partial.result.decoded_frames < 2_423


def test_corrupt_log_names_file_and_line_and_keeps_frames(tmp_path: Path, databases: DatabaseSet) -> None:
    lines = TESLA_LOG.read_text().splitlines()[:50]
    lines.insert(20, "this is not a frame")
    bad = tmp_path / "bad.log"
    bad.write_text("\n".join(lines) + "\n")
    partial = load_and_decode(bad, databases)
    # Every good frame, before and after the bad line, is kept and decoded; the line is named.
    assert partial.warning is not None and f"{bad}:21: " in partial.warning
    assert len(partial.columns) == 50
    assert partial.result.frames == 50
    expected = load_and_decode(_write_lines(tmp_path / "good.log", lines[:20] + lines[21:]), databases)
    assert partial.result.decoded_frames == expected.result.decoded_frames
    assert set(partial.result.signals) == set(expected.result.signals)


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path
