"""Paints a message's payload byte by byte, recently changed bytes highlighted and fading.

The trace repaints its data column several times a second for every visible row, so the
painting is kept to a few Qt calls per cell: one highlight rectangle per fading byte and one
text run for the whole payload (a fixed-width font puts each byte in its own cell).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, Qt
from PySide6.QtGui import QColor, QFontDatabase, QFontMetrics, QPainter
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from workshop_app.core.capture.store import MessageStats
from workshop_app.gui.trace_model import STATS_ROLE

FADE_SECONDS = 2.0
PEAK_ALPHA = 0.85  # a byte that just changed: strong, but the digits stay readable
FADE_STEPS = 32  # highlight shades: finer steps would not be seen at a few repaints a second


def fade_alpha(age: float) -> float:
    """Highlight opacity of a byte that changed ``age`` seconds ago, always within 0..PEAK_ALPHA.

    The age comes from two clocks that can disagree: the store's newest frame time and the
    time a byte changed. A switch of source (live car to a log) or a log merged out of time
    order makes it negative or huge; QColor rejects any alpha outside 0..1 with a warning per
    painted byte, so the value is clamped here, where it is computed.
    """
    if age <= 0.0:  # "changed in the future": the store's clock is behind; show it as fresh
        return PEAK_ALPHA
    return PEAK_ALPHA * max(0.0, 1.0 - age / FADE_SECONDS)


class PayloadDelegate(QStyledItemDelegate):
    """Highlights each byte by how recently it changed (in the capture's own clock)."""

    def __init__(self, now_fn: Callable[[], float], highlight: QColor | None = None) -> None:
        super().__init__()
        self._now = now_fn
        self._font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        metrics = QFontMetrics(self._font)
        self._cell = metrics.horizontalAdvance("00 ")
        self._mark_width = self._cell - metrics.horizontalAdvance(" ") + 2
        self._shades: list[QColor] = []
        self.highlight = highlight or QColor(255, 170, 0)

    @property
    def highlight(self) -> QColor:
        return self._highlight

    @highlight.setter
    def highlight(self, colour: QColor) -> None:
        # One QColor per shade, made once: a paint only picks them.
        self._highlight = QColor(colour)
        self._shades = []
        for step in range(FADE_STEPS + 1):
            shade = QColor(colour)
            shade.setAlphaF(PEAK_ALPHA * step / FADE_STEPS)
            self._shades.append(shade)

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        stats = index.data(STATS_ROLE)
        if not isinstance(stats, MessageStats) or not stats.data:
            super().paint(painter, option, index)
            return
        widget = option.widget
        style = widget.style() if widget is not None else None
        if style is not None:
            # Background, selection and focus as the style draws them. The view's option
            # already carries state, palette and alternation; the cell's own text (the
            # model's hex string) is not wanted here, so initStyleOption is not asked for it.
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, option, painter, widget)
        data = stats.data
        rect: QRect = option.rect
        cell = self._cell
        left, top, height = rect.left() + 4, rect.top(), rect.height()
        shown = max(0, min(len(data), (rect.right() - left) // cell))  # whole cells that fit
        painter.save()
        if stats.count > 1:
            changed_at = stats.byte_changed_at  # folds pending changes: read once per paint
            now = self._now()
            shades = self._shades
            for i in range(min(shown, len(changed_at))):
                age = now - changed_at[i]
                if age < FADE_SECONDS:
                    step = round(fade_alpha(age) / PEAK_ALPHA * FADE_STEPS)
                    if step:
                        painter.fillRect(
                            QRect(left + i * cell - 1, top + 2, self._mark_width, height - 4), shades[step]
                        )
        painter.setFont(self._font)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        palette = option.palette
        painter.setPen(palette.highlightedText().color() if selected else palette.text().color())
        text = data[:shown].hex(" ").upper()
        if shown < len(data):
            text = f"{text} …" if text else "…"
        painter.drawText(
            QRect(left, top, rect.right() - left + 1, height),
            Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
            text,
        )
        painter.restore()
