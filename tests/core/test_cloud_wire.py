"""The cloud link's frame batches and topic names."""

from __future__ import annotations

import pytest

from workshop_app.core.cloud import messages, topics
from workshop_app.core.cloud.wire import (
    FrameBatch,
    SequenceTracker,
    WireError,
    decode_batch,
    encode_batch,
    wire_size,
)
from workshop_app.core.types import Frame

VIN = "WSADEM5T2T0000421"  # the simulated car


def _frames() -> list[Frame]:
    return [
        Frame(1700000000.000100, 0x123, bytes(range(8))),
        Frame(1700000000.000350, 0x18DAF110, b"\x02\x10\x03", is_extended=True, is_rx=False),
        Frame(1700000000.001, 0x7E8, bytes(64), is_fd=True, bitrate_switch=True, error_state_indicator=True),
        Frame(1700000000.002, 0x200, b"", is_remote=True),
        Frame(1700000000.003, 0x0, b"", is_error=True),
    ]


def test_a_batch_round_trips_every_frame_field_and_timestamp_to_the_microsecond() -> None:
    batch = FrameBatch(session=7, seq=3, first_index=1000, channel="can1", frames=_frames(), dropped=12)
    back = decode_batch(encode_batch(batch))
    assert (back.session, back.seq, back.first_index, back.channel, back.dropped) == (7, 3, 1000, "can1", 12)
    assert len(back.frames) == len(batch.frames)
    for a, b in zip(batch.frames, back.frames, strict=True):
        assert abs(a.timestamp - b.timestamp) < 1e-6
        assert (a.arbitration_id, a.data, a.is_extended, a.is_fd, a.bitrate_switch) == (
            b.arbitration_id,
            b.data,
            b.is_extended,
            b.is_fd,
            b.bitrate_switch,
        )
        assert (a.error_state_indicator, a.is_remote, a.is_error, a.is_rx) == (
            b.error_state_indicator,
            b.is_remote,
            b.is_error,
            b.is_rx,
        )
        assert b.channel == "can1"


def test_a_classic_frame_costs_at_most_20_bytes_on_the_wire() -> None:
    frames = [Frame(1.0 + i / 4000, 0x100 + i % 50, bytes(8)) for i in range(400)]
    per_frame = (wire_size(frames) - wire_size([])) / len(frames)
    assert per_frame <= 20
    assert wire_size(frames) < 8 * 1024  # ~0.1 s of a saturated 500 kbit/s bus in one ~7 KB publish


@pytest.mark.parametrize("cut", [0, 10, 40, 60])
def test_a_truncated_batch_is_refused_naming_the_offset(cut: int) -> None:
    payload = encode_batch(FrameBatch(1, 1, 0, "can0", _frames()))
    with pytest.raises(WireError, match=r"truncated|offset"):
        decode_batch(payload[:cut])


def test_foreign_payloads_are_refused() -> None:
    with pytest.raises(WireError, match="magic"):
        decode_batch(b"XX" + bytes(60))
    payload = encode_batch(FrameBatch(1, 1, 0, "can0", _frames()))
    with pytest.raises(WireError, match="stray"):
        decode_batch(payload + b"\x00")


def test_the_tracker_counts_frames_lost_between_batches_and_ignores_repeats() -> None:
    tracker = SequenceTracker()
    frames = [Frame(1.0, 1, b"")] * 10
    assert tracker.feed(FrameBatch(5, 0, 0, "can0", frames)) == 0
    assert tracker.feed(FrameBatch(5, 1, 10, "can0", frames)) == 0
    assert tracker.feed(FrameBatch(5, 3, 30, "can0", frames)) == 10  # batch 2 never came
    assert tracker.feed(FrameBatch(5, 3, 30, "can0", frames)) == 0  # delivered twice
    assert tracker.feed(FrameBatch(9, 0, 0, "can0", frames, dropped=4)) == 0  # agent restarted
    assert (tracker.received, tracker.lost, tracker.duplicates, tracker.dropped_by_agent) == (40, 10, 10, 4)


def test_topics_stay_under_one_prefix_and_refuse_wildcards() -> None:
    assert topics.vehicle_topic(VIN, topics.FRAMES) == f"wsp/v1/{VIN}/frames"
    assert topics.reply_topic(VIN, "garage-1") == f"wsp/v1/{VIN}/reply/garage-1"
    assert topics.parse(f"wsp/v1/{VIN}/reply/garage-1") == (VIN, "reply", "garage-1")
    assert topics.all_vehicles(topics.HEALTH) == "wsp/v1/+/health"
    for bad in ("WDEMO+", "WDEMO00000000000#", "WDEMO/0000000000001", "WDEMO0000000000O1"):
        with pytest.raises(topics.TopicError):
            topics.vehicle_topic(bad, topics.FRAMES)
    with pytest.raises(topics.TopicError):
        topics.reply_topic(VIN, "GARAGE")  # a name without lower case could pass for a VIN
    with pytest.raises(topics.TopicError):
        topics.parse("wsp/v1/+/frames")


def test_messages_check_their_kind_and_version() -> None:
    route = messages.EcuRoute(0x7E0, 0x7E8)
    doc = messages.decode(messages.uds_request(route, b"\x22\xf1\x90", 2.0), expect=("uds",))
    assert messages.EcuRoute.from_json(doc["ecu"]) == route
    assert messages.hex_field(doc) == b"\x22\xf1\x90"
    with pytest.raises(messages.MessageError, match="kind"):
        messages.decode(messages.encode("pong", sent=1.0), expect=messages.KINDS_REQUEST)
    with pytest.raises(messages.MessageError, match="JSON"):
        messages.decode(b"\xff", expect=("uds",))
    with pytest.raises(messages.MessageError, match="CAN ids"):
        messages.EcuRoute.from_json({"tx": -1, "rx": 5})
