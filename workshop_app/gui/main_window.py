"""MainWindow: the trace of every message and a status bar, over one CaptureSession."""

from __future__ import annotations

from PySide6.QtGui import QCloseEvent, QKeySequence
from PySide6.QtWidgets import QHeaderView, QLabel, QLineEdit, QMainWindow, QTableView, QVBoxLayout, QWidget

from workshop_app.core.session import CaptureSession
from workshop_app.gui.bridge import CaptureBridge
from workshop_app.gui.trace_model import TraceModel


class MainWindow(QMainWindow):
    def __init__(self, session: CaptureSession) -> None:
        super().__init__()
        self.session = session
        self.setWindowTitle(f"Workshop — {session.source.describe()}")
        self.resize(1280, 760)

        self.trace_model = TraceModel(session)
        self.trace_view = QTableView()
        self.trace_view.setModel(self.trace_model)
        self.trace_view.setAlternatingRowColors(True)
        self.trace_view.verticalHeader().setVisible(False)
        self.trace_view.verticalHeader().setDefaultSectionSize(22)
        self.trace_view.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        header = self.trace_view.horizontalHeader()
        header.setStretchLastSection(True)
        for col, width in enumerate((60, 80, 190, 80, 80, 80, 40, 200)):
            header.resizeSection(col, width)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)

        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter by id or message name (Ctrl+F)")
        self.filter_edit.textChanged.connect(self._on_filter_changed)
        find = self.addAction("Find")
        find.setShortcut(QKeySequence.StandardKey.Find)
        find.triggered.connect(self.filter_edit.setFocus)

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addWidget(self.filter_edit)
        layout.addWidget(self.trace_view)
        self.setCentralWidget(central)

        self.source_label = QLabel(session.source.describe())
        self.rate_label = QLabel()
        self.dropped_label = QLabel()
        for label in (self.source_label, self.rate_label, self.dropped_label):
            self.statusBar().addPermanentWidget(label)

        self.bridge = CaptureBridge(session, self)
        self.bridge.ticked.connect(self._on_ticked)
        self.bridge.source_failed.connect(self._on_source_failed)

    def start(self) -> None:
        self.session.start()
        self.bridge.start()

    def _on_ticked(self, _frames: int) -> None:
        self.trace_model.refresh()
        self._apply_filter()
        st = self.session.stats
        self.rate_label.setText(f"{st.frames_per_second:,.0f} frames/s · {st.frames:,} frames")
        self.dropped_label.setText(f"backlog {st.backlog} · dropped {st.dropped}")

    def _on_filter_changed(self, _text: str) -> None:
        self._apply_filter()

    def _apply_filter(self) -> None:
        text = self.filter_edit.text().strip().lower()
        model = self.trace_model
        for row in range(model.rowCount()):
            if not text:
                hidden = False
            else:
                ident = str(model.index(row, 1).data()).lower()
                name = str(model.index(row, 2).data()).lower()
                hidden = text not in ident and text not in name
            if self.trace_view.isRowHidden(row) != hidden:
                self.trace_view.setRowHidden(row, hidden)

    def _on_source_failed(self, message: str) -> None:
        self.statusBar().showMessage(f"Connection lost: {message}")
        self.source_label.setText(f"{self.session.source.describe()} (disconnected)")
        self.source_label.setStyleSheet("color: #b42318")

    def closeEvent(self, event: QCloseEvent) -> None:
        self.bridge.stop()
        self.session.stop()
        super().closeEvent(event)
