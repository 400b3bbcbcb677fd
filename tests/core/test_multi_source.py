import time

import pytest

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.errors import SourceError
from workshop_app.core.session import CaptureSession
from workshop_app.core.sources.multi import MultiSource
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.core.types import Frame
from workshop_app.paths import demo_dbc_path


def test_two_simulated_buses_in_one_session_with_bus_load():
    ring = FrameRing()
    sims = [SimulatorSource(ring, channel_label=f"can{i}", pace_bitrate=500_000) for i in range(2)]
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    session = CaptureSession(MultiSource(ring, sims), dbs)
    session.start()
    try:
        deadline = time.monotonic() + 2.6
        while time.monotonic() < deadline:
            session.tick()
            time.sleep(0.03)
        channels = {key[0] for key in session.store.messages}
        assert channels == {"can0", "can1"}
        load = session.stats.bus_load
        # The demo car alone uses roughly an eighth of a 500 kbit/s bus.
        assert load is not None and 0.05 < load < 0.3
        assert session.source.bitrate == 500_000
        session.source.send(Frame(0, 0x2B0, b"\x01\x00", "can1", False))
        with pytest.raises(SourceError, match="can7"):
            session.source.send(Frame(0, 0x2B0, b"\x01\x00", "can7", False))
    finally:
        session.stop()
    assert all(not s.running for s in sims)


def test_members_must_share_the_ring():
    with pytest.raises(ValueError):
        MultiSource(FrameRing(), [SimulatorSource(FrameRing())])
