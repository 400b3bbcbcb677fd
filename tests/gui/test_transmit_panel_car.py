"""The Transmit panel on the real simulated car: a BODY_COMMAND picked from the DBC locks the
doors, and the car's BODY_STATUS says so; the panel as the user sees it is saved as a picture."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QComboBox

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.decode.live import decode_payload
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.core.transmit_jobs import JobStatus, TransmitJobs
from workshop_app.core.types import Frame
from workshop_app.gui.transmit_panel import COL_STATUS, TAB_DBC, TransmitPanel
from workshop_app.paths import demo_dbc_path

pytestmark = pytest.mark.gui


@pytest.fixture
def car_session() -> Iterator[CaptureSession]:
    databases = DatabaseSet()
    databases.add(demo_dbc_path())
    session = CaptureSession(SimulatorSource(FrameRing(), pace_bitrate=None), databases)
    session.start()
    assert session.source.vehicle is not None  # type: ignore[attr-defined]
    session.source.vehicle.park()  # type: ignore[attr-defined]  # only our commands move the locks
    yield session
    session.stop()


@pytest.fixture
def panel(qtbot, car_session) -> Iterator[TransmitPanel]:
    jobs = TransmitJobs(car_session.source, car_session.databases)
    widget = TransmitPanel(jobs, car_session.databases)
    qtbot.addWidget(widget)
    widget.resize(900, 640)
    widget.show()
    yield widget
    widget.wait_for_sends()
    jobs.close()


def _pick(panel: TransmitPanel, signal: str, label: str) -> None:
    combo = panel._editors[signal].widget
    assert isinstance(combo, QComboBox)
    combo.setCurrentIndex(next(i for i in range(combo.count()) if combo.itemText(i).startswith(label)))


def _take_status(session: CaptureSession, frames: list[Frame]) -> None:
    """BODY_STATUS frames the capture has taken in so far, onto ``frames``."""
    message = session.databases.databases[0].db.get_message_by_name("BODY_STATUS")
    frames.extend(f for f in session.tick() if f.is_rx and f.arbitration_id == message.frame_id)


def _lock_state_after_send(qtbot, session: CaptureSession, frames: list[Frame], mark: int) -> str:
    message = session.databases.databases[0].db.get_message_by_name("BODY_STATUS")

    def second_status_after_mark() -> bool:
        _take_status(session, frames)
        return len(frames) >= mark + 2

    qtbot.waitUntil(second_status_after_mark, timeout=10_000)
    # the second frame after the send: the first may have been built before the car acted
    return {v.name: v.text() for v in decode_payload(message, frames[mark + 1].data)}["LockState"]


def test_lock_and_unlock_the_simulated_car_from_the_panel(qtbot, panel, car_session, tmp_path: Path):
    panel.editor_tabs.setCurrentIndex(TAB_DBC)
    panel.message_combo.setCurrentIndex(panel.message_combo.findData("BODY_COMMAND"))
    frames: list[Frame] = []
    for request, state in (("Lock", "Locked (1)"), ("Unlock", "Unlocked (0)")):
        _pick(panel, "LockRequest", request)
        before = panel.sends_done
        panel.send_once_button.click()
        qtbot.waitUntil(lambda before=before: panel.sends_done > before, timeout=5000)
        _take_status(car_session, frames)  # what came before the frame left is history
        mark = len(frames)
        assert not panel.error_label.isVisible(), panel.error_label.text()
        assert _lock_state_after_send(qtbot, car_session, frames, mark) == state, request
    assert [j.status for j in panel.jobs.jobs()] == [JobStatus.SENT, JobStatus.SENT]
    assert panel.table.item(1, COL_STATUS).text() == "sent"
    picture = tmp_path / "transmit_panel.png"
    assert panel.grab().save(str(picture))
    assert picture.stat().st_size > 0
