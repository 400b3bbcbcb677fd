"""Rolling counters and checksums of transmitted DBC messages, as the database declares them.

A signal's ``SignalFunction`` attribute (``RollingCounter``, ``ChecksumXOR8``, ``ChecksumCRC8``;
the demo vehicle's DBC defines it) says which signal a receiver checks. A job that leaves such
a signal out gets it filled per frame: the counter is the frame's sequence number modulo the
signal's range, the checksum is computed over the encoded payload. A value the user sets is
sent as given (to test how an ECU reacts to a stuck counter or a wrong checksum).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workshop_app.core.decode.checksums import (
    ROLE_CHECKSUM_CRC8,
    ROLE_CHECKSUM_XOR8,
    ROLE_COUNTER,
    crc8_sae_j1850,
    xor8,
)
from workshop_app.core.transmit_encode import SignalValue, encode_signals

if TYPE_CHECKING:
    from cantools.database.can import Message, Signal

__all__ = [
    "ROLE_CHECKSUM_CRC8",
    "ROLE_CHECKSUM_XOR8",
    "ROLE_COUNTER",
    "Protection",
    "crc8_sae_j1850",
    "role_text",
    "signal_role",
    "xor8",
]

_ROLE_NAMES = {
    ROLE_COUNTER: "rolling counter",
    ROLE_CHECKSUM_XOR8: "XOR8 checksum",
    ROLE_CHECKSUM_CRC8: "CRC8 checksum",
}


def signal_role(signal: Signal) -> int:
    """The signal's ``SignalFunction`` (0: plain data)."""
    attribute = signal.dbc.attributes.get("SignalFunction") if signal.dbc else None
    try:
        return int(attribute.value) if attribute is not None else 0
    except (TypeError, ValueError):
        return 0


def role_text(signal: Signal) -> str | None:
    """``"rolling counter"`` or ``"XOR8 checksum"``…, None for a plain signal."""
    return _ROLE_NAMES.get(signal_role(signal))


@dataclass(frozen=True, slots=True)
class Protection:
    """Which signals of one message are filled per frame."""

    counter: str | None = None
    counter_modulo: int = 16
    checksum: str | None = None
    checksum_role: int = 0
    checksum_byte: int = 0

    @classmethod
    def of(cls, message: Message) -> Protection:
        counter: Signal | None = None
        checksum: Signal | None = None
        for signal in message.signals:
            role = signal_role(signal)
            if role == ROLE_COUNTER:
                counter = signal
            elif role in (ROLE_CHECKSUM_XOR8, ROLE_CHECKSUM_CRC8):
                # Only a checksum that fills one whole byte can be patched in after encoding.
                aligned = signal.length == 8 and signal.start % 8 == (
                    0 if signal.byte_order == "little_endian" else 7
                )
                if aligned:
                    checksum = signal
        return cls(
            counter=counter.name if counter is not None else None,
            counter_modulo=1 << counter.length if counter is not None else 16,
            checksum=checksum.name if checksum is not None else None,
            checksum_role=signal_role(checksum) if checksum is not None else 0,
            checksum_byte=checksum.start // 8 if checksum is not None else 0,
        )

    @property
    def filled(self) -> frozenset[str]:
        return frozenset(n for n in (self.counter, self.checksum) if n is not None)

    def encode(self, message: Message, values: Mapping[str, SignalValue], sequence: int) -> bytes:
        """``values`` encoded as frame number ``sequence`` (0 first): counter and checksum filled
        unless ``values`` sets them."""
        full = dict(values)
        auto_counter = self.counter is not None and self.counter not in full
        auto_checksum = self.checksum is not None and self.checksum not in full
        if auto_counter:
            assert self.counter is not None
            full[self.counter] = sequence % self.counter_modulo
        if auto_checksum:
            assert self.checksum is not None
            full[self.checksum] = 0
        data = bytearray(encode_signals(message, full))
        if auto_checksum and self.checksum_byte < len(data):
            i = self.checksum_byte
            data[i] = xor8(data, i) if self.checksum_role == ROLE_CHECKSUM_XOR8 else crc8_sae_j1850(data, i)
        return bytes(data)
