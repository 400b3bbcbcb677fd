"""The window's first look: default plots from the databases, docks sized to what they show.

On the first start there is no saved window state and no saved plot layout. The plots then
come from the loaded databases (``core.plot_layout.default_plot_signals``: the demo car's
engine speed, vehicle speed, coolant temperature and battery voltage) and the docks are sized
so that each shows its content: the signal tree many rows, the bit grid a whole frame, the
trace every message of the car, the plots the rest. Whatever the user leaves behind at exit
(plots, a layout of docks) is saved and wins over all of this on the next start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings, Qt

from workshop_app.core.plot_layout import PlotLayout, PlotLayoutError, default_plot_signals
from workshop_app.gui.plot_panel import PlotPanel

if TYPE_CHECKING:
    from workshop_app.gui.main_window import MainWindow

PLOTS_KEY = "plots/layout"  # the plot layout at exit, as the JSON a layout file holds

_LEFT_WIDTH = 300  # signal names and ids; the bit grid needs 242
_PLOT_SHARE = 110  # height one stacked plot is given on first start (its minimum is 90)
_TRACE_ROWS = (8, 16)
_FIRST_WINDOW_SECONDS = 10.0  # rows of messages the trace keeps room for, by database size


def save_plots(panel: PlotPanel, settings: QSettings) -> None:
    """Remember the plots at exit (an empty panel too: a user who wants none keeps none)."""
    settings.setValue(PLOTS_KEY, panel.plot_layout_state().to_json())


def restore_plots(panel: PlotPanel, settings: QSettings) -> str | None:
    """The saved plots, or on a first start the databases' default plots.

    Returns a line for the status bar when the saved layout could not be used (the defaults
    are shown instead), else None.
    """
    saved = settings.value(PLOTS_KEY)
    problem = None
    if isinstance(saved, str) and saved:
        try:
            layout = PlotLayout.from_json(saved, f"{settings.fileName()} [{PLOTS_KEY}]")
        except PlotLayoutError as exc:
            problem = f"Saved plots not restored: {exc}"
        else:
            panel.restore_plot_layout(layout, drop_missing=True)
            return None
    groups = default_plot_signals(panel.session.databases)
    for group in groups:
        index: int | None = None
        for message, signal in group:
            index = panel.add_signal(message, signal, index)
    if groups:
        # A short window: the first seconds of data are drawn across the plot at once, not
        # in a sliver at its left edge under the legends.
        panel.set_window(_FIRST_WINDOW_SECONDS)
    return problem


def size_docks(window: MainWindow) -> None:
    """Give each dock the room its content asks for, in the window's current size."""
    window.resizeDocks([window.signals_dock], [_LEFT_WIDTH], Qt.Orientation.Horizontal)
    bits_height = window.bit_view.sizeHint().height() + _title_height(window)
    left_height = window.height() - window.menuBar().sizeHint().height()
    window.resizeDocks(
        [window.bits_dock, window.signals_dock],
        [bits_height, max(left_height - bits_height, 200)],
        Qt.Orientation.Vertical,
    )
    window.resizeDocks([window.plots_dock], [_plots_height(window)], Qt.Orientation.Vertical)


def _title_height(window: MainWindow) -> int:
    return window.fontMetrics().height() + 10


def _plots_height(window: MainWindow) -> int:
    """What the stacked plots need, leaving the trace room for the car's messages."""
    available = (
        window.height() - window.menuBar().sizeHint().height() - window.statusBar().sizeHint().height()
    )
    messages = sum(len(loaded.db.messages) for loaded in window.session.databases.databases)
    rows = min(max(messages, _TRACE_ROWS[0]), _TRACE_ROWS[1])
    row_height = window.trace_view.fontMetrics().height() + 4
    # Filter box, tab bar, header and margins above and below the rows.
    trace_height = rows * row_height + 4 * (window.fontMetrics().height() + 10)
    panel = window.plot_panel
    toolbar = panel.add_plot_button.sizeHint().height() + _title_height(window)
    wanted = toolbar + max(panel.plot_count, 2) * _PLOT_SHARE + 40  # 40: the time axis
    return max(min(wanted, available - trace_height), 200)
