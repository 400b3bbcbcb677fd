"""Fleet rows from presence and health messages: parsing, attention and its order (pure functions)."""

from __future__ import annotations

import json

import pytest

from workshop_app.core.cloud.fleet import (
    FleetMessageError,
    VehicleStatus,
    assess,
    parse_health,
    parse_presence,
    sort_key,
)

VIN = "WSADEM5T2T0000421"


def _health(**fields: object) -> bytes:
    return json.dumps({"v": 1, "vin": VIN, **fields}).encode()


def test_a_full_summary_is_read_field_by_field():
    summary = parse_health(
        VIN,
        _health(
            time=1000.5,
            interval=30,
            dtcs=[
                {"ecu": "ECM", "sae": "P0301", "status": 0xAF},
                {"ecu": "ABS", "code": 0x5E1500, "status": 8},
            ],
            battery_v=12.4,
            odometer_km=48211,
            software={"TCM": "0200", "ECM": "0501"},
            frames={"sent": 10, "buffered": 0, "dropped": 7},
        ),
        received=2000.0,
    )
    assert summary.time == 1000.5
    assert summary.interval == 30.0
    assert summary.dtcs == ("ECM:P0301", "ABS:5E1500")
    assert summary.dtc_count == 2  # counted from the list when not given
    assert summary.mil  # status bit 7 of the misfire code
    assert summary.battery_v == 12.4
    assert summary.odometer_km == 48211.0
    assert summary.software == (("ECM", "0501"), ("TCM", "0200"))
    assert summary.frames_dropped == 7


def test_a_sparse_summary_leaves_the_unknown_unknown():
    summary = parse_health(VIN, _health(), received=2000.0)
    assert summary.time == 2000.0  # no time given: when it was received
    assert summary.dtc_count is None and summary.battery_v is None and not summary.mil
    assert summary.software == ()


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (_health(dtcs="P0301"), "'dtcs' must be a list"),
        (json.dumps({"vin": "WSADEM5T2T0000422"}).encode(), "names another vehicle"),
        (b"x" * 70_000, "over the"),
    ],
)
def test_a_malformed_summary_is_refused_in_one_plain_line(payload, words):
    with pytest.raises(FleetMessageError, match=words) as info:
        parse_health(VIN, payload, received=1.0)
    assert ("\n" not in str(info.value) and VIN in str(info.value)) or "bytes" in str(info.value)


def test_presence_words_and_json():
    assert parse_presence(VIN, b"online") == (True, None, None)
    assert parse_presence(VIN, b"offline") == (False, None, None)
    assert parse_presence(VIN, b'{"state": "online", "time": 5, "health_interval": 10}') == (True, 5.0, 10.0)
    assert parse_presence(VIN, b'{"online": false}')[0] is False
    with pytest.raises(FleetMessageError, match="neither online nor offline"):
        parse_presence(VIN, b'{"state": "sleeping"}')


def _row(vin: str, **fields: object) -> VehicleStatus:
    base: dict[str, object] = {"online": True, "presence": "online", "last_seen": 100.0}
    base.update(fields)
    return assess(VehicleStatus(vin=vin, **base))  # type: ignore[arg-type]


def test_attention_order_and_reasons():
    rows = [
        _row("A0000000000000001", last_seen=300.0),  # healthy, heard last
        _row("A0000000000000002", last_seen=200.0),  # healthy
        _row("A0000000000000003", battery_v=11.6),
        _row("A0000000000000004", dtc_count=1, dtcs=("ECM:P0301",)),
        _row("A0000000000000005", dtc_count=1, mil=True),
        _row("A0000000000000006", online=False, presence="offline", dtc_count=2),
        _row("A0000000000000007", online=False, presence="offline"),
        _row("A0000000000000008", battery_v=12.6, frames_dropped=40),
    ]
    order = [r.vin[-1] for r in sorted(rows, key=sort_key)]
    assert order == ["6", "5", "4", "3", "7", "8", "1", "2"]
    by_vin = {r.vin[-1]: r for r in rows}
    assert by_vin["6"].reasons == ("offline with 2 fault codes",)
    assert by_vin["5"].reasons == ("warning lamp (MIL) on", "1 fault code")
    assert by_vin["3"].reasons == ("battery low: 11.6 V",)
    assert by_vin["8"].reasons == ("agent dropped 40 frames (link outage)",)
    assert by_vin["1"].reasons == () and by_vin["1"].attention == 0


def test_silence_reads_as_not_heard_from_since():
    row = _row("A0000000000000009", online=False, presence="silent", last_seen=0.0)
    assert row.state_text.startswith("not heard from since ")
    assert row.reasons == (row.state_text,)
    assert row.as_dict()["state"] == row.state_text
