"""What the flash job takes and gives: options, result, errors, and the DIDs it reads.

Split from ``flash.py`` so the job's module stays about the sequence; ``flash`` re-exports these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import udsoncan

from workshop_app.core.diag.client import DiagError

Progress = Callable[[str, int, int], None]  # (phase, done, total) as gui/workers.py's Job

DID_VIN = 0xF190
DID_BATTERY = 0xF1A1  # uint16, 0.001 V
DID_ENGINE_SPEED = 0x1001  # uint16, 0.25 rpm
DID_VEHICLE_SPEED = 0x1003  # uint8, km/h
ISOTP_CLASSIC_MAX = 4095  # largest classic ISO-TP message without the 32-bit length escape
NOT_THERE = (0x11, 0x31, 0x7F)  # service / identifier not supported (in this session)
NOT_NOW = (*NOT_THERE, 0x22)  # a live value an ECU in its bootloader cannot give


class FlashError(DiagError):
    """The flash could not go on; ``refused`` is True when nothing was written yet."""

    def __init__(self, message: str, *, refused: bool = False, nrc: int | None = None) -> None:
        super().__init__(message, nrc=nrc, kind="flash")
        self.refused = refused


class BytesCodec(udsoncan.DidCodec):
    """Raw bytes of a DID, whatever its length (the flash job decodes what it needs itself)."""

    def encode(self, *values: Any) -> bytes:
        return bytes(values[0])

    def decode(self, data: bytes) -> Any:
        return bytes(data)

    def __len__(self) -> int:
        raise udsoncan.DidCodec.ReadAllRemainingData


@dataclass
class FlashOptions:
    """How to flash; the defaults are the demo vehicle's."""

    vin: str = ""
    algorithm: str = "demo"  # key of protocol.SEED_KEY_ALGORITHMS
    min_battery_v: float = 12.0
    erase_timeout_s: float = 120.0  # the whole erase, NRC 0x78 included
    block_retries: int = 3  # resends of one block after a lost answer (same counter)
    reset_wait_s: float = 10.0  # how long the ECU may take to answer again after ECUReset
    image_path: str = ""  # recorded in the journal so `workshop update resume` can reload it
    image_address: int | None = None  # load address of a raw binary image (journalled with the path)
    p2_timeout_s: float = 1.0
    fd: bool = False  # ISO-TP over CAN FD frames (64-byte frames: a 1 MiB download ~6x faster)
    # Longest TransferData message sent (SID and counter included), within what the ECU offers.
    # 4095 fits every ISO-TP; raise it for ECUs that take ISO 15765-2:2016 long messages: fewer
    # blocks, fewer turnarounds (what keeps a CAN FD flash off its bus-time floor).
    max_message: int = ISOTP_CLASSIC_MAX


@dataclass
class FlashResult:
    """How the attempt ended; ``result`` is 'success', 'failed', 'refused' or 'cancelled'."""

    ecu: str
    result: str
    error: str = ""
    vin: str = ""
    from_version: str = ""
    to_version: str = ""
    seconds: float = 0.0
    bytes_sent: int = 0
    total_bytes: int = 0
    journal_id: int | None = None
    resumed: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.result == "success"


def next_counter(counter: int) -> int:
    """TransferData's block sequence counter after ``counter``: 1, 2, … 0xFF, 0x00, 0x01 …"""
    return (counter + 1) & 0xFF


def ascii_text(raw: bytes) -> str:
    return raw.rstrip(b"\x00 ").decode("ascii", errors="replace")
