"""Colours of pyqtgraph plots taken from the Qt palette, shared by the live and the log plots."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette


def muted_colour(palette: QPalette, weight: float = 0.5) -> QColor:
    """The text colour blended into the background (opaque): ``weight`` 1 is the text colour.

    Opaque blends instead of transparency: semi-transparent grid lines cost ~10 fps.
    """
    text = palette.color(QPalette.ColorRole.Text)
    base = palette.color(QPalette.ColorRole.Base)
    return QColor(
        round(base.red() + (text.red() - base.red()) * weight),
        round(base.green() + (text.green() - base.green()) * weight),
        round(base.blue() + (text.blue() - base.blue()) * weight),
    )


def style_plot(item: pg.PlotItem, cursor: pg.InfiniteLine, palette: QPalette) -> None:
    """Axes, grid, legend and cursor of one plot in the palette's colours."""
    text = palette.color(QPalette.ColorRole.Text)
    base = palette.color(QPalette.ColorRole.Base)
    for name in ("left", "bottom"):
        axis = item.getAxis(name)
        axis.setPen(pg.mkPen(muted_colour(palette)))
        axis.setTickPen(pg.mkPen(muted_colour(palette, 0.13)))  # also the grid lines
        axis.setTextPen(pg.mkPen(text))
    legend = item.legend
    if legend is not None:
        legend.setLabelTextColor(text)
        for _, label in legend.items:  # existing labels only take the colour when re-rendered
            label.setAttr("color", text)
            label.setText(label.text)
        fill = QColor(base)
        fill.setAlpha(200)  # curves stay faintly visible behind the legend
        legend.setBrush(fill)
        legend.setPen(pg.mkPen(muted_colour(palette)))
    cursor.setPen(pg.mkPen(text, width=1, style=Qt.PenStyle.DashLine))
    cursor.setHoverPen(pg.mkPen(palette.color(QPalette.ColorRole.Highlight), width=2))
