"""BLF written a batch at a time is byte for byte what python-can writes frame by frame."""

from __future__ import annotations

import random
from pathlib import Path

import can

from workshop_app.core.capture.columns import FrameColumns
from workshop_app.core.capture.recorder import MessageFrameWriter, open_writer
from workshop_app.core.types import Frame


def _frames(n: int) -> list[Frame]:
    rng = random.Random(7)
    t = 1_765_000_000.123456
    out: list[Frame] = []
    for _ in range(n):
        t += rng.uniform(0.00005, 0.0004)
        kind = rng.random()
        channel = rng.choice(["can0", "can1", "can3", "vcan12", "sim"])  # "sim": no number
        if kind < 0.03:
            out.append(
                Frame(
                    t,
                    rng.randrange(0x800),
                    rng.randbytes(rng.choice([12, 20, 64])),
                    channel,
                    is_fd=True,
                    bitrate_switch=rng.random() < 0.5,
                )
            )
        elif kind < 0.04:
            out.append(Frame(t, 0, b"", channel, is_error=True))
        elif kind < 0.06:
            out.append(Frame(t, rng.randrange(0x800), b"", channel, is_remote=True))
        else:
            extended = rng.random() < 0.3
            ident = rng.randrange(1 << 29) if extended else rng.randrange(0x800)
            out.append(
                Frame(
                    t,
                    ident,
                    rng.randbytes(rng.randrange(9)),
                    channel,
                    is_extended=extended,
                    is_rx=rng.random() < 0.9,
                )
            )
    return out


def _write(path: Path, batches: list[list[Frame]], *, bulk: bool, columns: bool = False) -> bytes:
    writer = open_writer(path)
    assert isinstance(writer, MessageFrameWriter)
    if not bulk:
        writer._blf = None  # python-can's own path, one message at a time
    for i, batch in enumerate(batches):
        writer.write_frames(batch, FrameColumns.from_frames(batch) if columns else None)
        if i % 3 == 2:
            writer.flush()  # as the recorder does every half second: a short container
    writer.close()
    return path.read_bytes()


def test_batches_write_the_same_bytes_as_python_can_and_read_back(tmp_path):
    frames = _frames(12_000)  # several 128 KiB containers
    cuts = sorted(random.Random(1).sample(range(1, len(frames)), 40))
    batches = [frames[a:b] for a, b in zip([0, *cuts], [*cuts, len(frames)], strict=True)]
    ours = _write(tmp_path / "bulk.blf", batches, bulk=True)
    theirs = _write(tmp_path / "one_by_one.blf", batches, bulk=False)
    assert ours == theirs
    # Columns the caller built already (the capture process's, for the window) pack the same.
    assert _write(tmp_path / "columns.blf", batches, bulk=True, columns=True) == theirs
    back = list(can.BLFReader(tmp_path / "bulk.blf"))
    assert len(back) == len(frames)
    got = [(m.arbitration_id, bytes(m.data), m.is_fd, m.is_remote_frame, m.is_rx) for m in back]
    want = [(f.arbitration_id, f.data, f.is_fd, f.is_remote, f.is_rx) for f in frames]
    assert [g for g, m in zip(got, back, strict=True) if not m.is_error_frame] == [
        w for w, f in zip(want, frames, strict=True) if not f.is_error
    ]
    assert [m.channel for m in back[:50]] == [
        {"can0": 0, "can1": 1, "can3": 3, "vcan12": 12, "sim": 0}[f.channel] for f in frames[:50]
    ]  # the number a label ends with; one without goes to the first channel
