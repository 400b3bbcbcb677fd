"""The Transmit panel's jobs table: one row per transmit job, repainted only where it changed."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from workshop_app.core.transmit_jobs import JobStatus, TransmitJob

__all__ = [
    "COLUMNS",
    "COL_CONTENT",
    "COL_EXT",
    "COL_FD",
    "COL_ID",
    "COL_JOB",
    "COL_PERIOD",
    "COL_SENT",
    "COL_STATUS",
    "TransmitJobsTable",
    "hex_bytes",
]

COLUMNS = ("Job", "ID", "Ext", "FD", "Data / signals", "Period", "Sent", "Status")
COL_JOB, COL_ID, COL_EXT, COL_FD, COL_CONTENT, COL_PERIOD, COL_SENT, COL_STATUS = range(len(COLUMNS))
_JOB_ROLE = Qt.ItemDataRole.UserRole
_STATUS_COLOURS = {
    JobStatus.RUNNING: QColor("#1a7f37"),
    JobStatus.DISCONNECTED: QColor("#d1242f"),
    JobStatus.FAILED: QColor("#d1242f"),
    JobStatus.STOPPED: QColor("#8c959f"),
}


def hex_bytes(data: bytes) -> str:
    return data.hex(" ").upper()


class TransmitJobsTable(QTableWidget):
    """Rows follow :meth:`show_jobs`; a row is refilled only when its job changed."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self._shown: dict[int, tuple[object, ...]] = {}
        self.setHorizontalHeaderLabels(COLUMNS)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(22)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        header = self.horizontalHeader()
        for column, width in ((COL_JOB, 44), (COL_ID, 86), (COL_EXT, 36), (COL_FD, 66)):
            header.resizeSection(column, width)
        header.setSectionResizeMode(COL_CONTENT, QHeaderView.ResizeMode.Stretch)
        for column, width in ((COL_PERIOD, 78), (COL_SENT, 64), (COL_STATUS, 150)):
            header.resizeSection(column, width)

    def show_jobs(self, jobs: list[TransmitJob]) -> None:
        """Show ``jobs`` in order, keeping the selection (cheap when nothing changed)."""
        selected = self.selected_job_ids()
        if [j.job_id for j in jobs] != [self.job_id_at(r) for r in range(self.rowCount())]:
            self.setRowCount(len(jobs))
            self._shown = {}
        for row, job in enumerate(jobs):
            key = (
                job.job_id,
                job.count,
                job.status,
                job.last_error,
                job.period,
                job.last_data,
                str(job.values),
            )
            if self._shown.get(job.job_id) != key:
                self._fill_row(row, job)
                self._shown[job.job_id] = key
        if selected != self.selected_job_ids():
            self.select_jobs(selected)

    def job_id_at(self, row: int) -> int | None:
        item = self.item(row, COL_JOB)
        return item.data(_JOB_ROLE) if item is not None else None

    def selected_job_ids(self) -> list[int]:
        rows = sorted({index.row() for index in self.selectionModel().selectedRows()})
        return [job_id for row in rows if (job_id := self.job_id_at(row)) is not None]

    def select_jobs(self, job_ids: list[int]) -> None:
        self.clearSelection()
        mode = self.selectionMode()
        self.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        for row in range(self.rowCount()):
            if self.job_id_at(row) in job_ids:
                self.selectRow(row)
        self.setSelectionMode(mode)

    def _fill_row(self, row: int, job: TransmitJob) -> None:
        width = 8 if job.is_extended else 3
        if job.message is not None:
            values = ", ".join(f"{k}={v}" for k, v in job.values.items())
            content = f"{job.message}: {values}" if values else job.message
        else:
            content = hex_bytes(job.frame.data) if job.frame is not None else ""
        fd = ("FD+BRS" if job.bitrate_switch else "FD") if job.is_fd else ""
        period = f"{job.period * 1000:g} ms" if job.period is not None else "once"
        cells = (
            str(job.job_id),
            f"{job.arbitration_id:0{width}X}",
            "✓" if job.is_extended else "",
            fd,
            content,
            period,
            f"{job.count:,}",
            job.status.value,
        )
        for column, text in enumerate(cells):
            item = self.item(row, column)
            if item is None:
                item = QTableWidgetItem()
                self.setItem(row, column, item)
            item.setText(text)
            if column in (COL_PERIOD, COL_SENT):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.item(row, COL_JOB).setData(_JOB_ROLE, job.job_id)
        status = self.item(row, COL_STATUS)
        colour = _STATUS_COLOURS.get(job.status)
        status.setForeground(QBrush(colour) if colour is not None else QBrush())
        status.setToolTip(job.last_error or "")
        last = hex_bytes(job.last_data) if job.last_data is not None else "nothing sent yet"
        self.item(row, COL_CONTENT).setToolTip(f"last data: {last}")
