"""Decode every signal of a whole log at once with numpy, bit-exact with cantools.

Frames are grouped by stream (channel, id, extended flag); each stream's payloads form a
``(n, width)`` byte matrix, and each signal is read from an 8-byte window of it as one
``uint64`` per frame: shift, mask, sign, float reinterpretation, scale and offset — all
vectorised. Multiplexed signals (extended multiplexing too) are kept only on the frames whose
multiplexer selects them. A message whose layout this cannot express (a signal spanning more
than 8 bytes) is decoded frame by frame with cantools and reported in ``fallback_messages``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cantools.database.can as cdb
import numpy as np

from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.logs.columns import ERROR, EXTENDED, REMOTE, FrameColumns, channel_value
from workshop_app.core.types import channel_label


@dataclass
class DecodedSignal:
    """All values of one signal over the log (frames that carry it, in time order)."""

    message: str
    name: str
    unit: str
    timestamps: np.ndarray  # float64
    values: np.ndarray  # float64, physical (scaled) values
    choices: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.values)


@dataclass
class DecodeResult:
    signals: dict[tuple[str, str], DecodedSignal]
    frames: int  # data frames looked at (error and remote frames excluded)
    decoded_frames: int
    unknown_frames: int  # ids in no loaded database
    undecodable_frames: int  # shorter than their definition, or an undefined multiplexer value
    fallback_messages: list[str]
    seconds: float


class _Unsupported(Exception):
    """This signal layout needs the cantools fallback."""


def _window_start(signal: cdb.Signal) -> tuple[int, int]:
    """(first byte of an 8-byte window holding the signal, shift of its LSB inside the window)."""
    if signal.byte_order == "little_endian":
        first = signal.start // 8
        last = (signal.start + signal.length - 1) // 8
        if last - first >= 8:
            raise _Unsupported
        return first, signal.start - 8 * first
    # Motorola: ``start`` is the MSB in sawtooth numbering; walk to the LSB.
    msb_byte, msb_bit = divmod(signal.start, 8)
    lsb_pos = (msb_byte * 8 + (7 - msb_bit)) + signal.length - 1  # in "big-endian bit order"
    lsb_byte = lsb_pos // 8
    if lsb_byte - msb_byte >= 8:
        raise _Unsupported
    # In a big-endian uint64 of bytes [lsb_byte-7 .. lsb_byte], the LSB sits at 7 - lsb_pos % 8.
    return lsb_byte - 7, 7 - lsb_pos % 8


def _raw_values(padded: np.ndarray, signal: cdb.Signal, offset: int) -> np.ndarray:
    """The raw uint64 of ``signal`` for every row of ``padded`` (payload with 8 zero bytes either side)."""
    first, shift = _window_start(signal)
    window = np.ascontiguousarray(padded[:, offset + first : offset + first + 8])
    dtype = "<u8" if signal.byte_order == "little_endian" else ">u8"
    words = window.view(dtype)[:, 0].astype(np.uint64)
    raw = words >> np.uint64(shift)
    if signal.length < 64:
        raw &= np.uint64((1 << signal.length) - 1)
    return raw


def _raw_values_8(payload: np.ndarray, signals: list[cdb.Signal]) -> dict[str, np.ndarray]:
    """Raw values of every signal of a message of at most 8 bytes, from two words per frame."""
    n, width = payload.shape
    block = np.zeros((n, 8), dtype=np.uint8)
    block[:, :width] = payload
    little = block.view("<u8")[:, 0]
    big = block.view(">u8")[:, 0].astype(np.uint64)
    out: dict[str, np.ndarray] = {}
    for s in signals:
        if s.byte_order == "little_endian":
            raw = little >> np.uint64(s.start)
        else:
            msb_byte, msb_bit = divmod(s.start, 8)
            lsb_pos = msb_byte * 8 + (7 - msb_bit) + s.length - 1  # big-endian bit order
            raw = big >> np.uint64(63 - lsb_pos)
        if s.length < 64:
            raw = raw & np.uint64((1 << s.length) - 1)
        out[s.name] = raw
    return out


def _integers(raw: np.ndarray, signal: cdb.Signal) -> np.ndarray:
    """Raw field values as integers: uint64, or int64 (two's complement) for signed signals."""
    if not signal.is_signed:
        return raw
    if signal.length == 64:
        return raw.view(np.int64)
    signed = raw.astype(np.int64)
    negative = ((raw >> np.uint64(signal.length - 1)) & np.uint64(1)).astype(bool)
    signed[negative] += np.int64(-(1 << signal.length))
    return signed


def _physical(raw: np.ndarray, signal: cdb.Signal) -> np.ndarray:
    # Float payloads hold NaN and infinities like any others: no warnings for them.
    with np.errstate(invalid="ignore", over="ignore"):
        return _scaled(raw, signal)


def _scaled(raw: np.ndarray, signal: cdb.Signal) -> np.ndarray:
    scale, offset = signal.scale, signal.offset
    if signal.is_float:
        if signal.length == 32:
            values = raw.astype(np.uint32).view(np.float32).astype(np.float64)
        elif signal.length == 64:
            values = raw.view(np.float64).copy()
        else:
            raise _Unsupported
    else:
        ints = _integers(raw, signal)
        if isinstance(scale, int) and signal.length + abs(scale).bit_length() > 52:
            # With an integer scale cantools multiplies exact Python ints (the offset is added
            # after); past 2**53 a double product rounds differently, so this rare wide case
            # is computed the same way.
            return np.array([float(v * scale + offset) for v in ints.tolist()], dtype=np.float64)
        values = ints.astype(np.float64)
    if scale == 1 and offset == 0:
        return values
    # Same operations, in the same order, as cantools: raw * scale + offset.
    return values * scale + offset


def _mux_masks(message: cdb.Message, raws: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray | None]:
    """For each signal, the rows where its multiplexer chain selects it (None: every row)."""
    by_name = {s.name: s for s in message.signals}
    masks: dict[str, np.ndarray | None] = {}

    def mask_of(name: str) -> np.ndarray | None:
        if name in masks:
            return masks[name]
        signal = by_name[name]
        if signal.multiplexer_signal is None or signal.multiplexer_ids is None:
            masks[name] = None
            return None
        parent = mask_of(signal.multiplexer_signal)
        selector = raws[signal.multiplexer_signal]
        mine = np.isin(selector, np.array(signal.multiplexer_ids, dtype=np.uint64))
        masks[name] = mine if parent is None else (mine & parent)
        return masks[name]

    for s in message.signals:
        mask_of(s.name)
    return masks


def _append(
    out: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]],
    key: tuple[str, str],
    t: np.ndarray,
    v: np.ndarray,
) -> None:
    if len(t):
        out.setdefault(key, []).append((t, v))


