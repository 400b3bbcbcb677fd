"""Write an MF4 recording with the recorder's writer, then die by SIGKILL mid-recording.

Usage: ``python killed_mf4.py PATH FLUSHES``: FLUSHES batches of frames are flushed to the file,
one more batch is handed over but not flushed, then the process kills itself (no close, no
cleanup), exactly as ``kill -9`` leaves a recording.
"""

from __future__ import annotations

import os
import random
import signal
import sys
from pathlib import Path

from workshop_app.core.capture.mf4_writer import Mf4FrameWriter
from workshop_app.core.types import Frame

BATCH = 700
T0 = 1_700_000_000.25


def batch_frames(index: int) -> list[Frame]:
    """Batch ``index``: classic, CAN FD, remote and error frames, so every channel group grows."""
    rng = random.Random(index)
    frames = []
    for i in range(BATCH):
        t = T0 + (index * BATCH + i) * 0.001
        kind = i % 10
        if kind == 3:
            frames.append(Frame(t, rng.randrange(0x800), rng.randbytes(32), "can1", is_fd=True))
        elif kind == 6:
            frames.append(Frame(t, rng.randrange(0x800), b"", "can0", is_remote=True))
        elif kind == 8:
            frames.append(Frame(t, 0, b"", "can0", is_error=True))
        else:
            frames.append(Frame(t, rng.randrange(0x800), rng.randbytes(8), "can0"))
    return frames


def main(argv: list[str]) -> int:
    path, flushes = Path(argv[1]), int(argv[2])
    writer = Mf4FrameWriter(path, flush_frames=10**9, flush_seconds=10**9)
    for index in range(flushes):
        writer.write_frames(batch_frames(index))
        writer.flush()
    writer.write_frames(batch_frames(flushes))  # handed over, never flushed: lost with the process
    os.kill(os.getpid(), signal.SIGKILL)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
