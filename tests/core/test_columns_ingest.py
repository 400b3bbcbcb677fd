"""The columnar paths (store, live decoder, bus time) against the frame-by-frame ones."""

import math
import random
from pathlib import Path

import numpy as np
import pytest

from workshop_app.core.capture.bus_time import bus_seconds, bus_seconds_columns
from workshop_app.core.capture.columns import FrameColumns
from workshop_app.core.capture.store import FrameStore
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.decode.live import LiveDecoder
from workshop_app.core.logs.candump_reader import read_candump
from workshop_app.core.types import FD_LENGTHS, Frame
from workshop_app.paths import demo_dbc_path

DATA = Path(__file__).resolve().parents[1] / "data"

FIELDS = (
    "count",
    "first_ts",
    "last_ts",
    "data",
    "is_fd",
    "is_rx",
    "mean_interval",
    "var_interval",
    "min_interval",
    "max_interval",
    "changed_mask",
    "ever_changed",
    "bit_flips",
    "byte_changed_at",
)


def _close(a: object, b: object, field: str) -> bool:
    if a == b:
        return True
    if isinstance(a, float) and isinstance(b, float):
        # A perfectly regular stream's variance is rounding noise (~1e-30 s²), which no two
        # summation orders agree on; 1e-20 s² is a jitter of 1e-10 s.
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-20 if field == "var_interval" else 0.0)
    return False


def assert_same_store(expected: FrameStore, actual: FrameStore) -> None:
    assert actual.total_frames == expected.total_frames
    assert actual.error_frames == expected.error_frames
    assert actual.last_ts == expected.last_ts
    assert actual.messages.keys() == expected.messages.keys()
    for key, want in expected.messages.items():
        got = actual.messages[key]
        for field in FIELDS:
            w, g = getattr(want, field), getattr(got, field)
            assert _close(w, g, field), f"{key} {field}: {g!r} != {w!r}"


def _random_frames(rng: random.Random, n: int, t: float, streams: list[tuple[str, int, bool]]) -> list[Frame]:
    frames = []
    for _ in range(n):
        channel, can_id, extended = rng.choice(streams)
        # Mostly forward in time, sometimes backwards (merged sources, clock steps).
        t += rng.expovariate(2_000) if rng.random() > 0.05 else -rng.random() * 0.01
        if rng.random() < 0.03:
            frames.append(Frame(t, rng.randrange(0x800), b"", channel, is_error=True))
            continue
        length = 8 if rng.random() < 0.75 else rng.choice(FD_LENGTHS)
        kind = rng.random()
        if kind < 0.3:  # repeated payloads
            data = bytes(length)
        elif kind < 0.6:  # a counter in the first byte
            data = bytes([int(t * 100) & 0xFF]) + bytes(max(0, length - 1))
        else:
            data = bytes(rng.randrange(256) for _ in range(length))
        frames.append(Frame(t, can_id, data, channel, extended, is_fd=length > 8, is_rx=rng.random() < 0.9))
    return frames


def _streams(rng: random.Random) -> list[tuple[str, int, bool]]:
    out = []
    for _ in range(rng.randrange(1, 15)):
        extended = rng.random() < 0.3
        can_id = rng.randrange(1 << 29) if extended else rng.randrange(0x800)
        out.append((rng.choice(["can0", "can1", "vcan7"]), can_id, extended))
    return out


def _split(rng: random.Random, frames: list[Frame]) -> list[list[Frame]]:
    cuts = sorted(rng.sample(range(1, len(frames)), min(len(frames) - 1, rng.randrange(0, 6))))
    return [frames[a:b] for a, b in zip([0, *cuts], [*cuts, len(frames)], strict=True)]


@pytest.mark.parametrize("seed", range(40))
def test_ingest_columns_equals_ingest_on_random_batches(seed):
    rng = random.Random(seed)
    streams = _streams(rng)
    by_frames, by_columns = FrameStore(), FrameStore()
    t = 100.0
    for _ in range(rng.randrange(1, 5)):
        frames = _random_frames(rng, rng.randrange(1, 900), t, streams)
        t = frames[-1].timestamp
        for batch in _split(rng, frames):
            assert by_columns.ingest_columns(FrameColumns.from_frames(batch)) == by_frames.ingest(batch)
    assert_same_store(by_frames, by_columns)


