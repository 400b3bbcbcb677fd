"""Decode every signal of a whole log at once with numpy, bit-exact with cantools.

Frames are grouped by stream (channel, id, extended flag); each stream's payloads form a
``(n, width)`` byte matrix, and each signal is read from an 8-byte window of it as one
``uint64`` per frame: shift, mask, sign, float reinterpretation, scale and offset — all
vectorised. Multiplexed signals (extended multiplexing too) are kept only on the frames whose
multiplexer selects them. A message whose layout this cannot express (a signal spanning more
than 8 bytes) is decoded frame by frame with cantools and reported in ``fallback_messages``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cantools.database.can as cdb
import numpy as np

from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.decode.numbers import decode_numbers
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


# Worker threads decoding streams side by side.
DECODE_THREADS = max(1, min(4, os.cpu_count() or 1))


@dataclass
class _StreamResult:
    """What decoding one stream (channel, id) produced."""

    frames: int
    decoded: int = 0
    unknown: int = 0
    undecodable: int = 0
    fallback: str = ""
    chunks: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)


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
    if width == 8 and payload.flags.c_contiguous:
        block = payload
    else:
        block = np.zeros((n, 8), dtype=np.uint8)
        block[:, :width] = payload
    little = block.view("<u8")[:, 0]
    big: np.ndarray | None = None
    out: dict[str, np.ndarray] = {}
    for s in signals:
        if s.byte_order == "little_endian":
            raw = np.right_shift(little, np.uint64(s.start))
        else:
            if big is None:
                big = block.view(">u8")[:, 0].astype(np.uint64)
            msb_byte, msb_bit = divmod(s.start, 8)
            lsb_pos = msb_byte * 8 + (7 - msb_bit) + s.length - 1  # big-endian bit order
            raw = np.right_shift(big, np.uint64(63 - lsb_pos))
        if s.length < 64:
            np.bitwise_and(raw, np.uint64((1 << s.length) - 1), out=raw)
        out[s.name] = raw
    return out


def _integers(raw: np.ndarray, signal: cdb.Signal) -> np.ndarray:
    """Raw field values as integers: uint64, or int64 (two's complement) for signed signals.

    Sign extension shifts the field to the top of the word and back arithmetically, in place:
    ``raw`` is not used after this.
    """
    if not signal.is_signed:
        return raw
    signed = raw.view(np.int64)
    if signal.length < 64:
        spare = 64 - signal.length
        np.left_shift(raw, np.uint64(spare), out=raw)
        np.right_shift(signed, np.int64(spare), out=signed)
    return signed


def _physical(raw: np.ndarray, signal: cdb.Signal, out: np.ndarray) -> np.ndarray:
    """Physical values of ``signal`` written into ``out`` (a float64 row), which is returned."""
    # Float payloads hold NaN and infinities like any others: no warnings for them.
    with np.errstate(invalid="ignore", over="ignore"):
        return _scaled(raw, signal, out)


def _scaled(raw: np.ndarray, signal: cdb.Signal, values: np.ndarray) -> np.ndarray:
    scale, offset = signal.scale, signal.offset
    if signal.is_float:
        if signal.length == 32:
            np.copyto(values, raw.astype(np.uint32).view(np.float32))
        elif signal.length == 64:
            np.copyto(values, raw.view(np.float64))
        else:
            raise _Unsupported
    else:
        ints = _integers(raw, signal)
        if isinstance(scale, int) and signal.length + abs(scale).bit_length() > 52:
            # With an integer scale cantools multiplies exact Python ints (the offset is added
            # after); past 2**53 a double product rounds differently, so this rare wide case
            # is computed the same way.
            values[:] = [float(v * scale + offset) for v in ints.tolist()]
            return values
        np.copyto(values, ints, casting="unsafe")
    if scale == 1 and offset == 0:
        return values
    # Same operations, in the same order, as cantools: raw * scale + offset (adding a zero
    # offset too: it turns -0.0 into 0.0).
    if scale != 1:
        np.multiply(values, scale, out=values)
    np.add(values, offset, out=values)
    return values


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
    block: np.ndarray,
) -> int:
    """Decode one stream's frames; returns how many were refused (unknown multiplexer values).

    ``block`` has one float64 row per signal of the message, for its values.
    """
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
    for i, s in enumerate(message.signals):
        values = _physical(raws[s.name], s, block[i])
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
            decoded = decode_numbers(message, bytes(row[:length]))
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
    excluded = (columns.flags & (ERROR | REMOTE)) != 0
    # Usually every frame is a data frame: then the columns are used as they are, not gathered.
    idx = np.flatnonzero(~excluded) if excluded.any() else None
    ids = columns.arbitration_id if idx is None else columns.arbitration_id[idx]
    channel = columns.channel if idx is None else columns.channel[idx]
    ext = (columns.flags if idx is None else columns.flags[idx]) & np.uint8(EXTENDED)
    frames = len(ids)
    if not ext.any() and len(columns.channels) <= 32:
        # Standard ids on few channels: a 16-bit stream code, which numpy sorts by radix (fast),
        # and whose streams a bincount finds without gathering the sorted codes.
        keys = ids.astype(np.uint16)
        if len(columns.channels) > 1:
            keys |= channel.astype(np.uint16) << np.uint16(11)
        order = np.argsort(keys, kind="stable")  # stable: each stream stays in time order
        counts = np.bincount(keys)
        present = np.flatnonzero(counts)
        ends = np.cumsum(counts)[present]
        starts = ends - counts[present]
        stream_keys = ((present >> 11) << 30) | (present & 0x7FF)
    else:
        # One integer key per stream: channel (8 bits) | extended (1 bit) | id (29 bits).
        keys = (channel.astype(np.uint64) << np.uint64(30)) | ((ext != 0).astype(np.uint64) << np.uint64(29))
        keys |= ids.astype(np.uint64)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        ends = np.r_[starts[1:], len(sorted_keys)]
        stream_keys = sorted_keys[starts]
    labels = [channel_label(channel_value(name)) for name in columns.channels] or ["can0"]
    # Gathering whole rows as one opaque item each is several times faster than a 2-D gather.
    width = columns.payload.shape[1]
    packed = np.ascontiguousarray(columns.payload).view(np.dtype((np.void, width))).ravel()

    # The streams are decoded on worker threads (numpy releases the GIL in its loops); each
    # stream's output is merged in stream order afterwards, so the result does not depend on
    # which thread finished first.
    def decode_stream(start: int, end: int, key: int) -> _StreamResult:
        channel = labels[key >> 30] if (key >> 30) < len(labels) else f"can{key >> 30}"
        message = databases.lookup(channel, key & 0x1FFFFFFF, bool(key >> 29 & 1))
        rows = order[start:end] if idx is None else idx[order[start:end]]
        result = _StreamResult(len(rows))
        if message is None:
            result.unknown = len(rows)
            return result
        long_enough = columns.length[rows] >= message.length
        result.undecodable = int(len(rows) - np.count_nonzero(long_enough))
        rows = rows[long_enough]
        if not len(rows):
            return result
        # Time stamps and values of the stream in one block: one large allocation (which numpy
        # backs with huge pages) instead of one per signal; page faults cost more than the math.
        block = np.empty((len(message.signals) + 1, len(rows)))
        ts = np.take(columns.timestamp, rows, out=block[0])
        payload = packed[rows].view(np.uint8).reshape(len(rows), width)
        if payload.shape[1] < message.length:
            payload = np.pad(payload, ((0, 0), (0, message.length - payload.shape[1])))
        payload = payload[:, : max(message.length, 1)]
        try:
            refused = _decode_group(message, ts, payload, result.chunks, block[1:])
        except _Unsupported:
            result.fallback = message.name
            result.chunks.clear()
            refused = _decode_group_cantools(message, ts, payload, result.chunks)
        result.undecodable += refused
        result.decoded = len(rows) - refused
        return result

    chunks: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]] = {}
    decoded = unknown = undecodable = done = 0
    fallback: list[str] = []
    spans = list(zip(starts.tolist(), ends.tolist(), stream_keys.tolist(), strict=True))
    with ThreadPoolExecutor(max_workers=DECODE_THREADS, thread_name_prefix="decode") as pool:
        futures = []
        for start, end, key in spans:
            if cancel is not None and cancel.is_set():
                break
            futures.append(pool.submit(decode_stream, start, end, key))
        for future in futures:
            if cancel is not None and cancel.is_set():
                for later in futures:
                    later.cancel()
                break
            stream = future.result()
            done += stream.frames
            unknown += stream.unknown
            undecodable += stream.undecodable
            decoded += stream.decoded
            if stream.fallback and stream.fallback not in fallback:
                fallback.append(stream.fallback)
            for key, parts in stream.chunks.items():
                chunks.setdefault(key, []).extend(parts)
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
