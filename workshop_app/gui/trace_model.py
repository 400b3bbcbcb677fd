"""TraceModel: one row per message stream, its decoded signals as expandable children.

Rows come from the FrameStore and are refreshed once per tick, never per frame: a tick
repaints the rows whose streams took frames (the keys ``FrameStore.ingest`` reports), and
every ``SWEEP_TICKS``-th tick repaints them all, so rates of silent streams fall and payload
highlights fade without every row being asked for every cell thirty times a second. Between
sweeps only the data column of a changed row is repainted; counts and rates follow at the
sweeps (about twice a second).
Repaints are also held to ``REPAINT_INTERVAL`` by the wall clock: a stream that changes on
every tick is repainted ten times a second (more is not readable, and each repaint asks for
every cell of every visible row), and what changed meanwhile is repainted at the next one.
Top-level rows have internal id 0; a signal row's internal id is 1 + a stable number given to
its message when first seen, so expanded rows stay expanded while new ids are inserted above.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Collection
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont

from workshop_app.core.capture.store import MessageKey, MessageStats
from workshop_app.core.decode.live import SignalValue, decode_payload
from workshop_app.core.session import CaptureSession
from workshop_app.core.workshop import Subscription, WorkshopSession
from workshop_app.gui.redraw_turns import RedrawTurns

COLUMNS = ("Channel", "ID", "Message / signal", "Count", "Rate (Hz)", "Jitter (ms)", "DLC", "Data / value")
COL_CHANNEL, COL_ID, COL_NAME, COL_COUNT, COL_RATE, COL_JITTER, COL_DLC, COL_DATA = range(len(COLUMNS))
# Role carrying the MessageStats of a row, for the data delegate and the bit view.
STATS_ROLE = Qt.ItemDataRole.UserRole + 1
_Index = QModelIndex | QPersistentModelIndex
_UNKNOWN = QColor("#b26a00")
# Every row is repainted on this tick of each run of ticks (~2 Hz at 30 ticks/s): counts and
# rates follow, rates of silent streams fall, and highlights of bytes that no longer change
# fade (data_delegate.FADE_SECONDS = 2 s) in four steps. A sweep asks for every cell of every
# visible row and of their expanded signals: at 6 (~5 Hz) it made the slowest ticks.
SWEEP_TICKS = 15
REPAINT_INTERVAL = 0.1  # seconds between repaints of the rows (0: on every tick)
# The roles data() answers; the view asks for many more per cell (decoration, check state,
# background...), which are turned away before any index is looked at.
_TOP_ROLES = frozenset(
    {
        Qt.ItemDataRole.DisplayRole,
        STATS_ROLE,
        Qt.ItemDataRole.ForegroundRole,
        Qt.ItemDataRole.FontRole,
        Qt.ItemDataRole.TextAlignmentRole,
        Qt.ItemDataRole.ToolTipRole,
    }
)
_ANSWERED = frozenset({int(role) for role in _TOP_ROLES} | _TOP_ROLES)


class TraceModel(QAbstractItemModel):
    """``repaint_interval``: least seconds between two repaints of changed rows (by ``clock``)."""

    def __init__(
        self,
        session: CaptureSession | WorkshopSession,
        repaint_interval: float = REPAINT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.session = session.capture if isinstance(session, WorkshopSession) else session
        self._ticks = 0
        self.repaint_interval = repaint_interval
        self._clock = clock
        self._repaint_due = -math.inf
        self._may_repaint: Callable[[], bool] = lambda: True  # asks the window's RedrawTurns (follow)
        self._child_ends: dict[tuple[str, int, bool], tuple[QModelIndex, QModelIndex]] = {}
        self._pending: set[MessageKey] = set()  # changed streams not repainted yet
        self._sweep_due = False
        self.last_repainted: Collection[int] = ()  # rows repainted by the latest refresh
        # The first and last rows on screen, as the view last told (None: all). A row scrolled
        # away is not repainted on ticks: the view paints it afresh when it comes back.
        self.shown_rows: tuple[int, int] | None = None
        self._rows: list[MessageStats] = []
        self._keys: list[tuple[str, int, bool]] = []  # row order: sorted by _sort_key
        self._sort: list[tuple[str, bool, int]] = []
        self._stable: dict[tuple[str, int, bool], int] = {}  # key -> number given when first seen
        self._by_stable: list[tuple[str, int, bool]] = []
        self._names: dict[tuple[str, int, bool], str | None] = {}
        # Signal names per message (fixed by the database) and their latest decoded values.
        self._signal_names: dict[tuple[str, int, bool], list[str]] = {}
        self._values: dict[tuple[str, int, bool], dict[str, SignalValue] | str] = {}
        self._italic = QFont()
        self._italic.setItalic(True)

    # -- structure --------------------------------------------------------------------------
    def index(self, row: int, column: int, parent: _Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        if parent.isValid():
            if parent.internalId() != 0:
                return QModelIndex()
            return self.createIndex(row, column, self._stable[self._keys[parent.row()]] + 1)
        if 0 <= row < len(self._rows):
            return self.createIndex(row, column, 0)
        return QModelIndex()

    def parent(self, child: _Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        if not child.isValid() or child.internalId() == 0:
            return QModelIndex()
        return self.createIndex(self._row_of(self._by_stable[child.internalId() - 1]), 0, 0)

    def sibling(self, row: int, column: int, idx: _Index) -> QModelIndex:
        # The tree view asks for siblings of every index it repaints: answered from the
        # internal id alone, rather than by Qt's default (parent(), then index() under it).
        if not idx.isValid():
            return QModelIndex()
        internal = idx.internalId()
        siblings = self._rows if internal == 0 else self._signals_of(self._by_stable[internal - 1])
        count = len(siblings)
        if 0 <= row < count and 0 <= column < len(COLUMNS):
            return self.createIndex(row, column, internal)
        return QModelIndex()

    def _row_of(self, key: tuple[str, int, bool]) -> int:
        return bisect.bisect_left(self._sort, (key[0], key[2], key[1]))

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt override
        if not parent.isValid():
            return len(self._rows)
        if parent.internalId() != 0 or parent.column() != 0:
            return 0
        return len(self._signals_of(self._keys[parent.row()]))

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt override
        return len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    # -- content ----------------------------------------------------------------------------
    def stats_at(self, row: int) -> MessageStats:
        return self._rows[row]

    def message_name(self, key: tuple[str, int, bool]) -> str | None:
        if key not in self._names:
            message = self.session.databases.lookup(*key)
            self._names[key] = None if message is None else message.name
        return self._names[key]

    def _signals_of(self, key: tuple[str, int, bool]) -> list[str]:
        names = self._signal_names.get(key)
        if names is None:
            message = self.session.databases.lookup(*key)
            names = [] if message is None else [s.name for s in message.signals]
            self._signal_names[key] = names
        return names

    def decoded(self, key: tuple[str, int, bool]) -> dict[str, SignalValue] | str:
        """Latest decoded values of a message (decoded once per tick, on demand), or an error text."""
        cached = self._values.get(key)
        if cached is not None:
            return cached
        message = self.session.databases.lookup(*key)
        stats = self.session.store.messages.get(key)
        if message is None or stats is None:
            return {}
        try:
            result: dict[str, SignalValue] | str = {v.name: v for v in decode_payload(message, stats.data)}
        except Exception as exc:
            result = f"cannot decode: {exc}"
        self._values[key] = result
        return result

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role not in _ANSWERED or not index.isValid():
            return None
        if index.internalId() != 0:
            return self._signal_data(index, role)
        s = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == COL_CHANNEL:
                return s.channel
            if col == COL_ID:
                return f"{s.arbitration_id:08X}" if s.is_extended else f"{s.arbitration_id:03X}"
            if col == COL_NAME:
                name = self.message_name(s.key)
                tx = "" if s.is_rx else "  [tx]"
                return (name or "(unknown id)") + tx
            if col == COL_COUNT:
                return f"{s.count:,}"
            if col == COL_RATE:
                return f"{s.rate(self.session.store.last_ts):.1f}"
            if col == COL_JITTER:
                return f"{s.jitter * 1000:.2f}"
            if col == COL_DLC:
                return str(s.dlc)
            if col == COL_DATA:
                return s.data.hex(" ").upper()
        elif role == STATS_ROLE:
            return s
        elif role == Qt.ItemDataRole.ForegroundRole and col == COL_NAME and self.message_name(s.key) is None:
            return QBrush(_UNKNOWN)
        elif role == Qt.ItemDataRole.FontRole and col == COL_NAME and self.message_name(s.key) is None:
            return self._italic
        elif role == Qt.ItemDataRole.TextAlignmentRole and col in (COL_COUNT, COL_RATE, COL_JITTER, COL_DLC):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        elif role == Qt.ItemDataRole.ToolTipRole and col == COL_NAME:
            return self._tooltip(s)
        return None

    def _signal_data(self, index: _Index, role: int) -> Any:
        key = self._by_stable[index.internalId() - 1]
        names = self._signals_of(key)
        if index.row() >= len(names):
            return None
        name = names[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            if index.column() == COL_NAME:
                return name
            if index.column() == COL_DATA:
                values = self.decoded(key)
                if isinstance(values, str):
                    return values
                value = values.get(name)
                return "—" if value is None else value.text()  # other multiplexer page
        if role == Qt.ItemDataRole.ForegroundRole and index.column() == COL_NAME:
            return QBrush(QColor("#5b7083"))
        return None

    def _tooltip(self, s: MessageStats) -> str:
        lines = [
            f"{s.count:,} frames, cycle {s.mean_interval * 1000:.1f} ms "
            f"(min {s.min_interval * 1000 if s.count > 1 else 0:.1f}, max {s.max_interval * 1000:.1f})",
        ]
        values = self.decoded(s.key)
        if isinstance(values, str):
            lines.append(values)
        return "\n".join(lines)

    # -- refresh ----------------------------------------------------------------------------
    def follow(self, workshop: WorkshopSession, turns: RedrawTurns | None = None) -> list[Subscription]:
        """Refresh on every tick (quiet ticks too: rates fall), repainting the streams it changed;
        with ``turns``, only in ticks where no other heavy view redraws (else a tick later)."""
        pending: set[MessageKey] = set()
        if turns is not None:
            self._may_repaint = lambda: turns.claim(self, workshop.ticks)

        def on_stats(_stats: object) -> None:
            self.refresh(frozenset(pending))
            pending.clear()

        # "changed" is published before "stats" in a tick.
        return [workshop.subscribe("changed", pending.update), workshop.subscribe("stats", on_stats)]

    def refresh(self, changed: Collection[MessageKey] | None = None) -> Collection[int]:
        """Pick up new streams and repaint rows (called once per tick); returns the rows repainted.

        ``changed``: the streams that took frames (None: repaint every row).
        """
        messages = self.session.store.messages
        # A cleared store (new source, Ctrl+L) may refill before this tick with the same keys in
        # new MessageStats objects: rows holding the old objects would freeze. The store only
        # ever drops all its streams at once, so the first row tells for every row (O(1)).
        if len(messages) < len(self._rows) or (
            self._rows and messages.get(self._keys[0]) is not self._rows[0]
        ):
            self.beginResetModel()
            self._rows, self._keys, self._sort = [], [], []
            self.endResetModel()
            changed = None
        if len(messages) > len(self._rows):
            for key in [k for k in messages if k not in self._stable or self._missing(k)]:
                self._insert(key, messages[key])
        self._ticks += 1
        if self._ticks % SWEEP_TICKS == 0:
            self._sweep_due = True
        if changed is not None:
            for key in changed:  # a cell painted for any reason shows the newest values
                self._values.pop(key, None)
            self._pending.update(changed)
            now = self._clock()
            if now < self._repaint_due or not self._may_repaint():
                self.last_repainted = ()  # held back: repainted with the next repaint
                return self.last_repainted
            # One repaint per interval on average, though ticks do not fall on its multiples.
            interval = self.repaint_interval
            self._repaint_due = max(self._repaint_due + interval, now + 0.75 * interval)
        if not self._rows:
            self.last_repainted = ()
        elif changed is None or self._sweep_due:
            # The MessageStats objects update in place, so only repaint.
            self._values.clear()
            first, last = (0, len(self._rows) - 1) if changed is None else self._shown()
            if first <= last:
                self.dataChanged.emit(self.index(first, COL_NAME), self.index(last, COL_DATA))
            self.last_repainted = range(first, last + 1)
            self._sweep_due = False
        else:
            first, last = self._shown()
            rows = sorted(
                row
                for k in self._pending
                if k in self._stable and not self._missing(k) and first <= (row := self._row_of(k)) <= last
            )
            self.last_repainted = rows
            self._repaint_runs(rows)
        self._pending.clear()
        return self.last_repainted

    def _shown(self) -> tuple[int, int]:
        """The rows a tick repaints: those the view shows (``shown_rows``), else every row."""
        last = len(self._rows) - 1
        if self.shown_rows is None:
            return 0, last
        return max(self.shown_rows[0], 0), min(self.shown_rows[1], last)

    def _repaint_runs(self, rows: list[int]) -> None:
        # One signal per run of adjacent rows: the view repaints the union of their rectangles.
        # Only the data column: counts, rates and jitter change with every frame too, but
        # cannot be read at this rate; the sweeps (every SWEEP_TICKS ticks) repaint them.
        start = 0
        for i in range(1, len(rows) + 1):
            if i == len(rows) or rows[i] != rows[i - 1] + 1:
                self.dataChanged.emit(self.index(rows[start], COL_DATA), self.index(rows[i - 1], COL_DATA))
                start = i

    def _missing(self, key: tuple[str, int, bool]) -> bool:
        row = self._row_of(key)
        return row >= len(self._keys) or self._keys[row] != key

    def _insert(self, key: tuple[str, int, bool], stats: MessageStats) -> None:
        if key not in self._stable:
            self._stable[key] = len(self._by_stable)
            self._by_stable.append(key)
        sort_key = (key[0], key[2], key[1])
        row = bisect.bisect_left(self._sort, sort_key)
        self.beginInsertRows(QModelIndex(), row, row)
        self._sort.insert(row, sort_key)
        self._keys.insert(row, key)
        self._rows.insert(row, stats)
        self.endInsertRows()

    def repaint_children(self, parent_row: int) -> None:
        """Repaint the signal rows of an expanded message."""
        # Called for every repainted row that is expanded: the ends of each message's signal
        # rows are made once (a signal row's index does not move when rows are inserted above:
        # its internal id names its message).
        key = self._keys[parent_row]
        ends = self._child_ends.get(key)
        if ends is None:
            parent = self.index(parent_row, 0)
            n = self.rowCount(parent)
            if not n:
                return
            ends = (self.index(0, COL_DATA, parent), self.index(n - 1, COL_DATA, parent))
            self._child_ends[key] = ends
        self.dataChanged.emit(*ends)

    def forget_databases(self) -> None:
        """Names and signal lists change when databases are added or removed."""
        self.beginResetModel()
        self._names.clear()
        self._signal_names.clear()
        self._values.clear()
        self._child_ends.clear()
        self.endResetModel()
