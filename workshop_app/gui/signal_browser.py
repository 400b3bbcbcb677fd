"""SignalBrowser: the loaded databases as a searchable tree of messages and signals.

Signals are dragged from here onto a PlotPanel (MIME type ``application/x-workshop-signal``,
payload ``message\\tsignal`` in UTF-8) or double-clicked, which emits ``signal_activated``.
Following a workshop (:meth:`SignalBrowser.follow`), the tree is rebuilt on the first tick after
its databases changed, whoever changed them; the window also calls :meth:`~SignalBrowser.reload`
right after it loads a database, so the tree does not wait for a tick then.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import (
    QMimeData,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLineEdit, QTreeView, QVBoxLayout, QWidget

from workshop_app.core.decode.database import DatabaseSet, LoadedDatabase
from workshop_app.core.session import CaptureStats
from workshop_app.core.workshop import Subscription, WorkshopSession

if TYPE_CHECKING:
    from cantools.database.can import Message
    from cantools.database.can import Signal as DbcSignal

SIGNAL_MIME_TYPE = "application/x-workshop-signal"

COLUMNS = ("Name", "ID", "Unit", "Range", "Factor, offset", "Details")
_SEARCH_ROLE = Qt.ItemDataRole.UserRole + 1  # lower-case text the search box matches against
_SIGNAL_ROLE = Qt.ItemDataRole.UserRole + 2  # (message name, signal name) on signal rows only
_VALUE_TABLE_PREVIEW = 6  # value-table entries spelled out in the Details column
_Index = QModelIndex | QPersistentModelIndex


def encode_signal_mime(message: str, signal: str) -> QMimeData:
    """The drag payload for one signal, as PlotPanel accepts it."""
    mime = QMimeData()
    mime.setData(SIGNAL_MIME_TYPE, f"{message}\t{signal}".encode())
    return mime


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.10g}"


class _SignalTreeModel(QStandardItemModel):
    """Items of the tree; only signal rows can be dragged, and they drag as our MIME type."""

    def mimeTypes(self) -> list[str]:
        return [SIGNAL_MIME_TYPE]

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:
        for index in indexes:
            names = index.siblingAtColumn(0).data(_SIGNAL_ROLE)
            if names is not None:
                return encode_signal_mime(*names)
        return QMimeData()

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction


class _SearchProxy(QSortFilterProxyModel):
    """Keeps rows that match, their ancestors (recursive filtering) and their descendants."""

    def __init__(self) -> None:
        super().__init__()
        self.setRecursiveFilteringEnabled(True)
        self._needle = ""

    @property
    def filter_active(self) -> bool:
        return bool(self._needle)

    def set_needle(self, text: str) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt >= 6.9; invalidateFilter is deprecated there
            self.beginFilterChange()
            self._needle = text.strip().lower()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self._needle = text.strip().lower()
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: _Index) -> bool:
        if not self._needle:
            return True
        model = self.sourceModel()
        index = model.index(source_row, 0, source_parent)
        # A matching message keeps all of its signals visible, so walk up as well.
        while index.isValid():
            if self._needle in (index.data(_SEARCH_ROLE) or ""):
                return True
            index = index.parent()
        return False


class SignalBrowser(QWidget):
    """Tree of database → message → signal over a DatabaseSet, with a search box."""

    signal_activated = Signal(str, str)  # message name, signal name (double-click on a signal)

    def __init__(self, databases: DatabaseSet, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.databases = databases
        self._shown: list[LoadedDatabase] = []  # the databases the tree was built from

        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search message, signal, id, unit or comment")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.textChanged.connect(self._on_search_changed)

        self.model = _SignalTreeModel(self)
        self.proxy = _SearchProxy()
        self.proxy.setParent(self)
        self.proxy.setSourceModel(self.model)

        self.tree = QTreeView()
        self.tree.setModel(self.proxy)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.tree.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.tree.doubleClicked.connect(self._on_double_clicked)
        header = self.tree.header()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)

        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(4)
        box.addWidget(self.search_edit)
        box.addWidget(self.tree)

        self.reload()

    # --- public API ------------------------------------------------------------------------

    def follow(self, workshop: WorkshopSession) -> list[Subscription]:
        """Rebuild the tree on the first tick of ``workshop`` after its databases changed."""
        return [workshop.subscribe("stats", self._on_stats)]

    def _on_stats(self, _stats: CaptureStats) -> None:
        # Adding or removing a database replaces the set's entries: one identity comparison a tick.
        if list(map(id, self.databases.databases)) != list(map(id, self._shown)):
            self.reload()

    def reload(self) -> None:
        """Rebuild the tree from the DatabaseSet (call after databases were added or removed)."""
        self._shown = self.databases.databases
        self.model.clear()
        self.model.setHorizontalHeaderLabels(list(COLUMNS))
        root = self.model.invisibleRootItem()
        for loaded in self._shown:
            root.appendRow(self._database_row(loaded))
        self._apply_expansion()
        for column, width in enumerate((180, 80, 60, 110, 90)):
            self.tree.header().resizeSection(column, width)
        # Names and ids as wide as the shown rows need (a 29-bit id is ten characters); the
        # fixed widths above stay the floor for an empty tree.
        for column in (0, 1):
            width = max(self.tree.sizeHintForColumn(column), self.tree.header().sectionSize(column))
            self.tree.header().resizeSection(column, width)

    def set_search_text(self, text: str) -> None:
        self.search_edit.setText(text)

    def visible_signals(self) -> list[tuple[str, str]]:
        """(message, signal) of every signal row the search currently shows, top to bottom."""
        return [names for names, _ in self._visible_signal_rows()]

    def index_of_signal(self, message: str, signal: str) -> QModelIndex:
        """The view (proxy) index of a signal row, invalid if the search hides it or it is unknown."""
        for names, index in self._visible_signal_rows():
            if names == (message, signal):
                return index
        return QModelIndex()

    def _visible_signal_rows(self) -> Iterator[tuple[tuple[str, str], QModelIndex]]:
        stack = [QModelIndex()]
        while stack:
            parent = stack.pop()
            # reversed, so rows come off the stack top to bottom
            for row in reversed(range(self.proxy.rowCount(parent))):
                stack.append(self.proxy.index(row, 0, parent))
            if parent.isValid():
                names = parent.data(_SIGNAL_ROLE)
                if names is not None:
                    yield tuple(names), parent

    # --- building rows -----------------------------------------------------------------------

    def _database_row(self, loaded: LoadedDatabase) -> list[QStandardItem]:
        where = f"channel {loaded.channel}" if loaded.channel is not None else "all channels"
        name = self._item(loaded.path.name, search=loaded.path.name.lower(), tooltip=str(loaded.path))
        details = self._item(f"{loaded.message_count} messages · {where}")
        for message in sorted(loaded.db.messages, key=lambda m: m.name):
            name.appendRow(self._message_row(message))
        return [name, self._item(""), self._item(""), self._item(""), self._item(""), details]

    def _message_row(self, message: Message) -> list[QStandardItem]:
        width = 8 if message.is_extended_frame else 3
        ident = f"0x{message.frame_id:0{width}X}"
        comment = message.comment or ""
        search = " ".join((message.name, ident, comment)).lower()
        parts = [f"{message.length} B"]
        if message.cycle_time:
            parts.append(f"{message.cycle_time} ms")
        if message.is_fd:
            parts.append("FD")
        if message.senders:
            parts.append("from " + ", ".join(message.senders))
        name = self._item(message.name, search=search, tooltip=comment)
        for signal in message.signals:
            name.appendRow(self._signal_row(message, signal))
        return [
            name,
            self._item(ident),
            self._item(""),
            self._item(""),
            self._item(""),
            self._item(" · ".join(parts)),
        ]

    def _signal_row(self, message: Message, signal: DbcSignal) -> list[QStandardItem]:
        unit = signal.unit or ""
        comment = signal.comment or ""
        choices = [(int(raw), str(label)) for raw, label in (signal.choices or {}).items()]
        choices.sort()
        tooltip_lines = [comment] if comment else []
        if choices:
            tooltip_lines.append("Values: " + ", ".join(f"{raw} = {label}" for raw, label in choices))
        search = " ".join((signal.name, unit, comment)).lower()
        name = self._item(signal.name, search=search, tooltip="\n".join(tooltip_lines))
        name.setData((message.name, signal.name), _SIGNAL_ROLE)
        name.setFlags(name.flags() | Qt.ItemFlag.ItemIsDragEnabled)
        span = ""
        if signal.minimum is not None or signal.maximum is not None:
            span = f"{_number(signal.minimum)} .. {_number(signal.maximum)}"
        details = []
        if signal.is_multiplexer:
            details.append("multiplexer")
        elif signal.multiplexer_ids:
            details.append("mux " + ",".join(str(i) for i in signal.multiplexer_ids))
        if choices:
            shown = ", ".join(f"{raw}={label}" for raw, label in choices[:_VALUE_TABLE_PREVIEW])
            details.append(shown + (" …" if len(choices) > _VALUE_TABLE_PREVIEW else ""))
        elif comment:
            details.append(comment)
        row = [
            name,
            self._item(""),
            self._item(unit),
            self._item(span),
            self._item(f"{_number(signal.scale)}, {_number(signal.offset)}"),
            self._item(" · ".join(details), tooltip="\n".join(tooltip_lines)),
        ]
        for item in row[1:]:
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsDragEnabled)
        return row

    @staticmethod
    def _item(text: str, *, search: str | None = None, tooltip: str = "") -> QStandardItem:
        item = QStandardItem(text)
        item.setEditable(False)
        # Only signal rows drag; their items get the flag back in _signal_row.
        item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsDragEnabled & ~Qt.ItemFlag.ItemIsDropEnabled)
        if search is not None:
            item.setData(search, _SEARCH_ROLE)
        if tooltip:
            item.setToolTip(tooltip)
        return item

    # --- events ------------------------------------------------------------------------------

    def _on_search_changed(self, text: str) -> None:
        self.proxy.set_needle(text)
        self._apply_expansion()

    def _apply_expansion(self) -> None:
        if self.proxy.filter_active:
            self.tree.expandAll()  # every shown row is a match or leads to one
            return
        self.tree.collapseAll()
        for row in range(self.proxy.rowCount()):
            self.tree.expand(self.proxy.index(row, 0))

    def _on_double_clicked(self, index: QModelIndex) -> None:
        names = index.siblingAtColumn(0).data(_SIGNAL_ROLE)
        if names is not None:
            self.signal_activated.emit(*names)
