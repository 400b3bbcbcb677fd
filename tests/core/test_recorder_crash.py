"""Nothing recorded is lost to a crash: `workshop record` killed with SIGKILL at random moments.

A socketcand server in this process serves numbered frames at a known rate; a real
`workshop record OUT --no-history` in a second process records them and is killed with SIGKILL.
Every frame sent more than a second before the kill must be in the file, readable by python-can
and by our readers, as one unbroken run of sequence numbers.

A write error (the file size limit of the process, RLIMIT_FSIZE: the kernel's EFBIG, handled
exactly as a full disk) must stop the recording with one plain line while the capture goes on,
and leave a readable file holding exactly the frames the message says.
"""

from __future__ import annotations

import random
import resource
import signal
import subprocess
import threading
import time
from pathlib import Path

import can
import numpy as np
import pytest
from helpers.numbered_feed import KEPT, sequence_numbers, served_feed, start_recording
from helpers.waiting import wait_for

from workshop_app.core.logs.reader import read_columns, read_log

RATE = 2_000  # frames/s: a busy bus, well within what one socketcand link carries here
GRACE = 1.0  # seconds before the kill whose frames may be missing

pytestmark = pytest.mark.slow


def _python_can_sequence(path: Path) -> np.ndarray:
    reader = can.LogReader(path)
    try:
        return np.array([int.from_bytes(m.data[:4], "big") for m in reader if not m.is_error_frame], np.int64)
    finally:
        reader.stop()


def _assert_unbroken(seqs: np.ndarray, what: str) -> None:
    assert len(seqs), f"{what}: no frames"
    assert (np.diff(seqs) == 1).all(), f"{what}: frames missing or repeated inside the recording"


def _record_and_kill(path: Path, after: float, seed: int) -> tuple[int, int]:
    """Record to ``path``, SIGKILL ``after`` seconds' worth of frames into the feed.

    Returns (frames sent, frames due: sent more than GRACE seconds before the kill).
    """
    with served_feed(RATE, seed) as (server, feed, port):
        proc = start_recording(path, port)
        try:
            wait_for(lambda: server.clients >= 1, timeout=30, what="workshop record to connect")
            feed.start()
            # The kill moment is counted in frames, so a loaded machine cannot move it.
            wait_for(lambda: len(feed.sent_at) >= after * RATE, timeout=60, what=f"{after:.2f} s of frames")
            killed_at = time.monotonic()
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        feed.stop()
        return len(feed.sent_at), feed.sent_before(killed_at - GRACE)


# BLF, MF4 and SQLite held their frames in memory until a container, a save or a 10,000-frame
# batch was due: those were lost entirely. The text formats are checked for the same guarantee.
@pytest.mark.parametrize(
    ("suffix", "kills"),
    [
        (".blf", 2),
        (".mf4", 2),
        (".db", 2),
        (".log", 1),
        (".asc", 1),
        (".trc", 1),
        (".csv", 1),
        (".log.gz", 1),  # one gzip stream closed only at the end: readers stopped on the cut
        (".asc.gz", 1),
    ],
)
def test_kill_9_keeps_all_but_the_last_second(tmp_path: Path, suffix: str, kills: int) -> None:
    rng = random.Random(suffix)
    for attempt in range(kills):
        after = rng.uniform(1.5, 3.5)
        path = tmp_path / f"drive{attempt}{suffix}"
        sent, due = _record_and_kill(path, after, seed=attempt)
        assert due > RATE * 0.3, "the feed did not run: nothing to check"
        # No temporary file for the user to puzzle over (asammdf used to stage MF4 data in one);
        # SQLite's own journal files are part of its file format.
        extra = {p.name for p in tmp_path.iterdir()} - {f"drive{i}{suffix}" for i in range(attempt + 1)}
        assert extra <= {f"drive{i}{suffix}{j}" for i in range(attempt + 1) for j in ("-wal", "-shm")}, extra

        ours = sequence_numbers(read_log(path).frames.payload)
        theirs = _python_can_sequence(path)
        where = f"{path.name} killed {after:.2f} s in"
        _assert_unbroken(ours, f"{where} (our reader)")
        assert np.array_equal(ours, theirs), f"{where}: python-can reads other frames than ours"
        first = int(ours[0])
        # Frames from the first one recorded up to a second before the kill are all there.
        assert int(ours[-1]) >= due - 1, (
            f"{where}: {int(ours[-1]) + 1 - first} frames readable, {due - first} sent before "
            f"the last second ({sent - first} in all)"
        )


def _limit_file_size(limit: int) -> None:
    # Runs in the child before exec: the kernel refuses writes past ``limit`` with EFBIG (Python
    # ignores SIGXFSZ, so the write fails instead of killing the process).
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


