"""Decoding of live frames: the latest values of a message, and subscribed signal series.

Runs on the consumer thread. Only messages someone subscribed to are decoded per frame; the
trace and monitor decode a message's latest payload on demand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cantools.database.can as cdb

from workshop_app.core.capture.series import SignalSeries
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.decode.numbers import decode_numbers
from workshop_app.core.types import Frame


@dataclass(frozen=True, slots=True)
class SignalValue:
    """One decoded signal: numeric value, its value-table label if any, and unit."""

    name: str
    value: float
    label: str | None
    unit: str

    def text(self) -> str:
        if self.label is not None:
            return f"{self.label} ({self.value:g})"
        return f"{self.value:g} {self.unit}".rstrip()


def decode_payload(message: cdb.Message, data: bytes) -> list[SignalValue]:
    """Decode one payload; raises ``cantools`` errors for short or invalid payloads."""
    raw = decode_numbers(message, data)
    out: list[SignalValue] = []
    for name, value in raw.items():
        signal = message.get_signal_by_name(name)
        label: str | None = None
        if signal.choices:
            choice = signal.choices.get(int(value)) if float(value).is_integer() else None
            label = None if choice is None else str(choice)
        out.append(SignalValue(name, float(value), label, signal.unit or ""))
    return out


class LiveDecoder:
    """Feeds SignalSeries for subscribed signals from batches of frames."""

    def __init__(self, databases: DatabaseSet) -> None:
        self.databases = databases
        # Subscriptions per cantools message object: signal name -> series.
        self._subs: dict[int, tuple[cdb.Message, dict[str, SignalSeries]]] = {}
        # Several views may plot the same signal: the series lives until the last one lets go.
        self._refs: dict[tuple[int, str], int] = {}
        # Per stream: the subscription its frames feed, or None (most streams): one dict
        # look-up per frame instead of a database look-up. Cleared when subscriptions change.
        self._routes: dict[tuple[str, int, bool], tuple[cdb.Message, dict[str, SignalSeries]] | None] = {}
        self.decode_errors = 0

    def find_message(self, name: str) -> cdb.Message:
        for loaded in self.databases.databases:
            try:
                return loaded.db.get_message_by_name(name)
            except KeyError:
                continue
        raise KeyError(f"no message named {name!r} in the loaded databases")

    def subscribe(self, message_name: str, signal_name: str, capacity: int = 100_000) -> SignalSeries:
        """Start collecting one signal; returns its series (the same one if already subscribed)."""
        message = self.find_message(message_name)
        signal = message.get_signal_by_name(signal_name)
        _, series_by_name = self._subs.setdefault(id(message), (message, {}))
        series = series_by_name.get(signal_name)
        if series is None:
            series = SignalSeries(f"{message_name}.{signal_name}", capacity, signal.unit or "")
            series_by_name[signal_name] = series
        ref = (id(message), signal_name)
        self._refs[ref] = self._refs.get(ref, 0) + 1
        self._routes.clear()
        return series

    def unsubscribe(self, message_name: str, signal_name: str) -> None:
        """Release one subscription; decoding stops when nobody holds the signal any more."""
        message = self.find_message(message_name)
        ref = (id(message), signal_name)
        left = self._refs.get(ref, 0) - 1
        if left > 0:
            self._refs[ref] = left
            return
        self._refs.pop(ref, None)
        self._routes.clear()
        entry = self._subs.get(id(message))
        if entry is not None:
            entry[1].pop(signal_name, None)
            if not entry[1]:
                del self._subs[id(message)]

    def process(self, frames: list[Frame]) -> None:
        if not self._subs:
            return
        routes = self._routes
        for frame in frames:
            key = (frame.channel, frame.arbitration_id, frame.is_extended)
            entry: tuple[cdb.Message, dict[str, SignalSeries]] | Literal[False] | None
            entry = routes.get(key, False)
            if entry is False:
                message = self.databases.lookup(*key)
                entry = routes[key] = None if message is None else self._subs.get(id(message))
            if entry is None:
                continue
            message, series_by_name = entry
            try:
                values = decode_numbers(message, frame.data)
            except Exception:
                self.decode_errors += 1
                continue
            for name, series in series_by_name.items():
                value = values.get(name)  # absent when another multiplexer page was sent
                if value is not None:
                    series.append(frame.timestamp, float(value))

    def databases_changed(self) -> None:
        """Forget cached routes (call after adding or removing a database)."""
        self._routes.clear()
