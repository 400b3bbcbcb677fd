"""The pre-trigger capture saves the seconds around a signal crossing or a DTC appearing."""

from __future__ import annotations

import cantools
import numpy as np
import pytest

from workshop_app.core.capture.trigger import SignalTrigger, TriggerCapture
from workshop_app.core.logs.reader import read_columns
from workshop_app.core.types import Frame
from workshop_app.paths import demo_dbc_path


@pytest.fixture(scope="module")
def temps():
    return cantools.database.load_file(str(demo_dbc_path())).get_message_by_name("ENGINE_TEMPS")


def frames(message, start: float, seconds: float, coolant) -> list[Frame]:
    out = []
    for i in range(int(seconds * 10)):
        t = start + i / 10
        values = {s.name: 0 for s in message.signals}
        values["CoolantTemp"] = coolant(t - start)
        data = message.encode(values, strict=False)
        out.append(Frame(t, message.frame_id, data, "can0", message.is_extended_frame))
    return out


def test_signal_crossing_saves_pre_and_post_window(tmp_path, temps):
    saved = []
    cap = TriggerCapture(tmp_path, pre_seconds=2.0, post_seconds=1.0, on_saved=saved.append)
    cap.add_signal_trigger(SignalTrigger(temps, "CoolantTemp", ">", 100.0))
    t0 = 1_700_000_000.0  # live captures carry epoch time stamps
    stream = frames(temps, t0, 20.0, lambda s: 80 + s * 2)  # crosses 100 °C at 10 s
    for i in range(0, len(stream), 7):  # batches as the session ticks them
        cap.feed(stream[i : i + 7])
    assert len(saved) == 1
    event = saved[0]
    assert "CoolantTemp > 100" in event.reason
    # 80 + 2 °C/s passes 100 °C just after 10 s (the DBC's resolution decides the exact frame).
    assert t0 + 10.0 < event.time < t0 + 10.6
    cols = read_columns(event.path)
    assert cols.timestamp[0] == pytest.approx(event.time - 2.0, abs=0.11)
    assert cols.timestamp[-1] == pytest.approx(event.time + 1.0, abs=0.11)
    assert event.summary.frames_written == len(cols) == 31
    assert np.all(np.diff(cols.timestamp) > 0)
    # Staying above the limit does not fire again; only a new crossing would.
    assert len(cap.events) == 1


def test_external_trigger_and_early_finish(tmp_path, temps):
    cap = TriggerCapture(tmp_path, pre_seconds=1.0, post_seconds=30.0)
    t0 = 1_700_000_000.0
    cap.feed(frames(temps, t0, 3.0, lambda s: 20))
    cap.fire("DTC P0118 appeared on ECM")
    cap.feed(frames(temps, t0 + 3.0, 2.0, lambda s: 20))
    assert cap.capturing
    event = cap.finish_now()
    assert event is not None and event.reason == "DTC P0118 appeared on ECM"
    cols = read_columns(event.path)
    assert cols.timestamp[0] == pytest.approx(t0 + 2.0, abs=0.11)  # one second before the trigger
    assert cols.timestamp[-1] == pytest.approx(t0 + 4.9)


def test_bad_trigger_definitions(temps):
    with pytest.raises(ValueError, match="operator"):
        SignalTrigger(temps, "CoolantTemp", "==", 1)
    with pytest.raises(ValueError, match="no signal"):
        SignalTrigger(temps, "Nope", ">", 1)


def test_the_saved_recording_spans_the_window_not_the_writing(tmp_path, temps):
    cap = TriggerCapture(tmp_path, pre_seconds=2.0, post_seconds=1.0)
    t0 = 1_700_000_000.0
    cap.feed(frames(temps, t0, 5.0, lambda s: 20))
    cap.fire("a fault code appeared")
    cap.feed(frames(temps, t0 + 5.0, 2.0, lambda s: 20))
    (event,) = cap.events
    assert event.summary.started == pytest.approx(t0 + 3.0, abs=0.11)  # two seconds before 5 s
    assert event.summary.duration == pytest.approx(3.0, abs=0.11)