def _invalid_mux_rows(
    message: cdb.Message, raws: dict[str, np.ndarray], masks: dict[str, np.ndarray | None]
) -> np.ndarray | None:
    """Rows whose multiplexer (at any level reached) holds a value no signal is defined for.

    cantools refuses such frames, so they count as undecodable here too.
    """
    selectable: dict[str, set[int]] = {}
    for s in message.signals:
        if s.multiplexer_signal is not None and s.multiplexer_ids:
            selectable.setdefault(s.multiplexer_signal, set()).update(s.multiplexer_ids)
    bad: np.ndarray | None = None
    for mux, ids in selectable.items():
        wrong = ~np.isin(raws[mux], np.array(sorted(ids), dtype=np.uint64))
        reached = masks.get(mux)
        if reached is not None:
            wrong &= reached
        bad = wrong if bad is None else (bad | wrong)
    return bad


def _decode_group(
    message: cdb.Message,
    ts: np.ndarray,
    payload: np.ndarray,
    out: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]],
) -> int:
    """Decode one stream's frames; returns how many were refused (unknown multiplexer values)."""
    n, width = payload.shape
    if width <= 8:
        raws = _raw_values_8(payload, message.signals)
    else:
        padded = np.zeros((n, width + 16), dtype=np.uint8)
        padded[:, 8 : 8 + width] = payload
        raws = {s.name: _raw_values(padded, s, 8) for s in message.signals}
    masks: dict[str, np.ndarray | None] = {}
    keep: np.ndarray | None = None
    refused = 0
    if message.is_multiplexed():
        masks = _mux_masks(message, raws, n)
        bad = _invalid_mux_rows(message, raws, masks)
        if bad is not None and bad.any():
            keep = ~bad
            refused = int(np.count_nonzero(bad))
    for s in message.signals:
        values = _physical(raws[s.name], s)
        mask = masks.get(s.name)
        if keep is not None:
            mask = keep if mask is None else (mask & keep)
        if mask is None:
            _append(out, (message.name, s.name), ts, values)
        else:
            _append(out, (message.name, s.name), ts[mask], values[mask])
    return refused


