"""The plot panel's layouts: its plots, signals, colours, y ranges and time window as a file.

A :class:`~workshop_app.core.plot_layout.PlotLayout` is the Qt-free form (``core/plot_layout.py``
reads and writes the JSON); this mixin turns the panel's lanes into one and back, and offers
the Layout button's Save/Load dialogs. ``PlotPanel`` supplies what is declared here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from workshop_app.core.errors import WorkshopError
from workshop_app.core.plot_layout import PlotLayout, PlotSpec, PlotTrace

if TYPE_CHECKING:
    from workshop_app.gui.plot_items import Lane

_FILTER = "Plot layouts (*.json)"


class PlotLayoutsMixin:
    """Save and restore the plots of a ``PlotPanel`` (a QWidget: the dialogs' parent)."""

    if TYPE_CHECKING:
        _plots: list[Lane]
        _window: float | None

        def clear(self) -> None: ...
        def add_plot(self) -> int: ...
        def remove_plot(self, index: int) -> None: ...
        def add_signal(
            self, message: str, signal: str, plot_index: int | None = None, colour: str | None = None
        ) -> int: ...
        def set_window(self, seconds: float | None) -> None: ...

    def plot_layout_state(self) -> PlotLayout:
        """The plots, their signals and colours, fixed y ranges and the time window."""
        specs = []
        for plot in self._plots:
            view = plot.item.getViewBox()
            y_range = None
            if not view.autoRangeEnabled()[1]:
                lo, hi = view.viewRange()[1]
                y_range = (float(lo), float(hi))
            traces = tuple(PlotTrace(c.message, c.signal, c.colour) for c in plot.curves)
            specs.append(PlotSpec(traces, y_range))
        return PlotLayout(tuple(specs), self._window)

    def restore_plot_layout(self, layout: PlotLayout, *, drop_missing: bool = False) -> list[str]:
        """Replace the plots with ``layout``; returns "message.signal" of traces not in the databases.

        ``drop_missing`` leaves out a plot none of whose signals the databases know (a layout
        remembered from another car), rather than showing it empty.
        """
        self.clear()
        missing: list[str] = []
        for spec in layout.plots:
            index = self.add_plot()
            for trace in spec.traces:
                try:
                    self.add_signal(trace.message, trace.signal, index, trace.colour)
                except KeyError:
                    missing.append(f"{trace.message}.{trace.signal}")
            if drop_missing and spec.traces and not self._plots[index].curves:
                self.remove_plot(index)
                continue
            if spec.y_range is not None:
                self._plots[index].item.getViewBox().setYRange(*spec.y_range, padding=0)
        self.set_window(layout.window_seconds)
        return missing

    def save_layout(self, path: str | Path) -> None:
        self.plot_layout_state().save(path)

    def load_layout(self, path: str | Path) -> list[str]:
        """Load a layout file (``PlotLayoutError`` naming the file if it is unusable)."""
        return self.restore_plot_layout(PlotLayout.load(path))

    def _dialog_parent(self) -> QWidget | None:
        return self if isinstance(self, QWidget) else None

    def _on_save_layout_chosen(self) -> None:
        parent = self._dialog_parent()
        path, _ = QFileDialog.getSaveFileName(parent, "Save plot layout", "", _FILTER)
        if not path:
            return
        try:
            self.save_layout(path)
        except WorkshopError as exc:
            QMessageBox.warning(parent, "Save plot layout", str(exc))

    def _on_load_layout_chosen(self) -> None:
        parent = self._dialog_parent()
        path, _ = QFileDialog.getOpenFileName(parent, "Load plot layout", "", _FILTER)
        if not path:
            return
        try:
            missing = self.load_layout(path)
        except WorkshopError as exc:
            QMessageBox.warning(parent, "Load plot layout", str(exc))
            return
        if missing:
            QMessageBox.information(
                parent, "Load plot layout", "Not in the loaded databases:\n" + "\n".join(missing)
            )
