"""The window's cloud parts: the Cloud menu, the Fleet dock and the status bar's link label.

Kept beside ``main_window.py`` so the window itself only creates this object, collects its
subscriptions to the workshop (:meth:`CloudControls.follow`) and stops it on close. The fleet watcher starts when the Fleet dock is first shown (the
window does not reach for a broker unless asked) and stops with the window.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QDockWidget, QFileDialog, QLabel

from workshop_app.core.cloud.errors import CloudError
from workshop_app.core.cloud.fleet import FleetWatcher
from workshop_app.core.cloud.profile import CloudProfile, default_workshop_profile
from workshop_app.core.history.errors import HistoryError
from workshop_app.core.session import CaptureStats
from workshop_app.core.sources.factory import SourceSpec
from workshop_app.core.workshop import Subscription, WorkshopSession
from workshop_app.gui.cloud_page import CLOUD_INTERFACE
from workshop_app.gui.fleet_panel import FleetPanel
from workshop_app.gui.link_status import cloud_link_status

if TYPE_CHECKING:
    from workshop_app.gui.main_window import MainWindow

_SETTING = "cloud/profile"
_PROFILE_FILTER = "Cloud profiles (*.json);;All files (*)"


class CloudControls(QObject):
    """Installs the Cloud menu, the Fleet dock and the link label into ``window``."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.fleet_panel = FleetPanel()
        self.fleet_panel.vehicle_activated.connect(self.connect_vehicle)
        self.fleet_dock = QDockWidget("Fleet", window)
        self.fleet_dock.setObjectName("FleetDock")  # saveState() needs names
        self.fleet_dock.setWidget(self.fleet_panel)
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.fleet_dock)
        window.tabifyDockWidget(window.dtc_dock, self.fleet_dock)
        self.fleet_dock.hide()
        # Tabifying made the Fault codes tab current; a first start opens on the plots (a saved
        # layout, restored after this, still wins).
        window.plots_dock.raise_()
        self.fleet_dock.visibilityChanged.connect(self._on_fleet_visible)

        menu = window.menuBar().addMenu("C&loud")
        fleet = menu.addAction("&Fleet overview")
        fleet.triggered.connect(self.show_fleet)
        vehicle = menu.addAction("Connect to cloud &vehicle…")
        vehicle.triggered.connect(self._on_connect_dialog)
        menu.addSeparator()
        choose = menu.addAction("Choose cloud &profile…")
        choose.triggered.connect(self._on_choose_profile)

        self.link_label = QLabel()
        self.link_label.setContentsMargins(8, 0, 8, 0)
        self.link_label.hide()
        window.statusBar().addPermanentWidget(self.link_label)

    # -- profile ------------------------------------------------------------------------------
    @property
    def profile_path(self) -> Path:
        """The profile last chosen in this window (settings), else the default location."""
        saved = self.window.settings.value(_SETTING)
        return Path(str(saved)) if saved else default_workshop_profile()

    def set_profile_path(self, path: Path) -> None:
        self.window.settings.setValue(_SETTING, str(path))

    def _on_choose_profile(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.window, "Cloud profile", str(self.profile_path.parent), _PROFILE_FILTER
        )
        if path:
            self.set_profile_path(Path(path))
            if self.fleet_panel.watcher is not None:
                self.start_fleet()

    # -- fleet ---------------------------------------------------------------------------------
    def show_fleet(self) -> None:
        self.fleet_dock.show()
        self.fleet_dock.raise_()
        if self.fleet_panel.watcher is None:
            self.start_fleet()

    def _on_fleet_visible(self, visible: bool) -> None:
        if visible and self.fleet_panel.watcher is None:
            self.start_fleet()

    def start_fleet(self) -> bool:
        """(Re)start the fleet watcher with the current profile; a problem shows in the panel."""
        self.stop()  # the previous watcher and its history connection
        path = self.profile_path
        try:
            profile = CloudProfile.load(path)
        except CloudError as exc:
            self.fleet_panel.set_watcher(None)
            self.fleet_panel.status_label.setText(
                f"{exc}. Cloud → Choose cloud profile… (workshop cloud broker --dir writes one for a trial)."
            )
            return False
        store = None
        if self.window.history is not None:
            from workshop_app.core.history.fleet_store import FleetStore

            try:
                store = FleetStore(self.window.history.path)
            except HistoryError as exc:
                self.window.statusBar().showMessage(f"Fleet summaries are not kept: {exc}", 15000)
        self.fleet_panel.set_watcher(FleetWatcher(profile, store))
        return self.fleet_panel.watcher is not None

    def vins(self) -> list[str]:
        return self.fleet_panel.vins()

    # -- connecting ---------------------------------------------------------------------------
    def spec_for(self, vin: str) -> SourceSpec:
        return SourceSpec(interface=CLOUD_INTERFACE, channel=vin, cloud_profile=self.profile_path)

    def connect_vehicle(self, vin: str) -> bool:
        """Connect the window to ``vin`` through the cloud link (the fleet's double-click)."""
        return self.window.connect_spec(self.spec_for(vin))

    def _on_connect_dialog(self) -> None:
        from workshop_app.gui.connect_dialog import PAGE_CLOUD

        self.window.show_connect_dialog(page=PAGE_CLOUD)

    # -- status bar ---------------------------------------------------------------------------
    def follow(self, workshop: WorkshopSession) -> list[Subscription]:
        """Show the cloud link's state and latency on every tick of ``workshop``."""
        return [workshop.subscribe("stats", self._on_stats)]

    def _on_stats(self, _stats: CaptureStats) -> None:
        self.update_status()

    def update_status(self) -> None:
        """The cloud link's state and latency, hidden for other sources (on every tick)."""
        status = cloud_link_status(self.window.session.source)
        if status is None:
            self.link_label.hide()
            return
        text, colour = status
        self.link_label.setText(text)
        self.link_label.setStyleSheet(f"color: {colour}" if colour else "")
        state = getattr(self.window.session.source.bus, "link_state", None)
        self.link_label.setToolTip(f"Cloud link: {state}" if isinstance(state, str) else "")
        self.link_label.show()

    def stop(self) -> None:
        """Stop the fleet watcher (joins paho's thread); the window calls it when closing."""
        store = self.fleet_panel.watcher.store if self.fleet_panel.watcher is not None else None
        self.fleet_panel.stop()
        if store is not None:
            store.close()
