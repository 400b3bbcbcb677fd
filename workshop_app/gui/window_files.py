"""The main window's files: recent logs and databases (menus kept in the settings), and the
File menu's open/add/save dialogs. A mixin of ``MainWindow``; the dialogs call its methods.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QMenu, QWidget

from workshop_app.core.errors import WorkshopError

if TYPE_CHECKING:
    from workshop_app.gui.plot_panel import PlotPanel

MAX_RECENT = 8
LOG_FILTER = "CAN logs (*.blf *.asc *.log *.trc *.csv *.db *.mf4 *.gz);;All files (*)"
DB_FILTER = "Signal databases (*.dbc *.kcd *.sym *.arxml);;All files (*)"


class WindowFilesMixin:
    """Recent files and the File menu's dialogs; ``MainWindow`` supplies what is declared here."""

    def _parent_widget(self) -> QWidget | None:
        return self if isinstance(self, QWidget) else None

    if TYPE_CHECKING:
        settings: QSettings
        recent_logs_menu: QMenu
        recent_dbs_menu: QMenu
        plot_panel: PlotPanel

        def open_log(self, path: Path) -> None: ...
        def add_database(self, path: Path, channel: str | None = None) -> None: ...
        def _show_error(self, title: str, text: str) -> None: ...

    def recent(self, kind: str) -> list[str]:
        value = self.settings.value(f"recent/{kind}", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def _remember(self, kind: str, path: Path) -> None:
        items = [str(path)] + [p for p in self.recent(kind) if p != str(path)]
        self.settings.setValue(f"recent/{kind}", items[:MAX_RECENT])
        self._refresh_recent_menus()

    def _refresh_recent_menus(self) -> None:
        for menu, kind, slot in (
            (self.recent_logs_menu, "logs", self.open_log),
            (self.recent_dbs_menu, "databases", self.add_database),
        ):
            menu.clear()
            paths = self.recent(kind)
            for p in paths:
                menu.addAction(p, lambda checked=False, p=p, slot=slot: slot(Path(p)))
            menu.setEnabled(bool(paths))

    # -- file dialogs -------------------------------------------------------------------------
    def _on_open_log(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self._parent_widget(), "Open log", "", LOG_FILTER)
        if path:
            self.open_log(Path(path))

    def _on_add_database(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self._parent_widget(), "Add signal database", "", DB_FILTER)
        if path:
            self.add_database(Path(path))

    def _on_save_plot_layout(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self._parent_widget(), "Save plot layout", "plots.json", "Plot layouts (*.json)"
        )
        if path:
            try:
                self.plot_panel.save_layout(Path(path))
            except (OSError, WorkshopError) as exc:
                self._show_error("Could not save the plot layout", str(exc))

    def _on_load_plot_layout(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self._parent_widget(), "Load plot layout", "", "Plot layouts (*.json)"
        )
        if path:
            try:
                self.plot_panel.load_layout(Path(path))
            except (OSError, WorkshopError) as exc:
                self._show_error("Could not load the plot layout", str(exc))
