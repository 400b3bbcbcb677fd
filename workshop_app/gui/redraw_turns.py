"""RedrawTurns: the window's heavy redraws (plots, trace) take turns, one per tick.

Each view keeps its own pace (plots 20 redraws a second, the trace 10 repaints), but on
independent clocks their redraws kept landing in the same tick: that tick then paid for both,
and such ticks made the slowest tenth of all. A view whose redraw is due asks for the tick's
turn; the first to ask gets it, and a view refused waits for the next tick, which is kept for
it (so two views due on every tick alternate instead of one starving). A redraw is put off by
one tick at most.
"""

from __future__ import annotations


class RedrawTurns:
    """One heavy redraw per tick; ``tick`` is the number of the workshop's tick (its ``ticks``)."""

    def __init__(self) -> None:
        self._granted_tick = -1
        self._kept: dict[int, object] = {}  # tick -> the view refused in the tick before it

    def claim(self, view: object, tick: int) -> bool:
        """Whether ``view`` may redraw in tick ``tick``; False: ask again next tick."""
        for old in [t for t in self._kept if t < tick]:
            del self._kept[old]  # its view did not ask after all
        owner = self._kept.get(tick, view)
        if self._granted_tick == tick or owner is not view:
            self._kept.setdefault(tick + 1, view)
            return False
        self._granted_tick = tick
        return True
