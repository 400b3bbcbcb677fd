"""The program flash of a simulated ECU, persisted on disk so a simulator restart keeps it.

One file per ECU (``<folder>/<ECU>.flash``): a JSON header line, then the bytes of every
written segment back to back in the header's order. The file is only created once something
changes (an erase, a download, a metadata write), so an untouched ECU has its factory
application and leaves no trace. Writes go to a temporary file renamed over the old one:
a killed simulator leaves the previous state or the new one, never half a file.

What the bootloader keeps here is what a real one keeps in its own flash: the segments
written since the last erase, whether the check-memory routine accepted them, the
application-valid flag, and the identification of the application that runs.
"""

from __future__ import annotations

import json
import os
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

from workshop_app.core.errors import WorkshopError

__all__ = ["FLASH_LAYOUTS", "FlashLayout", "FlashMemory", "FlashMemoryError"]

_FORMAT = "workshop-sim-flash/1"
_ERASED = 0xFF


class FlashMemoryError(WorkshopError):
    """A flash file that cannot be read; the message names the file."""


@dataclass(frozen=True, slots=True)
class FlashLayout:
    """Where an ECU's application lives and what its bootloader reports."""

    start: int
    size: int
    boot_version: str
    hardware: str
    factory_version: str
    factory_release_counter: int = 1

    @property
    def end(self) -> int:
        return self.start + self.size


# The demo vehicle's programmable ECUs (hardware numbers as the ECUs report them in 0xF191).
FLASH_LAYOUTS: dict[str, FlashLayout] = {
    "ECM": FlashLayout(0x00010000, 0x00100000, "BL-02.01", "HW H13", "SW 0412"),
    "BCM": FlashLayout(0x00008000, 0x00040000, "BL-01.07", "HW H05", "SW 0330"),
}


class FlashMemory:
    """Segments, application-valid flag and identification of one ECU (thread-safe).

    ``path`` None keeps everything in memory (nothing survives the object).
    """

    def __init__(self, layout: FlashLayout, path: Path | None = None) -> None:
        self.layout = layout
        self.path = path
        self._lock = threading.RLock()
        self._segments: dict[int, bytearray] = {}  # start address -> bytes written there
        self.app_valid = True
        self.checked = False  # check-memory passed since the last erase
        self.erased: list[tuple[int, int]] = []  # (address, size) erased since the last valid flash
        self.software_version = layout.factory_version
        self.release_counter = layout.factory_release_counter
        self.boot_version = layout.boot_version
        self.hardware = layout.hardware
        if path is not None and path.exists():
            self._load(path)

    # --- queries ----------------------------------------------------------------------------

    def contains(self, address: int, size: int) -> bool:
        """True when ``[address, address + size)`` lies inside the application region."""
        return size > 0 and self.layout.start <= address and address + size <= self.layout.end

    def is_erased(self, address: int, size: int) -> bool:
        with self._lock:
            return any(start <= address and address + size <= start + n for start, n in self.erased)

    def crc32(self) -> int:
        """CRC-32 of the bytes written since the erase, segments in address order."""
        with self._lock:
            crc = 0
            for address in sorted(self._segments):
                crc = zlib.crc32(self._segments[address], crc)
            return crc

    def read(self, address: int, size: int) -> bytes:
        """Bytes at ``address`` (0xFF where nothing was written since the erase)."""
        out = bytearray([_ERASED]) * size
        with self._lock:
            for start, data in self._segments.items():
                lo, hi = max(start, address), min(start + len(data), address + size)
                if lo < hi:
                    out[lo - address : hi - address] = data[lo - start : hi - start]
        return bytes(out)

    @property
    def written(self) -> int:
        with self._lock:
            return sum(len(d) for d in self._segments.values())

    # --- changes ----------------------------------------------------------------------------

    def erase(self, address: int, size: int) -> None:
        """Erase a range: the application is invalid from now until a checked re-flash."""
        with self._lock:
            end = address + size
            for start in list(self._segments):
                seg = self._segments.pop(start)
                if start < address:  # the part before the range stays programmed
                    self._segments[start] = seg[: address - start]
                if start + len(seg) > end:
                    self._segments[end] = seg[end - start :]
            self._segments = {a: s for a, s in self._segments.items() if s}
            self.erased.append((address, size))
            self.app_valid = False
            self.checked = False
            self.save()

    def write(self, address: int, data: bytes) -> None:
        """Program ``data`` at ``address`` (extends or overwrites the segment it continues: a
        resumed download may repeat the last bytes). Not saved here: a download is saved at its
        end, at a reset and at the next check, like a page buffer."""
        with self._lock:
            self.checked = False
            for start, seg in self._segments.items():
                if start <= address <= start + len(seg):
                    seg[address - start : address - start + len(data)] = data
                    return
            self._segments[address] = bytearray(data)

    def mark_checked(self, ok: bool) -> None:
        with self._lock:
            self.checked = ok
            self.save()

    def activate(self, software_version: str | None, release_counter: int | None) -> bool:
        """At reset: a checked download becomes the valid application. Returns the valid flag."""
        with self._lock:
            if self.checked and not self.app_valid:
                self.app_valid = True
                self.erased = []
                if software_version is not None:
                    self.software_version = software_version
                if release_counter is not None:
                    self.release_counter = release_counter
            self.save()
            return self.app_valid

    # --- persistence ------------------------------------------------------------------------

    def save(self) -> None:
        if self.path is None:
            return
        with self._lock:
            order = sorted(self._segments)
            header = {
                "format": _FORMAT,
                "region": [self.layout.start, self.layout.size],
                "app_valid": self.app_valid,
                "checked": self.checked,
                "erased": [list(r) for r in self.erased],
                "software_version": self.software_version,
                "release_counter": self.release_counter,
                "boot_version": self.boot_version,
                "hardware": self.hardware,
                "crc32": self.crc32(),
                "segments": [[a, len(self._segments[a])] for a in order],
            }
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            with open(tmp, "wb") as f:
                f.write(json.dumps(header).encode() + b"\n")
                for address in order:
                    f.write(self._segments[address])
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)

    def _load(self, path: Path) -> None:
        try:
            raw = path.read_bytes()
            head, _, body = raw.partition(b"\n")
            header = json.loads(head)
            if header.get("format") != _FORMAT:
                raise ValueError(f"unknown format {header.get('format')!r}")
            segments: dict[int, bytearray] = {}
            offset = 0
            for address, length in header["segments"]:
                segments[int(address)] = bytearray(body[offset : offset + int(length)])
                offset += int(length)
            if offset != len(body):
                raise ValueError(f"{len(body)} data bytes where the header lists {offset}")
            self._segments = segments
            self.app_valid = bool(header["app_valid"])
            self.checked = bool(header["checked"])
            self.erased = [(int(a), int(n)) for a, n in header["erased"]]
            self.software_version = str(header["software_version"])
            self.release_counter = int(header["release_counter"])
            self.boot_version = str(header["boot_version"])
            self.hardware = str(header["hardware"])
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise FlashMemoryError(f"simulated flash file {path} cannot be read: {exc}") from exc
