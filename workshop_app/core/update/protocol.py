"""The programming conventions the tester and the demo vehicle's bootloaders share (ISO 14229).

One place for the identifiers both sides use, so the flash job and the simulated bootloader
cannot drift apart. Real ECUs differ by maker; a vehicle description can name others.
"""

from __future__ import annotations

from collections.abc import Callable

# Sessions (0x10).
DEFAULT_SESSION = 0x01
PROGRAMMING_SESSION = 0x02
EXTENDED_SESSION = 0x03

# SecurityAccess (0x27) level that unlocks programming: request seed 0x11, send key 0x12.
PROGRAMMING_SECURITY_LEVEL = 0x11

# RoutineControl (0x31) identifiers.
ROUTINE_ERASE_MEMORY = 0xFF00  # option record: ALFID 0x44, address (4 bytes), size (4 bytes)
ROUTINE_CHECK_DEPENDENCIES = 0xFF01  # no option record; status record: 0x00 valid
ROUTINE_CHECK_MEMORY = 0x0202  # option record: CRC-32 (4 bytes, big-endian) of what was written
ROUTINE_CHECK_PROGRAMMING_PRECONDITIONS = 0x0203  # status record: 0x00 ok, else a reason code
ROUTINE_OK = 0x00
ROUTINE_FAILED = 0x01

# DataIdentifiers read before and after programming.
DID_BOOT_SOFTWARE = 0xF180  # ASCII, 8 bytes: bootloader version, e.g. "BL-02.01"
DID_APP_SOFTWARE = 0xF189  # ASCII, 8 bytes: application software version
DID_HARDWARE = 0xF191  # ASCII, 8 bytes: ECU hardware number (the package's allowed list)
DID_RELEASE_COUNTER = 0xF1B0  # uint32 big-endian: monotonic release counter of the application
DID_APP_VALID = 0xF1B1  # uint8: 1 the application is valid, 0 not (the ECU stays in its bootloader)

# Address-and-length format used in 0x31 FF00 and 0x34: 4-byte size, 4-byte address.
ADDRESS_AND_LENGTH_FORMAT = 0x44


def rotate_left_32(value: int, bits: int) -> int:
    value &= 0xFFFFFFFF
    return ((value << bits) | (value >> (32 - bits))) & 0xFFFFFFFF


def demo_programming_key(seed: bytes) -> bytes:
    """The demo vehicle's programming key: rotl32(seed ^ 0xB007F1A5, 11) + 0x4321, big-endian."""
    if len(seed) != 4:
        raise ValueError("the seed is 4 bytes")
    x = rotate_left_32(int.from_bytes(seed, "big") ^ 0xB007F1A5, 11)
    return ((x + 0x4321) & 0xFFFFFFFF).to_bytes(4, "big")


# Seed/key algorithms by name; a vehicle description names the one its ECUs use.
SeedKey = Callable[[bytes], bytes]
SEED_KEY_ALGORITHMS: dict[str, SeedKey] = {"demo": demo_programming_key}
