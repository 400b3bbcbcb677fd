"""The update wizard: choosing a package with its buttons, a killed install offered for resume,
and no fault-code scan while it flashes (pytest-qt, offscreen).

Real parts: packages signed with Ed25519 keys made here, the demo car's ECUs and bootloaders on
a python-can virtual bus, a `workshop update install` process killed with SIGKILL, the history
in SQLite. The file dialogs are the only stand-ins: they answer a real path, as a user would.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.sim_packages import SPEC, VIN, build_sim_package, sim_car, trusting
from helpers.update_cli import BLOCK, kill_install_midway, served, trust
from PySide6.QtWidgets import QFileDialog

from workshop_app.core.history.audit import AuditTrail
from workshop_app.gui.update_wizard import PAGE_PLAN, PAGE_RESULT, UpdateWizard

pytestmark = pytest.mark.gui


def _column(table, column: int) -> list[str]:  # type: ignore[no-untyped-def]
    return [table.item(r, column).text() for r in range(table.rowCount())]


def test_a_folder_and_an_archive_chosen_with_the_buttons(qtbot, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    pkg = tmp_path / "pkg"
    repo = build_sim_package(pkg, size=8 * 1024)
    archive = repo.archive(tmp_path / "ecm-update.tar.gz")
    store = trusting(repo, tmp_path / "trust")
    asked: list[str] = []

    def folder(_parent, caption, *_args):  # type: ignore[no-untyped-def]
        asked.append(caption)
        return str(pkg)

    def archive_file(_parent, caption, _dir, filters):  # type: ignore[no-untyped-def]
        asked.append(f"{caption} [{filters}]")
        return str(archive), "Packages (*.tar *.tar.gz *.tgz *.zip)"

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", folder)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", archive_file)
    with sim_car(tmp_path / "flash") as car:
        wizard = UpdateWizard(lambda: (car.bus, car.notifier), SPEC, tmp_path / "h.db", store=store)
        qtbot.addWidget(wizard)
        wizard.show()
        wizard.folder_button.click()
        assert wizard.package_edit.text() == str(pkg)
        wizard.verify_button.click()
        qtbot.waitUntil(lambda: wizard.pages.currentIndex() == PAGE_PLAN, timeout=20_000)
        assert wizard.plan_title.text() == f"<b>2. Package {pkg}</b> for car {VIN}"
        assert "passed" in wizard.checks_label.text() and _column(wizard.plan_table, 0) == ["ECM"]

        wizard.pages.setCurrentIndex(0)  # Back, then the archive of the same package
        wizard.archive_button.click()
        assert wizard.package_edit.text() == str(archive)
        wizard.verify_button.click()
        qtbot.waitUntil(
            lambda: wizard.pages.currentIndex() == PAGE_PLAN and str(archive) in wizard.plan_title.text(),
            timeout=20_000,
        )
        assert car.watch.programming_requests() == []
        wizard.flash_button.click()
        qtbot.waitUntil(lambda: wizard.pages.currentIndex() == PAGE_RESULT, timeout=60_000)
        assert car.net.ecu("ECM").flash.software_version == "SW 0500"  # type: ignore[union-attr]
    assert asked == [
        "Update package folder",
        "Update package archive [Packages (*.tar *.tar.gz *.tgz *.zip);;All files (*)]",
    ]
    assert "ECM: success, SW 0412 → SW 0500" in wizard.result_label.text()


def test_a_killed_install_is_audited_when_the_wizard_opens_and_flash_resumes_it(
    qtbot,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    pkg = tmp_path / "pkg"
    build_sim_package(pkg, size=20 * BLOCK)
    trust(pkg)  # the workshop's own trust store, as the killed command used it
    db = tmp_path / "h.db"
    with served(tmp_path) as (car, link):
        kill_install_midway(car, link, pkg, db)
        with AuditTrail(db) as trail:
            assert trail.rows() == []  # nothing ran since the kill
        wizard = UpdateWizard(lambda: (car.bus, car.notifier), SPEC, db)
        qtbot.addWidget(wizard)
        wizard.show()
        (entry,) = wizard.interrupted
        assert entry.ecu == "ECM" and entry.result == "interrupted"
        with AuditTrail(db) as trail:
            assert [r.entry.result for r in trail.rows()] == ["interrupted"]
        assert wizard.package_edit.text() == str(pkg.resolve())  # offered, nothing to re-type
        status = wizard.verify_status.text()
        assert "An unfinished flash of ECM" in status and "the tool was stopped" in status
        assert f"journal entry {entry.id}" in status
        again = UpdateWizard(lambda: (car.bus, car.notifier), SPEC, db)  # opened twice: recorded once
        qtbot.addWidget(again)
        assert again.interrupted == [] and "An unfinished flash of ECM" in again.verify_status.text()

        wizard.verify_button.click()
        qtbot.waitUntil(lambda: wizard.pages.currentIndex() == PAGE_PLAN, timeout=20_000)
        assert wizard.flash_button.isEnabled(), _column(wizard.car_table, 5)
        wizard.flash_button.click()
        qtbot.waitUntil(lambda: wizard.pages.currentIndex() == PAGE_RESULT, timeout=60_000)
        assert car.net.ecu("ECM").flash.software_version == "SW 0500"  # type: ignore[union-attr]
    assert wizard.outcome is not None and wizard.outcome.ok
    (flash,) = wizard.outcome.flashes
    assert flash.resumed and any(
        n.startswith(f"resumed at segment 0 offset {entry.offset}") for n in flash.notes
    )
    with AuditTrail(db) as trail:
        assert [r.entry.result for r in trail.rows()] == ["interrupted", "success"] and trail.verify().ok


def test_no_scan_while_flashing_and_no_flash_while_scanning(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from test_main_window import _window

    from workshop_app.core.update.verify import TrustStore

    pkg = tmp_path / "pkg"
    repo = build_sim_package(pkg, size=32 * 1024)
    TrustStore().trust(repo.trusted_root("image"), repo.trusted_root("director"))
    win = _window(qtbot, tmp_path)
    panel = win.dtc_panel
    source = win.session.source
    try:
        panel.park_check.setChecked(True)
        qtbot.waitUntil(
            lambda: source.vehicle.parked and source.vehicle.state_snapshot().rpm == 0.0, timeout=10_000
        )
        wizard = UpdateWizard(lambda: (source.bus, source.notifier), win.vehicle_spec, win.history.path)
        qtbot.addWidget(wizard)
        wizard.show()
        wizard.package_edit.setText(str(pkg))
        wizard.verify_button.click()
        qtbot.waitUntil(lambda: wizard.pages.currentIndex() == PAGE_PLAN, timeout=20_000)

        # A scan runs: the wizard does not start flashing, and says why.
        with qtbot.waitSignal(panel.scan_finished, timeout=60_000):
            panel.scan_button.click()
            assert panel.busy
            wizard.flash_button.click()
            assert wizard.worker is None and wizard.pages.currentIndex() == PAGE_PLAN
            assert "Not now: a fault-code scan is running" in wizard.plan_status.text()

        # The wizard flashes: the Fault codes dock neither scans nor clears, and says why.
        source.ecus.ecu("ECM").bootloader.timing.write_bytes_per_s = 20_000
        wizard.flash_button.click()
        qtbot.waitUntil(lambda: wizard.progress.value() > 0, timeout=20_000)
        panel.scan_button.click()
        assert not panel.busy
        assert "Not now: the flash of ECM is running" in panel.status_label.text()
        assert "would disturb the programming" in panel.status_label.text()
        assert panel.clear() is False and not panel.busy
        qtbot.waitUntil(lambda: wizard.pages.currentIndex() == PAGE_RESULT, timeout=60_000)
        assert "Update finished" in wizard.result_label.text()
        with qtbot.waitSignal(panel.scan_finished, timeout=60_000) as blocker:  # free again afterwards
            panel.scan_button.click()
        assert blocker.args[0].ecu("ECM").identification["Software version"] == "SW 0500"
    finally:
        win.close()
        win.history.close()