# (suffix, file size limit, how the message names the failure). SQLite reports its own error
# codes, not errno: a size limit is "disk I/O error" there (a full disk is SQLITE_FULL).
@pytest.mark.parametrize(
    ("suffix", "limit", "reason"),
    [
        (".blf", 96 * 1024, "larger than the file system allows"),
        (".mf4", 96 * 1024, "larger than the file system allows"),
        (".db", 256 * 1024, "disk I/O error"),  # the WAL grows by whole pages
        (".log", 384 * 1024, "larger than the file system allows"),  # ~40 bytes a frame
    ],
)
def test_write_error_stops_recording_plainly_and_capture_goes_on(
    tmp_path: Path, suffix: str, limit: int, reason: str
) -> None:
    path = tmp_path / f"full{suffix}"
    lines: list[str] = []
    with served_feed(4_000, seed=5) as (server, feed, port):
        proc = start_recording(path, port, preexec_fn=lambda: _limit_file_size(limit))
        reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
        reader.start()
        try:
            wait_for(lambda: server.clients >= 1, timeout=30, what="workshop record to connect")
            feed.start()
            wait_for(lambda: any("recording stopped" in line for line in lines), timeout=30, what="the error")
            # The message came while the capture runs: the process is still there while the
            # server hands it another half second of frames.
            sent = server.client_stats()[0].frames_sent
            wait_for(
                lambda: server.client_stats()[0].frames_sent > sent + 2_000,
                timeout=30,
                what="frames sent to the recorder after its error",
            )
            assert proc.poll() is None, "the recorder's error ended the capture"
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                out, _ = proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            reader.join(5)
    errors = [line for line in lines if "recording stopped" in line]
    assert len(errors) == 1, lines  # said once, not once per tick
    message = errors[0]
    assert str(path) in message and "Traceback" not in "".join(lines)
    assert reason in message
    assert proc.returncode == 1
    kept = int(KEPT.search(message).group(1))  # type: ignore[union-attr]
    assert kept > 0 and path.stat().st_size <= limit
    ours = sequence_numbers(read_log(path).frames.payload)
    _assert_unbroken(ours, path.name)
    assert len(ours) == kept, f"the message says {kept} frames, the file holds {len(ours)}"
    assert np.array_equal(ours, _python_can_sequence(path))
    assert f"{kept} frames written" in out


@pytest.fixture
def file_size_limit():
    """Lets a test cap the size any file of this process may reach (restored afterwards)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    yield lambda limit: resource.setrlimit(resource.RLIMIT_FSIZE, (soft if limit is None else limit, hard))
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@pytest.mark.parametrize("suffix", [".blf", ".mf4", ".db", ".log", ".asc", ".trc", ".csv"])
def test_write_error_before_the_first_flush_leaves_a_readable_empty_log(
    tmp_path: Path, suffix: str, file_size_limit
) -> None:
    from workshop_app.core.capture.recorder import Recorder
    from workshop_app.core.types import Frame

    path = tmp_path / f"early{suffix}"
    rec = Recorder(path)
    # Nothing more than a few hundred bytes past what opening the file wrote (its header).
    file_size_limit(max(p.stat().st_size for p in tmp_path.iterdir()) + 512)
    frames = [Frame(1_700_000_000 + i / 1000, 0x100 + i % 7, i.to_bytes(4, "big") * 2) for i in range(5000)]
    rec.write(frames)
    wait_for(lambda: rec.error is not None, timeout=10, what="the write error")
    summary = rec.stop()
    file_size_limit(None)  # reading an SQLite log may write its journal
    assert summary.error is not None and "recording stopped" in summary.error
    assert summary.frames_written == 0 and summary.frames_dropped == len(frames)
    assert len(_python_can_sequence(path)) == 0
    assert len(read_columns(path)) == 0


def test_gzipped_mf4_is_refused_plainly_at_start(tmp_path: Path) -> None:
    from workshop_app.core.capture.recorder import Recorder
    from workshop_app.core.errors import LogFileError

    # python-can's route wrote a gzip holding no frames and said nothing (asammdf cannot save
    # into a gzip stream); an MF4 written as it goes needs a file it can seek in.
    with pytest.raises(LogFileError) as err:
        Recorder(tmp_path / "drive.mf4.gz")
    assert (
        str(err.value)
        == f"{tmp_path / 'drive.mf4.gz'}: MF4 recordings cannot be gzipped (MF4 compresses its own data)"
    )


@pytest.mark.parametrize("suffix", [".blf", ".mf4", ".db", ".log.gz", ".csv"])
def test_write_error_while_stopping_is_reported_and_the_file_readable(
    tmp_path: Path, suffix: str, file_size_limit
) -> None:
    from workshop_app.core.capture.recorder import Recorder
    from workshop_app.core.types import Frame

    path = tmp_path / f"stop{suffix}"
    rec = Recorder(path)
    file_size_limit(max(p.stat().st_size for p in tmp_path.iterdir()) + 512)
    frames = [Frame(1_700_000_000 + i / 1000, 0x200 + i % 5, i.to_bytes(4, "big") * 2) for i in range(5000)]
    rec.write(frames)
    summary = rec.stop()  # at once: the frames reach the file only in the final flush, which fails
    file_size_limit(None)
    assert summary.error is not None and "recording stopped" in summary.error, summary
    assert summary.frames_written + summary.frames_dropped == len(frames)
    assert len(_python_can_sequence(path)) == summary.frames_written
    assert len(read_columns(path)) == summary.frames_written
