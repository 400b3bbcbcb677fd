"""The vectorised decoder against cantools, frame by frame and value by value."""

from __future__ import annotations

import random
from pathlib import Path

import can
import cantools
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.decode.vectorized import decode_columns
from workshop_app.core.logs.columns import FrameColumns
from workshop_app.core.types import channel_label
from workshop_app.paths import demo_dbc_path


def _reference(messages: list[can.Message], dbs: DatabaseSet):
    """cantools' values per (message, signal), and the count of frames it refuses."""
    ref: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    refused = 0
    for m in messages:
        if m.is_error_frame or m.is_remote_frame:
            continue
        msg = dbs.lookup(channel_label(m.channel), m.arbitration_id, m.is_extended_id)
        if msg is None:
            continue
        try:
            decoded = msg.decode(bytes(m.data), decode_choices=False)
        except Exception:
            refused += 1
            continue
        for name, value in decoded.items():
            t, v = ref.setdefault((msg.name, name), ([], []))
            t.append(m.timestamp)
            v.append(float(value))
    return ref, refused


def _assert_same(messages: list[can.Message], dbs: DatabaseSet) -> None:
    result = decode_columns(FrameColumns.from_messages(messages), dbs)
    ref, refused = _reference(messages, dbs)
    assert result.undecodable_frames == refused
    assert set(result.signals) == set(ref)
    for key, (t, v) in ref.items():
        got = result.signals[key]
        np.testing.assert_array_equal(got.timestamps, np.asarray(t), err_msg=str(key))
        # NaN payloads of float signals compare equal to themselves here.
        np.testing.assert_array_equal(got.values, np.asarray(v, dtype=np.float64), err_msg=str(key))


@pytest.mark.parametrize(
    ("log", "dbc"),
    [
        ("logs/savvycan_tesla_model_s_candump.log", "dbc/tesla_powertrain.dbc"),
        ("logs/savvycan_tesla_model_s_candump.log", "dbc/tesla_can.dbc"),
        ("logs/css_j1939_truck_00000001.MF4", "dbc/CSS-Electronics-SAE-J1939-DEMO.dbc"),
        ("logs/css_j1939_tp_FCBF0606_00000001-60B621D9.MF4", "dbc/CSS-Electronics-SAE-J1939-DEMO.dbc"),
    ],
)
def test_real_logs_decode_exactly_as_cantools(shared_data: Path, log: str, dbc: str):
    dbs = DatabaseSet()
    dbs.add(shared_data / dbc)
    _assert_same(list(can.LogReader(shared_data / log)), dbs)


def test_demo_vehicle_traffic_with_mux_float_fd_and_extended_ids():
    db = cantools.database.load_file(demo_dbc_path())
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    rng = random.Random(7)
    messages = []
    t = 1000.0
    for _ in range(4000):
        m = rng.choice(db.messages)
        t += 0.001
        # Random payloads reach every corner: negative values, NaN floats, every mux page.
        data = rng.randbytes(m.length)
        messages.append(
            can.Message(
                timestamp=t,
                arbitration_id=m.frame_id,
                is_extended_id=m.is_extended_frame,
                data=data,
                is_fd=m.length > 8,
            )
        )
    # Some frames shorter than their definition: counted as undecodable, not dropped silently.
    messages.append(
        can.Message(timestamp=t + 1, arbitration_id=0x0C0, is_extended_id=False, data=b"\x01\x02")
    )
    _assert_same(messages, dbs)


def _motorola_fits(start: int, length: int, size: int) -> bool:
    msb_byte, msb_bit = divmod(start, 8)
    return msb_byte * 8 + (7 - msb_bit) + length - 1 < size * 8


@st.composite
def layouts(draw):
    size = draw(st.sampled_from([1, 2, 4, 8, 12, 16, 32, 64]))
    kind = draw(st.sampled_from(["int", "float32", "float64"]))
    if kind == "float32":
        length = 32
    elif kind == "float64":
        length = 64
    else:
        length = draw(st.integers(1, 64))
    if length > size * 8:
        size = 8 if length <= 64 else size
    intel = draw(st.booleans())
    if intel:
        start = draw(st.integers(0, size * 8 - length))
    else:
        starts = [s for s in range(size * 8) if _motorola_fits(s, length, size)]
        start = draw(st.sampled_from(starts))
    signed = kind == "int" and draw(st.booleans())
    scale = draw(st.sampled_from([1, 0.5, 0.01, 3, -2, 1e-3]))
    offset = draw(st.sampled_from([0, -40, 12.5, 1000]))
    return size, kind, length, intel, start, signed, scale, offset


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layout=layouts(), seed=st.integers(0, 2**32 - 1))
def test_random_layouts_match_cantools(tmp_path, layout, seed):
    size, kind, length, intel, start, signed, scale, offset = layout
    valtype = {"float32": 1, "float64": 2}.get(kind)
    text = (
        'VERSION ""\nNS_ :\nBS_:\nBU_: A\n'
        f"BO_ 291 M: {size} A\n"
        f' SG_ S : {start}|{length}@{1 if intel else 0}{"-" if signed else "+"} ({scale},{offset}) [0|0] "u" A\n'
        + (f"\nSIG_VALTYPE_ 291 S : {valtype};\n" if valtype else "\n")
    )
    path = tmp_path / f"r{seed}.dbc"
    path.write_text(text)
    dbs = DatabaseSet()
    dbs.add(path)
    rng = random.Random(seed)
    messages = [
        can.Message(
            timestamp=i * 0.01,
            arbitration_id=291,
            is_extended_id=False,
            data=rng.randbytes(size),
            is_fd=size > 8,
        )
        for i in range(64)
    ]
    _assert_same(messages, dbs)


def test_extended_multiplexing(tmp_path):
    # Two levels: Page selects a sub-multiplexer, which selects the value signals.
    text = """VERSION ""
NS_ :
BS_:
BU_: A
BO_ 1792 Diag: 8 A
 SG_ Page M : 0|8@1+ (1,0) [0|255] "" A
 SG_ Sub m1M : 8|8@1+ (1,0) [0|255] "" A
 SG_ Temp m16 : 16|8@1- (1,-40) [0|0] "degC" A
 SG_ Volt m17 : 16|16@1+ (0.001,0) [0|0] "V" A
 SG_ Odo m2 : 8|32@0+ (0.1,0) [0|0] "km" A

SG_MUL_VAL_ 1792 Sub Page 1-1;
SG_MUL_VAL_ 1792 Temp Sub 16-16;
SG_MUL_VAL_ 1792 Volt Sub 17-17;
SG_MUL_VAL_ 1792 Odo Page 2-2;
"""
    path = tmp_path / "mux.dbc"
    path.write_text(text)
    dbs = DatabaseSet()
    dbs.add(path)
    rng = random.Random(3)
    messages = []
    for i in range(600):
        page = rng.choice([0, 1, 2, 3])
        sub = rng.choice([16, 17, 18])
        data = bytes([page, sub]) + rng.randbytes(6)
        messages.append(can.Message(timestamp=i * 0.01, arbitration_id=1792, is_extended_id=False, data=data))
    _assert_same(messages, dbs)
    result = decode_columns(FrameColumns.from_messages(messages), dbs)
    assert 0 < len(result.signals[("Diag", "Temp")]) < len(result.signals[("Diag", "Page")])
