"""Checked option values for the ``workshop`` command line.

Each function here is an argparse ``type=``: it turns the text into a number or raises
``argparse.ArgumentTypeError``, which argparse prints as one ``error:`` line naming the
option before it exits with status 2. Checking at parse time means no command ever starts
with a value it cannot use (a negative speed, a NaN factor, a port beyond 65535), so no
traceback reaches the user and nothing half-starts.

``float("nan")`` and ``float("inf")`` parse without complaint, so every float here is also
checked to be finite: a NaN compares false with everything and slips past ``> 0`` tests.
"""

from __future__ import annotations

import argparse
import math

__all__ = [
    "MAX_BITRATE",
    "MAX_DATA_BITRATE",
    "MAX_SECONDS",
    "MAX_TIME_SCALE",
    "MIN_BITRATE",
    "MIN_SPEED",
    "bitrate",
    "bitrate_or_zero",
    "data_bitrate",
    "finite_float",
    "non_negative_float",
    "non_negative_int",
    "port",
    "positive_float",
    "positive_int",
    "seconds",
    "seconds_or_zero",
    "speed",
    "time_scale",
]

# The slowest bus met in cars is around 10 kbit/s (single-wire and LIN-like bodies run at
# 33.3 kbit/s); allow a margin below. Classic CAN and the arbitration phase of CAN FD end at
# 1 Mbit/s (ISO 11898-1); CAN FD data phases run up to a few Mbit/s, adapters up to 12-16.
MIN_BITRATE = 1_000
MAX_BITRATE = 1_000_000
MAX_DATA_BITRATE = 16_000_000
# The demo car's physics steps in 50 ms slices: at 100x one core still keeps up with real
# time; far beyond, its thread falls behind and a huge factor never returns from one step.
MAX_TIME_SCALE = 100.0
# Seconds beyond this are typing mistakes, and far beyond it (1e300) they overflow the
# platform's time_t inside a thread wait, as a traceback from deep in a command: 16 weeks.
MAX_SECONDS = 16 * 7 * 24 * 3600.0
# A replay slower than 1/1000 of real time waits hours between frames; far slower overflows.
MIN_SPEED = 0.001


def _number(text: str, kind: type[int] | type[float]) -> float:
    try:
        value = int(text) if kind is int else float(text)
    except ValueError:
        word = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {word}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def finite_float(text: str) -> float:
    """Any finite number (NaN and infinities refused)."""
    return float(_number(text, float))


def positive_float(text: str) -> float:
    """A finite number greater than 0 (durations, intervals, timeouts, time scales)."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def non_negative_float(text: str) -> float:
    """A finite number of 0 or more (offsets into a log, settle times)."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def _within_seconds(text: str, value: float) -> float:
    if value > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"{text!r} seconds is more than {MAX_SECONDS / 86400:g} days")
    return value


def seconds(text: str) -> float:
    """Seconds greater than 0, at most :data:`MAX_SECONDS` (durations, intervals, timeouts)."""
    return _within_seconds(text, positive_float(text))


def seconds_or_zero(text: str) -> float:
    """Seconds of 0 or more, at most :data:`MAX_SECONDS` (offsets into a log, settle times)."""
    return _within_seconds(text, non_negative_float(text))


def time_scale(text: str) -> float:
    """A simulation speed-up: finite, greater than 0 and at most :data:`MAX_TIME_SCALE`."""
    value = positive_float(text)
    if value > MAX_TIME_SCALE:
        raise argparse.ArgumentTypeError(
            f"{text!r} is too fast: the simulated car keeps up with at most {MAX_TIME_SCALE:g}x real time"
        )
    return value


def speed(text: str) -> float:
    """A replay speed factor: finite, 0 or more, where 0 means as fast as possible."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more (0 = as fast as possible)")
    if 0 < value < MIN_SPEED:
        raise argparse.ArgumentTypeError(f"{text!r} is slower than {MIN_SPEED:g} (0 = as fast as possible)")
    return value


def positive_int(text: str) -> int:
    """A whole number of 1 or more (record ids)."""
    value = int(_number(text, int))
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def transfer_message(text: str) -> int:
    """Longest TransferData message in bytes: 3 (SID, counter, one byte) up to ISO-TP's 2**32 - 1."""
    value = int(_number(text, int))
    if not 3 <= value <= 0xFFFFFFFF:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 3 and 4294967295 bytes")
    return value


def non_negative_int(text: str) -> int:
    """A whole number of 0 or more (limits, where 0 usually means no limit)."""
    value = int(_number(text, int))
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def address(text: str) -> int:
    """A 32-bit memory address, decimal or 0x-prefixed hex (a raw binary's load address)."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an address (e.g. 0x8000)") from None
    if not 0 <= value <= 0xFFFFFFFF:
        raise argparse.ArgumentTypeError(f"{text!r} is not a 32-bit address")
    return value


def port(text: str) -> int:
    """A TCP port, 1 to 65535."""
    value = int(_number(text, int))
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1 to 65535)")
    return value


def _in_bitrate_range(text: str, highest: int) -> int:
    value = int(_number(text, int))
    if not MIN_BITRATE <= value <= highest:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a CAN bitrate in bit/s ({MIN_BITRATE:,} to {highest:,}; e.g. 500000)"
        )
    return value


def bitrate(text: str) -> int:
    """A nominal (arbitration) bitrate in bit/s, 1 kbit/s to 1 Mbit/s."""
    return _in_bitrate_range(text, MAX_BITRATE)


def data_bitrate(text: str) -> int:
    """A CAN FD data-phase bitrate in bit/s, 1 kbit/s to 16 Mbit/s."""
    return _in_bitrate_range(text, MAX_DATA_BITRATE)


def bitrate_or_zero(text: str) -> int:
    """A nominal bitrate, or 0 where 0 means "unpaced" (the simulator)."""
    if text.strip() in ("0", "+0", "-0"):
        return 0
    try:
        return bitrate(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc} or 0 for unpaced") from None
