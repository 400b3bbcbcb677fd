"""The customer report's HTML: contents, escaping and the before/after section."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from report_sample import VIN, after_repair_scan, sample_scan

from workshop_app.core.diag.dtc import CONFIRMED, Dtc, parse_sae
from workshop_app.core.diag.model import ScanResult, compare_scans
from workshop_app.core.diag.report import report_html


class _Text(HTMLParser):
    """The visible text of a page, and every tag and attribute, to check what a reader sees."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("style", "script", "title"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "title"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _read(page: str) -> tuple[str, list[tuple[str, dict[str, str | None]]]]:
    parser = _Text()
    parser.feed(page)
    return re.sub(r"\s+", " ", " ".join(parser.parts)), parser.tags


def test_report_lists_the_vehicle_every_code_and_its_freeze_frame():
    scan = sample_scan()
    page = report_html(scan, workshop="Müller & Sons")
    text, tags = _read(page)
    assert page.startswith("<!DOCTYPE html>")
    assert "Müller &amp; Sons" in page and "Müller & Sons" in text
    assert VIN in text and "2021 Workshop Sedan 1.6" in text and "48,213 km" in text
    assert "Check before repair" in text
    for ecu in scan.ecus:
        for dtc in ecu.dtcs:
            assert dtc.sae in text and dtc.hex in text and dtc.description in text
            assert dtc.status_text() in text
    assert "Engine coolant temperature sensor circuit high" in text
    for shown in (
        "Coolant temperature -40 °C",
        "Engine speed 812 rpm",
        "Battery voltage 13.9 V",
        "Odometer 48213.4 km",
    ):
        assert shown in text
    assert "Vehicle speed 37 km/h" in text
    # Identification for the parts counter, without repeating the VIN per ECU.
    for value in ("04E906027JT", "SW 5120", "H13", "VWX7Z0H3K9L1", "Bosch"):
        assert value in text
    assert text.count(VIN) == 1
    # Summary tiles: 5 ECUs, 2 with faults, 2 codes, lamp on; GW named as silent.
    assert re.search(r"Control units checked 5 With faults 2 Fault codes 2 Engine warning lamp ON", text)
    assert "Did not respond: Gateway (GW)" in text
    assert "Warning lamp on" in text and "Intermittent (pending)" in text
    assert "3" in text  # P0118's occurrence counter from the extended data
    # Self-contained: nothing fetched from elsewhere.
    assert not [t for t, a in tags if t in ("link", "script", "img", "iframe")]
    assert "http" not in page and "url(" not in page
    assert "@page" in page and "A4" in page


def test_text_from_the_vehicle_is_escaped():
    scan = sample_scan()
    scan.ecus[0].dtcs[0].description = "<script>alert('x')</script> & more"
    scan.ecus[0].identification["Supplier"] = '"><img src=x>'
    scan.vehicle = "<b>Car</b>"
    page = report_html(scan, workshop="<i>Shop</i>")
    assert "<script>" not in page and "<img" not in page and "<b>Car" not in page and "<i>Shop" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in page
    text, tags = _read(page)
    assert "<script>alert('x')</script> & more" in text
    assert [t for t, _ in tags if t in ("script", "img", "i")] == []


def test_before_and_after_section():
    before, after = sample_scan(), after_repair_scan()
    text, _ = _read(report_html(before, after=after))
    start = text.index("Before and after")
    section = text[start : text.index("Control units", start)]
    assert "1 cleared, 1 still present, 1 new" in section
    assert re.search(
        r"P0118 Engine control module \(ECM\) Engine coolant .* Cleared – no longer reported", section
    )
    assert re.search(r"C0035 Anti-lock brakes \(ABS\) Left front .* Still present", section)
    assert re.search(
        r"U0100 Transmission control module \(TCM\) Lost communication .* New since the first check", section
    )
    assert "48,221 km" in section
    # A ready-made comparison (e.g. against the previous stored scan) gives the same list.
    text2, _ = _read(report_html(before, comparison=compare_scans(before, after)))
    assert "1 cleared, 1 still present, 1 new" in text2 and "previous check" in text2
    assert "Before and after" not in _read(report_html(before))[0]


def test_a_clean_car_and_obd_codes():
    clean = sample_scan()
    for ecu in clean.ecus:
        ecu.dtcs = []
    text, _ = _read(report_html(clean))
    assert "No fault codes were stored in the 5 control units checked" in text
    assert "Engine warning lamp off" in text
    bare = ScanResult(
        started=0.0, obd_dtcs=[Dtc(parse_sae("P0300"), CONFIRMED, "Random misfire", source="obd")]
    )
    text, _ = _read(report_html(bare))
    assert "Not read" in text and "Not identified" in text and "not recorded" in text
    assert "Emission-related codes (OBD)" in text and "P0300" in text and "Random misfire" in text
