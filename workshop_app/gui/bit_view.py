"""BitView: which bits of the selected message change, and how often (a heat map per bit)."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import QWidget

from workshop_app.core.capture.store import FrameStore, MessageStats

CELL = 26


class BitView(QWidget):
    """Rows are bytes, columns bits 7..0; colour = flips relative to the busiest bit, text = bit value.

    Bits that never changed stay neutral, so counters, flags and constant fields stand out —
    the reverse engineer's first look at an unknown id.

    Given the store the statistics come from, the view forgets its message as soon as the store
    no longer holds that very object: a new source or a cleared trace starts with no selection
    instead of showing the previous source's bits.
    """

    def __init__(self, store: FrameStore | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._stats: MessageStats | None = None
        self.setMinimumSize(self.sizeHint())

    @property
    def stats(self) -> MessageStats | None:
        """The shown message's statistics; None when nothing is selected or the store moved on."""
        s = self._stats
        if s is not None and self._store is not None and self._store.messages.get(s.key) is not s:
            self._stats = s = None
            self.updateGeometry()
        return s

    def sizeHint(self) -> QSize:
        rows = max(8, len(self.stats.data) if self.stats else 8)
        return QSize(CELL * 9 + 8, CELL * (rows + 1) + 8)

    def set_message(self, stats: MessageStats | None) -> None:
        self._stats = stats
        self.updateGeometry()
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        pal = self.palette()
        text = pal.text().color()
        p.setPen(text)
        for bit in range(8):
            p.drawText(QRectF(CELL * (bit + 1), 0, CELL, CELL), Qt.AlignmentFlag.AlignCenter, str(7 - bit))
        s = self.stats
        if s is None or not s.data:
            p.drawText(QRectF(0, CELL, self.width(), CELL), Qt.AlignmentFlag.AlignLeft, "  Select a message")
            return
        busiest = max(s.bit_flips) if s.bit_flips else 0
        value = int.from_bytes(s.data, "little")
        neutral = pal.base().color()
        for byte in range(len(s.data)):
            y = CELL * (byte + 1)
            p.setPen(text)
            p.drawText(QRectF(0, y, CELL, CELL), Qt.AlignmentFlag.AlignCenter, str(byte))
            for col in range(8):
                bit = byte * 8 + (7 - col)
                flips = s.bit_flips[bit] if bit < len(s.bit_flips) else 0
                rect = QRectF(CELL * (col + 1) + 1, y + 1, CELL - 2, CELL - 2)
                if flips and busiest:
                    heat = flips / busiest
                    colour = QColor.fromHsvF(0.6 - 0.6 * heat, 0.45, 1.0)  # light enough for dark digits
                else:
                    colour = neutral
                p.fillRect(rect, colour)
                if s.changed_mask >> bit & 1:
                    p.setPen(QColor("#d1242f"))
                    p.drawRect(rect.adjusted(0, 0, -1, -1))
                p.setPen(QColor("#1b1f23") if flips else text)
                p.drawText(rect, Qt.AlignmentFlag.AlignCenter, str(value >> bit & 1))
        p.end()
