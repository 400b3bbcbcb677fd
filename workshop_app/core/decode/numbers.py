"""Signal values as plain numbers, typed as such.

cantools types every decoded value as ``int | float | str | NamedSignalValue``: the last two
are value-table entries, which it only produces when asked to apply value tables
(``decode_choices=True``). These helpers never ask, so their results are numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from cantools.database.can import Message, Signal

__all__ = ["decode_numbers", "scaled_number"]


def decode_numbers(message: Message, data: bytes, *, allow_truncated: bool = False) -> dict[str, int | float]:
    """Decode one payload of a (non-container) message: signal name -> scaled value.

    The same as ``message.decode(data, decode_choices=False, allow_truncated=...)``, and it
    raises the same cantools errors (a container message is refused with ``DecodeError``).
    """
    values = message.decode_simple(data, decode_choices=False, allow_truncated=allow_truncated)
    return cast("dict[str, int | float]", values)  # decode_choices=False: numbers only


def scaled_number(signal: Signal, raw: float) -> int | float:
    """The physical value of a raw number, without looking it up in the value table."""
    return cast("int | float", signal.conversion.raw_to_scaled(raw, decode_choices=False))
