"""The customer report rendered to PDF by Qt, offscreen; the PDF's text read back."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from PySide6.QtGui import QTextDocument

from workshop_app.core.diag.report import report_html
from workshop_app.report_pdf import ReportError, write_report_pdf

pytestmark = pytest.mark.gui

SAMPLE = Path(__file__).resolve().parents[1] / "core" / "report_sample.py"


def _sample() -> ModuleType:
    # The sample scan lives with the core tests; this folder is not on their import path.
    spec = importlib.util.spec_from_file_location("report_sample_for_pdf", SAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pages(pdf: Path) -> int:
    # Page objects, not the /Pages tree node.
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf.read_bytes()))


def _text(pdf: Path, html: str) -> str:
    tool = shutil.which("pdftotext")
    if tool:
        done = subprocess.run(
            [tool, "-layout", str(pdf), "-"], capture_output=True, text=True, timeout=60, check=True
        )
        return done.stdout
    # Without poppler, at least check what Qt laid out from the same HTML.
    doc = QTextDocument()
    doc.setHtml(html)
    return doc.toPlainText()


def test_pdf_of_a_scan_with_before_and_after(qapp, tmp_path):
    sample = _sample()
    scan = sample.sample_scan()
    html = report_html(scan, after=sample.after_repair_scan(), workshop="Müller & Sons Auto Repair")
    pdf = write_report_pdf(html, tmp_path / "out" / "report.pdf")
    assert pdf == tmp_path / "out" / "report.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    pages = _pages(pdf)
    assert pages >= 1
    text = _text(pdf, html)
    for code in ("P0118", "C0035", "U0100", "011800", "403500"):
        assert code in text
    assert sample.VIN in text and "Müller & Sons Auto Repair" in text
    assert "Engine coolant temperature sensor" in text and "-40 °C" in text and "13.9 V" in text
    if shutil.which("pdftotext"):
        assert f"Page {pages} of {pages}" in text  # the footer on every page


def test_pdf_without_an_application_creates_one(tmp_path):
    # The CLI has no Qt application; the writer must make its own.
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(SAMPLE.parent)!r})\n"
        "from PySide6.QtGui import QGuiApplication\n"
        "assert QGuiApplication.instance() is None\n"
        "from report_sample import sample_scan\n"
        "from workshop_app.core.diag.report import report_html\n"
        "from workshop_app.report_pdf import write_report_pdf\n"
        f"print(write_report_pdf(report_html(sample_scan()), {str(tmp_path / 'cli.pdf')!r}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "cli.pdf").read_bytes().startswith(b"%PDF")


def test_an_unwritable_place_is_a_clear_error(qapp, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ReportError, match=r"file/x\.pdf"):
        write_report_pdf("<p>x</p>", blocker / "x.pdf")
