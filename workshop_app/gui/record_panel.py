"""RecordPanel: record the live capture to a log file, and browse the recordings in the history.

The panel drives the core only through the session's ``start_recording/stop_recording`` and
``HistoryStore``; once it follows a ``WorkshopSession`` (:meth:`RecordPanel.follow`) its counters repaint
on every tick and a recording the session stops (a source switch) is filed at once.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workshop_app.core.capture.recorder import Recorder, RecordingSummary
from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.errors import WorkshopError
from workshop_app.core.history import HistoryStore, RecordingRow, default_recordings_dir, format_bytes
from workshop_app.core.logfiles import log_suffix
from workshop_app.core.session import CaptureSession, CaptureStats
from workshop_app.core.sources.reconnect import gaps_during
from workshop_app.core.workshop import Subscription, WorkshopSession

# The formats offered in the combo: (label, suffix). Other writable suffixes typed into the
# file field (.db, .gz variants) still record; the combo then shows no format. ".txt" is refused
# as in `workshop record`: python-can's text printout cannot be read back.
FORMATS: tuple[tuple[str, str], ...] = (
    ("BLF", ".blf"),
    ("ASC", ".asc"),
    ("candump", ".log"),
    ("TRC", ".trc"),
    ("MF4", ".mf4"),
    ("CSV", ".csv"),
)
_SUFFIX_INDEX = {suffix: i for i, (_label, suffix) in enumerate(FORMATS)}
RECENT_LIMIT = 50
ERROR_COLOUR = "#d1242f"
WARNING_COLOUR = "#b26a00"
RECORDING_COLOUR = "#d1242f"

COLUMNS = ("Started", "Duration", "Frames", "Dropped", "Format", "Size", "Source", "File")


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class RecordPanel(QWidget):
    """File and format, Start/Stop, live counters, and the recent recordings from the history."""

    recording_activated = Signal(str)  # path of a recording double-clicked in the table
    recording_started = Signal(str)  # path
    recording_stopped = Signal(str)  # path, once the file is closed (and indexed)

    def __init__(
        self,
        session: CaptureSession | WorkshopSession,
        history: HistoryStore | None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._session = session
        self._history = history
        self._recorder: Recorder | None = None  # the recording this panel started
        self._source_description = ""
        self._ring: FrameRing | None = None
        self._ring_dropped_at_start = 0
        self.last_summary: RecordingSummary | None = None
        self.last_recording_id: int | None = None

        self.path_edit = QLineEdit(str(self._proposed_path(".blf")))
        self.path_edit.setPlaceholderText("File to record to: .blf, .asc, .log (candump), .trc, .mf4, .csv")
        self.path_edit.textChanged.connect(self._on_path_changed)
        self.browse_button = QPushButton("Browse…")
        self.browse_button.clicked.connect(self._on_browse_clicked)
        self.format_combo = QComboBox()
        for label, suffix in FORMATS:
            self.format_combo.addItem(label, suffix)
        self.format_combo.currentIndexChanged.connect(self._on_format_changed)

        self.start_button = QPushButton("● Start recording")
        self.start_button.clicked.connect(self.start_recording)
        self.stop_button = QPushButton("■ Stop")
        self.stop_button.clicked.connect(self.stop_recording)
        self.state_label = QLabel()

        self.frames_value = QLabel()
        self.dropped_value = QLabel()
        self.duration_value = QLabel()
        self.size_value = QLabel()
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.recent_table = QTableWidget(0, len(COLUMNS))
        self.recent_table.setHorizontalHeaderLabels(COLUMNS)
        self.recent_table.verticalHeader().setVisible(False)
        self.recent_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.recent_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.recent_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.recent_table.setAlternatingRowColors(True)
        self.recent_table.verticalHeader().setDefaultSectionSize(22)
        header = self.recent_table.horizontalHeader()
        header.setStretchLastSection(True)
        for column, width in enumerate((140, 70, 90, 70, 70, 80, 180)):
            header.resizeSection(column, width)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.recent_table.cellDoubleClicked.connect(self._on_recent_double_clicked)
        self.recent_label = QLabel()

        self._build_layout()
        self._on_path_changed(self.path_edit.text())
        self._show_counters(0, 0, 0.0, None)
        self._set_recording_ui(False)
        self.reload_recent()

    def _build_layout(self) -> None:
        file_row = QHBoxLayout()
        file_row.addWidget(QLabel("File"))
        file_row.addWidget(self.path_edit, 1)
        file_row.addWidget(self.browse_button)
        file_row.addWidget(QLabel("Format"))
        file_row.addWidget(self.format_combo)

        button_row = QHBoxLayout()
        button_row.addWidget(self.start_button)
        button_row.addWidget(self.stop_button)
        button_row.addWidget(self.state_label)
        button_row.addStretch(1)

        counters = QGridLayout()
        counters.setHorizontalSpacing(24)
        for column, (caption, value) in enumerate(
            (
                ("Frames written", self.frames_value),
                ("Dropped", self.dropped_value),
                ("Duration", self.duration_value),
                ("File size", self.size_value),
            )
        ):
            title = QLabel(caption)
            title.setForegroundRole(QPalette.ColorRole.PlaceholderText)  # follows the theme
            font = value.font()
            font.setPointSizeF(font.pointSizeF() * 1.5)
            font.setBold(True)
            value.setFont(font)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            counters.addWidget(title, 0, column)
            counters.addWidget(value, 1, column)
        counters.setColumnStretch(4, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(file_row)
        layout.addLayout(button_row)
        layout.addLayout(counters)
        layout.addWidget(self.message_label)
        layout.addWidget(self.recent_label)
        layout.addWidget(self.recent_table, 1)

    # -- public -------------------------------------------------------------------------------

    @property
    def recording(self) -> bool:
        return self._recorder is not None

    def start_recording(self) -> bool:
        """Start recording to the chosen file; on failure say why in the panel."""
        if self._recorder is not None:
            return True
        text = self.path_edit.text().strip()
        if not text:
            self._show_message("Choose a file to record to.", ERROR_COLOUR)
            return False
        path = Path(text).expanduser()
        if path.exists():
            self._show_message(
                f"{path} already exists. Choose another file name so it is not overwritten.", ERROR_COLOUR
            )
            return False
        if self._session.recorder is not None:
            self._show_message(f"Already recording to {self._session.recorder.path}.", ERROR_COLOUR)
            return False
        try:
            self._recorder = self._session.start_recording(path)
        except WorkshopError as exc:
            self._show_message(f"Could not start recording: {exc}", ERROR_COLOUR)
            return False
        self._source_description = self._session.source.describe()
        self._ring = self._session.ring
        self._ring_dropped_at_start = self._ring.dropped
        self._set_recording_ui(True)
        self._show_message(f"Recording {self._source_description} to {path}", "")
        self.refresh()
        self.recording_started.emit(str(path))
        return True

    def stop_recording(self) -> RecordingSummary | None:
        """Close the file, index it in the history and show it there."""
        recorder = self._recorder
        if recorder is None:
            return None
        self._recorder = None  # the session's "recording" event for this stop is ours
        if self._session.recorder is recorder:
            self._session.stop_recording()
        # Recorder.stop is idempotent: the same summary whoever stopped it first.
        summary = recorder.stop()
        self._finish(summary)
        return summary

    def toggle_recording(self) -> None:
        if self._recorder is None:
            self.start_recording()
        else:
            self.stop_recording()

    def follow(self, workshop: WorkshopSession) -> list[Subscription]:
        """Repaint on every tick; file a recording the session stopped on its own at once."""
        return [
            workshop.subscribe("stats", self._on_stats),
            workshop.subscribe("recording", self._on_recording),
        ]

    def _on_stats(self, _stats: CaptureStats) -> None:
        self.refresh()

    def _on_recording(self, event: object) -> None:
        recorder = self._recorder
        if isinstance(event, RecordingSummary) and recorder is not None and event.path == recorder.path:
            self._finish(recorder.stop())

    def refresh(self) -> None:
        """Repaint the live counters (every tick once following a session)."""
        recorder = self._recorder
        if recorder is None:
            return
        if self._session.recorder is not recorder:
            # Someone else (a source switch) stopped the session's recording: file it anyway.
            self._finish(recorder.stop())
            return
        progress = recorder.progress
        self._show_counters(
            progress.frames_written,
            progress.frames_dropped + self._ring_drops(),
            progress.duration,
            progress.bytes_written,
        )
        if progress.error:
            # The recorder stopped writing (full disk...) and closed the file as of its last
            # flush: file it now and say why; the capture goes on and a new recording can start.
            self.stop_recording()
            return
        if progress.warning:
            self._show_message(progress.warning, WARNING_COLOUR)

    def reload_recent(self) -> None:
        """Fill the table of recent recordings from the history."""
        table = self.recent_table
        if self._history is None:
            table.setRowCount(0)
            table.setEnabled(False)
            self.recent_label.setText("Recent recordings — history is off")
            return
        try:
            rows = self._history.recordings(limit=RECENT_LIMIT)
        except WorkshopError as exc:
            self.recent_label.setText(f"Recent recordings — could not read the history: {exc}")
            return
        self.recent_label.setText(f"Recent recordings — {self._history.path}")
        table.setRowCount(len(rows))
        for row, rec in enumerate(rows):
            self._fill_row(row, rec)

    # -- internals ----------------------------------------------------------------------------

    def _fill_row(self, row: int, rec: RecordingRow) -> None:
        values = (
            rec.started.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            format_duration(rec.duration_s),
            f"{rec.frames:,}",
            f"{rec.dropped:,}",
            rec.format,
            format_bytes(rec.size_bytes),
            rec.source,
            rec.path.name,
        )
        tip = f"{rec.path}\n{rec.source}" + (f"\n{rec.notes}" if rec.notes else "")
        for column, value in enumerate(values):
            item = QTableWidgetItem(value)
            item.setToolTip(tip)
            item.setData(Qt.ItemDataRole.UserRole, rec.id if column else str(rec.path))
            if column in (1, 2, 3, 5):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.recent_table.setItem(row, column, item)

    def _finish(self, summary: RecordingSummary) -> None:
        ring_drops = self._ring_drops()
        self._recorder = None
        self._ring = None
        self.last_summary = summary
        self.last_recording_id = None
        self._set_recording_ui(False)
        self._show_counters(
            summary.frames_written, summary.frames_dropped + ring_drops, summary.duration, summary.size_bytes
        )
        saved = (
            f"Saved {summary.frames_written:,} frames ({format_bytes(summary.size_bytes)}) to {summary.path}."
        )
        colour = ""
        if summary.error:
            saved = f"Recording stopped early: {summary.error}. {saved}"
            colour = ERROR_COLOUR
        elif summary.warning:
            saved += f" {summary.warning}."
            colour = WARNING_COLOUR
        if self._history is not None:
            try:
                gaps = gaps_during(
                    self._session.source.gaps, summary.started, summary.started + summary.duration
                )
                self.last_recording_id = self._history.index_recording(
                    summary, self._source_description, extra_dropped=ring_drops, gaps=gaps
                )
            except WorkshopError as exc:
                saved += f" It could not be added to the history: {exc}"
                colour = ERROR_COLOUR
            else:
                saved += f" History entry #{self.last_recording_id}."
        self._show_message(saved, colour)
        self.reload_recent()
        self._select_recording(self.last_recording_id)
        self.path_edit.setText(str(self._proposed_path(self._current_suffix())))
        self.recording_stopped.emit(str(summary.path))

    def _ring_drops(self) -> int:
        # Frames the ring refused while recording never reached the file: count them too.
        return self._ring.dropped - self._ring_dropped_at_start if self._ring is not None else 0

    def _select_recording(self, recording_id: int | None) -> None:
        if recording_id is None:
            return
        for row in range(self.recent_table.rowCount()):
            item = self.recent_table.item(row, 1)
            if item is not None and item.data(Qt.ItemDataRole.UserRole) == recording_id:
                self.recent_table.selectRow(row)
                self.recent_table.scrollToItem(item)
                return

    def _show_counters(self, frames: int, dropped: int, duration: float, size: int | None) -> None:
        self.frames_value.setText(f"{frames:,}")
        self.dropped_value.setText(f"{dropped:,}")
        self.dropped_value.setStyleSheet(f"color: {ERROR_COLOUR}" if dropped else "")
        self.duration_value.setText(format_duration(duration))
        self.size_value.setText(format_bytes(size) if size is not None else "—")

    def _show_message(self, text: str, colour: str) -> None:
        self.message_label.setText(text)
        self.message_label.setStyleSheet(f"color: {colour}" if colour else "")

    def _set_recording_ui(self, recording: bool) -> None:
        self.start_button.setEnabled(not recording)
        self.stop_button.setEnabled(recording)
        for widget in (self.path_edit, self.browse_button, self.format_combo):
            widget.setEnabled(not recording)
        self.state_label.setText("● REC" if recording else "not recording")
        # Grey (placeholder role) when idle; the placeholder role's translucency would pale the red.
        role = QPalette.ColorRole.WindowText if recording else QPalette.ColorRole.PlaceholderText
        self.state_label.setForegroundRole(role)
        self.state_label.setStyleSheet(f"color: {RECORDING_COLOUR}; font-weight: 700" if recording else "")

    def _proposed_path(self, suffix: str) -> Path:
        return default_recordings_dir() / f"recording-{time.strftime('%Y%m%d-%H%M%S')}{suffix}"

    def _current_suffix(self) -> str:
        suffix = self.format_combo.currentData()
        return suffix if isinstance(suffix, str) else ".blf"

    def _on_path_changed(self, text: str) -> None:
        index = _SUFFIX_INDEX.get(log_suffix(Path(text.strip()))) if text.strip() else None
        if index is None:
            index = -1
        if index != self.format_combo.currentIndex():
            self.format_combo.blockSignals(True)  # the path already has the right suffix
            self.format_combo.setCurrentIndex(index)
            self.format_combo.blockSignals(False)

    def _on_format_changed(self, index: int) -> None:
        if index < 0:
            return
        suffix = FORMATS[index][1]
        text = self.path_edit.text().strip()
        if not text:
            self.path_edit.setText(str(self._proposed_path(suffix)))
            return
        path = Path(text)
        current = log_suffix(path)
        # Replace the format suffix (and a .gz after it); keep names like "run.2024.blf" intact.
        stem = text
        for ending in (f"{current}.gz", current):
            if current and text.lower().endswith(ending):
                stem = text[: -len(ending)]
                break
        self.path_edit.setText(stem + suffix)

    def _on_browse_clicked(self) -> None:
        filters = ";;".join(f"{label} (*{suffix})" for label, suffix in FORMATS)
        selected = next(
            (f"{label} (*{suffix})" for label, suffix in FORMATS if suffix == self._current_suffix()), ""
        )
        start = self.path_edit.text().strip() or str(self._proposed_path(self._current_suffix()))
        path, chosen_filter = QFileDialog.getSaveFileName(self, "Record to", start, filters, selected)
        if not path:
            return
        if not log_suffix(Path(path)):
            # The dialog may return a bare name: add the suffix of the chosen filter.
            chosen = next(
                (s for label, s in FORMATS if chosen_filter.startswith(label)), self._current_suffix()
            )
            path += chosen
        self.path_edit.setText(path)

    def _on_recent_double_clicked(self, row: int, _column: int) -> None:
        item = self.recent_table.item(row, 0)
        if item is None:
            return
        path = str(item.data(Qt.ItemDataRole.UserRole))
        if not Path(path).exists():
            self._show_message(f"{path} no longer exists (moved or deleted).", ERROR_COLOUR)
            return
        self.recording_activated.emit(path)
