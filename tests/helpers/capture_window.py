"""A window's process that records through a capture process, then dies by SIGKILL.

Usage: ``python capture_window.py PATH``. Prints ``<capture pid> <frames seen while recording>``
once it has seen frames recorded, then kills itself (no stop, no cleanup), as a crash would.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from workshop_app.core.capture.process_session import ProcessCaptureSession
from workshop_app.core.sources.factory import SourceSpec


def main(path: Path) -> int:
    session = ProcessCaptureSession(SourceSpec(sim_bitrate=500_000))
    session.start()
    session.start_recording(path)
    seen = 0
    deadline = time.monotonic() + 30  # a bound on start-up, not a measurement
    while seen < 2000 and time.monotonic() < deadline:
        seen += len(session.tick())
        time.sleep(0.02)
    print(session.capture_source.pid, seen, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    return 1


if __name__ == "__main__":
    if __package__ is None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    sys.exit(main(Path(sys.argv[1])))
