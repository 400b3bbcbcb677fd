"""The client side of the socketcand protocol with literal strings: what we parse and what we send."""

from __future__ import annotations

import can
import pytest

from workshop_app.core.sim.socketcand_protocol import parse_fdsend, parse_send, parse_sendrtr
from workshop_app.core.sources.socketcand_wire import format_send, parse_elements


def test_classic_frames_standard_extended_and_empty():
    p = parse_elements(
        "< frame 7FF 1700000000.000001 0102030405060708 >"
        "< frame 1FFFFFFF 1700000000.5 AA >"
        "< frame 000 12.000000  >"
        "< frame 00000000 13.25 >"
    )
    got = [
        (m.timestamp, m.arbitration_id, m.is_extended_id, bytes(m.data), m.dlc, m.is_fd) for m in p.messages
    ]
    assert got == [
        (1700000000.000001, 0x7FF, False, bytes(range(1, 9)), 8, False),
        (1700000000.5, 0x1FFFFFFF, True, b"\xaa", 1, False),
        (12.0, 0x000, False, b"", 0, False),
        (13.25, 0x0, True, b"", 0, False),
    ]
    assert p.fd_frames == 0 and not p.malformed and not p.complaints


@pytest.mark.parametrize(
    ("flags", "brs", "esi"),
    [("00", False, False), ("01", True, False), ("02", False, True), ("03", True, True)],
)
def test_fd_frames_carry_their_flags_and_every_length(flags, brs, esi):
    text = "".join(
        f"< fdframe {0x100 + n:03X} {flags} 5.{n:06d} {bytes(range(n)).hex().upper()} >"
        for n in (0, 1, 8, 12, 16, 20, 24, 32, 48, 64)
    )
    p = parse_elements(text, "fd0")
    assert [len(m.data) for m in p.messages] == [0, 1, 8, 12, 16, 20, 24, 32, 48, 64]
    for m in p.messages:
        assert m.is_fd and m.bitrate_switch is brs and m.error_state_indicator is esi
        assert bytes(m.data) == bytes(range(len(m.data)))
        assert m.channel == "fd0" and m.is_rx
    assert p.fd_frames == 10


def test_remote_and_error_frames():
    p = parse_elements("< rtr 123 1.000000 5 >< rtr 18DAF110 2.000000 0 >< error 004 3.000000 >")
    rtr, rtr_ext, err = p.messages
    assert (rtr.is_remote_frame, rtr.arbitration_id, rtr.dlc, rtr.is_extended_id) == (True, 0x123, 5, False)
    assert (rtr_ext.is_remote_frame, rtr_ext.arbitration_id, rtr_ext.is_extended_id) == (
        True,
        0x18DAF110,
        True,
    )
    assert (err.is_error_frame, err.arbitration_id, err.timestamp) == (True, 0x004, 3.0)


def test_bcm_style_spaced_bytes_parse_the_same():
    p = parse_elements("< frame 123 1.000000 11 22 AB >< error 020 2.000000 00 04 00 00 00 00 00 00  >")
    assert bytes(p.messages[0].data) == b"\x11\x22\xab"
    assert p.messages[1].is_error_frame and bytes(p.messages[1].data) == b"\x00\x04" + bytes(6)


def test_answers_are_counted_not_frames():
    p = parse_elements("< echo >< ok >< error unknown command >< error bus busy: 1000 frames wait >< echo >")
    assert p.messages == []
    assert (p.echoes, p.oks) == (2, 1)
    assert p.complaints == ["unknown command", "bus busy: 1000 frames wait"]


def test_a_bad_element_costs_only_itself():
    p = parse_elements(
        "< frame 100 1.0 01 >"
        "< frame XYZ 1.0 01 >"  # bad id
        "< fdframe 101 01 1.0 0102030405060708090A >"  # 10 bytes: no CAN FD length
        "garbage< frame 102 1.0 02 >"  # the text before '<' is counted, the frame kept
        "< frame 103 >"  # no stamp
        "< nonsense >"
        "< frame 104 1.0 04 >"
    )
    assert [m.arbitration_id for m in p.messages] == [0x100, 0x102, 0x104]
    assert len(p.malformed) == 5 and "garbage" in p.malformed


def test_send_elements_in_socketcand_form():
    assert format_send(can.Message(arbitration_id=0x7E0, is_extended_id=False, data=b"\x02\x10\x03")) == (
        "< send 7E0 3 02 10 03 >"
    )
    assert format_send(can.Message(arbitration_id=0x1F, is_extended_id=False)) == "< send 01F 0 >"
    assert format_send(can.Message(arbitration_id=0x18DA10F1, data=b"\xff")) == "< send 18DA10F1 1 FF >"
    fd = can.Message(
        arbitration_id=0x123, is_extended_id=False, is_fd=True, bitrate_switch=True, data=bytes(12)
    )
    assert format_send(fd) == "< fdsend 123 01 12 " + " ".join(["00"] * 12) + " >"
    esi = can.Message(
        arbitration_id=0x123, is_extended_id=False, is_fd=True, error_state_indicator=True, data=b"\x01"
    )
    assert format_send(esi) == "< fdsend 123 02 1 01 >"
    rtr = can.Message(arbitration_id=0x321, is_extended_id=False, is_remote_frame=True, dlc=4)
    assert format_send(rtr) == "< sendrtr 321 4 >"


def test_what_we_send_is_what_the_server_reads():
    # The simulator's own parser (core/sim/socketcand_protocol.py) reads our elements back.
    sent = [
        can.Message(arbitration_id=0x7FF, is_extended_id=False, data=bytes(range(8))),
        can.Message(arbitration_id=0x1ABCDEF0, data=bytes(range(64)), is_fd=True, bitrate_switch=True),
        can.Message(
            arbitration_id=0x010, is_extended_id=False, data=bytes(48), is_fd=True, error_state_indicator=True
        ),
    ]
    for msg in sent:
        words = format_send(msg)[2:-2].split()
        back = (parse_fdsend if words[0] == "fdsend" else parse_send)(words[1:])
        assert (back.arbitration_id, back.is_extended_id, bytes(back.data), back.is_fd) == (
            msg.arbitration_id,
            msg.is_extended_id,
            bytes(msg.data),
            msg.is_fd,
        )
        assert (back.bitrate_switch, back.error_state_indicator) == (
            msg.bitrate_switch,
            msg.error_state_indicator,
        )
    rtr = parse_sendrtr(
        format_send(can.Message(arbitration_id=0x55, is_extended_id=False, is_remote_frame=True, dlc=3))[
            2:-2
        ].split()[1:]
    )
    assert rtr.is_remote_frame and rtr.dlc == 3


@pytest.mark.parametrize(
    ("msg", "words"),
    [
        (can.Message(arbitration_id=0x4, is_error_frame=True), "error frame cannot be sent"),
        (can.Message(arbitration_id=0x800, is_extended_id=False), "over 7FF"),
        (
            can.Message(arbitration_id=0x1, is_extended_id=False, is_fd=True, data=bytes(10)),
            "10 bytes is not a CAN FD",
        ),
        (can.Message(arbitration_id=0x1, is_extended_id=False, is_remote_frame=True, dlc=9), "DLC 9"),
    ],
)
def test_frames_that_cannot_be_sent_say_why(msg, words):
    with pytest.raises(ValueError, match=words):
        format_send(msg)