def test_long_runs_of_one_stream_and_growing_payloads():
    # Runs longer than the EMA block and the 255-row flip lanes; payload widths that grow and shrink.
    rng = random.Random(7)
    frames = []
    for i in range(3_000):
        length = [1, 3, 8, 2, 64, 8][(i // 400) % 6]
        frames.append(
            Frame(i * 0.001 + rng.random() * 1e-4, 0x123, bytes(rng.randrange(4) for _ in range(length)))
        )
    frames.append(Frame(5.0, 0x7FF, b"", "can0", is_error=True))  # last row an error frame
    by_frames, by_columns = FrameStore(), FrameStore()
    by_frames.ingest(frames[:10])
    by_columns.ingest_columns(FrameColumns.from_frames(frames[:10]))
    by_frames.ingest(frames[10:])
    by_columns.ingest_columns(FrameColumns.from_frames(frames[10:]))
    assert_same_store(by_frames, by_columns)
    stats = by_columns.get("can0", 0x123)
    assert len(stats.bit_flips) == 64 * 8 and sum(stats.bit_flips) > 3_000
    assert by_columns.error_frames == 1 and by_columns.last_ts == 5.0


def test_first_intervals_and_single_frames():
    # One frame, then a backwards step as the first interval, then forward ones.
    steps = [[Frame(1.0, 1, b"\1")], [Frame(0.5, 1, b"\1")], [Frame(0.6, 1, b"\2"), Frame(0.7, 1, b"\2\0")]]
    by_frames, by_columns = FrameStore(), FrameStore()
    for batch in steps:
        by_frames.ingest(batch)
        by_columns.ingest_columns(FrameColumns.from_frames(batch))
        assert_same_store(by_frames, by_columns)
    assert by_columns.ingest_columns(FrameColumns.empty()) == set()
    errors_only = FrameColumns.from_frames([Frame(9.0, 0, b"", is_error=True)])
    assert by_columns.ingest_columns(errors_only) == set()
    assert by_columns.error_frames == 1 and by_columns.total_frames == 5 and by_columns.last_ts == 9.0


def test_columns_then_frames_on_the_same_store():
    rng = random.Random(3)
    streams = _streams(rng)
    frames = _random_frames(rng, 1_500, 0.0, streams)
    by_frames, mixed = FrameStore(), FrameStore()
    by_frames.ingest(frames)
    mixed.ingest_columns(FrameColumns.from_frames(frames[:500]))
    mixed.ingest(frames[500:1000])
    mixed.ingest_columns(FrameColumns.from_frames(frames[1000:]))
    assert_same_store(by_frames, mixed)


def _tesla_frames() -> list[Frame]:
    cols = read_candump(DATA / "logs" / "savvycan_tesla_model_s_candump.log")
    return [Frame.from_message(m) for m in cols.to_messages()]


def test_ingest_columns_equals_ingest_on_a_real_candump_log():
    frames = _tesla_frames()
    assert len(frames) > 5_000
    by_frames, by_columns = FrameStore(), FrameStore()
    rng = random.Random(11)
    pos = 0
    while pos < len(frames):
        n = rng.choice([1, 37, 600, 2_000])
        batch = frames[pos : pos + n]
        pos += n
        by_frames.ingest(batch)
        # As the capture process sends them: packed and unpacked (read-only views).
        by_columns.ingest_columns(FrameColumns.unpack(FrameColumns.from_frames(batch).pack()))
    assert_same_store(by_frames, by_columns)
    assert len(by_columns.messages) > 20


def _demo_decoders() -> tuple[LiveDecoder, LiveDecoder, list]:
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    messages = [m for loaded in dbs.databases for m in loaded.db.messages]
    a, b = LiveDecoder(dbs), LiveDecoder(dbs)
    for m in messages:
        for s in m.signals:
            a.subscribe(m.name, s.name)
            b.subscribe(m.name, s.name)
    return a, b, messages


def assert_same_series(a: LiveDecoder, b: LiveDecoder) -> None:
    assert b.decode_errors == a.decode_errors
    for key, (_, series_by_name) in a._subs.items():
        for name, want in series_by_name.items():
            got = b._subs[key][1][name]
            assert got.total == want.total, name
            t_want, v_want = want.arrays()
            t_got, v_got = got.arrays()
            np.testing.assert_array_equal(t_got, t_want)
            np.testing.assert_array_equal(v_got, v_want)


@pytest.mark.parametrize("seed", range(6))
def test_process_columns_equals_process(seed):
    rng = random.Random(seed)
    a, b, messages = _demo_decoders()
    mux = next(m for m in messages if m.is_multiplexed())
    t = 0.0
    for _ in range(4):
        frames = []
        for _ in range(rng.randrange(1, 800)):
            m = mux if rng.random() < 0.2 else rng.choice(messages)
            t += 1e-4
            length = m.length if rng.random() < 0.9 else rng.randrange(0, m.length + 3)  # short ones fail
            data = bytes(
                rng.randrange(256) if rng.random() < 0.5 else rng.randrange(5) for _ in range(length)
            )
            channel = "can0" if rng.random() < 0.8 else "can1"
            frames.append(Frame(t, m.frame_id, data, channel, m.is_extended_frame, is_fd=length > 8))
        frames.append(Frame(t, 0x7FF, b"\0" * 8))  # an id no database knows
        a.process(frames)
        b.process_columns(FrameColumns.from_frames(frames))
    assert_same_series(a, b)
    assert a.decode_errors > 0  # short payloads and unknown multiplexer pages were seen


def test_process_columns_multiplexed_pages_and_short_payload():
    a, b, messages = _demo_decoders()
    mux = next(m for m in messages if m.name == "ENGINE_STATUS_MUX")
    frames = [Frame(i * 0.01, mux.frame_id, bytes([i % 5, i, 2 * i % 256, 3, 4, 5, 6, 7])) for i in range(40)]
    frames.append(Frame(0.5, mux.frame_id, b"\0\1"))  # too short: one decode error
    a.process(frames)
    b.process_columns(FrameColumns.from_frames(frames))
    assert_same_series(a, b)
    assert b.decode_errors == 1 + 8  # the short frame and the eight frames of page 4
    page0 = b._subs[id(mux)][1]["ManifoldPressure"]
    assert len(page0) == 8  # pages 0..3 rotate: page 0 on every fifth frame


def test_process_columns_small_groups_and_no_subscriptions():
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    decoder = LiveDecoder(dbs)
    engine = dbs.databases[0].db.get_message_by_name("ENGINE_DATA")
    cols = FrameColumns.from_frames([Frame(1.0, engine.frame_id, bytes(8))])
    decoder.process_columns(cols)  # nothing subscribed: nothing to do
    series = decoder.subscribe("ENGINE_DATA", "EngineSpeed")
    decoder.process_columns(cols)
    decoder.process_columns(FrameColumns.empty())
    assert series.arrays()[0].tolist() == [1.0]


def test_bus_seconds_columns_agree_with_frames():
    frames = _tesla_frames()[:3_000]
    frames += [
        Frame(9.0, 0x10, bytes(range(64)), is_fd=True, bitrate_switch=True),
        Frame(9.1, 0, b"", is_error=True),
    ]
    for n in (0, 1, 200, 256, 700, len(frames)):
        part = frames[-n:] if n else []
        cols = FrameColumns.from_frames(part)
        for data_bitrate in (None, 2_000_000):
            want = bus_seconds(part, 500_000, data_bitrate)
            assert bus_seconds_columns(cols, 500_000, data_bitrate) == want
    assert bus_seconds(frames, 500_000, None) > 0


def test_frame_columns_slices_concat_rows_and_empty():
    a = [
        Frame(0.0, 0x10, b"\1", "can0"),
        Frame(1.0, 0x11, bytes(range(12)), "can1", is_fd=True, bitrate_switch=True),
    ]
    b = [Frame(2.0, 0x1ABCDEF, b"\2\3", "can1", is_extended=True, is_rx=False), Frame(3.0, 0, b"", "can2")]
    ca, cb = FrameColumns.from_frames(a), FrameColumns.from_frames(b)
    assert ca.channels == ("can0", "can1") and cb.channels == ("can1", "can2")
    joined = FrameColumns.concat([ca, FrameColumns.empty(), cb])
    assert joined.channels == ("can0", "can1", "can2")
    assert joined.data.shape == (4, 12)
    assert joined.to_frames() == a + b
    assert [joined.row(i) for i in range(4)] == a + b
    assert joined.row(-1) == b[-1]
    tail = joined[1:3]
    assert tail.to_frames() == a[1:] + b[:1]
    assert np.shares_memory(tail.data, joined.data)  # a view, not a copy
    assert FrameColumns.unpack(joined.pack()).to_frames() == a + b
    assert len(FrameColumns.empty()) == 0 and FrameColumns.empty().to_frames() == []
    assert FrameColumns.concat([]).to_frames() == []
    assert FrameColumns.concat([ca]) is ca
    with pytest.raises(TypeError):
        joined[0]  # one row is row(0)


def test_batch_changes_are_folded_on_read_and_never_pile_up():
    rng = random.Random(5)
    streams = _streams(rng)
    by_frames, by_columns = FrameStore(), FrameStore()
    t = 0.0
    for i in range(40):
        frames = _random_frames(rng, 50, t, streams)
        t = frames[-1].timestamp
        by_frames.ingest(frames)
        by_columns.ingest_columns(FrameColumns.from_frames(frames))
        if i % 7 == 0:  # a view reading some streams now and then
            first = next(iter(by_columns.messages.values()))
            assert first.bit_flips == by_frames.messages[first.key].bit_flips
        # Unread streams' changes add up in one row a stream: no batch is kept alive.
        assert by_columns._batches.streams == len(by_columns.messages)
    assert_same_store(by_frames, by_columns)
