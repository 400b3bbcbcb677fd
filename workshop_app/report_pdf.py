"""The customer report as a PDF: Qt's text engine lays out the report's HTML on A4 pages.

Kept outside workshop_app/core because it needs Qt; the HTML itself comes from the Qt-free
``workshop_app.core.diag.report``. Works without a display (``QT_QPA_PLATFORM=offscreen``).
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QMarginsF, QRectF, QSizeF, Qt
from PySide6.QtGui import (
    QFont,
    QFontMetricsF,
    QGuiApplication,
    QPageLayout,
    QPageSize,
    QPainter,
    QPdfWriter,
    QTextDocument,
    QTextFormat,
)

from workshop_app.core.errors import WorkshopError

RESOLUTION = 300  # dpi: fine enough for print, small enough for quick layout
MARGINS_MM = QMarginsF(15, 15, 15, 12)
FOOTER_MM = 8.0  # room kept at the bottom of each page for the page number


class ReportError(WorkshopError):
    """The PDF report could not be written."""


_app: QGuiApplication | None = None  # the application made here, kept alive for the process


def _ensure_app() -> None:
    # Fonts and the text layout need a Gui application; the CLI has none of its own.
    global _app
    if QGuiApplication.instance() is None:
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            # A terminal without a screen (a server, CI): Qt would abort looking for one.
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        _app = QGuiApplication([])


def _keep_tables_together(doc: QTextDocument, page_height: float) -> None:
    """Start a top-level table on a new page when it would straddle a page break but fits on one.

    The report puts each block that belongs together (an ECU with its codes, the summary) in
    one table; Qt itself would split them line by line.
    """
    layout = doc.documentLayout()
    for frame in doc.rootFrame().childFrames():
        doc.pageCount()  # finishes the layout after the previous change
        rect = layout.frameBoundingRect(frame)
        if rect.height() >= page_height:
            continue  # longer than a page: it has to be split anyway
        if int(rect.top() // page_height) != int((rect.bottom() - 1) // page_height):
            fmt = frame.frameFormat()
            fmt.setPageBreakPolicy(QTextFormat.PageBreakFlag.PageBreak_AlwaysBefore)
            frame.setFrameFormat(fmt)


def write_report_pdf(html: str, path: str | Path, *, title: str = "Diagnostic report") -> Path:
    """Render ``html`` (from ``report_html``) to an A4 PDF at ``path``, with "Page n of m" footers."""
    _ensure_app()
    target = Path(path).expanduser()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"{target}: cannot create its folder ({exc.strerror or exc})") from exc

    writer = QPdfWriter(str(target))
    writer.setResolution(RESOLUTION)
    writer.setTitle(title)
    writer.setCreator("workshop_app")
    writer.setPageLayout(
        QPageLayout(
            QPageSize(QPageSize.PageSizeId.A4),
            QPageLayout.Orientation.Portrait,
            MARGINS_MM,
            QPageLayout.Unit.Millimeter,
        )
    )
    # The painter's origin is the top left of the printable area, in device pixels.
    area = writer.pageLayout().paintRectPixels(RESOLUTION)
    footer = FOOTER_MM / 25.4 * RESOLUTION
    page = QSizeF(area.width(), area.height() - footer)

    doc = QTextDocument()
    # Laying out for the writer makes point sizes and 96-dpi pixel lengths (cellpadding) come out
    # at their real size on paper, instead of the screen's.
    doc.documentLayout().setPaintDevice(writer)
    font = QFont("DejaVu Sans")
    font.setPointSizeF(10)
    doc.setDefaultFont(font)
    doc.setDocumentMargin(0)
    doc.setHtml(html)
    doc.setPageSize(page)  # paginates: lines and table rows are not cut at a page edge
    _keep_tables_together(doc, page.height())
    pages = max(1, doc.pageCount())

    painter = QPainter()
    if not painter.begin(writer):
        raise ReportError(f"{target}: cannot be written (is the folder writable?)")
    try:
        small = QFont(font)
        small.setPointSizeF(8)
        line = QFontMetricsF(small, writer).height()
        for number in range(pages):
            if number:
                writer.newPage()
            painter.save()
            painter.translate(0, -number * page.height())
            doc.drawContents(painter, QRectF(0, number * page.height(), page.width(), page.height()))
            painter.restore()
            painter.setFont(small)
            painter.setPen(Qt.GlobalColor.darkGray)
            box = QRectF(0, area.height() - line, area.width(), line)
            painter.drawText(box, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, title)
            painter.drawText(
                box,
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                f"Page {number + 1} of {pages}",
            )
    finally:
        painter.end()
    if not target.is_file() or target.stat().st_size == 0:
        raise ReportError(f"{target}: the PDF was not written")
    return target
