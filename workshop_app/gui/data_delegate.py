"""Paints a message's payload byte by byte, recently changed bytes highlighted and fading."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, Qt
from PySide6.QtGui import QColor, QFontDatabase, QPainter
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from workshop_app.core.capture.store import MessageStats
from workshop_app.gui.trace_model import STATS_ROLE

FADE_SECONDS = 2.0
PEAK_ALPHA = 0.85  # a byte that just changed: strong, but the digits stay readable


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

    def __init__(self, now_fn, highlight: QColor | None = None) -> None:  # noqa: ANN001 - Callable[[], float]
        super().__init__()
        self._now = now_fn
        self.highlight = highlight or QColor(255, 170, 0)
        self._font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        stats = index.data(STATS_ROLE)
        if not isinstance(stats, MessageStats) or not stats.data:
            super().paint(painter, option, index)
            return
        style = option.widget.style() if option.widget is not None else None
        if style is not None:  # background, selection and focus as the style draws them
            opt = QStyleOptionViewItem(option)
            self.initStyleOption(opt, index)
            opt.text = ""
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, option.widget)
        painter.save()
        painter.setFont(self._font)
        metrics = painter.fontMetrics()
        cell = metrics.horizontalAdvance("00 ")
        now = self._now()
        rect: QRect = option.rect
        x = rect.left() + 4
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        text_colour = option.palette.highlightedText().color() if selected else option.palette.text().color()
        for i, byte in enumerate(stats.data):
            if x + cell > rect.right():
                painter.setPen(text_colour)
                painter.drawText(
                    QRect(x, rect.top(), cell, rect.height()), Qt.AlignmentFlag.AlignVCenter, "…"
                )
                break
            age = now - stats.byte_changed_at[i] if i < len(stats.byte_changed_at) else FADE_SECONDS
            if stats.count > 1 and age < FADE_SECONDS:
                colour = QColor(self.highlight)
                colour.setAlphaF(fade_alpha(age))
                painter.fillRect(
                    QRect(
                        x - 1, rect.top() + 2, cell - metrics.horizontalAdvance(" ") + 2, rect.height() - 4
                    ),
                    colour,
                )
            painter.setPen(text_colour)
            painter.drawText(
                QRect(x, rect.top(), cell, rect.height()), Qt.AlignmentFlag.AlignVCenter, f"{byte:02X}"
            )
            x += cell
        painter.restore()
