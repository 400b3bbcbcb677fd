"""Rolling counters and checksums filled per frame, as the DBC's SignalFunction declares them,
checked with the simulated ECUs' own checksum functions on frames taken off a virtual bus."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import can
import cantools
import pytest

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.sim.demo_vehicle import crc8_sae_j1850 as sim_crc8
from workshop_app.core.sim.demo_vehicle import xor8 as sim_xor8
from workshop_app.core.sources.adapter import AdapterSource
from workshop_app.core.transmit_jobs import JobStatus, TransmitJob, TransmitJobs
from workshop_app.core.transmit_protect import Protection, role_text
from workshop_app.core.types import BusConfig
from workshop_app.paths import demo_dbc_path


@pytest.fixture(scope="module")
def dbc() -> cantools.database.can.Database:
    return cantools.database.load_file(str(demo_dbc_path()), strict=False)


@pytest.fixture
def channel() -> str:
    return f"protect-{uuid.uuid4().hex}"


@pytest.fixture
def car(channel: str) -> Iterator[can.BusABC]:
    bus = can.Bus(interface="virtual", channel=channel)
    yield bus
    bus.shutdown()


@pytest.fixture
def jobs(channel: str) -> Iterator[TransmitJobs]:
    databases = DatabaseSet()
    databases.add(demo_dbc_path())
    source = AdapterSource(FrameRing(), BusConfig("virtual", channel, fd=True))
    source.start()
    tx = TransmitJobs(source, databases)
    yield tx
    tx.close()
    source.stop()


def _frames(bus: can.BusABC, arbitration_id: int) -> list[can.Message]:
    got = []
    while (msg := bus.recv(0)) is not None:
        if msg.arbitration_id == arbitration_id:
            got.append(msg)
    return got


def test_counter_counts_and_xor8_checks_out(jobs, car, dbc):
    ended = jobs.run_periodic(
        TransmitJob(message="ENGINE_DATA", values={"EngineSpeed": 1500}, period=0.001, limit=20)
    )
    assert ended.status is JobStatus.FINISHED
    frames = _frames(car, 0xC0)
    assert len(frames) == 20
    decoded = [dbc.decode_message(0xC0, m.data, decode_choices=False) for m in frames]
    assert [d["EngineData_Counter"] for d in decoded] == [i % 16 for i in range(20)]
    assert all(m.data[7] == sim_xor8(m.data, 7) for m in frames)
    assert {d["EngineSpeed"] for d in decoded} == {1500}


def test_crc8_of_the_fd_message(jobs, car, dbc):
    jobs.run_periodic(TransmitJob(message="ESC_DYNAMICS_FD", values={}, period=0.001, limit=3))
    frames = _frames(car, 304)
    assert len(frames) == 3 and all(m.is_fd and len(m.data) == 32 for m in frames)
    assert all(m.data[0] == sim_crc8(m.data, 0) for m in frames)
    counters = [dbc.decode_message(304, m.data, decode_choices=False)["EscFd_Counter"] for m in frames]
    assert counters == [0, 1, 2]


def test_values_the_user_sets_are_sent_as_given(jobs, car, dbc):
    jobs.run_periodic(
        TransmitJob(
            message="ENGINE_DATA",
            values={"EngineData_Counter": 5, "EngineData_Checksum": 0xAA},
            period=0.001,
            limit=3,
        )
    )
    frames = _frames(car, 0xC0)
    assert [m.data[7] for m in frames] == [0xAA] * 3  # a wrong checksum, on purpose
    decoded = [dbc.decode_message(0xC0, m.data, decode_choices=False) for m in frames]
    assert [d["EngineData_Counter"] for d in decoded] == [5, 5, 5]  # a stuck counter


def test_which_signals_are_filled(dbc):
    engine = dbc.get_message_by_name("ENGINE_DATA")
    assert Protection.of(engine).filled == {"EngineData_Counter", "EngineData_Checksum"}
    assert Protection.of(dbc.get_message_by_name("BODY_COMMAND")).filled == frozenset()
    assert role_text(engine.get_signal_by_name("EngineData_Checksum")) == "XOR8 checksum"
    assert role_text(engine.get_signal_by_name("EngineSpeed")) is None
