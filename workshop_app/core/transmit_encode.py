"""What one transmitted frame carries: DBC signal values encoded, raw frames parsed and checked.

Pure functions, no threads: the jobs (``transmit_jobs.py``), the ``workshop send`` command and
the Transmit panel all build their frames here, so a value is checked the same way everywhere.

>>> parse_frame_text("2B0#01")  # doctest: +SKIP
Frame(timestamp=0.0, arbitration_id=688, data=b'\\x01', ...)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from workshop_app.core.decode.numbers import scaled_number
from workshop_app.core.errors import WorkshopError
from workshop_app.core.types import FD_LENGTHS, Frame

if TYPE_CHECKING:
    from cantools.database.can import Message, Signal

__all__ = [
    "SignalValue",
    "check_frame",
    "encode_signals",
    "frame_signals",
    "parse_frame_text",
    "parse_hex_data",
    "parse_signal_values",
    "signal_default",
]

SignalValue = int | float | str  # a number, or the name of a value-table entry

_HEX_SEPARATORS = re.compile(r"[\s,:;.-]+")
_HEX_ID = re.compile(r"[0-9A-Fa-f]{1,8}")
_FD_FLAG_BRS = 0x1  # candump/cansend flag nibble after "##"
_FD_FLAG_ESI = 0x2


def signal_default(signal: Signal) -> float:
    """The value a signal takes when a job does not set it: its DBC initial value, else 0 (or
    the range end nearest to 0)."""
    initial = signal.initial
    if isinstance(initial, int | float):
        return float(initial)
    if initial is not None and signal.raw_initial is not None:
        # an initial value with a value-table entry: cantools gives the entry, we want its number
        return float(scaled_number(signal, signal.raw_initial))
    low, high = signal.minimum, signal.maximum
    if low is not None and low > 0:
        return float(low)
    if high is not None and high < 0:
        return float(high)
    return 0.0


def _coerce(message: Message, signal: Signal, value: object) -> int | float:
    """A number for cantools: value-table names become their raw number."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    text = str(value).strip()
    for number, name in (signal.choices or {}).items():
        if str(name) == text:
            # cantools wants the scaled value; a value table holds raw numbers.
            return scaled_number(signal, number)
    try:
        return float(text)
    except ValueError:
        names = ", ".join(str(n) for n in (signal.choices or {}).values())
        hint = f" (one of: {names})" if names else ""
        raise WorkshopError(
            f"signal {signal.name} of message {message.name}: {value!r} is not a number{hint}"
        ) from None


def frame_signals(message: Message, values: Mapping[str, object]) -> list[Signal]:
    """The signals one frame carries: multiplexers pick their branch from ``values``."""
    names: list[str] = []

    def walk(tree: Sequence[object]) -> None:
        for node in tree:
            if isinstance(node, str):
                names.append(node)
                continue
            assert isinstance(node, dict)
            for mux_name, branches in node.items():
                names.append(mux_name)
                mux = message.get_signal_by_name(mux_name)
                selector = values.get(mux_name, signal_default(mux))
                number = _coerce(message, mux, selector)
                raw = mux.conversion.scaled_to_raw(number)
                branch = branches.get(int(raw))
                if branch is None:
                    raise WorkshopError(
                        f"message {message.name}: {mux_name}={selector} selects no signals "
                        f"(valid: {', '.join(str(k) for k in sorted(branches))})"
                    )
                walk(branch)

    walk(message.signal_tree)
    return [message.get_signal_by_name(n) for n in names]


def encode_signals(message: Message, values: Mapping[str, SignalValue]) -> bytes:
    """Encode ``values`` into a payload of ``message``, checking every range.

    Raises ``WorkshopError`` naming the message and the signal on an unknown signal, a value
    outside the DBC's minimum/maximum, or a name that is not in the signal's value table.
    Signals of other multiplexer pages than the selected one are ignored.
    """
    known = {s.name for s in message.signals}
    unknown = [name for name in values if name not in known]
    if unknown:
        raise WorkshopError(f"message {message.name} has no signal {', '.join(sorted(unknown))}")
    data = {
        s.name: _coerce(message, s, values[s.name]) if s.name in values else signal_default(s)
        for s in frame_signals(message, values)
    }
    try:
        return bytes(message.encode(data, scaling=True, padding=False, strict=True))
    except Exception as exc:  # cantools raises EncodeError, ValueError, OverflowError...
        raise WorkshopError(f"cannot encode message {message.name}: {exc}") from exc


