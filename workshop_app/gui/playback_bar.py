"""PlaybackBar: play, pause, step, seek, speed and loop for a log playing into the trace.

It follows the workshop (:meth:`PlaybackBar.follow`): a switch to a playback source (a log
loaded in the window, a ``--replay``) shows the bar with that source's controls, any other
source hides it, and every tick moves the slider.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QWidget

from workshop_app.core.logs.playback import PlaybackSource
from workshop_app.core.session import CaptureStats
from workshop_app.core.sources.base import FrameSource, SourceState
from workshop_app.core.workshop import Subscription, WorkshopSession

SPEEDS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 100.0)
_STEPS = 10_000  # slider resolution


class PlaybackBar(QWidget):
    """Controls of one PlaybackSource; ``refresh`` (on the workshop's tick) moves the slider."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source: PlaybackSource | None = None
        self.play_button = QPushButton("Play")
        self.play_button.setToolTip("Play or pause the log")
        self.play_button.clicked.connect(self._on_play_clicked)
        self.step_button = QPushButton("Step")
        self.step_button.setToolTip("Pause and deliver the next frame")
        self.step_button.clicked.connect(self._on_step_clicked)
        self.speed_combo = QComboBox()
        for speed in SPEEDS:
            self.speed_combo.addItem(f"{speed:g}×", speed)
        self.speed_combo.setCurrentIndex(SPEEDS.index(1.0))
        self.speed_combo.currentIndexChanged.connect(self._on_speed_changed)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, _STEPS)
        self.slider.sliderReleased.connect(self._on_slider_released)
        self.loop_check = QCheckBox("Loop")
        self.loop_check.toggled.connect(self._on_loop_toggled)
        self.position_label = QLabel()
        self.position_label.setMinimumWidth(150)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for w in (self.play_button, self.step_button, QLabel("Speed"), self.speed_combo):
            layout.addWidget(w)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.position_label)
        layout.addWidget(self.loop_check)
        self.setVisible(False)

    def follow(self, workshop: WorkshopSession) -> list[Subscription]:
        """Show the controls of the workshop's playback source, from now and at every switch."""
        self._on_source(workshop.source)
        return [workshop.subscribe("source", self._on_source), workshop.subscribe("stats", self._on_stats)]

    def _on_source(self, source: FrameSource) -> None:
        self.set_source(source if isinstance(source, PlaybackSource) else None)

    def _on_stats(self, _stats: CaptureStats) -> None:
        self.refresh()

    def set_source(self, source: PlaybackSource | None) -> None:
        """Show ``source``'s controls; the bar takes its speed and loop from the source (a
        ``--replay`` source arrives with the speed and loop it was asked for)."""
        self.source = None  # no handler pushes the bar's old state onto the new source
        if source is not None:
            self._select_speed(source.speed)
            self.loop_check.setChecked(source.looping)
        self.source = source
        self.setVisible(source is not None)
        self.refresh()

    def _select_speed(self, speed: float) -> None:
        index = self.speed_combo.findData(speed)
        if index < 0:  # a speed the menu lacks (``--speed 0`` or 3): listed in order
            index = sum(1 for i in range(self.speed_combo.count()) if self.speed_combo.itemData(i) < speed)
            self.speed_combo.insertItem(index, "max" if speed == 0 else f"{speed:g}×", speed)
        self.speed_combo.setCurrentIndex(index)

    def refresh(self) -> None:
        s = self.source
        if s is None:
            return
        playing = s.playing and s.state is SourceState.RUNNING
        self.play_button.setText("Pause" if playing else "Play")
        elapsed = s.position - s.start_time
        if not self.slider.isSliderDown() and s.duration > 0:
            self.slider.setValue(round(elapsed / s.duration * _STEPS))
        self.position_label.setText(f"{elapsed:8.3f} / {s.duration:.3f} s")

    def _on_play_clicked(self) -> None:
        if self.source is None:
            return
        if self.source.playing:
            self.source.pause()
        else:
            self.source.play()
        self.refresh()

    def _on_step_clicked(self) -> None:
        if self.source is not None:
            self.source.step(1)
            self.refresh()

    def _on_speed_changed(self, _index: int) -> None:
        if self.source is not None:
            self.source.set_speed(self.speed_combo.currentData())

    def _on_slider_released(self) -> None:
        s = self.source
        if s is not None:
            s.seek(s.start_time + self.slider.value() / _STEPS * s.duration)
            self.refresh()

    def _on_loop_toggled(self, on: bool) -> None:
        if self.source is not None:
            self.source.set_looping(on)
