"""The Connect dialog's "Cloud vehicle" page: a car reached through the workshop's MQTT broker.

The user picks the workshop's cloud profile (default ``$WORKSHOP_HOME/cloud/workshop.json``)
and the vehicle's VIN, typed or chosen from the fleet list. Connecting opens python-can's
``workshop-cloud`` interface with the VIN as channel (docs/cloud.md); nothing here touches
the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from workshop_app.core.cloud import topics
from workshop_app.core.cloud.profile import default_workshop_profile
from workshop_app.core.sources.factory import SourceSpec

CLOUD_INTERFACE = "workshop-cloud"
_PROFILE_FILTER = "Cloud profiles (*.json);;All files (*)"


class CloudVehicleForm(QWidget):
    """Profile file and VIN; :meth:`spec` gives the source, :meth:`problem` what is missing."""

    def __init__(
        self, vins: Sequence[str] = (), profile: Path | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.profile_edit = QLineEdit(str(profile or default_workshop_profile()))
        self.profile_edit.setToolTip("The workshop's cloud profile: broker, certificate and key (JSON)")
        self.profile_edit.setCursorPosition(0)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse)
        row = QHBoxLayout()
        row.addWidget(self.profile_edit, 1)
        row.addWidget(browse)

        self.vin_combo = QComboBox()
        self.vin_combo.setEditable(True)  # any VIN the workshop is granted, listed or not
        self.vin_combo.setMinimumContentsLength(17)
        self.vin_combo.lineEdit().setPlaceholderText("17-character VIN")
        self.set_vins(vins)

        self.hint = QLabel("Cloud → Fleet overview lists the vehicles this workshop may see.")
        self.hint.setWordWrap(True)
        self.hint.setVisible(not vins)

        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Profile:", row)
        form.addRow("Vehicle (VIN):", self.vin_combo)
        form.addRow("", self.hint)

    def set_vins(self, vins: Sequence[str]) -> None:
        """Offer these VINs (the fleet table's order), keeping what was typed."""
        typed = self.vin_combo.currentText()
        self.vin_combo.clear()
        self.vin_combo.addItems(list(vins))
        self.vin_combo.setCurrentText(typed or (vins[0] if vins else ""))

    def set_vin(self, vin: str) -> None:
        self.vin_combo.setCurrentText(vin)

    @property
    def vin(self) -> str:
        return self.vin_combo.currentText().strip().upper()

    @property
    def profile(self) -> Path:
        return Path(self.profile_edit.text().strip()).expanduser()

    def spec(self) -> SourceSpec:
        return SourceSpec(interface=CLOUD_INTERFACE, channel=self.vin, cloud_profile=self.profile)

    def problem(self) -> str | None:
        """Why Connect cannot go ahead, in plain words; None when it can."""
        if not self.profile_edit.text().strip():
            return "Choose the workshop's cloud profile (workshop cloud broker --dir writes one for a trial)."
        if not self.profile.is_file():
            return f"There is no cloud profile {self.profile}."
        if not self.vin:
            return "Enter the vehicle's VIN or pick it from the fleet list."
        try:
            topics.check_vin(self.vin)
        except topics.TopicError as exc:
            return f"{exc}."
        return None

    def _on_browse(self) -> None:
        start = str(self.profile.parent if self.profile.parent.is_dir() else Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Cloud profile", start, _PROFILE_FILTER)
        if path:
            self.profile_edit.setText(path)
