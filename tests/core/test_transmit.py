"""TransmitScheduler on a virtual bus: one-shot, periodic timing, DBC encoding, disconnects."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import can
import cantools
import pytest

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.errors import SourceError, WorkshopError
from workshop_app.core.sources.adapter import AdapterSource
from workshop_app.core.transmit import (
    JobStatus,
    TransmitJob,
    TransmitScheduler,
    encode_signals,
    signal_default,
)
from workshop_app.core.transmit_jobs import _next_deadline
from workshop_app.core.types import BusConfig, Frame
from workshop_app.paths import demo_dbc_path


def _wait_for(cond: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def _collect(bus: can.BusABC, seconds: float, arbitration_id: int | None = None) -> list[can.Message]:
    got: list[can.Message] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        msg = bus.recv(left)
        if msg is not None and (arbitration_id is None or msg.arbitration_id == arbitration_id):
            got.append(msg)
    return got


@pytest.fixture(scope="module")
def dbc() -> cantools.database.can.Database:
    return cantools.database.load_file(str(demo_dbc_path()), strict=False)


@pytest.fixture
def databases() -> DatabaseSet:
    dbs = DatabaseSet()
    dbs.add(demo_dbc_path())
    return dbs


@pytest.fixture
def channel() -> str:
    return f"tx-{uuid.uuid4().hex}"


@pytest.fixture
def source(channel: str) -> Iterator[AdapterSource]:
    src = AdapterSource(FrameRing(), BusConfig("virtual", channel, fd=True))
    src.start()
    yield src
    src.stop()


@pytest.fixture
def car(channel: str) -> Iterator[can.BusABC]:
    bus = can.Bus(interface="virtual", channel=channel)
    yield bus
    bus.shutdown()


@pytest.fixture
def scheduler(source: AdapterSource, databases: DatabaseSet) -> Iterator[TransmitScheduler]:
    sched = TransmitScheduler(source, databases)
    yield sched
    sched.stop_all()


def test_one_shot_frame_arrives_and_is_listed(scheduler, car):
    job_id = scheduler.send_once(Frame(0, 0x7DF, b"\x02\x01\x0c", is_extended=False))
    got = car.recv(1.0)
    assert got is not None and got.arbitration_id == 0x7DF and bytes(got.data) == b"\x02\x01\x0c"
    job = scheduler.job(job_id)
    assert job.status is JobStatus.SENT and job.count == 1 and job.period is None
    scheduler.trigger(job_id)  # send the same job again
    assert car.recv(1.0) is not None
    assert scheduler.job(job_id).count == 2


def test_fd_frame_with_bit_rate_switch(scheduler, car):
    scheduler.send_once(
        Frame(0, 0x18DAF110, bytes(range(12)), is_extended=True, is_fd=True, bitrate_switch=True)
    )
    got = car.recv(1.0)
    assert got is not None and got.is_fd and got.bitrate_switch and got.is_extended_id
    assert bytes(got.data) == bytes(range(12))


def _queued(bus: can.BusABC, arbitration_id: int | None = None) -> list[can.Message]:
    """Frames already queued on ``bus`` (a virtual bus queues a frame as it is sent)."""
    got = []
    while (msg := bus.recv(0)) is not None:
        if arbitration_id is None or msg.arbitration_id == arbitration_id:
            got.append(msg)
    return got


def test_deadlines_stay_on_the_grid():
    # Absolute deadlines: the next one is the previous + period, whatever the send took...
    assert _next_deadline(10.0, 0.02, 10.005) == pytest.approx(10.02)
    # ...and after a stall the missed slots are skipped, never sent late in a burst.
    assert _next_deadline(10.0, 0.02, 10.101) == pytest.approx(10.12)
    assert _next_deadline(10.0, 0.02, 10.12) == pytest.approx(10.12)  # on a slot: that slot, now


def test_stopped_means_stopped_and_every_frame_counted(scheduler, car):
    job_id = scheduler.add_periodic(TransmitJob(frame=Frame(0, 0x321, b"\xaa"), period=0.002))
    assert _wait_for(lambda: scheduler.job(job_id).count >= 10)
    scheduler.stop(job_id)
    assert len(_queued(car, 0x321)) == scheduler.job(job_id).count  # nothing after stop returned
    assert car.recv(0.05) is None


def test_many_jobs_share_one_thread(scheduler, car):
    ids = {0x400 + i for i in range(8)}
    for i in range(8):
        scheduler.add_periodic(TransmitJob(frame=Frame(0, 0x400 + i, bytes([i])), period=0.01 + i * 0.005))
    seen: set[int] = set()
    assert _wait_for(lambda: seen.update(m.arbitration_id for m in _queued(car)) or seen >= ids)
    assert sum(t.name == "transmit-scheduler" for t in threading.enumerate()) == 1


def test_dbc_values_decode_back_to_what_was_set(scheduler, car, dbc):
    scheduler.send_signals_once("ENGINE_DATA", {"EngineSpeed": 2500.0, "AccelPedalPosition": 40})
    got = car.recv(1.0)
    assert got is not None and got.arbitration_id == dbc.get_message_by_name("ENGINE_DATA").frame_id
    decoded = dbc.decode_message(got.arbitration_id, got.data)
    assert decoded["EngineSpeed"] == 2500.0 and decoded["AccelPedalPosition"] == 40
    assert str(decoded["EngineRunning"]) == "Stopped"  # not given: initial value (0)

    scheduler.send_signals_once("ABS_STATUS", {"AbsActive": "Active", "VehicleSpeed": 88.5})
    decoded = dbc.decode_message(0xB4, car.recv(1.0).data)
    assert str(decoded["AbsActive"]) == "Active" and decoded["VehicleSpeed"] == 88.5

    # multiplexed: the selector picks the page, other pages' signals are left out
    scheduler.send_signals_once(
        "ENGINE_STATUS_MUX",
        {"EngStatusPage": 2, "Lambda": 0.98, "ShortTermFuelTrim": -3.125, "KnockRetard": 1},
    )
    decoded = dbc.decode_message(960, car.recv(1.0).data, decode_choices=False)
    assert decoded["EngStatusPage"] == 2 and decoded["Lambda"] == pytest.approx(0.98)
    assert decoded["ShortTermFuelTrim"] == -3.125 and "KnockRetard" not in decoded

    # CAN FD message from the DBC goes out as FD
    scheduler.send_signals_once("ESC_DYNAMICS_FD", {"EscYawRate": -12.5})
    got = car.recv(1.0)
    assert got.is_fd and len(got.data) == 32
    assert dbc.decode_message(304, got.data)["EscYawRate"] == -12.5


def test_update_applies_to_the_next_frames(scheduler, car, dbc):
    job_id = scheduler.add_periodic(
        TransmitJob(message="BODY_COMMAND", values={"LockRequest": 1}, period=0.01)
    )
    assert car.recv(1.0) is not None
    _queued(car)
    scheduler.update(job_id, {"LockRequest": 2, "HazardRequest": 1})
    count = scheduler.job(job_id).count
    assert _wait_for(lambda: scheduler.job(job_id).count >= count + 3)
    scheduler.stop(job_id)
    after = _queued(car, 0x2B0)
    values = [dbc.decode_message(0x2B0, m.data, decode_choices=False)["LockRequest"] for m in after]
    first_new = values.index(2)
    assert first_new <= 1 and set(values[first_new:]) == {2}  # at most one frame was already on its way
    assert scheduler.job(job_id).values == {"LockRequest": 2, "HazardRequest": 1}

    raw_id = scheduler.add_periodic(TransmitJob(frame=Frame(0, 0x555, b"\x01\x02"), period=0.01))
    assert _wait_for(lambda: scheduler.job(raw_id).count > 0)
    scheduler.update(raw_id, data=b"\x09\x09\x09")
    count = scheduler.job(raw_id).count
    assert _wait_for(lambda: scheduler.job(raw_id).count >= count + 2)
    scheduler.stop(raw_id)
    later = _queued(car, 0x555)
    assert later and bytes(later[-1].data) == b"\x09\x09\x09"


def test_stop_resume_remove(scheduler, car):
    job_id = scheduler.add_periodic(TransmitJob(frame=Frame(0, 0x111, b"\x01"), period=0.01))
    assert car.recv(1.0) is not None
    scheduler.stop(job_id)
    assert scheduler.job(job_id).status is JobStatus.STOPPED
    _queued(car)  # what left before stop returned
    assert car.recv(0.1) is None
    scheduler.resume(job_id)
    assert car.recv(1.0) is not None
    scheduler.remove(job_id)
    assert scheduler.jobs() == []
    with pytest.raises(WorkshopError, match="no transmit job"):
        scheduler.job(job_id)


def test_disconnect_stops_periodic_jobs(scheduler, source, car):
    job_id = scheduler.add_periodic(TransmitJob(frame=Frame(0, 0x222, b"\x01"), period=0.01))
    assert car.recv(1.0) is not None
    source.stop()
    assert _wait_for(lambda: scheduler.job(job_id).status is JobStatus.DISCONNECTED, 2.0)
    assert "stopped" in (scheduler.job(job_id).last_error or "")
    assert "1 periodic job(s) stopped" in (scheduler.notice or "")
    _collect(car, 0.05)
    assert _collect(car, 0.1) == []  # nothing is sent any more
    with pytest.raises(SourceError, match="not connected"):
        scheduler.add_periodic(TransmitJob(frame=Frame(0, 0x222, b"\x01"), period=0.01))
    with pytest.raises(SourceError, match="not connected"):
        scheduler.send_once(Frame(0, 0x222, b"\x01"))


def test_encoding_errors_name_message_and_signal(scheduler):
    with pytest.raises(WorkshopError, match="no loaded database has a message named 'NOPE'"):
        scheduler.send_signals_once("NOPE", {})
    with pytest.raises(WorkshopError, match="ENGINE_DATA has no signal Rpm"):
        scheduler.add_periodic(TransmitJob(message="ENGINE_DATA", values={"Rpm": 1}, period=0.1))
    with pytest.raises(WorkshopError, match=r'"EngineSpeed".*"ENGINE_DATA"'):
        scheduler.add_periodic(TransmitJob(message="ENGINE_DATA", values={"EngineSpeed": 99999}, period=0.1))
    with pytest.raises(
        WorkshopError, match="signal AbsActive of message ABS_STATUS: 'Maybe' is not a number"
    ):
        scheduler.send_signals_once("ABS_STATUS", {"AbsActive": "Maybe"})
    with pytest.raises(WorkshopError, match="EngStatusPage=7 selects no signals"):
        scheduler.send_signals_once("ENGINE_STATUS_MUX", {"EngStatusPage": 7})
    assert scheduler.jobs() == []  # nothing was added or sent

    job_id = scheduler.add_periodic(
        TransmitJob(message="BODY_COMMAND", values={"LockRequest": 1}, period=0.1)
    )
    with pytest.raises(WorkshopError, match="LockRequest"):
        scheduler.update(job_id, {"LockRequest": 3})  # maximum is 2
    assert scheduler.job(job_id).values == {"LockRequest": 1}


def test_bad_raw_frames_are_refused(scheduler):
    with pytest.raises(WorkshopError, match="11-bit"):
        scheduler.send_once(Frame(0, 0x800, b""))
    with pytest.raises(WorkshopError, match="at most 8 bytes"):
        scheduler.send_once(Frame(0, 0x100, bytes(9)))
    with pytest.raises(WorkshopError, match="not 9"):
        scheduler.send_once(Frame(0, 0x100, bytes(9), is_fd=True))
    with pytest.raises(WorkshopError, match="period of at least"):
        scheduler.add_periodic(TransmitJob(frame=Frame(0, 0x100, b""), period=0))


def test_fd_needs_an_fd_source(databases, channel):
    source = AdapterSource(FrameRing(), BusConfig("virtual", channel))  # classic only
    with (
        source,
        TransmitScheduler(source, databases) as scheduler,
        pytest.raises(WorkshopError, match="not opened for CAN FD"),
    ):
        scheduler.send_signals_once("ESC_DYNAMICS_FD", {})


def test_encode_signals_directly(dbc):
    message = dbc.get_message_by_name("BODY_COMMAND")
    data = encode_signals(message, {"LightsRequest": 3, "TrunkReleaseRequest": 1})
    assert dbc.decode_message(message.frame_id, data, decode_choices=False)["LightsRequest"] == 3


def test_default_of_a_signal_whose_initial_value_has_a_name():
    # cantools gives such an initial value as its value-table entry; the default is its number.
    db = cantools.database.load_string(
        'VERSION ""\nNS_ :\nBS_:\nBU_: ECU\n'
        'BO_ 256 GEARBOX: 1 ECU\n SG_ Gear : 0|8@1+ (1,0) [0|5] "" ECU\n'
        'BA_DEF_ SG_ "GenSigStartValue" INT 0 255;\nBA_DEF_DEF_ "GenSigStartValue" 0;\n'
        'BA_ "GenSigStartValue" SG_ 256 Gear 2;\nVAL_ 256 Gear 0 "P" 1 "R" 2 "N" 3 "D" ;\n',
        database_format="dbc",
    )
    signal = db.get_message_by_name("GEARBOX").get_signal_by_name("Gear")
    assert str(signal.initial) == "N"
    assert signal_default(signal) == 2.0
