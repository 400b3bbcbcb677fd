"""Checksums of CAN payloads that DBCs mark with the "SignalFunction" attribute: XOR8 and
CRC-8 SAE J1850. One implementation for the simulated car that sends them and the transmit
jobs that fill them."""

from __future__ import annotations

# Values of the DBC's "SignalFunction" signal attribute.
ROLE_COUNTER, ROLE_CHECKSUM_XOR8, ROLE_CHECKSUM_CRC8 = 1, 2, 3


def xor8(data: bytes | bytearray, skip: int) -> int:
    """XOR of every byte of ``data`` except the one at index ``skip``."""
    x = 0
    for i, b in enumerate(data):
        if i != skip:
            x ^= b
    return x


def _crc8_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = ((c << 1) ^ 0x1D) & 0xFF if c & 0x80 else (c << 1) & 0xFF
        table.append(c)
    return table


_CRC8_TABLE = _crc8_table()


def crc8_sae_j1850(data: bytes | bytearray, skip: int | None = None) -> int:
    """CRC-8 SAE J1850 (poly 0x1D, init 0xFF, final XOR 0xFF) of ``data`` without byte ``skip``.

    >>> hex(crc8_sae_j1850(b"123456789"))
    '0x4b'
    """
    crc = 0xFF
    for i, b in enumerate(data):
        if i != skip:
            crc = _CRC8_TABLE[crc ^ b]
    return crc ^ 0xFF
