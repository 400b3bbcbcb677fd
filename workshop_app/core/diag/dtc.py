"""Diagnostic trouble codes: the 3-byte UDS form, the SAE J2012 text form and status bits.

A UDS DTC (ISO 14229-1, DTCFormatIdentifier ISO 15031-6) is three bytes: the two bytes of the
J2012 code and a failure type byte (FTB). The J2012 text form reads the top two bits as the
system letter (P powertrain, C chassis, B body, U network), the next two as the first digit and
the remaining twelve bits as three hex digits: 0x0118 is P0118, 0x4035 is C0035, 0xC100 is U0100.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_LETTERS = "PCBU"
_SAE = re.compile(r"^([PCBU])([0-3])([0-9A-F]{3})(?:-([0-9A-F]{2}))?$", re.IGNORECASE)

# ISO 14229-1 Annex D.2, bit 0 first: (short name, what it means in words).
STATUS_BITS: tuple[tuple[str, str], ...] = (
    ("testFailed", "failing now"),
    ("testFailedThisOperationCycle", "failed this drive cycle"),
    ("pendingDTC", "pending"),
    ("confirmedDTC", "confirmed"),
    ("testNotCompletedSinceLastClear", "not tested since clear"),
    ("testFailedSinceLastClear", "failed since clear"),
    ("testNotCompletedThisOperationCycle", "not tested this cycle"),
    ("warningIndicatorRequested", "warning lamp on"),
)
TEST_FAILED = 0x01
TEST_FAILED_THIS_CYCLE = 0x02
PENDING = 0x04
CONFIRMED = 0x08
NOT_COMPLETED_SINCE_CLEAR = 0x10
FAILED_SINCE_CLEAR = 0x20
NOT_COMPLETED_THIS_CYCLE = 0x40
WARNING_INDICATOR = 0x80


def sae_code(dtc: int) -> str:
    """J2012 text of a 3-byte DTC (``0x011800`` → ``P0118``; a non-zero FTB adds ``-xx``)."""
    if not 0 <= dtc <= 0xFFFFFF:
        raise ValueError(f"DTC 0x{dtc:X} is not a 3-byte value")
    code = dtc >> 8
    text = f"{_LETTERS[code >> 14]}{(code >> 12) & 3}{code & 0xFFF:03X}"
    ftb = dtc & 0xFF
    return f"{text}-{ftb:02X}" if ftb else text


def sae_from_two_bytes(code: int) -> str:
    """J2012 text of a 2-byte OBD-II code (modes 03/07/0A)."""
    return sae_code((code & 0xFFFF) << 8)


def parse_sae(text: str) -> int:
    """3-byte DTC of a J2012 text (``P0118`` → ``0x011800``, ``C0035-11`` → ``0x403511``)."""
    m = _SAE.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a DTC like P0118, C0035 or U0100-00")
    letter, digit, rest, ftb = m.groups()
    code = (_LETTERS.index(letter.upper()) << 14) | (int(digit) << 12) | int(rest, 16)
    return (code << 8) | (int(ftb, 16) if ftb else 0)


def status_words(status: int) -> list[str]:
    """The set status bits in plain words, most important first."""
    order = (3, 2, 0, 7, 1, 5, 4, 6)
    return [STATUS_BITS[bit][1] for bit in order if status & (1 << bit)]


def status_names(status: int) -> list[str]:
    """The set status bits by their ISO 14229 names, bit 0 first."""
    return [name for bit, (name, _) in enumerate(STATUS_BITS) if status & (1 << bit)]


@dataclass
class SnapshotValue:
    """One decoded value of a freeze frame (snapshot record) or extended data record."""

    name: str
    value: float | int | str
    unit: str = ""
    did: int | None = None

    def text(self) -> str:
        shown = f"{self.value:.6g}" if isinstance(self.value, float) else str(self.value)
        return f"{shown} {self.unit}".strip()


@dataclass
class Dtc:
    """One DTC as an ECU reported it."""

    code: int  # 3-byte UDS DTC
    status: int = 0
    description: str = ""
    snapshots: dict[int, list[SnapshotValue]] = field(default_factory=dict)  # record number → values
    extended: dict[int, list[SnapshotValue]] = field(default_factory=dict)  # record number → values
    source: str = "uds"  # "uds", or "obd" for codes read with OBD-II modes 03/07/0A

    @property
    def sae(self) -> str:
        return sae_code(self.code)

    @property
    def hex(self) -> str:
        return f"{self.code:06X}"

    @property
    def confirmed(self) -> bool:
        return bool(self.status & CONFIRMED)

    @property
    def pending(self) -> bool:
        return bool(self.status & PENDING)

    @property
    def mil(self) -> bool:
        return bool(self.status & WARNING_INDICATOR)

    def status_text(self) -> str:
        return ", ".join(status_words(self.status)) or "stored"

    def occurrence_count(self) -> int | None:
        """The occurrence counter from the extended data, when the ECU reports one."""
        for values in self.extended.values():
            for v in values:
                if "occurrence" in v.name.lower() and isinstance(v.value, int | float):
                    return int(v.value)
        return None
