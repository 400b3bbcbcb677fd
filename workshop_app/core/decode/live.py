"""Decoding of live frames: the latest values of a message, and subscribed signal series.

Runs on the consumer thread. Only messages someone subscribed to are decoded per frame; the
trace and monitor decode a message's latest payload on demand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cantools.database.can as cdb
import numpy as np

from workshop_app.core.capture.columns import EXTENDED, FrameColumns
from workshop_app.core.capture.series import SignalSeries
from workshop_app.core.capture.store import run_bounds
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.decode.numbers import decode_numbers
from workshop_app.core.decode.vectorized import (
    _invalid_mux_rows,
    _mux_masks,
    _raw_values,
    _raw_values_8,
    _scaled,
    _Unsupported,
)
from workshop_app.core.types import Frame

# Subscription of one message: the cantools message and its series by signal name.
_Entry = tuple[cdb.Message, dict[str, SignalSeries]]

# Below this many frames of a message in a batch, cantools frame by frame beats numpy's fixed cost.
_VECTOR_MIN_ROWS = 8


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

    def process_columns(self, cols: FrameColumns) -> None:
        """The same series (and ``decode_errors``) as ``process(cols.to_frames())``, decoding each
        subscribed message's rows of the batch at once with numpy."""
        if not self._subs or not len(cols):
            return
        code = cols.channel.astype(np.uint64) << np.uint64(33)
        code |= ((cols.flags & EXTENDED) != 0).astype(np.uint64) << np.uint64(32)
        code |= cols.can_id.astype(np.uint64)
        # Stable: each stream's rows stay in arrival order.
        order = np.argsort(code, kind="stable")
        sorted_code = code[order]
        starts, ends = run_bounds(sorted_code)
        # Per stream (not per frame): which subscription its rows feed, through the route cache.
        routes = self._routes
        names = cols.channels
        spans: dict[int, tuple[_Entry, list[tuple[int, int]]]] = {}
        for c, start, end in zip(sorted_code[starts].tolist(), starts.tolist(), ends.tolist(), strict=True):
            key = (names[c >> 33], c & 0xFFFFFFFF, bool(c >> 32 & 1))
            entry: _Entry | Literal[False] | None = routes.get(key, False)
            if entry is False:
                message = self.databases.lookup(*key)
                entry = routes[key] = None if message is None else self._subs.get(id(message))
            if entry is not None:
                spans.setdefault(id(entry[0]), (entry, []))[1].append((start, end))
        for (message, series_by_name), parts in spans.values():
            if len(parts) == 1:
                rows = order[parts[0][0] : parts[0][1]]
            else:  # one message from several streams: back in arrival order, as frame by frame
                rows = np.sort(np.concatenate([order[a:b] for a, b in parts]))
            if len(rows) >= _VECTOR_MIN_ROWS and not message.is_container:
                try:
                    self._decode_vectorised(message, series_by_name, cols, rows)
                    continue
                except _Unsupported:
                    pass
            self._decode_rows(message, series_by_name, cols, rows)

    def _decode_rows(
        self,
        message: cdb.Message,
        series_by_name: dict[str, SignalSeries],
        cols: FrameColumns,
        rows: np.ndarray,
    ) -> None:
        """Frame by frame with cantools, exactly as ``process``."""
        data = cols.data
        for i, t, n in zip(
            rows.tolist(), cols.timestamp[rows].tolist(), cols.length[rows].tolist(), strict=True
        ):
            try:
                values = decode_numbers(message, data[i, :n].tobytes())
            except Exception:
                self.decode_errors += 1
                continue
            for name, series in series_by_name.items():
                value = values.get(name)
                if value is not None:
                    series.append(t, float(value))

    def _decode_vectorised(
        self,
        message: cdb.Message,
        series_by_name: dict[str, SignalSeries],
        cols: FrameColumns,
        rows: np.ndarray,
    ) -> None:
        """All rows of one message at once; raises _Unsupported (before touching any series) for
        layouts only cantools decodes the same way."""
        multiplexed = message.is_multiplexed()
        if multiplexed:
            for s in message.signals:
                # cantools picks the page from the scaled multiplexer value; numpy from the raw one.
                if s.is_multiplexer and (s.scale != 1 or s.offset != 0 or s.is_float):
                    raise _Unsupported
        need = message.length
        long_enough = cols.length[rows] >= need
        good = rows if long_enough.all() else rows[long_enough]
        short = len(rows) - len(good)
        ts = cols.timestamp[good]
        width = max(need, 1)
        payload = cols.data[good, : min(width, cols.data.shape[1])]
        if payload.shape[1] < width:
            payload = np.pad(payload, ((0, 0), (0, width - payload.shape[1])))
        signals = (
            message.signals if multiplexed else [message.get_signal_by_name(name) for name in series_by_name]
        )
        if width <= 8:
            raws = _raw_values_8(payload, signals)
        else:
            padded = np.zeros((len(good), width + 16), np.uint8)
            padded[:, 8 : 8 + width] = payload
            raws = {s.name: _raw_values(padded, s, 8) for s in signals}
        masks: dict[str, np.ndarray | None] = {}
        keep: np.ndarray | None = None
        refused = 0
        if multiplexed:
            masks = _mux_masks(message, raws, len(good))
            bad = _invalid_mux_rows(message, raws, masks)
            if bad is not None and bad.any():
                keep = ~bad
                refused = int(np.count_nonzero(bad))
        with np.errstate(invalid="ignore", over="ignore"):  # float payloads may hold NaN, inf
            values = {
                name: _scaled(raws[name], message.get_signal_by_name(name), np.empty(len(good)))
                for name in series_by_name
            }
        # Nothing above touched a series: an _Unsupported layout falls back cleanly.
        self.decode_errors += short + refused
        for name, series in series_by_name.items():
            mask = masks.get(name)
            if keep is not None:
                mask = keep if mask is None else (mask & keep)
            if mask is None:
                series.extend(ts, values[name])
            elif mask.any():
                series.extend(ts[mask], values[name][mask])

    def databases_changed(self) -> None:
        """Forget cached routes (call after adding or removing a database)."""
        self._routes.clear()
