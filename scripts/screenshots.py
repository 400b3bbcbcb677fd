"""Render the README's screenshots of the window on the simulated vehicle into docs/.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.logs.analysis import markers_path
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.gui.app import make_app
from workshop_app.gui.connect_dialog import ConnectDialog
from workshop_app.gui.main_window import MainWindow
from workshop_app.paths import demo_dbc_path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def pump(app: QApplication, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def main() -> int:
    DOCS.mkdir(exist_ok=True)
    app = make_app()
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat)
        dbs = DatabaseSet()
        dbs.add(demo_dbc_path())
        # What a new user sees: fresh settings, the window's own size and default plots, 15 s
        # into the drive (engine started, the car pulling away); nothing clicked.
        source = SimulatorSource(FrameRing(), time_scale=1.0)
        window = MainWindow(CaptureSession(source, dbs), settings=settings, history=None)
        window.show()
        window.start()
        pump(app, 15.0)
        window.grab().save(str(DOCS / "main_window.png"))
        window.set_theme("dark")
        pump(app, 1.0)
        window.grab().save(str(DOCS / "main_window_dark.png"))
        window.set_theme("light")
        dialog = ConnectDialog(parent=window)
        dialog.set_page(1)
        dialog.show()
        pump(app, 0.5)
        dialog.grab().save(str(DOCS / "connect_dialog.png"))
        dialog.close()
        # The Fault codes dock after a scan of the car with two injected faults.
        source.ecus.set_confirm_seconds(0.5)
        for fault in ("coolant_sensor_open", "wheel_speed_fl_dropout"):
            source.vehicle.inject_fault(fault)
        pump(app, 1.0)
        dtc = window.dtc_panel
        dtc.label_combo.setCurrentIndex(1)
        dtc.start_scan()
        end = time.monotonic() + 30
        while dtc.busy and time.monotonic() < end:
            pump(app, 0.1)
        dtc.dtc_table.selectRow(0)
        window.dtc_dock.setFloating(True)
        window.dtc_dock.resize(1400, 700)
        pump(app, 0.5)
        dtc.grab().save(str(DOCS / "fault_codes.png"))
        window.dtc_dock.setFloating(False)
        shared = Path(__file__).resolve().parents[1] / "tests" / "data"
        if (shared / "logs").is_dir():  # the real Tesla capture, when the test data is at hand
            window.add_database(shared / "dbc" / "tesla_powertrain.dbc")
            view = window.log_view
            view.open_log(shared / "logs" / "savvycan_tesla_model_s_candump.log")
            end = time.monotonic() + 20
            while view.loading and time.monotonic() < end:
                pump(app, 0.1)
            for message, signal in (
                ("DI_torque1", "DI_motorRPM"),
                ("DI_torque2", "DI_vehicleSpeed"),
                ("DI_torque2", "DI_gear"),
            ):
                view.plot_signal(message, signal)
            view.set_range(3.0, 5.0)
            view.set_cursor(2.0)
            view.add_marker(6.0, "launch")
            window.log_dock.setFloating(True)  # full size for the picture
            window.log_dock.resize(1400, 820)
            pump(app, 0.8)
            view.grab().save(str(DOCS / "log_analysis.png"))
            # The marker is saved beside the log: leave the shared test data as it was.
            markers_path(shared / "logs" / "savvycan_tesla_model_s_candump.log").unlink(missing_ok=True)
        window.close()
    print(f"screenshots written to {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
