"""Cost of the ISO 11898-1 frame-length computation the simulator runs for every frame.

Run: .venv/bin/python benchmarks/bittiming.py
Baseline (same run): a bare Python loop building the same payloads, to show the net cost.
"""

from __future__ import annotations

import random
import time

from workshop_app.core import bittiming as bt


def per_call(fn, items) -> float:
    t0 = time.perf_counter()
    for item in items:
        fn(item)
    return (time.perf_counter() - t0) / len(items)


def main() -> None:
    rng = random.Random(1)
    classic = [rng.randbytes(8) for _ in range(20_000)]
    fd = [rng.randbytes(64) for _ in range(20_000)]
    base = per_call(lambda p: None, classic)
    bt._classic_bits.cache_clear()
    miss = per_call(lambda p: bt.frame_bits(0x123, False, p), classic)
    hit = per_call(lambda p: bt.frame_bits(0x123, False, p), classic[:1000] * 20)
    fd_miss = per_call(lambda p: bt.frame_bits(0x123, False, p, is_fd=True, bitrate_switch=True), fd)
    print(f"empty loop            {base * 1e6:6.2f} µs/call (baseline)")
    print(f"classic 8 B, uncached {miss * 1e6:6.2f} µs/call")
    print(f"classic 8 B, cached   {hit * 1e6:6.2f} µs/call")
    print(f"CAN FD 64 B, uncached {fd_miss * 1e6:6.2f} µs/call")
    for label, bits, rate, drate in (
        ("classic 500k", [bt.frame_bits(0x123, False, p) for p in classic[:4000]], 500_000, None),
        ("classic 1M", [bt.frame_bits(0x123, False, p) for p in classic[:4000]], 1_000_000, None),
        (
            "FD 500k/2M 64 B",
            [bt.frame_bits(0x123, False, p, is_fd=True, bitrate_switch=True) for p in fd[:4000]],
            500_000,
            2_000_000,
        ),
    ):
        seconds = sum(n / rate + (d / drate if drate else d / rate) for n, d in bits) / len(bits)
        print(f"{label:<18} typical {1 / seconds:8,.0f} frames/s")


if __name__ == "__main__":
    main()
