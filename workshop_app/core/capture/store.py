"""FrameStore: what the trace shows, per message stream (channel, id, extended flag).

Owned by the consumer thread (the GUI tick or the CLI loop): it is fed batches drained from
the FrameRing and is never touched by receive threads, so it needs no lock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from workshop_app.core.capture.columns import ERROR, EXTENDED, FD, RX, FrameColumns
from workshop_app.core.types import Frame

# One message stream: (channel, arbitration id, extended flag).
MessageKey = tuple[str, int, bool]

# Weight of the newest interval in the running mean/variance of the cycle time.
_EMA_ALPHA = 0.05


# Change records are folded into per-bit counts in batches of this many (numpy, not per bit).
_FOLD_AT = 512


@dataclass(slots=True)
class MessageStats:
    """Running statistics of one message stream.

    Per-bit flip counts and per-byte change times are what the bit view and the fading trace
    show; counting them bit by bit per frame costs more than everything else in capture, so
    each frame only records its XOR with the previous payload, and the records are folded
    into the counts with numpy when someone reads them (or every ``_FOLD_AT`` changes).
    """

    channel: str
    arbitration_id: int
    is_extended: bool
    count: int = 0
    first_ts: float = 0.0
    last_ts: float = 0.0
    data: bytes = b""
    is_fd: bool = False
    is_rx: bool = True
    mean_interval: float = 0.0
    var_interval: float = 0.0
    min_interval: float = math.inf
    max_interval: float = 0.0
    # Bits that differ between the last two payloads (bit i = byte i // 8, bit i % 8).
    changed_mask: int = 0
    # Every bit that has changed at least once since the stream started.
    ever_changed: int = 0
    _value: int = 0
    _pending_ts: list[float] = field(default_factory=list)
    _pending_xor: list[int] = field(default_factory=list)
    _flips: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    _changed_at: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float64))
    # From ingest_columns: the store's accumulated batch changes and this stream's row there,
    # folded in before any XOR record (they are older).
    _batches: _BatchChanges | None = None
    _slot: int = -1

    @property
    def key(self) -> tuple[str, int, bool]:
        return (self.channel, self.arbitration_id, self.is_extended)

    @property
    def dlc(self) -> int:
        return len(self.data)

    @property
    def jitter(self) -> float:
        """Standard deviation of the cycle time (seconds)."""
        return math.sqrt(self.var_interval) if self.var_interval > 0 else 0.0

    @property
    def bit_flips(self) -> list[int]:
        """How often each bit flipped (bit i = byte i // 8, bit i % 8)."""
        self._fold()
        flips: list[int] = self._flips.tolist()
        return flips

    @property
    def byte_changed_at(self) -> list[float]:
        """Timestamp of the last change of each byte, for fading highlights."""
        self._fold()
        changed_at: list[float] = self._changed_at.tolist()
        return changed_at

    def rate(self, now: float | None = None) -> float:
        """Frames per second; falls to 0 once the stream has been silent for 3 cycles."""
        if self.mean_interval <= 0:
            return 0.0
        if now is not None and now - self.last_ts > max(3 * self.mean_interval, 1.0):
            return 0.0
        return 1.0 / self.mean_interval

    def update(self, frame: Frame) -> None:
        ts = frame.timestamp
        data = frame.data
        if self.count == 0:
            self.first_ts = ts
            self._grow(len(data), ts)
            self._value = int.from_bytes(data, "little")
        else:
            dt = ts - self.last_ts
            if dt >= 0:
                if self.count == 1:
                    self.mean_interval = dt
                else:
                    diff = dt - self.mean_interval
                    self.mean_interval += _EMA_ALPHA * diff
                    self.var_interval = (1 - _EMA_ALPHA) * (self.var_interval + _EMA_ALPHA * diff * diff)
                if dt < self.min_interval:
                    self.min_interval = dt
                if dt > self.max_interval:
                    self.max_interval = dt
            if data != self.data:
                value = int.from_bytes(data, "little")
                xor = value ^ self._value
                self._value = value
                if len(data) > len(self._changed_at):
                    self._fold()
                    self._grow(len(data), ts)
                self.changed_mask = xor
                self.ever_changed |= xor
                self._pending_ts.append(ts)
                self._pending_xor.append(xor)
                if len(self._pending_xor) >= _FOLD_AT:
                    self._fold()
            else:
                self.changed_mask = 0
        self.count += 1
        self.last_ts = ts
        self.data = data
        self.is_fd = frame.is_fd
        self.is_rx = frame.is_rx

    def _grow(self, n_bytes: int, ts: float) -> None:
        old = len(self._changed_at)
        self._flips = np.concatenate([self._flips, np.zeros(n_bytes * 8 - len(self._flips), dtype=np.int64)])
        self._changed_at = np.concatenate([self._changed_at, np.full(n_bytes - old, ts)])

    def _fold(self) -> None:
        if self._batches is not None and self._batches.pending[self._slot]:
            self._batches.take(self._slot, self._flips, self._changed_at)
        if not self._pending_xor:
            return
        n = len(self._changed_at)
        raw = b"".join(x.to_bytes(n, "little") for x in self._pending_xor)
        rows = np.frombuffer(raw, dtype=np.uint8).reshape(-1, n)
        self._flips += np.unpackbits(rows, axis=1, bitorder="little").sum(axis=0, dtype=np.int64)
        changed = rows != 0
        any_change = changed.any(axis=0)
        # Last record in which each byte changed.
        last = len(rows) - 1 - np.argmax(changed[::-1], axis=0)
        ts = np.asarray(self._pending_ts)
        self._changed_at[any_change] = ts[last[any_change]]
        self._pending_ts.clear()
        self._pending_xor.clear()


class _BatchChanges:
    """What ``ingest_columns`` batches changed in each stream, not yet folded into the streams:
    bit flip counts, and the time of each byte's latest change (NaN: none), one row a stream.

    A batch adds its streams' rows with one numpy operation each; a stream takes its row when
    someone reads its bits (``MessageStats._fold``). Per-stream folding on every batch cost a
    tenth of a tick at four busy buses.
    """

    __slots__ = ("changed_at", "flips", "pending", "streams")

    def __init__(self) -> None:
        self.flips = np.zeros((0, 0), np.int64)
        self.changed_at = np.zeros((0, 0), np.float64)
        self.pending = np.zeros(0, bool)
        self.streams = 0  # rows handed out

    def new_slot(self) -> int:
        self.streams += 1
        return self.streams - 1

    def ensure(self, streams: int, width: int) -> None:
        """Room for ``streams`` rows of ``width`` payload bytes."""
        rows, cols = self.changed_at.shape
        if streams <= rows and width <= cols:
            return
        rows, cols = max(streams, 2 * rows, 64), max(width, cols)
        flips = np.zeros((rows, 8 * cols), np.int64)
        changed_at = np.full((rows, cols), np.nan)
        old_rows, old_cols = self.changed_at.shape
        flips[:old_rows, : 8 * old_cols] = self.flips
        changed_at[:old_rows, :old_cols] = self.changed_at
        pending = np.zeros(rows, bool)
        pending[:old_rows] = self.pending
        self.flips, self.changed_at, self.pending = flips, changed_at, pending

    def add(self, slots: np.ndarray, flips: np.ndarray, last_ts: np.ndarray, has: np.ndarray) -> None:
        """One batch: ``flips``/``last_ts``/``has`` hold a row per stream of ``slots`` (no repeats)."""
        width = has.shape[1]
        self.flips[slots, : 8 * width] += flips
        rows = self.changed_at[slots, :width]
        np.copyto(rows, last_ts, where=has)
        self.changed_at[slots, :width] = rows
        self.pending[slots] = True

    def take(self, slot: int, flips: np.ndarray, changed_at: np.ndarray) -> None:
        """Fold row ``slot`` into one stream's counts and change times, and clear it."""
        k = min(len(changed_at), self.changed_at.shape[1])  # bytes past either did not change
        flips[: 8 * k] += self.flips[slot, : 8 * k]
        times = self.changed_at[slot, :k]
        np.copyto(changed_at[:k], times, where=~np.isnan(times))
        self.flips[slot] = 0
        self.changed_at[slot] = np.nan
        self.pending[slot] = False


class FrameStore:
    """Per-stream statistics plus totals; fed by batches from the ring."""

    def __init__(self) -> None:
        self.messages: dict[tuple[str, int, bool], MessageStats] = {}
        self.total_frames = 0
        self.error_frames = 0
        self.last_ts = 0.0
        self._batches = _BatchChanges()

    def ingest(self, frames: list[Frame]) -> set[MessageKey]:
        """Fold a batch into the statistics; returns the keys of streams that changed."""
        touched: set[MessageKey] = set()
        messages = self.messages
        for frame in frames:
            if frame.is_error:
                self.error_frames += 1
                continue
            key = (frame.channel, frame.arbitration_id, frame.is_extended)
            stats = messages.get(key)
            if stats is None:
                stats = messages[key] = MessageStats(frame.channel, frame.arbitration_id, frame.is_extended)
            stats.update(frame)
            touched.add(key)
        if frames:
            self.total_frames += len(frames)
            self.last_ts = max(self.last_ts, frames[-1].timestamp)
        return touched

    def ingest_columns(self, cols: FrameColumns) -> set[MessageKey]:
        """The same as ``ingest(cols.to_frames())``, with numpy work per batch and Python work
        per stream instead of per frame."""
        n = len(cols)
        if not n:
            return set()
        self.total_frames += n
        self.last_ts = max(self.last_ts, float(cols.timestamp[-1]))
        errors = (cols.flags & ERROR) != 0
        n_err = int(np.count_nonzero(errors))
        keep: np.ndarray | None = None
        if n_err:
            self.error_frames += n_err
            if n_err == n:
                return set()
            keep = np.flatnonzero(~errors)
        return _ingest_streams(self.messages, cols, keep, self._batches)

    def get(self, channel: str, arbitration_id: int, is_extended: bool = False) -> MessageStats | None:
        return self.messages.get((channel, arbitration_id, is_extended))

    def sorted_messages(self) -> list[MessageStats]:
        return sorted(self.messages.values(), key=lambda s: (s.channel, s.is_extended, s.arbitration_id))

    def clear(self) -> None:
        self.messages.clear()
        self._batches = _BatchChanges()  # the streams that pointed at the old one are gone too
        self.total_frames = 0
        self.error_frames = 0
        self.last_ts = 0.0


# Intervals folded per pass of the closed-form EMA: weights (1 - alpha) ** -j stay below ~1e12.
_EMA_BLOCK = 512
_Q_POW = (1.0 - _EMA_ALPHA) ** np.arange(_EMA_BLOCK + 1, dtype=np.float64)
_Q_INV = (1.0 - _EMA_ALPHA) ** -np.arange(_EMA_BLOCK + 1, dtype=np.float64)


def _ema_runs(
    x: np.ndarray, run_starts: np.ndarray, mean: np.ndarray, var: np.ndarray, sets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of each run after ``MessageStats.update``'s recursion over its intervals.

    ``x`` holds the runs back to back; ``mean``/``var`` are each run's values before it; ``sets``
    marks runs whose first interval is a stream's first one (it sets the mean, var unchanged).
    The recursion ``m = q m + a x`` is linear, so a run's means come from one weighted cumulative
    sum, ``m_j = q^(j+1) (m_0 + a sum_i q^-(i+1) x_i)``; every term is non-negative, so the
    result stays within a few ulps per step of the step-by-step one.
    """
    mean = mean.copy()
    var = var.copy()
    if not len(x):
        return mean, var
    run_len = np.empty_like(run_starts)
    run_len[:-1] = run_starts[1:] - run_starts[:-1]
    run_len[-1] = len(x) - run_starts[-1]
    if sets.any():
        mean[sets] = x[run_starts[sets]]
    skip = sets.astype(np.intp)
    begin = run_starts + skip
    steps_left = run_len - skip
    longest = int(steps_left.max()) if len(steps_left) else 0
    for b0 in range(0, longest, _EMA_BLOCK):
        rows: slice | np.ndarray
        if b0 == 0 and longest <= _EMA_BLOCK and int(steps_left.min()) > 0:
            rows = slice(None)  # the usual case: one pass over every run
            steps = steps_left
        else:
            rows = np.flatnonzero(steps_left > b0)
            steps = np.minimum(steps_left[rows] - b0, _EMA_BLOCK)
        # A pass costs about as much in fixed numpy overhead as ~4,000 padded cells.
        if len(steps) * int(steps.max()) <= 2 * int(steps.sum()) + 16_384:
            _ema_pass(x, begin[rows] + b0, steps, mean, var, rows)
            continue
        # Run lengths far apart (a busy stream among many slow ones): pad each run only up to
        # four times its length by passing runs of similar lengths together.
        rows = np.arange(len(steps_left))[rows]
        octave = np.log2(steps).astype(np.intp) // 2
        for o in np.unique(octave).tolist():
            pick = octave == o
            _ema_pass(x, begin[rows[pick]] + b0, steps[pick], mean, var, rows[pick])
    return mean, var


def _ema_pass(
    x: np.ndarray,
    begin: np.ndarray,
    steps: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    rows: slice | np.ndarray,
) -> None:
    """Fold ``steps[r]`` intervals from ``x[begin[r]:]`` into ``mean[rows][r]``, ``var[rows][r]``
    (at most ``_EMA_BLOCK`` each), as one padded (runs, longest) matrix."""
    w = int(steps.max())
    j = np.arange(w)
    inside = j < steps[:, None]
    xs = np.where(inside, x[np.minimum(begin[:, None] + j, len(x) - 1)], 0.0)
    m0 = mean[rows]
    after = _Q_POW[1 : w + 1] * (m0[:, None] + _EMA_ALPHA * np.cumsum(xs * _Q_INV[1 : w + 1], axis=1))
    before = np.empty_like(after)
    before[:, 0] = m0
    before[:, 1:] = after[:, :-1]
    d = np.where(inside, xs - before, 0.0)
    # var_s = q^s var_0 + a q^s sum_j q^-j d_j^2
    var[rows] = _Q_POW[steps] * (var[rows] + _EMA_ALPHA * ((d * d) @ _Q_INV[:w]))
    mean[rows] = after[np.arange(len(steps)), steps - 1]


def run_bounds(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of the runs of equal values in ``keys`` (non-empty, grouped)."""
    n = len(keys)
    brk = np.empty(n, bool)
    brk[0] = True
    np.not_equal(keys[1:], keys[:-1], out=brk[1:])
    starts = np.flatnonzero(brk)
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:]
    ends[-1] = n
    return starts, ends


def _flip_counts(xor: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """How often each bit flipped in each run of rows: (runs, 8 * width) int32.

    The unpacked bits are summed eight at a time as uint64 words (one byte lane per bit), which
    is several times faster than summing bytes; a lane holds 255 at most, so runs are summed in
    pieces of at most 255 rows and the pieces added up afterwards.
    """
    n = len(xor)
    lanes = np.unpackbits(xor, axis=1, bitorder="little").view(np.uint64)
    if int(sizes.max()) <= 255:
        return np.add.reduceat(lanes, starts, axis=0).view(np.uint8).astype(np.int32)
    pos = np.arange(n) - np.repeat(starts, sizes)
    pieces = np.flatnonzero(pos % 255 == 0)
    partial = np.add.reduceat(lanes, pieces, axis=0).view(np.uint8).astype(np.int32)
    first_piece = np.searchsorted(pieces, starts)
    return np.add.reduceat(partial, first_piece, axis=0)


def _ingest_streams(
    messages: dict[MessageKey, MessageStats],
    cols: FrameColumns,
    keep: np.ndarray | None,
    batches: _BatchChanges,
) -> set[MessageKey]:
    """Fold the rows ``keep`` (all when None) of a batch into ``messages``; see ``ingest_columns``."""
    flags_all = cols.flags if keep is None else cols.flags[keep]
    code = (cols.channel if keep is None else cols.channel[keep]).astype(np.uint64) << np.uint64(33)
    code |= ((flags_all & EXTENDED) != 0).astype(np.uint64) << np.uint64(32)
    code |= (cols.can_id if keep is None else cols.can_id[keep]).astype(np.uint64)
    # Stable: each stream's rows stay in arrival order, which is what the per-frame path sees.
    local = np.argsort(code, kind="stable")
    order = local if keep is None else keep[local]
    sc = code[local]
    n = len(sc)
    starts, ends = run_bounds(sc)
    sizes = ends - starts
    ts = cols.timestamp[order].astype(np.float64, copy=False)
    length = cols.length[order].astype(np.intp)
    flags = flags_all[local]

    # Per stream: its statistics before this batch (a short loop over streams, not frames).
    names = cols.channels
    keys: list[MessageKey] = []
    stats_list: list[MessageStats] = []
    for c in sc[starts].tolist():
        key = (names[c >> 33], c & 0xFFFFFFFF, bool(c >> 32 & 1))
        stats = messages.get(key)
        if stats is None:
            stats = messages[key] = MessageStats(*key)
        elif stats._pending_xor:
            stats._fold()  # XOR records are older than this batch: fold them first
        if stats._batches is None:
            stats._batches, stats._slot = batches, batches.new_slot()
        keys.append(key)
        stats_list.append(stats)
    prev_count = np.array([s.count for s in stats_list], np.int64)
    # Whole 8-byte words, so that XORs and ORs run on uint64 views.
    width = -(-max(cols.data.shape[1], max(len(s.data) for s in stats_list), 1) // 8) * 8

    # Payloads in stream order, zero past each row's length, as wide as any previous payload.
    data = np.zeros((n, width), np.uint8)
    data[:, : cols.data.shape[1]] = cols.data[order]
    if (length < cols.data.shape[1]).any():
        data[np.arange(width) >= length[:, None]] = 0
    prev = np.frombuffer(b"".join(s.data.ljust(width, b"\0") for s in stats_list), np.uint8)
    words = data.view(np.uint64)
    shifted = np.empty_like(words)
    shifted[1:] = words[:-1]
    shifted[starts] = prev.view(np.uint64).reshape(len(starts), width // 8)
    xor_words = words ^ shifted
    new_streams = prev_count == 0
    xor_words[starts[new_streams]] = 0  # a stream's first frame has nothing to differ from
    xor = xor_words.view(np.uint8)

    # Bit flips, last change of each byte, bits ever changed and the last change, per stream.
    flips = _flip_counts(xor, starts, sizes)
    changed = xor != 0
    last_row = np.maximum.reduceat(changed * np.arange(1, n + 1, dtype=np.int32)[:, None], starts, axis=0) - 1
    # Folded when someone reads the stream's bits (numpy per stream costs more than the rest).
    batches.ensure(batches.streams, width)
    slots = np.fromiter((st._slot for st in stats_list), np.intp, len(stats_list))
    batches.add(slots, flips, ts[np.maximum(last_row, 0)], last_row >= 0)
    ever = np.bitwise_or.reduceat(xor_words, starts, axis=0).tobytes()
    last_xor = xor_words[ends - 1].tobytes()
    widest = np.maximum.reduceat(length, starts).tolist()

    # Cycle time: intervals to the stream's previous frame; negative ones are skipped.
    dt = np.empty(n)
    dt[1:] = ts[1:] - ts[:-1]
    dt[starts] = ts[starts] - np.array([s.last_ts for s in stats_list])
    valid = dt >= 0
    valid[starts[new_streams]] = False
    # The interval that brings a stream from 1 to 2 frames sets the mean instead of blending.
    first_interval = starts + new_streams
    setting = np.zeros(n, bool)
    at = (prev_count <= 1) & (first_interval < ends)
    setting[first_interval[at]] = True
    vrows = np.flatnonzero(valid)
    x = dt[vrows]
    group = np.repeat(np.arange(len(starts)), sizes)[vrows]
    run_starts = run_bounds(group)[0] if len(x) else np.zeros(0, np.intp)
    run_group = group[run_starts]
    mean_runs, var_runs = _ema_runs(
        x,
        run_starts,
        np.array([s.mean_interval for s in stats_list])[run_group],
        np.array([s.var_interval for s in stats_list])[run_group],
        setting[vrows[run_starts]],
    )
    run_min = np.minimum.reduceat(x, run_starts).tolist() if len(x) else []
    run_max = np.maximum.reduceat(x, run_starts).tolist() if len(x) else []
    run_of = dict(zip(run_group.tolist(), range(len(run_group)), strict=True))
    mean_final = mean_runs.tolist()
    var_final = var_runs.tolist()

    ts_list_first = ts[starts].tolist()
    ts_list_last = ts[ends - 1].tolist()
    last_flags = flags[ends - 1].tolist()
    last_len = length[ends - 1].tolist()
    last_payload = data[ends - 1].tobytes()
    counts = prev_count.tolist()
    sizes_list = sizes.tolist()
    for g, stats in enumerate(stats_list):
        first_frame = counts[g] == 0
        if first_frame:
            stats.first_ts = ts_list_first[g]
        cut = g * width
        if not (first_frame and sizes_list[g] == 1):
            stats.changed_mask = int.from_bytes(last_xor[cut : cut + width], "little")
            stats.ever_changed |= int.from_bytes(ever[cut : cut + width], "little")
        grown = len(stats._changed_at)
        if widest[g] > grown:
            # The payload grew: new bytes start at the time of the first frame that had them.
            runmax = np.maximum.accumulate(length[starts[g] : ends[g]])
            first = np.searchsorted(runmax, np.arange(grown, widest[g]), side="right")
            stats._changed_at = np.concatenate([stats._changed_at, ts[starts[g] + first]])
            stats._flips = np.concatenate([stats._flips, np.zeros(8 * (widest[g] - grown), np.int64)])
            grown = widest[g]
        r = run_of.get(g)
        if r is not None:
            stats.mean_interval = mean_final[r]
            stats.var_interval = var_final[r]
            stats.min_interval = min(stats.min_interval, run_min[r])
            stats.max_interval = max(stats.max_interval, run_max[r])
        stats.count += sizes_list[g]
        stats.last_ts = ts_list_last[g]
        stats.data = last_payload[cut : cut + last_len[g]]
        stats._value = int.from_bytes(stats.data, "little")
        stats.is_fd = bool(last_flags[g] & FD)
        stats.is_rx = bool(last_flags[g] & RX)
    return set(keys)
