"""One reconnect policy for every live source, the gaps it leaves, and a watcher that reports them.

Every entry point (monitor, record, dtc, the window) builds its live source through
:func:`workshop_app.core.sources.factory.make_source`, which applies a :class:`ReconnectPolicy`:
how long a connect may take, whether a lost link is reopened, and how often. While a link is
down the source keeps a :class:`LinkGap`; :class:`GapWatcher` turns state changes into one
plain line each ("link lost …", "link back after 4.2 s"), polled from whichever loop ticks the
session, so the CLI and the status bar say the same thing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workshop_app.core.sources.base import FrameSource


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """How a live source connects and what it does when the link goes away.

    ``enabled``: reopen a lost link every ``retry_interval`` seconds until it is back (or the
    source is stopped); without it a lost link fails the source. ``connect_timeout`` bounds each
    network step of a connect (TCP connect, each socketcand handshake answer);
    ``open_timeout`` bounds opening any adapter as a whole (a driver that never returns).
    """

    enabled: bool = True
    retry_interval: float = 1.0
    connect_timeout: float = 3.0
    open_timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.retry_interval <= 0 or self.connect_timeout <= 0 or self.open_timeout <= 0:
            raise ValueError("reconnect intervals and timeouts must be positive")


RECONNECT = ReconnectPolicy()  # the default: retry every second, without end
NO_RECONNECT = ReconnectPolicy(enabled=False)


@dataclass(frozen=True, slots=True)
class LinkGap:
    """A time the link was down: wall-clock start, end (None while still down), why it went."""

    started: float
    ended: float | None
    reason: str

    @property
    def open(self) -> bool:
        return self.ended is None

    def seconds(self, now: float | None = None) -> float:
        end = self.ended if self.ended is not None else (time.time() if now is None else now)
        return max(0.0, end - self.started)

    def text(self) -> str:
        """``20:01:02, 4.2 s (connection lost: …)``: one gap for a summary line."""
        when = time.strftime("%H:%M:%S", time.localtime(self.started))
        length = f"{self.seconds():.1f} s" + (" so far" if self.open else "")
        return f"{when}, {length} ({self.reason})"


def gaps_during(gaps: tuple[LinkGap, ...], started: float, ended: float) -> tuple[LinkGap, ...]:
    """The gaps that overlap a recording from ``started`` to ``ended`` (epoch seconds).

    A source's gaps cover its whole life; a recording started later owns only those it saw.
    """
    return tuple(g for g in gaps if g.started < ended and (g.ended is None or g.ended > started))


class GapWatcher:
    """Turns a source's gaps into one line per change; call :meth:`poll` from the ticking loop.

    Not thread-safe by design: one loop (the CLI's, or the GUI's tick) owns it.
    """

    def __init__(self, source: FrameSource) -> None:
        self.source = source
        self._reported_open: int | None = None  # index of the gap whose start was reported
        self._reported_closed = 0  # gaps whose end was reported

    def poll(self) -> list[str]:
        lines: list[str] = []
        gaps = self.source.gaps
        name = self.source.describe()
        for index in range(self._reported_closed, len(gaps)):
            gap = gaps[index]
            if self._reported_open != index:
                lines.append(f"{name}: link lost ({gap.reason}); reconnecting…")
                self._reported_open = index
            if gap.open:
                break
            lines.append(f"{name}: link back after a gap of {gap.seconds():.1f} s")
            self._reported_closed = index + 1
        return lines
