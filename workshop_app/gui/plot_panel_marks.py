"""The plot panel's cursor and event lines: the values read at a time, the moments marked.

``PlotPanel`` supplies what is declared here (its stack of lanes, time origin, buttons and the
``cursor_moved`` signal); times are seconds since the panel's first frame unless said otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workshop_app.gui.plot_canvas import MarkLine, PlotStack
from workshop_app.gui.plot_items import Curve, Lane

if TYPE_CHECKING:
    from PySide6.QtCore import SignalInstance
    from PySide6.QtWidgets import QLabel, QToolButton


class PlotMarksMixin:
    """Cursor readouts and event markers of a ``PlotPanel``."""

    if TYPE_CHECKING:
        _stack: PlotStack
        _plots: list[Lane]
        _t0: float | None
        _markers: list[tuple[float, str, str]]
        cursor_button: QToolButton
        cursor_label: QLabel
        cursor_moved: SignalInstance

        def x_range(self) -> tuple[float, float]: ...
        @staticmethod
        def _curves(plot: Lane) -> list[Curve]: ...

    def add_event_marker(self, timestamp: float, text: str, colour: str = "#d1242f") -> None:
        """A labelled vertical line at ``timestamp`` (absolute, like frame times) on every plot,
        e.g. a fault code seen by a scan; kept for plots added later."""
        self._markers.append((timestamp, text, colour))
        self._draw_markers()

    @property
    def event_markers(self) -> list[tuple[float, str]]:
        return [(t, text) for t, text, _ in self._markers]

    def _draw_markers(self) -> None:
        # Drawn once the time origin is known (refresh).
        t0 = self._t0
        self._stack.set_marks(
            [] if t0 is None else [MarkLine(t - t0, text, c) for t, text, c in self._markers]
        )

    def cursor_time(self) -> float | None:
        return self._stack.cursor

    def set_cursor(self, t: float | None) -> None:
        """Show the cursor at ``t`` seconds (None hides it); the legends then show values there."""
        self._stack.set_cursor(t)
        self.cursor_button.blockSignals(True)
        self.cursor_button.setChecked(t is not None)
        self.cursor_button.blockSignals(False)
        self._update_readouts()
        if t is not None:
            self.cursor_moved.emit(float(t))

    def cursor_values(self) -> dict[tuple[str, str], float | None]:
        """Each curve's value at the cursor (the last sample at or before it); {} without a cursor."""
        t = self._stack.cursor
        if t is None:
            return {}
        return {(c.message, c.signal): c.value_at(t) for plot in self._plots for c in self._curves(plot)}

    def legend_texts(self, plot_index: int) -> list[str]:
        """The legend lines of a plot as shown (name, unit and the value at the cursor)."""
        legend = self._plots[plot_index].item.legend
        return [label.text for _, label in legend.items] if legend is not None else []

    def _update_readouts(self) -> None:
        self._stack.update_readouts()
        t = self._stack.cursor
        self.cursor_label.setText("" if t is None else f"t = {t:.3f} s")

    def _on_cursor_toggled(self, checked: bool) -> None:
        if not checked:
            self.set_cursor(None)
            return
        lo, hi = self.x_range()
        self.set_cursor((lo + hi) / 2)

    def _on_plot_clicked(self, t: float) -> None:
        # A left click in a plot moves a shown cursor there.
        if self._stack.cursor is not None:
            self.set_cursor(t)
