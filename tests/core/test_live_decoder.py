import cantools

from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.decode.live import LiveDecoder, decode_payload
from workshop_app.core.types import Frame
from workshop_app.paths import demo_dbc_path


def _setup():
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    db = cantools.database.load_file(demo_dbc_path())
    return LiveDecoder(dbs), db


def test_subscribed_signal_series_matches_cantools():
    decoder, db = _setup()
    msg = db.get_message_by_name("ENGINE_DATA")
    series = decoder.subscribe("ENGINE_DATA", "EngineSpeed")
    frames = []
    for i in range(50):
        values = {s.name: 0 for s in msg.signals}
        values["EngineSpeed"] = 800 + i * 10
        frames.append(Frame(i * 0.01, msg.frame_id, msg.encode(values), "can0", msg.is_extended_frame))
    decoder.process(frames)
    t, v = series.arrays()
    assert t.tolist() == [f.timestamp for f in frames]
    assert v.tolist() == [800 + i * 10 for i in range(50)]


def test_short_frames_count_as_decode_errors():
    decoder, db = _setup()
    msg = db.get_message_by_name("ENGINE_DATA")
    decoder.subscribe("ENGINE_DATA", "EngineSpeed")
    decoder.process([Frame(0, msg.frame_id, b"\x01", "can0", False)])
    assert decoder.decode_errors == 1


def test_subscriptions_are_reference_counted():
    decoder, _ = _setup()
    a = decoder.subscribe("ENGINE_DATA", "EngineSpeed")
    b = decoder.subscribe("ENGINE_DATA", "EngineSpeed")
    assert a is b
    decoder.unsubscribe("ENGINE_DATA", "EngineSpeed")
    assert decoder.subscribe("ENGINE_DATA", "EngineSpeed") is a  # still held by one view
    decoder.unsubscribe("ENGINE_DATA", "EngineSpeed")
    decoder.unsubscribe("ENGINE_DATA", "EngineSpeed")
    assert decoder.subscribe("ENGINE_DATA", "EngineSpeed") is not a


def test_value_table_labels():
    _, db = _setup()
    msg = db.get_message_by_name("TRANSMISSION")
    values = {s.name: 0 for s in msg.signals}
    decoded = {v.name: v for v in decode_payload(msg, msg.encode(values))}
    gear = decoded["GearSelector"]
    assert gear.label is not None and gear.text().startswith(gear.label)
