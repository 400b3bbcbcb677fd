"""How long a CAN or CAN FD data frame occupies the bus (ISO 11898-1:2015).

The bit count is exact: stuff bits are counted on the real bit stream, i.e. the classic
CRC-15 is computed so that stuffing inside the CRC sequence is counted too.

Frame layout counted here (dominant = 0, recessive = 1)::

    classic base      SOF ID(11) RTR IDE r0 DLC(4) DATA CRC(15)           | CRCdel ACK ACKdel EOF(7) IFS(3)
    classic extended  SOF ID(11) SRR IDE ID(18) RTR r1 r0 DLC(4) DATA CRC(15) | ...
    FD base           SOF ID(11) RRS IDE FDF res BRS | ESI DLC(4) DATA | SBC(4) CRC(17/21) | ...
    FD extended       SOF ID(11) SRR IDE ID(18) RRS FDF res BRS | ESI DLC(4) DATA | ...

* Classic frames: dynamic stuffing from SOF to the last CRC bit (a stuff bit owed by the
  last CRC bits is sent before the CRC delimiter).
* CAN FD frames: dynamic stuffing from SOF to the last data bit; the CRC field (stuff count,
  parity and CRC-17/21) carries fixed stuff bits, one before its first bit and one after
  every fourth bit. A dynamic stuff bit owed by the last data bits is not sent on its own:
  the first fixed stuff bit, also complementary to its predecessor, takes its place.
* With bit-rate switching the rate changes at the sample point of BRS and back at the sample
  point of the CRC delimiter. Counting BRS at the nominal rate and the CRC delimiter at the
  data rate gives the same total time as splitting both bits at equal sample points, so the
  data phase here is ESI .. CRC delimiter.
* The 3-bit intermission is part of every frame, so back-to-back frames add up exactly.

Stuffing is counted with a byte-wide state table (10 states x 256 bytes), which keeps a call
at a few microseconds in CPython; results are also cached on the frame's content.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from workshop_app.core.types import FD_LENGTHS

__all__ = [
    "bus_load",
    "crc15",
    "fd_dlc",
    "frame_bits",
    "frame_duration",
    "max_frame_rate",
    "worst_case_frame_bits",
]

# CRC delimiter + ACK slot + ACK delimiter + EOF + intermission
_TAIL_BITS = 1 + 1 + 1 + 7 + 3
_CRC15_POLY = 0x4599

# --- stuffing state machine -------------------------------------------------------------
# A state is (last bit value, length of the current run 1..5), stored as index*256 so that
# "state | byte" indexes the table directly. A run of 5 is left pending: the stuff bit is
# inserted when the next bit is processed (or by the caller at the end of the region).


def _state(last: int, run: int) -> int:
    return (last * 5 + run - 1) << 8


def _step_bits(state: int, value: int, width: int) -> tuple[int, int]:
    """Bit-by-bit stepper (builds the tables): feed ``width`` bits of ``value`` MSB first; returns (state, stuffs)."""
    idx = state >> 8
    last, run = divmod(idx, 5)
    run += 1
    stuffs = 0
    for pos in range(width - 1, -1, -1):
        bit = (value >> pos) & 1
        if run == 5:
            stuffs += 1
            last, run = 1 - last, 1
        if bit == last:
            run += 1
        else:
            last, run = bit, 1
    return _state(last, run), stuffs


# Entry = next_state | stuff_count << 24: adding entries accumulates the count in the high
# bits while "entry & _STATE_MASK" gives the next state (the summed state parts stay far
# below 2**24 for the longest frame).
_COUNT_SHIFT = 24
_STATE_MASK = 0xF00


def _build_table(width: int) -> list[int]:
    size = 1 << width
    table = [0] * (10 * size)
    for idx in range(10):
        for value in range(size):
            nxt, stuffs = _step_bits(idx << 8, value, width)
            table[idx * size + value] = nxt | (stuffs << _COUNT_SHIFT)
    return table


_TABLES: dict[int, list[int]] = {w: _build_table(w) for w in range(1, 9)}
_T8 = _TABLES[8]
_T7 = _TABLES[7]
_T3 = _TABLES[3]
_START = _state(1, 1)  # bus idle is recessive; SOF (dominant) starts the first run
# Index base of the start state in the table of each lead width (state * 2**width).
_LEAD_START = {w: _START >> (8 - w) for w in range(1, 9)}
# States whose run has reached five: a stuff bit is owed before the next bit.
_PENDING = frozenset(_state(last, 5) for last in (0, 1))


def _run_bits(state: int, value: int, width: int) -> tuple[int, int]:
    """Feed a bit field (MSB first) through the stuffing tables; returns (state, stuffs)."""
    acc = 0
    lead = width & 7
    if lead:
        width -= lead
        e = _TABLES[lead][(state >> (8 - lead)) | (value >> width)]
        acc += e
        state = e & _STATE_MASK
    if width:
        for b in (value & ((1 << width) - 1)).to_bytes(width >> 3, "big"):
            e = _T8[state | b]
            acc += e
            state = e & _STATE_MASK
    return state, acc >> _COUNT_SHIFT


def _run_bytes(state: int, data: bytes) -> tuple[int, int]:
    acc = 0
    for b in data:
        e = _T8[state | b]
        acc += e
        state = e & _STATE_MASK
    return state, acc >> _COUNT_SHIFT


# --- CRC-15 (classic CAN) -----------------------------------------------------------------


def _build_crc15_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 7
        for _ in range(8):
            crc = ((crc << 1) ^ _CRC15_POLY) if crc & 0x4000 else (crc << 1)
            crc &= 0x7FFF
        table.append(crc)
    return table


_CRC15_TABLE = _build_crc15_table()


def crc15(data: bytes) -> int:
    """CAN CRC-15 (x^15+x^14+x^10+x^8+x^7+x^4+x^3+1, initial value 0) over whole bytes.

    Because the initial value is 0, leading zero bits do not change the result, so a bit
    field of any length can be fed left-padded to whole bytes.
    """
    crc = 0
    table = _CRC15_TABLE
    for b in data:
        crc = ((crc << 8) & 0x7FFF) ^ table[((crc >> 7) ^ b) & 0xFF]
    return crc


# --- frame length -------------------------------------------------------------------------


def fd_dlc(length: int) -> int:
    """DLC code of a CAN FD payload length (lengths between valid sizes round up)."""
    for code, size in enumerate(FD_LENGTHS):
        if length <= size:
            return code
    raise ValueError(f"CAN FD payload of {length} bytes is longer than 64")


@lru_cache(maxsize=8192)
def _classic_bits(arbitration_id: int, is_extended: bool, data: bytes) -> int:
    n = len(data)
    if n > 8:
        raise ValueError(f"classic CAN payload of {n} bytes is longer than 8")
    if is_extended:
        # SOF ID-A(11) SRR=1 IDE=1 ID-B(18) RTR=0 r1=0 r0=0 DLC(4): 39 bits = 7 + 4 bytes
        head = ((arbitration_id >> 18) << 27) | (3 << 25) | ((arbitration_id & 0x3FFFF) << 7) | n
        head_bits, head_bytes, lead_table = 39, head.to_bytes(5, "big"), _T7
    else:
        # SOF ID(11) RTR=0 IDE=0 r0=0 DLC(4): 19 bits = 3 + 2 bytes
        head = (arbitration_id << 7) | n
        head_bits, head_bytes, lead_table = 19, head.to_bytes(3, "big"), _T3
    # One pass computes the CRC (over the zero-padded header, see crc15) and the stuffing.
    t8, crc_t = _T8, _CRC15_TABLE
    crc = crc_t[head_bytes[0]]
    e = lead_table[_LEAD_START[head_bits & 7] | head_bytes[0]]
    acc = e
    state = e & _STATE_MASK
    for b in head_bytes[1:]:
        crc = ((crc << 8) & 0x7FFF) ^ crc_t[((crc >> 7) ^ b) & 0xFF]
        e = t8[state | b]
        acc += e
        state = e & _STATE_MASK
    for b in data:
        crc = ((crc << 8) & 0x7FFF) ^ crc_t[((crc >> 7) ^ b) & 0xFF]
        e = t8[state | b]
        acc += e
        state = e & _STATE_MASK
    e = _T7[(state >> 1) | (crc >> 8)]
    acc += e
    e = t8[(e & _STATE_MASK) | (crc & 0xFF)]
    acc += e
    stuffs = (acc >> _COUNT_SHIFT) + ((e & _STATE_MASK) in _PENDING)
    return head_bits + 8 * n + 15 + stuffs + _TAIL_BITS


@lru_cache(maxsize=8192)
def _fd_bits(arbitration_id: int, is_extended: bool, data: bytes, brs: bool) -> tuple[int, int]:
    n = len(data)
    code = fd_dlc(n)
    size = FD_LENGTHS[code]
    if size != n:
        data = data + bytes(size - n)  # padding bytes are sent as 0x00 here
    if is_extended:
        # SOF ID-A(11) SRR=1 IDE=1 ID-B(18) RRS=0 FDF=1 res=0 BRS: 36 bits
        head = ((arbitration_id >> 18) << 24) | (3 << 22) | ((arbitration_id & 0x3FFFF) << 4) | 4 | brs
        head_bits = 36
    else:
        # SOF ID(11) RRS=0 IDE=0 FDF=1 res=0 BRS: 17 bits
        head = (arbitration_id << 5) | 4 | brs
        head_bits = 17
    state, s_arb = _run_bits(_START, head, head_bits)
    state, s_ctl = _run_bits(state, code, 5)  # ESI=0 (error active) + DLC
    state, s_data = _run_bytes(state, data)
    crc_len = 17 if size <= 16 else 21
    crc_field = 4 + crc_len  # stuff count (3 bits Gray code + parity) + CRC
    crc_field += (crc_field + 3) // 4  # fixed stuff bits
    arb = head_bits + s_arb
    rest = 5 + s_ctl + 8 * size + s_data + crc_field + 1  # .. CRC delimiter
    if brs:
        return arb + _TAIL_BITS - 1, rest
    return arb + rest + _TAIL_BITS - 1, 0


def frame_bits(
    arbitration_id: int,
    is_extended: bool,
    data: bytes | bytearray,
    *,
    is_fd: bool = False,
    bitrate_switch: bool = False,
) -> tuple[int, int]:
    """Bits a data frame occupies on the bus, intermission included.

    Returns ``(nominal_bits, data_bits)``: bits sent at the nominal (arbitration) rate and
    bits sent at the data rate. ``data_bits`` is 0 unless ``is_fd`` and ``bitrate_switch``.

    >>> frame_bits(0x000, False, bytes(8))  # 98 stuffed-region bits + 16 stuff bits + 13
    (127, 0)
    """
    data = bytes(data)
    if is_fd:
        return _fd_bits(arbitration_id, is_extended, data, bool(bitrate_switch))
    return _classic_bits(arbitration_id, is_extended, data), 0


def frame_duration(
    arbitration_id: int,
    is_extended: bool,
    data: bytes | bytearray,
    *,
    is_fd: bool = False,
    bitrate_switch: bool = False,
    bitrate: int,
    data_bitrate: int | None = None,
) -> float:
    """Seconds the frame occupies a bus at ``bitrate`` (and ``data_bitrate`` when BRS is set).

    ``bitrate_switch`` without a ``data_bitrate`` is timed as if both rates were equal.
    """
    nominal, fast = frame_bits(arbitration_id, is_extended, data, is_fd=is_fd, bitrate_switch=bitrate_switch)
    if fast:
        return nominal / bitrate + fast / (data_bitrate or bitrate)
    return nominal / bitrate


def worst_case_frame_bits(
    length: int, is_extended: bool = False, *, is_fd: bool = False, bitrate_switch: bool = False
) -> tuple[int, int]:
    """Upper bound of :func:`frame_bits` for a payload length (maximum possible stuffing).

    A stuffed region of ``n`` bits carries at most ``(n - 1) // 4`` stuff bits (the first
    after five equal bits, then one after every four, each stuff bit starting the next run).
    For CAN FD the bound is applied to the dynamically stuffed part, split at BRS.
    """
    if not is_fd:
        region = (39 if is_extended else 19) + 8 * length + 15
        return region + (region - 1) // 4 + _TAIL_BITS, 0
    size = FD_LENGTHS[fd_dlc(length)]
    head = 36 if is_extended else 17
    region = head + 5 + 8 * size
    stuffs = (region - 1) // 4
    crc_field = 4 + (17 if size <= 16 else 21)
    crc_field += (crc_field + 3) // 4
    arb_stuffs = (head - 1) // 4
    if bitrate_switch:
        return head + arb_stuffs + _TAIL_BITS - 1, region - head + stuffs - arb_stuffs + crc_field + 1
    return region + stuffs + crc_field + _TAIL_BITS, 0


def max_frame_rate(bits: tuple[int, int], bitrate: int, data_bitrate: int | None = None) -> float:
    """Back-to-back frames per second for frames of ``bits`` = ``(nominal, data)`` bits."""
    nominal, fast = bits
    return 1.0 / (nominal / bitrate + fast / (data_bitrate or bitrate))


def bus_load(
    frames: Iterable[Any],
    seconds: float,
    bitrate: int,
    data_bitrate: int | None = None,
) -> float:
    """Fraction of ``seconds`` the bus was busy carrying ``frames``.

    ``frames`` are python-can ``Message`` or workshop ``Frame`` objects (anything with
    ``arbitration_id``, ``data``, ``is_fd``, ``bitrate_switch`` and ``is_extended_id`` or
    ``is_extended``). Remote and error frames are skipped. May exceed 1.0 if the frames
    could not have fitted (e.g. an unpaced simulation).
    """
    if seconds <= 0:
        raise ValueError("seconds must be positive")
    busy = 0.0
    for f in frames:
        if getattr(f, "is_remote_frame", False) or getattr(f, "is_remote", False):
            continue
        if getattr(f, "is_error_frame", False) or getattr(f, "is_error", False):
            continue
        ext = getattr(f, "is_extended_id", None)
        if ext is None:
            ext = getattr(f, "is_extended", False)
        busy += frame_duration(
            f.arbitration_id,
            bool(ext),
            f.data,
            is_fd=bool(f.is_fd),
            bitrate_switch=bool(f.bitrate_switch),
            bitrate=bitrate,
            data_bitrate=data_bitrate,
        )
    return busy / seconds
