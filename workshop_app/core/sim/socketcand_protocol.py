"""The socketcand ASCII protocol, pure: text in, python-can messages or errors out, and back.

No sockets and no threads here, so every rule is testable with literal strings. The server
(:mod:`workshop_app.core.sim.socketcand_server`) and its connections use these functions.

What a client sees
------------------
* ``< hi >`` on connect, then ``< open CHANNEL >`` answered by ``< ok >``. An unknown channel
  gets ``< error could not open bus >`` and the connection is closed, as socketcand does.
* ``< rawmode >`` → ``< ok >``. From then on every frame on the bus arrives as
  ``< frame ID SECONDS.USEC HEXDATA >`` (ID as 3 hex digits, or 8 for an extended id), error
  frames as ``< error CLASS SECONDS.USEC >`` and remote frames as ``< rtr ID SECONDS.USEC DLC >``.
  ``< bcmmode >`` stops the stream again. The broadcast-manager jobs of BCM mode (``add``,
  ``subscribe``, ``filter``, ...), ISO-TP and control mode are not implemented; they are
  answered with ``< error ... >``.
* Only in raw mode may a client transmit: ``< send ID LEN B0 B1 ... >``,
  ``< sendrtr ID DLC >`` and ``< fdsend ID FLAGS LEN B0 ... >``. A frame a client sends goes onto
  the bus and to every *other* raw-mode client, as a real bus would show it.
* ``< echo >`` → ``< echo >`` in every mode.
* Malformed input (text outside ``< >``, unknown commands, bad hex, wrong lengths) is answered
  with ``< error REASON >`` quoting the offending text (``<``, ``>`` and non-printable
  characters as ``\\xNN``); the connection stays usable.

CAN FD
------
python-can's client only understands ``< frame ... >`` (at most 8 bytes), so CAN FD frames are
sent as socketcand's ``< fdframe ID FLAGS SECONDS.USEC HEXDATA >`` (FLAGS: 0x01 bit rate
switch, 0x02 error state indicator) only to clients that want them: all clients when the
server is built with ``fd=True`` (what socketcand does on an FD interface), or a single client
after it sent the extension command ``< fdframes on >``. Every other client skips FD frames;
the skips are counted in ``fd_skipped``. A client may send FD frames with ``fdsend``;
``send`` with more than 8 bytes is also accepted as an FD frame without bit rate switch,
because that is what python-can's client writes for an FD message (length in hex).

Known limits
------------
* python-can's client reads the ``< ok >`` of ``< rawmode >`` with one ``recv`` and compares it
  verbatim, so a frame in the same read would break its handshake. Frames for a client are
  therefore held back (not dropped) for ``raw_start_delay`` seconds after that ``< ok >``.
* python-can's client writes a remote frame as ``< send ID DLC >`` without data bytes; that is
  malformed, the error reply makes its next ``recv`` raise ``CanError``.
* The bus must not hand our own transmissions back to us (python-can's default), otherwise
  the other clients would see client frames twice.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import can

SFF_MASK = 0x7FF
EFF_MASK = 0x1FFFFFFF
CANFD_BRS = 0x01
CANFD_ESI = 0x02
FD_LENGTHS = frozenset((*range(9), 12, 16, 20, 24, 32, 48, 64))

# An fdsend with 64 bytes is ~220 characters; anything far longer is garbage.
MAX_COMMAND_CHARS = 1024
# How much of an offending text an error reply repeats.
QUOTE_LIMIT = 40

BCM_COMMANDS = frozenset(("add", "update", "delete", "filter", "muxfilter", "subscribe", "unsubscribe"))

_HEX_ID = re.compile(r"[0-9A-Fa-f]{1,8}")
_HEX_BYTE = re.compile(r"[0-9A-Fa-f]{1,2}")
_NUMBER = re.compile(r"[0-9A-Fa-f]{1,3}")
_DLC = re.compile(r"[0-8]")


class ProtocolError(Exception):
    """A client command that cannot be carried out; the text goes back in ``< error ... >``.

    The text must already be safe inside an element: dynamic parts go through :func:`quote`.
    """


def quote(text: str, limit: int = QUOTE_LIMIT) -> str:
    """Quote client text for an error reply, readably and without ending the element.

    Printable ASCII stays as it is; ``<``, ``>`` and everything else become ``\\xNN`` escapes
    (a bare ``>`` would end the ``< error ... >`` element early), ``"`` and ``\\`` are
    backslash-escaped. Longer text is cut at ``limit`` characters and marked with ``...``:
    ``a>b`` is quoted as ``"a\\x3eb"``.
    """
    out = []
    for ch in text[:limit]:
        if ch in '"\\':
            out.append("\\" + ch)
        elif " " <= ch <= "~" and ch not in "<>":
            out.append(ch)
        elif ord(ch) <= 0xFF:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\u{ord(ch):04x}")
    return '"' + "".join(out) + '"' + ("..." if len(text) > limit else "")


def error_line(reason: str) -> str:
    """``< error REASON >``; a last guard keeps any stray bracket from ending it early."""
    safe = "".join(ch if " " <= ch <= "~" and ch not in "<>" else f"\\x{ord(ch) & 0xFF:02x}" for ch in reason)
    return f"< error {safe} >"


@dataclass(frozen=True, slots=True)
class Command:
    """One complete ``< ... >`` element, split into its words."""

    name: str
    args: list[str]


@dataclass(frozen=True, slots=True)
class BadInput:
    """Input that is not a command; ``reason`` is ready for :func:`error_line`."""

    reason: str


def split_commands(text: str) -> tuple[list[Command | BadInput], str]:
    """Cut received text into commands and complaints; return them and the unfinished rest.

    The rest (an opened ``<`` without its ``>`` yet) is to be prepended to the next read.
    """
    items: list[Command | BadInput] = []
    pos = 0
    while pos < len(text):
        start = text.find("<", pos)
        stray = text[pos:] if start < 0 else text[pos:start]
        if stray.strip():
            items.append(BadInput(f"text outside a command: {quote(stray.strip())}"))
        if start < 0:
            return items, ""
        end = text.find(">", start)
        if end < 0:
            if len(text) - start > MAX_COMMAND_CHARS:
                items.append(BadInput(f"command too long (over {MAX_COMMAND_CHARS} characters)"))
                return items, ""
            return items, text[start:]
        nested = text.rfind("<", start + 1, end)
        if nested >= 0:
            # The earlier '<' never got its '>': report it and carry on with the later one.
            items.append(BadInput(f"unterminated command {quote(text[start + 1 : nested].strip())}"))
            start = nested
        words = text[start + 1 : end].split()
        items.append(Command(words[0], words[1:]) if words else BadInput("empty command"))
        pos = end + 1
    return items, ""


def format_message(msg: can.Message) -> tuple[str, bool]:
    """Return the socketcand line for ``msg`` and whether it is a CAN FD frame."""
    stamp = f"{msg.timestamp:.6f}"
    if msg.is_error_frame:
        return f"< error {msg.arbitration_id & EFF_MASK:03X} {stamp} >", False
    if msg.is_extended_id:
        can_id = f"{msg.arbitration_id & EFF_MASK:08X}"
    else:
        can_id = f"{msg.arbitration_id & SFF_MASK:03X}"
    if msg.is_remote_frame:
        return f"< rtr {can_id} {stamp} {msg.dlc} >", False
    data = msg.data.hex().upper()
    if msg.is_fd or len(msg.data) > 8:
        flags = (CANFD_BRS if msg.bitrate_switch else 0) | (CANFD_ESI if msg.error_state_indicator else 0)
        return f"< fdframe {can_id} {flags:02X} {stamp} {data} >", True
    # With no data this leaves two spaces before '>', which python-can's parser needs.
    return f"< frame {can_id} {stamp} {data} >", False


def _parse_id(token: str) -> tuple[int, bool]:
    if not _HEX_ID.fullmatch(token):
        raise ProtocolError(f"bad CAN id {quote(token)}")
    value = int(token, 16)
    # socketcand's rule: exactly 8 digits means an extended id.
    if len(token) == 8:
        if value > EFF_MASK:
            raise ProtocolError(f"extended CAN id {quote(token)} out of range")
        return value, True
    if value > SFF_MASK:
        raise ProtocolError(f"standard CAN id {quote(token)} out of range (extended ids take 8 digits)")
    return value, False


def _parse_data(tokens: list[str]) -> bytes:
    for token in tokens:
        if not _HEX_BYTE.fullmatch(token):
            raise ProtocolError(f"bad data byte {quote(token)}")
    return bytes(int(token, 16) for token in tokens)


def _check_length(command: str, token: str, count: int) -> None:
    # socketcand reads the length in decimal, python-can's client writes it in hex; for 0..8
    # both agree, beyond that the number of data bytes decides.
    if not _NUMBER.fullmatch(token):
        raise ProtocolError(f"bad length {quote(token)} in {command}")
    if int(token, 16) != count and not (token.isdigit() and int(token) == count):
        raise ProtocolError(f"{command} length {quote(token)} does not match {count} data bytes")


def parse_send(args: list[str]) -> can.Message:
    """``< send ID LEN B0 B1 ... >``; more than 8 bytes is an FD frame without bit rate switch."""
    if len(args) < 2:
        raise ProtocolError("send needs an id and a length")
    can_id, extended = _parse_id(args[0])
    data = _parse_data(args[2:])
    _check_length("send", args[1], len(data))
    if len(data) not in FD_LENGTHS:
        raise ProtocolError(f"{len(data)} bytes is not a CAN frame length")
    return can.Message(
        timestamp=time.time(),
        arbitration_id=can_id,
        is_extended_id=extended,
        data=data,
        is_fd=len(data) > 8,
    )


def parse_sendrtr(args: list[str]) -> can.Message:
    """``< sendrtr ID DLC >``."""
    if len(args) != 2:
        raise ProtocolError("sendrtr needs an id and a dlc")
    can_id, extended = _parse_id(args[0])
    if not _DLC.fullmatch(args[1]):
        raise ProtocolError(f"bad dlc {quote(args[1])} in sendrtr")
    return can.Message(
        timestamp=time.time(),
        arbitration_id=can_id,
        is_extended_id=extended,
        is_remote_frame=True,
        dlc=int(args[1]),
    )


def parse_fdsend(args: list[str]) -> can.Message:
    """``< fdsend ID FLAGS LEN B0 ... >`` (FLAGS: 0x01 bit rate switch, 0x02 error state)."""
    if len(args) < 3:
        raise ProtocolError("fdsend needs an id, flags and a length")
    can_id, extended = _parse_id(args[0])
    if not _HEX_BYTE.fullmatch(args[1]):
        raise ProtocolError(f"bad flags {quote(args[1])} in fdsend")
    flags = int(args[1], 16)
    data = _parse_data(args[3:])
    _check_length("fdsend", args[2], len(data))
    if len(data) not in FD_LENGTHS:
        raise ProtocolError(f"{len(data)} bytes is not a CAN FD frame length")
    return can.Message(
        timestamp=time.time(),
        arbitration_id=can_id,
        is_extended_id=extended,
        data=data,
        is_fd=True,
        bitrate_switch=bool(flags & CANFD_BRS),
        error_state_indicator=bool(flags & CANFD_ESI),
    )