def check_frame(frame: Frame) -> None:
    """Raise ``WorkshopError`` in plain words for an id or a length the bus cannot carry."""
    limit = 0x1FFFFFFF if frame.is_extended else 0x7FF
    if not 0 <= frame.arbitration_id <= limit:
        kind = "29-bit" if frame.is_extended else "11-bit (tick extended for 29-bit ids)"
        raise WorkshopError(f"id 0x{frame.arbitration_id:X} does not fit a {kind} identifier")
    if frame.is_fd:
        if len(frame.data) not in FD_LENGTHS:
            raise WorkshopError(
                f"a CAN FD frame carries 0-8, 12, 16, 20, 24, 32, 48 or 64 bytes, not {len(frame.data)}"
            )
    elif len(frame.data) > 8:
        raise WorkshopError(f"a classic CAN frame carries at most 8 bytes, not {len(frame.data)} (tick FD)")
    if frame.bitrate_switch and not frame.is_fd:
        raise WorkshopError("bit rate switch needs a CAN FD frame")


def parse_hex_data(text: str) -> bytes:
    """Payload from ``"02 01 0C"``, ``"02010C"``, ``"02.01.0C"`` or ``"2,1,c"``; ValueError in plain words."""
    parts = [p for p in _HEX_SEPARATORS.split(text.strip()) if p]
    if len(parts) == 1 and len(parts[0]) > 2:
        token = parts[0]
        if len(token) % 2:
            raise ValueError("data needs two hex digits per byte, e.g. 02 01 0C")
        parts = [token[i : i + 2] for i in range(0, len(token), 2)]
    try:
        values = [int(p, 16) for p in parts]
    except ValueError:
        raise ValueError("data must be hex bytes, e.g. 02 01 0C") from None
    if any(not 0 <= v <= 0xFF for v in values):
        raise ValueError("each data byte is two hex digits (00 to FF)")
    return bytes(values)


def parse_frame_text(text: str, channel: str = "can0") -> Frame:
    """A frame written as cansend/candump do: ``ID#DATA`` (classic) or ``ID##F DATA`` (CAN FD).

    ``ID`` is 3 hex digits for an 11-bit id or 8 for a 29-bit one; ``DATA`` is hex bytes,
    optionally separated by dots; after ``##`` one hex digit of flags (1: bit rate switch,
    2: error state indicator) comes before the data. The frame is checked (id fits, length).
    Raises ``WorkshopError`` naming what is wrong.
    """
    ident, sep, rest = text.strip().partition("#")
    if not sep:
        raise WorkshopError(f"frame {text!r}: write it as ID#DATA (e.g. 2B0#01) or ID##1DATA for CAN FD")
    if not _HEX_ID.fullmatch(ident) or len(ident) not in (1, 2, 3, 8):
        raise WorkshopError(
            f"frame {text!r}: the id is 3 hex digits (11-bit, e.g. 2B0) or 8 (29-bit, e.g. 18DAF110)"
        )
    is_fd = rest.startswith("#")
    flags = 0
    if is_fd:
        rest = rest[1:]
        if not rest or rest[0] not in "0123456789abcdefABCDEF":
            raise WorkshopError(f"frame {text!r}: after ## comes one hex digit of flags (1: bit rate switch)")
        flags, rest = int(rest[0], 16), rest[1:]
    if rest.upper().startswith("R"):
        raise WorkshopError(f"frame {text!r}: remote frames are not sent by this tool")
    digits = rest.replace(".", "")  # cansend allows dots between bytes
    if len(digits) % 2:
        raise WorkshopError(f"frame {text!r}: data needs two hex digits per byte, e.g. 2B0#0100")
    try:
        data = bytes.fromhex(digits)
    except ValueError:
        raise WorkshopError(f"frame {text!r}: data must be hex bytes, e.g. 2B0#0100") from None
    frame = Frame(
        0.0,
        int(ident, 16),
        data,
        channel,
        is_extended=len(ident) == 8,
        is_fd=is_fd,
        bitrate_switch=bool(flags & _FD_FLAG_BRS),
        error_state_indicator=bool(flags & _FD_FLAG_ESI),
    )
    check_frame(frame)
    return frame


def parse_signal_values(items: Iterable[str]) -> dict[str, SignalValue]:
    """``["LockRequest=Lock", "Speed=12.5"]`` → ``{"LockRequest": "Lock", "Speed": 12.5}``.

    Numbers become numbers; anything else stays text (a value-table name, checked at encoding).
    """
    values: dict[str, SignalValue] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise WorkshopError(f"signal value {item!r}: write it as NAME=VALUE (e.g. LockRequest=Lock)")
        number: SignalValue
        try:
            number = int(value, 0)
        except ValueError:
            try:
                number = float(value)
            except ValueError:
                number = value
        values[name] = number
    return values
