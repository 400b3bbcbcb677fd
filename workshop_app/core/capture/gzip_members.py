"""A gzip file written as one complete gzip member per flush, readable after a crash.

python-can writes ``.log.gz``, ``.asc.gz``, ... through one ``gzip.open`` stream whose trailer
comes only at close: a killed recording is a stream readers stop on with "Compressed file ended
before the end-of-stream marker". Here the text of each flush becomes a whole member (header,
deflated data, CRC and length) appended to the file; gzip readers (Python's, zcat) read
concatenated members as one stream, so a file cut after any flush is complete.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path


class GzipMembers(io.BufferedIOBase):
    """Binary sink for a text writer: buffers in memory, appends one member per ``flush``."""

    def __init__(self, path: Path, *, level: int = 6) -> None:
        super().__init__()
        self._raw = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._path = path
        self._level = level
        self._pending = bytearray()

    @property
    def name(self) -> str:
        return str(self._path)

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        if self.closed:
            raise ValueError("write to a closed file")
        self._pending += data
        return len(data)

    def flush(self) -> None:
        if self.closed:
            return
        if self._pending:
            # mtime=0: members differ only by their data (reproducible files).
            member = gzip.compress(bytes(self._pending), compresslevel=self._level, mtime=0)
            self._pending.clear()  # a failed write below is not retried: the caller cuts it off
            self._raw.write(member)
        self._raw.flush()

    def fileno(self) -> int:
        return self._raw.fileno()

    def close(self) -> None:
        if self.closed:
            return
        try:
            super().close()  # flushes (the last member), then marks this file closed
        finally:
            self._raw.close()


def open_text(path: Path) -> io.TextIOWrapper:
    """A text file for python-can's text writers, written as gzip members."""
    return io.TextIOWrapper(GzipMembers(path), encoding="utf-8")
