"""A realistic scan for the history and report tests: ECM and ABS with faults, GW silent."""

from __future__ import annotations

from workshop_app.core.diag.dtc import (
    CONFIRMED,
    FAILED_SINCE_CLEAR,
    PENDING,
    TEST_FAILED,
    TEST_FAILED_THIS_CYCLE,
    WARNING_INDICATOR,
    Dtc,
    SnapshotValue,
    parse_sae,
)
from workshop_app.core.diag.model import EcuResult, ScanLabel, ScanResult

STARTED = 1_750_000_000.5  # 2025-06-15 15:06:40 UTC
VIN = "WSADEM5T2T0000421"  # the demo vehicle's: ISO 3779 form, check digit right


def coolant_dtc() -> Dtc:
    return Dtc(
        parse_sae("P0118"),
        TEST_FAILED | TEST_FAILED_THIS_CYCLE | CONFIRMED | FAILED_SINCE_CLEAR | WARNING_INDICATOR,
        "Engine coolant temperature sensor circuit high",
        snapshots={
            1: [
                SnapshotValue("Coolant temperature", -40, "°C", 0x0105),
                SnapshotValue("Engine speed", 812.0, "rpm", 0x010C),
                SnapshotValue("Battery voltage", 13.9, "V", 0x0142),
                SnapshotValue("Odometer", 48213.4, "km", 0xF40D),
            ]
        },
        extended={
            1: [SnapshotValue("Occurrence counter", 3, "", None)],
            2: [SnapshotValue("Aging counter", 0, "", None), SnapshotValue("Last seen", "cycle 412", "")],
        },
    )


def abs_dtc() -> Dtc:
    return Dtc(
        parse_sae("C0035"),
        PENDING | TEST_FAILED_THIS_CYCLE,
        "Left front wheel speed sensor circuit",
        snapshots={1: [SnapshotValue("Vehicle speed", 37, "km/h", 0x010D)]},
    )


def sample_scan(*, started: float = STARTED, label: ScanLabel = ScanLabel.PRE_REPAIR) -> ScanResult:
    """ECM P0118 (confirmed, MIL), ABS C0035 (pending), TCM and BCM fine, gateway missing."""
    return ScanResult(
        started=started,
        seconds=8.25,
        vin=VIN,
        vehicle="2021 Workshop Sedan 1.6",
        mileage_km=48213.4,
        label=label,
        connection="pcan PCAN_USBBUS1, 500 kbit/s",
        ecus=[
            EcuResult(
                "ECM",
                "0x7E0/0x7E8",
                "Engine control module",
                responded=True,
                identification={
                    "VIN": VIN,
                    "Part number": "04E906027JT",
                    "Software version": "SW 5120",
                    "Hardware version": "H13",
                    "Serial number": "VWX7Z0H3K9L1",
                    "Supplier": "Bosch",
                },
                dtcs=[coolant_dtc()],
                seconds=2.1,
            ),
            EcuResult(
                "ABS",
                "0x760/0x768",
                "Anti-lock brakes",
                responded=True,
                identification={"Part number": "5Q0907379AP", "Software version": "0520", "Supplier": "TRW"},
                dtcs=[abs_dtc()],
                seconds=1.4,
            ),
            EcuResult(
                "TCM",
                "0x7E1/0x7E9",
                "Transmission control module",
                responded=True,
                identification={"Part number": "0CW300041H", "Software version": "4017"},
                seconds=0.9,
            ),
            EcuResult(
                "BCM",
                "0x740/0x748",
                "Body control module",
                responded=True,
                identification={"Part number": "5Q0937084CQ", "Hardware version": "H31"},
                seconds=0.8,
            ),
            EcuResult(
                "GW",
                "0x710/0x77A",
                "Gateway",
                responded=False,
                problems=["no answer to DiagnosticSessionControl within 1 s"],
                seconds=3.0,
            ),
        ],
    )


def after_repair_scan(*, started: float = STARTED + 3600) -> ScanResult:
    """The same car after the coolant sensor was replaced: P0118 gone, C0035 still, a new U0100."""
    scan = sample_scan(started=started, label=ScanLabel.POST_REPAIR)
    ecm = scan.ecu("ECM")
    abs_ = scan.ecu("ABS")
    tcm = scan.ecu("TCM")
    assert ecm is not None and abs_ is not None and tcm is not None
    ecm.dtcs = []
    abs_.dtcs = [abs_dtc()]
    tcm.dtcs = [Dtc(parse_sae("U0100"), PENDING, "Lost communication with engine control module")]
    scan.mileage_km = 48221.0
    return scan
