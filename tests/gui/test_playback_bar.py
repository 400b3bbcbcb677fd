"""PlaybackBar over the one playback engine: a `--replay` source gets the same controls as a loaded log."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.base import SourceState
from workshop_app.core.sources.factory import SourceSpec
from workshop_app.core.sources.replay import ReplaySource
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.gui.main_window import MainWindow
from workshop_app.gui.playback_bar import PlaybackBar
from workshop_app.paths import demo_dbc_path

pytestmark = pytest.mark.gui


def _log(path: Path, n: int = 50, gap: float = 0.5) -> Path:
    path.write_text("".join(f"({1000 + i * gap:.6f}) can0 0C0#{i:02X}00\n" for i in range(n)))
    return path


def test_bar_takes_speed_and_loop_from_the_source(qtbot, tmp_path):
    bar = PlaybackBar()
    qtbot.addWidget(bar)
    ring = FrameRing()
    source = ReplaySource(ring, _log(tmp_path / "a.log"), speed=0, loop=True)
    bar.set_source(source)
    assert bar.speed_combo.currentText() == "max" and bar.loop_check.isChecked()
    assert source.speed == 0 and source.looping  # showing the source changed nothing in it
    bar.loop_check.setChecked(False)
    assert not source.looping
    bar.speed_combo.setCurrentIndex(bar.speed_combo.findData(2.0))
    assert source.speed == 2.0

    other = ReplaySource(FrameRing(), _log(tmp_path / "b.log"), speed=3.0)
    bar.set_source(other)
    assert bar.speed_combo.currentText() == "3×" and not bar.loop_check.isChecked()
    assert [bar.speed_combo.itemData(i) for i in range(bar.speed_combo.count())] == sorted(
        bar.speed_combo.itemData(i) for i in range(bar.speed_combo.count())
    )


def test_replay_source_in_the_window_is_paused_stepped_and_sought_from_the_bar(qtbot, tmp_path):
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(CaptureSession(SimulatorSource(FrameRing()), dbs), settings=settings)
    qtbot.addWidget(win)
    win.show()
    win.start()
    try:
        assert win.connect_spec(SourceSpec(replay=_log(tmp_path / "drive.log"), speed=1.0))
        bar, store = win.playback_bar, win.session.store
        assert isinstance(win.session.source, ReplaySource) and bar.isVisible()
        qtbot.waitUntil(lambda: store.total_frames >= 1, timeout=5000)
        bar.play_button.click()  # pause: the log has 25 s to go
        assert not win.session.source.playing
        bar.slider.setValue(bar.slider.maximum() // 2)
        bar._on_slider_released()  # what releasing the handle does
        seen = store.total_frames
        bar.step_button.click()
        qtbot.waitUntil(lambda: store.total_frames == seen + 1, timeout=3000)
        assert store.get("can0", 0x0C0).data[0] == 25  # the frame at the middle of the log
        qtbot.waitUntil(lambda: "12.500 / 24.500" in bar.position_label.text(), timeout=3000)
        bar.speed_combo.setCurrentIndex(bar.speed_combo.count() - 1)  # 100x
        bar.play_button.click()
        qtbot.waitUntil(lambda: win.session.source.state is SourceState.FINISHED, timeout=5000)
        qtbot.waitUntil(lambda: store.get("can0", 0x0C0).data[0] == 49, timeout=3000)  # on the next tick
        assert store.total_frames == seen + 1 + 24  # from the middle to the end, nothing twice
    finally:
        win.close()
