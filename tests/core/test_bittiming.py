"""Frame lengths against a bit-by-bit reference, the NOTES.md figures and hand counts."""

from __future__ import annotations

import random

import can
import pytest

from workshop_app.core import bittiming as bt
from workshop_app.core.types import FD_LENGTHS

# --- an independent, slow reference: build the real bit list, then stuff it ----------------


def _bits(value: int, width: int) -> list[int]:
    return [(value >> i) & 1 for i in range(width - 1, -1, -1)]


def _crc15_bitwise(bits: list[int]) -> int:
    crc = 0
    for b in bits:
        feedback = b ^ ((crc >> 14) & 1)
        crc = (crc << 1) & 0x7FFF
        if feedback:
            crc ^= 0x4599
    return crc


def _stuff(bits: list[int], owe_trailing: bool) -> tuple[int, list[int]]:
    """Count stuff bits; returns (count, index in ``bits`` before which each stuff bit sits)."""
    where = []
    last, run = None, 0
    for i, b in enumerate(bits):
        if run == 5:
            where.append(i)
            last, run = 1 - last, 1
        if b == last:
            run += 1
        else:
            last, run = b, 1
    if run == 5 and owe_trailing:
        where.append(len(bits))
    return len(where), where


def reference_bits(aid: int, ext: bool, data: bytes, fd: bool = False, brs: bool = False) -> tuple[int, int]:
    n = len(data)
    bits = [0]  # SOF
    if ext:
        bits += [*_bits(aid >> 18, 11), 1, 1, *_bits(aid & 0x3FFFF, 18)]
    else:
        bits += _bits(aid, 11)
    if not fd:
        bits += [0, 0, 0]  # RTR IDE r0 (base) or RTR r1 r0 (extended), all dominant
        bits += _bits(n, 4)
        for b in data:
            bits += _bits(b, 8)
        bits += _bits(_crc15_bitwise(bits), 15)
        stuffs, _ = _stuff(bits, owe_trailing=True)
        return len(bits) + stuffs + 13, 0
    code = bt.fd_dlc(n)
    size = FD_LENGTHS[code]
    data = data + bytes(size - n)
    bits += [0] if ext else [0, 0]  # RRS (+ IDE for base frames)
    bits += [1, 0, int(brs)]  # FDF res BRS
    arbitration = len(bits)
    bits += [0, *_bits(code, 4)]  # ESI DLC
    for b in data:
        bits += _bits(b, 8)
    _, where = _stuff(bits, owe_trailing=False)  # the first fixed stuff bit replaces it
    arb_stuffs = sum(1 for i in where if i < arbitration)
    crc_field = 4 + (17 if size <= 16 else 21)
    crc_field += -(-crc_field // 4)
    nominal = arbitration + arb_stuffs
    fast = len(bits) - arbitration + len(where) - arb_stuffs + crc_field + 1
    if brs:
        return nominal + 12, fast
    return nominal + fast + 12, 0


def test_matches_bitwise_reference_on_random_frames():
    rng = random.Random(11)
    for _ in range(3000):
        ext = rng.random() < 0.4
        fd = rng.random() < 0.5
        brs = fd and rng.random() < 0.5
        aid = rng.getrandbits(29 if ext else 11)
        n = rng.choice(FD_LENGTHS) if fd else rng.randint(0, 8)
        kind = rng.random()
        if kind < 0.2:
            data = bytes(n)
        elif kind < 0.35:
            data = b"\xff" * n
        elif kind < 0.5:
            data = bytes(rng.choice((0x00, 0x0F, 0xF0, 0xFF)) for _ in range(n))
        else:
            data = rng.randbytes(n)
        got = bt.frame_bits(aid, ext, data, is_fd=fd, bitrate_switch=brs)
        assert got == reference_bits(aid, ext, data, fd, brs), (hex(aid), ext, data.hex(), fd, brs)


def test_crc15_check_value():
    # The CRC catalogue's check value of CRC-15/CAN over the ASCII digits 1..9.
    assert bt.crc15(b"123456789") == 0x059E


def test_hand_counted_frames():
    # Unstuffed sizes: classic base 47 + 8n, extended 67 + 8n (intermission included).
    for n in range(9):
        nominal, fast = bt.frame_bits(0x2AA, False, bytes([0x55] * n))
        assert fast == 0
        assert 47 + 8 * n <= nominal <= 47 + 8 * n + (34 + 8 * n - 1) // 4
        nominal, _ = bt.frame_bits(0x0AAAAAAA, True, bytes([0xAA] * n))
        assert 67 + 8 * n <= nominal <= 67 + 8 * n + (54 + 8 * n - 1) // 4
    # id 0, eight zero bytes: the 98-bit stuffed region (19 header + 64 data + 15 CRC)
    # carries 16 stuff bits; + 13 tail bits.
    assert bt.frame_bits(0x000, False, bytes(8)) == (127, 0)
    # FD, 64 bytes, BRS: arbitration 17 bits (SOF..BRS) + ACK, ACK delimiter, EOF, IFS at the
    # nominal rate; ESI + DLC + 512 data bits + stuff count/CRC-21 with 7 fixed stuff bits +
    # CRC delimiter at the data rate.
    data = bytes([0x55] * 64)  # alternating bits: no dynamic stuff bits in the data
    nominal, fast = bt.frame_bits(0x2AA, False, data, is_fd=True, bitrate_switch=True)
    assert nominal == 17 + 12
    assert fast == 5 + 512 + (4 + 21 + 7) + 1
    # Without BRS everything is at the nominal rate.
    assert bt.frame_bits(0x2AA, False, data, is_fd=True) == (nominal + fast, 0)
    # Up to 16 bytes CAN FD uses CRC-17: stuff count + CRC + 6 fixed stuff bits = 27 bits.
    nominal, fast = bt.frame_bits(0x2AA, False, bytes([0x55] * 16), is_fd=True, bitrate_switch=True)
    assert fast == 5 + 128 + 27 + 1


def _typical_rate(bitrate: int, n: int, *, fd: bool = False, data_bitrate: int | None = None) -> float:
    rng = random.Random(5)
    frames = 4000
    total = 0.0
    for _ in range(frames):
        total += bt.frame_duration(
            rng.getrandbits(11),
            False,
            rng.randbytes(n),
            is_fd=fd,
            bitrate_switch=fd,
            bitrate=bitrate,
            data_bitrate=data_bitrate,
        )
    return frames / total


@pytest.mark.parametrize(
    ("bitrate", "n", "fd", "data_bitrate", "expected"),
    [
        (500_000, 8, False, None, 4374),
        (1_000_000, 8, False, None, 8749),
        (500_000, 64, True, 2_000_000, 2920),
        (500_000, 64, True, 5_000_000, 5805),
    ],
)
def test_typical_frame_rates_match_notes(bitrate, n, fd, data_bitrate, expected):
    rate = _typical_rate(bitrate, n, fd=fd, data_bitrate=data_bitrate)
    assert rate == pytest.approx(expected, rel=0.01)


def test_worst_case_classic_500k():
    nominal, _ = bt.worst_case_frame_bits(8)
    assert nominal == 135
    assert round(bt.max_frame_rate((nominal, 0), 500_000)) == 3704
    rng = random.Random(3)
    for _ in range(2000):
        ext = rng.random() < 0.5
        fd = rng.random() < 0.3
        brs = fd and rng.random() < 0.5
        n = rng.choice(FD_LENGTHS) if fd else rng.randint(0, 8)
        data = rng.choice((bytes(n), b"\xff" * n, rng.randbytes(n)))
        aid = rng.choice((0, (1 << (29 if ext else 11)) - 1, rng.getrandbits(29 if ext else 11)))
        got = bt.frame_bits(aid, ext, data, is_fd=fd, bitrate_switch=brs)
        bound = bt.worst_case_frame_bits(n, ext, is_fd=fd, bitrate_switch=brs)
        assert sum(got) <= sum(bound)
        assert got[0] <= bound[0]


def test_frame_duration_splits_rates():
    data = bytes(range(64))
    nominal, fast = bt.frame_bits(0x100, False, data, is_fd=True, bitrate_switch=True)
    d = bt.frame_duration(
        0x100, False, data, is_fd=True, bitrate_switch=True, bitrate=500_000, data_bitrate=2_000_000
    )
    assert d == pytest.approx(nominal / 500_000 + fast / 2_000_000)
    # BRS without a data bitrate: both phases at the nominal rate.
    d = bt.frame_duration(0x100, False, data, is_fd=True, bitrate_switch=True, bitrate=500_000)
    assert d == pytest.approx((nominal + fast) / 500_000)


def test_bus_load_helper_accepts_messages():
    rng = random.Random(9)
    msgs = [
        can.Message(arbitration_id=rng.getrandbits(11), data=rng.randbytes(8), is_extended_id=False)
        for _ in range(1000)
    ]
    msgs.append(can.Message(arbitration_id=1, is_remote_frame=True, dlc=8, is_extended_id=False))
    expected = sum(bt.frame_duration(m.arbitration_id, False, m.data, bitrate=500_000) for m in msgs[:-1])
    assert bt.bus_load(msgs, 1.0, 500_000) == pytest.approx(expected)
    assert 0.2 < bt.bus_load(msgs, 1.0, 500_000) < 0.25  # 1000 frames of ~114 bits


def test_invalid_lengths():
    with pytest.raises(ValueError):
        bt.frame_bits(1, False, bytes(9))
    with pytest.raises(ValueError):
        bt.frame_bits(1, False, bytes(65), is_fd=True)
    # FD lengths between valid sizes are padded up (10 bytes go out as 12).
    assert bt.frame_bits(1, False, bytes(10), is_fd=True) == bt.frame_bits(1, False, bytes(12), is_fd=True)
    assert bt.fd_dlc(10) == 9
