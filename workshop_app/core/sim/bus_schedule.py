"""How the simulated car's frames share the bus: the periodic messages it sends, frames waiting
for arbitration, the load meter and the filler traffic that brings a bus up to a chosen load."""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass
from typing import Any

import can

from workshop_app.core import bittiming

FILLER_IDS = range(0x580, 0x5C0)
MIN_SLEEP_S = 0.0005  # below this, catching up in a burst is cheaper than waking up
MAX_FILLER_CREDIT_S = 0.02  # filler never bursts more than this much bus time at once


@dataclass(slots=True)
class Tx:
    """A periodic message and everything needed to send it quickly."""

    name: str
    message: Any  # cantools Message
    frame_id: int
    is_extended: bool
    is_fd: bool
    cycle_s: float
    priority: tuple[int, int, int]
    limits: tuple[tuple[str, float, float], ...]
    counter: str | None = None
    checksum: str | None = None
    checksum_kind: int = 0
    checksum_byte: int = 0
    mux: str | None = None
    pages: tuple[tuple[int, tuple[str, ...]], ...] = ()
    page: int = 0
    count: int = 0
    sender: str = ""  # the DBC's transmitting node (an ECU name)


@dataclass(slots=True)
class Pending:
    priority: tuple[int, int, int]
    ready: float
    tx: Tx | None  # None = filler frame
    seq: int = 0

    def __lt__(self, other: Pending) -> bool:
        return (self.priority, self.seq) < (other.priority, other.seq)


def arbitration_priority(frame_id: int, extended: bool) -> tuple[int, int, int]:
    """Sort key of CAN arbitration: base id first; a standard frame beats an extended one
    with the same base id (its RTR/IDE bits are dominant where SRR/IDE are recessive)."""
    if extended:
        return (frame_id >> 18, 1, frame_id & 0x3FFFF)
    return (frame_id, 0, 0)


class LoadMeter:
    """Bus time taken by the frames that ended during the last second."""

    def __init__(self) -> None:
        self._frames: deque[tuple[float, float]] = deque()  # (end, duration)
        self._sum = 0.0

    def add(self, end: float, duration: float) -> None:
        self._frames.append((end, duration))
        self._sum += duration

    def value(self, now: float) -> float:
        horizon = now - 1.0
        frames = self._frames
        while frames and frames[0][0] <= horizon:
            self._sum -= frames.popleft()[1]
        if not frames:
            self._sum = 0.0  # drop accumulated rounding
        return self._sum


class Filler:
    """Filler traffic: ids 0x580..0x5BF, 8 random-looking bytes, and its budget.

    The budget (``credit``) is bus seconds when paced (``load`` x elapsed time) or frames when
    unpaced (``rate`` x elapsed time); it is capped so that filler never arrives in bursts.
    """

    def __init__(self, bitrate: int) -> None:
        self.credit = 0.0
        self._seq = 0
        rng = random.Random(1)
        self.typical_duration = (
            sum(
                bittiming.frame_duration(FILLER_IDS[0], False, rng.randbytes(8), bitrate=bitrate)
                for _ in range(64)
            )
            / 64
        )

    def refill(self, elapsed: float, load: float, rate: float) -> None:
        if load > 0:
            self.credit = min(self.credit + load * elapsed, MAX_FILLER_CREDIT_S)
        elif math.isinf(rate):
            self.credit = 256.0  # a batch per loop turn, as fast as the thread goes
        elif rate > 0:
            self.credit = min(self.credit + rate * elapsed, max(1.0, rate * 0.05))
        else:
            self.credit = 0.0

    def wait(self, rate: float) -> float:
        """Seconds until the next unpaced filler frame is due."""
        if math.isinf(rate):
            return 0.0
        return max((1.0 - self.credit) / rate, MIN_SLEEP_S)

    def message(self) -> can.Message:
        seq = self._seq
        self._seq += 1
        # A scrambled counter: random-looking payloads get typical stuffing.
        data = ((seq * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")
        return can.Message(arbitration_id=FILLER_IDS[seq % len(FILLER_IDS)], is_extended_id=False, data=data)
