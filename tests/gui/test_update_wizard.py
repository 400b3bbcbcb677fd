"""Vehicle → Software update…: the wizard on the simulated demo car (pytest-qt, offscreen).

Real parts: a package signed with Ed25519 keys made here, the demo vehicle's ECUs and
bootloaders on a python-can virtual bus, the history in SQLite; ``gui/workers.run_job`` runs
reading, verifying and flashing off the GUI thread.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers.sim_packages import SPEC, VIN, build_sim_package, sim_car, trusting

from workshop_app.gui.update_wizard import PAGE_PLAN, PAGE_RESULT, UpdateWizard

pytestmark = pytest.mark.gui


def _column(table, column: int) -> list[str]:  # type: ignore[no-untyped-def]
    return [table.item(r, column).text() for r in range(table.rowCount())]


def test_good_package_flashes_with_progress_and_shows_the_audit_entry(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pkg = tmp_path / "pkg"
    repo = build_sim_package(pkg, size=48 * 1024)
    store = trusting(repo, tmp_path / "trust")
    shots = tmp_path  # offscreen pictures of each page, to look at when changing the layout
    with sim_car(tmp_path / "flash") as car:
        wizard = UpdateWizard(lambda: (car.bus, car.notifier), SPEC, tmp_path / "h.db", store=store)
        qtbot.addWidget(wizard)
        wizard.show()
        wizard.package_edit.setText(str(pkg))
        wizard.verify_button.click()
        qtbot.waitUntil(lambda: wizard.pages.currentIndex() == PAGE_PLAN, timeout=20_000)
        assert wizard.plan_title.text().endswith(f"for car {VIN}")
        assert "passed" in wizard.checks_label.text()
        assert set(_column(wizard.checks_table, 0)) == {"passed"} and wizard.checks_table.rowCount() == 8
        assert _column(wizard.plan_table, 0) == ["ECM"]
        assert (_column(wizard.plan_table, 1), _column(wizard.plan_table, 2)) == (["SW 0412"], ["SW 0500"])
        assert wizard.flash_button.isEnabled()
        assert car.watch.programming_requests() == []
        assert wizard.grab().save(str(shots / "plan.png"))
        car.net.ecu("ECM").bootloader.timing.write_bytes_per_s = 40_000  # type: ignore[union-attr]
        seen: list[str] = []
        wizard.flash_button.click()
        # Mid-download: bytes, percent, a measured rate and the time left.
        qtbot.waitUntil(
            lambda: 0 < wizard.progress.value() < 900 and "--" not in wizard.rate_label.text(), timeout=20_000
        )
        seen.append(wizard.rate_label.text())
        assert wizard.phase_label.text() == "ECM: download"
        assert wizard.grab().save(str(shots / "progress.png"))
        qtbot.waitUntil(lambda: wizard.pages.currentIndex() == PAGE_RESULT, timeout=60_000)
        assert wizard.grab().save(str(shots / "result.png"))
    assert re.search(r"[\d,]+ / 49,152 B +\d+\.\d % +\d+\.\d KiB/s +\d+ s left", seen[0]), seen
    assert "Update finished" in wizard.result_label.text()
    assert "ECM: success, SW 0412 → SW 0500" in wizard.result_label.text()
    assert _column(wizard.audit_table, 2) == ["ECM"] and _column(wizard.audit_table, 3) == ["success"]
    assert wizard.progress.value() == 1000


def test_refused_package_shows_its_reasons_and_flash_is_disabled(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pkg = tmp_path / "pkg"
    repo = build_sim_package(pkg, ecm_hardware=("HW H99",), ecm_counter=0)
    store = trusting(repo, tmp_path / "trust")
    with sim_car(tmp_path / "flash") as car:
        wizard = UpdateWizard(lambda: (car.bus, car.notifier), SPEC, tmp_path / "h.db", store=store)
        qtbot.addWidget(wizard)
        wizard.show()
        wizard.package_edit.setText(str(pkg))
        wizard.verify_button.click()
        qtbot.waitUntil(lambda: wizard.pages.currentIndex() == PAGE_PLAN, timeout=20_000)
        assert wizard.grab().save(str(tmp_path / "refused.png"))
        codes = _column(wizard.checks_table, 0)
        assert codes == ["refused: hardware_not_allowed", "refused: release_counter_rollback"]
        assert "HW H99" in " ".join(_column(wizard.checks_table, 1))
        assert "REFUSED" in wizard.checks_label.text()
        assert not wizard.flash_button.isEnabled() and wizard.plan_table.rowCount() == 0
        wizard.start_flash()  # even when asked directly, nothing starts
        assert wizard.worker is None and wizard.pages.currentIndex() == PAGE_PLAN
        assert car.watch.programming_requests() == []


def test_not_connected_says_so(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def no_link():  # type: ignore[no-untyped-def]
        raise RuntimeError("replayed log: diagnostics need a live connection")

    wizard = UpdateWizard(no_link, SPEC, tmp_path / "h.db")
    qtbot.addWidget(wizard)
    wizard.package_edit.setText(str(tmp_path))
    wizard.verify_button.click()
    assert "Not connected to a car: replayed log" in wizard.verify_status.text()


def test_cancel_stops_at_a_safe_point_and_shows_the_audit_entry(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pkg = tmp_path / "pkg"
    repo = build_sim_package(pkg, size=64 * 1024)
    store = trusting(repo, tmp_path / "trust")
    with sim_car(tmp_path / "flash") as car:
        car.net.ecu("ECM").bootloader.timing.write_bytes_per_s = 20_000  # type: ignore[union-attr]
        wizard = UpdateWizard(lambda: (car.bus, car.notifier), SPEC, tmp_path / "h.db", store=store)
        qtbot.addWidget(wizard)
        wizard.package_edit.setText(str(pkg))
        wizard.verify_button.click()
        qtbot.waitUntil(lambda: wizard.pages.currentIndex() == PAGE_PLAN, timeout=20_000)
        wizard.flash_button.click()
        qtbot.waitUntil(lambda: wizard.progress.value() > 0, timeout=20_000)
        wizard.reject()  # closing the dialog on a running flash cancels it instead
        assert wizard.phase_label.text() == "cancelling at the next safe point…"
        qtbot.waitUntil(lambda: wizard.pages.currentIndex() == PAGE_RESULT, timeout=30_000)
        assert car.net.ecu("ECM").flash.app_valid is False  # type: ignore[union-attr]
    assert (
        "Cancelled" in wizard.result_label.text()
        and "install the same package again" in wizard.result_label.text()
    )
    assert _column(wizard.audit_table, 3) == ["cancelled"]


def test_vehicle_menu_opens_the_wizard_on_the_windows_connection(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    from test_main_window import _window

    win = _window(qtbot, tmp_path)
    opened: list[UpdateWizard] = []
    poll = QTimer()

    def look() -> None:
        wizard = QApplication.activeModalWidget()
        if not opened and isinstance(wizard, UpdateWizard):
            opened.append(wizard)
            wizard.package_edit.setText(str(tmp_path / "no-package-here"))
            wizard.verify_button.click()  # reads the simulated car over the window's own bus
        elif opened and opened[0].worker is None and opened[0].pages.currentIndex() == PAGE_PLAN:
            poll.stop()
            opened[0].reject()

    try:
        (action,) = [a for m in win.menuBar().actions() if m.text() == "V&ehicle" for a in m.menu().actions()]
        assert action.text() == "Software &update…"
        poll.timeout.connect(look)
        poll.start(100)
        action.trigger()  # modal: returns when the wizard closes
        (wizard,) = opened
        assert wizard.plan_title.text().endswith(f"for car {VIN}")
        assert _column(wizard.checks_table, 0) == ["refused: package_unreadable"]
        assert "HW H13" in _column(wizard.car_table, 1)
    finally:
        poll.stop()
        win.close()
        win.history.close()


def test_technician_parks_the_car_flashes_the_ecm_and_the_next_scan_shows_it(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # The whole flow in the real window on its in-process simulated car: park it from the Fault
    # codes dock, Vehicle → Software update…, flash, then scan.
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    from test_main_window import _window

    from workshop_app.core.update.verify import TrustStore

    pkg = tmp_path / "pkg"
    repo = build_sim_package(pkg, size=16 * 1024)
    TrustStore().trust(repo.trusted_root("image"), repo.trusted_root("director"))  # the workshop's own
    win = _window(qtbot, tmp_path)
    vehicle = win.session.source.vehicle
    opened: list[UpdateWizard] = []
    poll = QTimer()

    def drive_the_wizard() -> None:
        wizard = QApplication.activeModalWidget()
        if not opened and isinstance(wizard, UpdateWizard):
            opened.append(wizard)
            wizard.package_edit.setText(str(pkg))
            wizard.verify_button.click()
        elif opened and opened[0].worker is None:
            w = opened[0]
            if w.pages.currentIndex() == PAGE_PLAN and w.flash_button.isEnabled():
                w.flash_button.click()
            elif w.pages.currentIndex() == PAGE_RESULT:
                poll.stop()
                w.accept()

    try:
        win.dtc_panel.park_check.setChecked(True)
        qtbot.waitUntil(lambda: vehicle.parked and vehicle.state_snapshot().rpm == 0.0, timeout=10_000)
        (action,) = [a for m in win.menuBar().actions() if m.text() == "V&ehicle" for a in m.menu().actions()]
        poll.timeout.connect(drive_the_wizard)
        poll.start(100)
        action.trigger()  # modal: returns when the wizard closes
        (wizard,) = opened
        assert "ECM: success, SW 0412 → SW 0500" in wizard.result_label.text(), wizard.result_label.text()
        with qtbot.waitSignal(win.dtc_panel.scan_finished, timeout=60_000) as blocker:
            win.dtc_panel.scan_button.click()
        ecm = blocker.args[0].ecu("ECM")
        assert ecm.identification["Software version"] == "SW 0500"
    finally:
        poll.stop()
        win.close()
        win.history.close()
