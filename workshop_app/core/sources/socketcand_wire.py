"""The client side of the socketcand ASCII protocol, pure: text in, python-can messages out, and back.

No sockets and no threads here, so every rule is tested with literal strings; the bus in
:mod:`workshop_app.core.sources.socketcand_client` feeds it whole socket reads.

Received elements (raw mode)::

    < frame ID SECONDS.USEC HEXDATA >            classic frame (ID: 3 hex digits, or 8 = extended)
    < fdframe ID FLAGS SECONDS.USEC HEXDATA >    CAN FD frame (FLAGS: 0x01 bit rate switch, 0x02 ESI)
    < rtr ID SECONDS.USEC DLC >                  remote frame (the workshop simulator sends these)
    < error CLASS SECONDS.USEC [B0 B1 ...] >     error frame (data bytes only in BCM mode)
    < echo >  < ok >  < error TEXT >             keep-alive answer, command answers, complaints

Data bytes may come joined (``1122AB``, raw mode) or spaced (``11 22 AB``, BCM mode); both parse.

Speed matters more than elegance here: a saturated 1 Mbit/s bus is ~8,700 elements a second
per bus. :func:`parse_elements` cuts a whole read with one ``str.split('>')`` and each element
with one ``str.split()``; int/float/``bytearray.fromhex`` do the digits in C.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import can

SFF_MASK = 0x7FF
EFF_MASK = 0x1FFFFFFF
CANFD_BRS = 0x01
CANFD_ESI = 0x02
FD_LENGTHS = frozenset((*range(9), 12, 16, 20, 24, 32, 48, 64))


@dataclass(slots=True)
class Parsed:
    """What one chunk of complete elements held besides frames (frames go to ``messages``)."""

    messages: list[can.Message] = field(default_factory=list)
    fd_frames: int = 0
    echoes: int = 0
    oks: int = 0
    # ``< error TEXT >`` answers of the server (not error frames), in order
    complaints: list[str] = field(default_factory=list)
    # elements that are not socketcand at all (quoted for a log line)
    malformed: list[str] = field(default_factory=list)


def _is_stamp(token: str) -> bool:
    head, dot, tail = token.partition(".")
    return bool(dot) and head.isdigit() and tail.isdigit()


def _hex_data(tokens: list[str]) -> bytearray:
    # Joined (raw mode) or one token per byte (BCM mode): the same bytes either way.
    return bytearray.fromhex(tokens[0] if len(tokens) == 1 else "".join(tokens))


def parse_elements(text: str, channel: str | None = None) -> Parsed:
    """Parse complete elements (``text`` ends at a ``>``, or holds none) into messages.

    Text before an element's ``<`` and an element that does not parse are counted in
    ``malformed`` and skipped, so one bad line never costs the frames around it.

    >>> p = parse_elements("< frame 123 1.500000 11AA >< fdframe 0000ABCD 01 2.000000 " + "00" * 12 + " >")
    >>> [(hex(m.arbitration_id), m.is_extended_id, m.is_fd, m.bitrate_switch, len(m.data)) for m in p.messages]
    [('0x123', False, False, False, 2), ('0xabcd', True, True, True, 12)]
    """
    parsed = Parsed()
    out = parsed.messages
    message = can.Message
    fd_frames = 0
    for element in text.split(">"):
        parts = element.split()
        if len(parts) < 2 or parts[0] != "<":
            if not parts:
                continue
            at = element.find("<")
            # Stray text before an element is reported; the element after it still counts.
            parsed.malformed.append(element[:at].strip()[:60] if at > 0 else element.strip()[:60])
            parts = element[at + 1 :].split() if at >= 0 else []
            if not parts:
                continue
            parts.insert(0, "<")
        kind = parts[1]
        try:
            if kind == "frame":
                ident = parts[2]
                out.append(
                    message(
                        float(parts[3]),
                        int(ident, 16),
                        len(ident) == 8,
                        False,
                        False,
                        channel,
                        None,
                        _hex_data(parts[4:]) if len(parts) > 4 else None,
                    )
                )
            elif kind == "fdframe":
                ident = parts[2]
                flags = int(parts[3], 16)
                data = _hex_data(parts[5:]) if len(parts) > 5 else bytearray()
                if len(data) not in FD_LENGTHS:
                    raise ValueError("not a CAN FD length")
                out.append(
                    message(
                        float(parts[4]),
                        int(ident, 16),
                        len(ident) == 8,
                        False,
                        False,
                        channel,
                        None,
                        data,
                        True,
                        True,
                        bool(flags & CANFD_BRS),
                        bool(flags & CANFD_ESI),
                    )
                )
                fd_frames += 1
            elif kind == "echo":
                parsed.echoes += 1
            elif kind == "ok":
                parsed.oks += 1
            elif kind == "rtr":
                ident = parts[2]
                out.append(
                    can.Message(
                        timestamp=float(parts[3]),
                        arbitration_id=int(ident, 16),
                        is_extended_id=len(ident) == 8,
                        is_remote_frame=True,
                        dlc=int(parts[4]) if len(parts) > 4 else 0,
                        channel=channel,
                    )
                )
            elif kind == "error":
                if len(parts) >= 4 and _is_stamp(parts[3]):
                    # An error frame: CLASS is the error class of SocketCAN's error frame id.
                    out.append(
                        can.Message(
                            timestamp=float(parts[3]),
                            arbitration_id=int(parts[2], 16) & EFF_MASK,
                            is_extended_id=False,
                            is_error_frame=True,
                            data=_hex_data(parts[4:]) if len(parts) > 4 else None,
                            channel=channel,
                        )
                    )
                else:
                    parsed.complaints.append(" ".join(parts[2:]))
            else:
                parsed.malformed.append(element.strip()[:60])
        except (ValueError, IndexError):
            parsed.malformed.append(element.strip()[:60])
    parsed.fd_frames = fd_frames
    return parsed


def format_send(msg: can.Message) -> str:
    """The element that transmits ``msg``: ``send``, ``fdsend`` or ``sendrtr``.

    Lengths are decimal, as socketcand reads them (``%hhu``); data bytes are hex. A frame of
    more than 8 bytes, or one marked ``is_fd``, goes as ``fdsend`` with its BRS/ESI flags.

    >>> format_send(can.Message(arbitration_id=0x7E0, is_extended_id=False, data=b"\\x02\\x10\\x03"))
    '< send 7E0 3 02 10 03 >'

    Raises:
        ValueError: an error frame (nothing can send one), or a length no CAN frame has.
    """
    if msg.is_error_frame:
        raise ValueError("an error frame cannot be sent")
    if msg.is_extended_id:
        ident = f"{msg.arbitration_id & EFF_MASK:08X}"
    else:
        if msg.arbitration_id > SFF_MASK:
            raise ValueError(f"standard id {msg.arbitration_id:X} is over 7FF (mark it extended)")
        ident = f"{msg.arbitration_id:03X}"
    if msg.is_remote_frame:
        if not 0 <= msg.dlc <= 8:
            raise ValueError(f"remote frame DLC {msg.dlc} is not 0..8")
        return f"< sendrtr {ident} {msg.dlc} >"
    data = bytes(msg.data)
    size = len(data)
    spaced = " ".join(f"{b:02X}" for b in data)
    tail = f" {spaced} >" if size else " >"
    if msg.is_fd or size > 8:
        if size not in FD_LENGTHS:
            raise ValueError(f"{size} bytes is not a CAN FD frame length")
        flags = (CANFD_BRS if msg.bitrate_switch else 0) | (CANFD_ESI if msg.error_state_indicator else 0)
        return f"< fdsend {ident} {flags:02X} {size}{tail}"
    return f"< send {ident} {size}{tail}"