def _decode_group_cantools(
    message: cdb.Message,
    ts: np.ndarray,
    payload: np.ndarray,
    out: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]],
) -> int:
    per_signal: dict[str, tuple[list[float], list[float]]] = {}
    length = message.length
    refused = 0
    for t, row in zip(ts.tolist(), payload, strict=True):
        try:
            decoded = message.decode(bytes(row[:length]), decode_choices=False)
        except Exception:
            refused += 1
            continue
        for name, value in decoded.items():
            tl, vl = per_signal.setdefault(name, ([], []))
            tl.append(t)
            vl.append(float(value))
    for name, (tl, vl) in per_signal.items():
        _append(out, (message.name, name), np.asarray(tl), np.asarray(vl, dtype=np.float64))
    return refused


def decode_columns(
    columns: FrameColumns,
    databases: DatabaseSet,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> DecodeResult:
    """Decode every signal of every known message in ``columns``.

    ``progress(done, total)`` counts frames; setting ``cancel`` stops between messages and
    returns what was decoded so far.
    """
    t0 = time.perf_counter()
    data_rows = (columns.flags & (ERROR | REMOTE)) == 0
    idx = np.flatnonzero(data_rows)
    frames = len(idx)
    ext = (columns.flags[idx] & EXTENDED) != 0
    channel = columns.channel[idx]
    if not ext.any() and (len(columns.channels) <= 32):
        # Standard ids on few channels: a 16-bit stream code, which numpy sorts by radix (fast).
        keys = channel.astype(np.uint16) << np.uint16(11) | columns.arbitration_id[idx].astype(np.uint16)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order].astype(np.uint64)
        sorted_keys = ((sorted_keys >> np.uint64(11)) << np.uint64(30)) | (sorted_keys & np.uint64(0x7FF))
    else:
        # One integer key per stream: channel (8 bits) | extended (1 bit) | id (29 bits).
        keys = (channel.astype(np.uint64) << np.uint64(30)) | (ext.astype(np.uint64) << np.uint64(29))
        keys |= columns.arbitration_id[idx].astype(np.uint64)
        order = np.argsort(keys, kind="stable")  # stable: each stream stays in time order
        sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    ends = np.r_[starts[1:], len(sorted_keys)]
    labels = [channel_label(channel_value(name)) for name in columns.channels] or ["can0"]
    # Gathering whole rows as one opaque item each is several times faster than a 2-D gather.
    width = columns.payload.shape[1]
    packed = np.ascontiguousarray(columns.payload).view(np.dtype((np.void, width))).ravel()

    chunks: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]] = {}
    decoded = unknown = undecodable = done = 0
    fallback: list[str] = []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        if cancel is not None and cancel.is_set():
            break
        key = int(sorted_keys[start])
        channel = labels[key >> 30] if (key >> 30) < len(labels) else f"can{key >> 30}"
        message = databases.lookup(channel, key & 0x1FFFFFFF, bool(key >> 29 & 1))
        rows = idx[order[start:end]]
        done += len(rows)
        if message is None:
            unknown += len(rows)
        else:
            long_enough = columns.length[rows] >= message.length
            undecodable += int(len(rows) - np.count_nonzero(long_enough))
            rows = rows[long_enough]
            if len(rows):
                ts = columns.timestamp[rows]
                payload = packed[rows].view(np.uint8).reshape(len(rows), width)
                if payload.shape[1] < message.length:
                    payload = np.pad(payload, ((0, 0), (0, message.length - payload.shape[1])))
                payload = payload[:, : max(message.length, 1)]
                try:
                    refused = _decode_group(message, ts, payload, chunks)
                except _Unsupported:
                    if message.name not in fallback:
                        fallback.append(message.name)
                    refused = _decode_group_cantools(message, ts, payload, chunks)
                undecodable += refused
                decoded += len(rows) - refused
        if progress is not None:
            progress(done, frames)

    signals: dict[tuple[str, str], DecodedSignal] = {}
    units: dict[tuple[str, str], cdb.Signal] = {}
    for loaded in databases.databases:
        for m in loaded.db.messages:
            for s in m.signals:
                units.setdefault((m.name, s.name), s)
    for key, parts in chunks.items():
        if len(parts) == 1:
            # The common case: no copy, and the signals of a message share one timestamp array.
            t, v = parts[0]
        else:  # the same message from several streams (channels, J1939 sources)
            t = np.concatenate([p[0] for p in parts])
            v = np.concatenate([p[1] for p in parts])
            o = np.argsort(t, kind="stable")
            t, v = t[o], v[o]
        definition = units.get(key)
        choices = {int(k): str(c) for k, c in (definition.choices or {}).items()} if definition else {}
        signals[key] = DecodedSignal(
            key[0], key[1], definition.unit or "" if definition else "", t, v, choices
        )
    return DecodeResult(signals, frames, decoded, unknown, undecodable, fallback, time.perf_counter() - t0)
