"""What the flash job programs: an ECU image with its segments and the facts verified about it.

Produced by the package verification (image and director repositories agree on it), consumed by
the flash job; neither side needs the other's internals.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Segment:
    """Bytes to write at ``address`` (an Intel HEX / S-record segment, or a raw binary at its base)."""

    address: int
    data: bytes

    @property
    def end(self) -> int:
        return self.address + len(self.data)


@dataclass(frozen=True, slots=True)
class FlashImage:
    """One verified ECU image, ready to program.

    ``target_hash`` is the SHA-256 (hex) both repositories signed for the target file;
    ``software_version`` and ``release_counter`` are what the ECU reports after a good flash.
    """

    ecu: str
    target_name: str
    target_hash: str
    segments: tuple[Segment, ...]
    software_version: str
    release_counter: int
    min_bootloader: str = ""
    hardware: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return sum(len(s.data) for s in self.segments)

    def crc32(self) -> int:
        """CRC-32 of every segment's bytes in address order (the check-memory routine's value)."""
        crc = 0
        for segment in sorted(self.segments, key=lambda s: s.address):
            crc = zlib.crc32(segment.data, crc)
        return crc
