"""FleetWatcher on the real broker (mutual TLS, ACL): health and presence from vehicle clients."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import GARAGE2, VIN, VIN2, CloudTrial, wait_until
from helpers.fleet_broker import FleetBroker, dtc, health, publish

from workshop_app.core.cloud import topics
from workshop_app.core.cloud.fleet import FleetWatcher, VehicleStatus
from workshop_app.core.history.fleet_store import FleetStore

VIN3 = "WSADEM5T2T0000423"
WAIT = 10.0


class Changes:
    """The VINs ``on_change`` reported (paho's thread), with a condition to wait on."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.cond = threading.Condition()

    def __call__(self, vin: str) -> None:
        with self.cond:
            self.seen.append(vin)
            self.cond.notify_all()

    def wait(self, watcher: FleetWatcher, check, timeout: float = WAIT) -> list[VehicleStatus]:
        with self.cond:
            assert self.cond.wait_for(lambda: check(watcher.vehicles()), timeout), watcher.vehicles()
        return watcher.vehicles()


@pytest.fixture
def watch(cloud: CloudTrial, tmp_path: Path) -> Iterator[tuple[FleetWatcher, Changes, FleetStore]]:
    store = FleetStore(tmp_path / "history.db")
    changes = Changes()
    watcher = FleetWatcher(cloud.garage1, store, on_change=changes)
    watcher.start()
    try:
        assert watcher.wait_connected(WAIT), watcher.link_error
        yield watcher, changes, store
    finally:
        watcher.stop()
        store.close()


def _heard(vin: str, check=lambda v: True):
    return lambda rows: any(v.vin == vin and check(v) for v in rows)


def test_health_from_a_vehicle_shows_up_and_is_stored(cloud, watch):
    watcher, changes, store = watch
    car = cloud.connect(cloud.vehicle)
    publish(
        car,
        VIN,
        topics.HEALTH,
        health(
            VIN,
            1_733_500_000.0,
            dtcs=[dtc("ECM", "P0302", 0xAF)],
            battery_v=12.41,
            odometer_km=48211.3,
            software={"ECM": "SW 0412", "TCM": "SW 0200"},
            frames={"sent": 500, "buffered": 0, "dropped": 3},
        ),
    )
    rows = changes.wait(watcher, _heard(VIN))
    row = rows[0]
    assert row.online and row.presence == "online"
    assert row.dtc_count == 1 and row.dtcs == ("ECM:P0302",)
    assert row.mil  # status 0xAF has bit 7, warning indicator requested
    assert row.battery_v == 12.41 and row.odometer_km == 48211.3
    assert row.software_text() == "ECM SW 0412, TCM SW 0200"
    assert row.frames_dropped == 3
    assert "warning lamp (MIL) on" in row.reasons
    stored = store.history(VIN)
    assert [r.time for r in stored] == [1_733_500_000.0]
    assert stored[0].dtc_count == 1 and stored[0].battery_v == 12.41
    assert stored[0].summary["dtcs"][0]["code"] == "P0302"


def test_only_granted_vehicles_are_delivered(cloud, watch):
    watcher, changes, _ = watch
    other = cloud.connect(cloud.vehicle2)
    publish(other, VIN2, topics.STATE, b'{"state": "online"}')
    publish(other, VIN2, topics.HEALTH, health(VIN2, 10.0, battery_v=11.0))
    car = cloud.connect(cloud.vehicle)
    publish(car, VIN, topics.HEALTH, health(VIN, 20.0, battery_v=12.5))
    rows = changes.wait(watcher, _heard(VIN))
    # The broker accepted the subscription to wsp/v1/+/…; its ACL simply never delivers VIN2.
    assert [r.vin for r in rows] == [VIN]
    assert VIN2 not in changes.seen


def test_a_workshop_granted_nothing_sees_no_vehicle(cloud, tmp_path):
    changes = Changes()
    watcher = FleetWatcher(cloud.garage2, on_change=changes)
    watcher.start()
    try:
        assert watcher.wait_connected(WAIT)
        car = cloud.connect(cloud.vehicle)
        publish(car, VIN, topics.STATE, b'{"state": "online"}')
        # A vehicle the garage is granted is what would prove delivery: garage-1 sees this one.
        witness = FleetWatcher(cloud.garage1, on_change=changes)
        witness.start()
        try:
            publish(car, VIN, topics.HEALTH, health(VIN, 30.0), retain=False)
            assert witness.wait_connected(WAIT)
            publish(car, VIN, topics.HEALTH, health(VIN, 31.0))
            changes.wait(witness, _heard(VIN))
        finally:
            witness.stop()
        assert watcher.vehicles() == []
    finally:
        watcher.stop()
    assert cloud.garage2.client_id == GARAGE2


def test_offline_by_last_will(cloud, watch):
    watcher, changes, _ = watch
    will = (topics.vehicle_topic(VIN, topics.STATE), b'{"state": "offline"}')
    car = cloud.connect(cloud.vehicle, will=will)
    publish(car, VIN, topics.STATE, b'{"state": "online"}', retain=True)
    publish(car, VIN, topics.HEALTH, health(VIN, 40.0, dtcs=[dtc("ABS", "C0035", 0x08)]))
    changes.wait(watcher, _heard(VIN, lambda v: v.online and v.dtc_count == 1))
    # The car's network goes away without a DISCONNECT: the broker publishes its will.
    car.loop_stop()
    car.socket().shutdown(socket.SHUT_RDWR)
    rows = changes.wait(watcher, _heard(VIN, lambda v: not v.online))
    assert rows[0].presence == "offline"
    assert rows[0].reasons[0] == "offline with 1 fault code"


def test_offline_by_silence_without_any_will(cloud, tmp_path):
    now = [1_000_000.0]
    changes = Changes()
    watcher = FleetWatcher(cloud.garage1, on_change=changes, default_interval=60.0, clock=lambda: now[0])
    watcher.start()
    try:
        assert watcher.wait_connected(WAIT)
        car = cloud.connect(cloud.vehicle)
        publish(car, VIN, topics.HEALTH, health(VIN, now[0]))
        changes.wait(watcher, _heard(VIN, lambda v: v.online))
        now[0] += 3 * 60.0 - 1  # not yet three intervals
        assert watcher.poll() == []
        assert watcher.vehicle(VIN).online
        now[0] += 2
        assert watcher.poll() == [VIN]
        row = watcher.vehicle(VIN)
        assert not row.online and row.presence == "silent"
        assert row.state_text.startswith("not heard from since ")
        # Heard again: online at once.
        publish(car, VIN, topics.HEALTH, health(VIN, now[0]))
        changes.wait(watcher, _heard(VIN, lambda v: v.online))
        assert watcher.poll() == []  # the message itself reported the change back
    finally:
        watcher.stop()


def test_a_malformed_message_is_one_plain_problem_and_the_watch_goes_on(cloud, watch):
    watcher, changes, _ = watch
    car = cloud.connect(cloud.vehicle)
    publish(car, VIN, topics.HEALTH, b"\x00not json")
    publish(car, VIN, topics.STATE, b'{"state": "dreaming"}')
    publish(car, VIN, topics.HEALTH, health(VIN, 50.0, battery_v=11.4))
    rows = changes.wait(watcher, _heard(VIN, lambda v: v.battery_v == 11.4))
    assert watcher.problems == 2
    assert "\n" not in watcher.last_problem and VIN in watcher.last_problem
    assert rows[0].reasons == ("battery low: 11.4 V",)


def test_a_new_session_starts_from_the_stored_health(cloud, watch, tmp_path):
    watcher, changes, store = watch
    car = cloud.connect(cloud.vehicle)
    publish(car, VIN, topics.HEALTH, health(VIN, 60.0, battery_v=11.8))
    changes.wait(watcher, _heard(VIN))
    watcher.stop()
    # Later: the car says it is online (retained) but publishes no health while we listen.
    publish(car, VIN, topics.STATE, b'{"state": "online", "time": 61.0}', retain=True)
    again = Changes()
    later = FleetWatcher(cloud.garage1, store, on_change=again)
    later.start()
    try:
        rows = again.wait(later, _heard(VIN))
        row = rows[0]
        assert row.online and row.health_from_history
        assert row.battery_v == 11.8 and row.health_time == 60.0
        assert row.last_seen == 61.0  # the retained message counts at the time it carries
    finally:
        later.stop()


@pytest.fixture
def three_cars(tmp_path: Path) -> Iterator[FleetBroker]:
    """A broker granting garage-1 three vehicles, for the attention order."""
    trial = FleetBroker(tmp_path / "fleet", [VIN, VIN2, VIN3]).start()
    try:
        yield trial
    finally:
        trial.close()


def test_vehicles_are_sorted_by_what_needs_attention(three_cars):
    changes = Changes()
    watcher = FleetWatcher(three_cars.garage, on_change=changes)
    watcher.start()
    try:
        assert watcher.wait_connected(WAIT)
        healthy, weak, faulty = (three_cars.connect(vin) for vin in (VIN, VIN2, VIN3))
        publish(healthy, VIN, topics.HEALTH, health(VIN, 70.0, battery_v=12.6))
        publish(weak, VIN2, topics.HEALTH, health(VIN2, 70.0, battery_v=11.5))
        publish(faulty, VIN3, topics.HEALTH, health(VIN3, 70.0, dtcs=[dtc("ECM", "P0302", 0xAF)]))
        rows = changes.wait(watcher, lambda rows: len(rows) == 3)
        assert [r.vin for r in rows] == [VIN3, VIN2, VIN]
        publish(faulty, VIN3, topics.STATE, b'{"state": "offline"}')
        publish(weak, VIN2, topics.STATE, b'{"state": "offline"}')
        rows = changes.wait(watcher, lambda rows: sum(not r.online for r in rows) == 2)
        assert [r.vin for r in rows] == [VIN3, VIN2, VIN]
        assert rows[0].reasons[0] == "offline with 1 fault code"
        assert rows[1].reasons == ("battery low: 11.5 V", "offline")
    finally:
        watcher.stop()


def test_the_real_agent_on_the_simulated_car_appears_and_goes_offline_when_stopped(cloud, watch, tmp_path):
    from workshop_app.core.cloud.agent import CloudAgent
    from workshop_app.core.sources.factory import SourceSpec

    watcher, changes, store = watch
    agent = CloudAgent(cloud.vehicle, SourceSpec(), health_interval=1.0, history=tmp_path / "car.db")
    agent.start()
    try:
        rows = changes.wait(watcher, _heard(VIN, lambda v: v.online and v.battery_v is not None), timeout=60)
    finally:
        agent.stop()
    row = rows[0]
    assert row.health_interval == 1.0 and not row.health_from_history
    assert 8.0 < row.battery_v < 16.0 and row.odometer_km > 0
    assert dict(row.software)["ECM"] == "SW 0412"
    assert store.latest(VIN) is not None
    # A clean stop says offline itself (no will needed).
    rows = changes.wait(watcher, _heard(VIN, lambda v: not v.online))
    assert rows[0].presence == "offline"


def test_a_broker_restart_is_survived_and_says_so_meanwhile(cloud, watch):
    watcher, changes, _ = watch
    car = cloud.connect(cloud.vehicle)
    publish(car, VIN, topics.HEALTH, health(VIN, 80.0, battery_v=12.5))
    changes.wait(watcher, _heard(VIN))
    cloud.broker.stop()
    assert wait_until(lambda: not watcher.connected)
    assert watcher.link_error.startswith("broker connection lost") and watcher.link_error.endswith(
        "reconnecting"
    )
    cloud.broker.start()  # the same port; the watcher subscribes again on its own
    assert watcher.wait_connected(WAIT), watcher.link_error
    assert watcher.link_error == ""
    # The car's client reconnects too (paho); what it says now reaches the watcher.
    assert wait_until(lambda: car.is_connected())
    publish(car, VIN, topics.HEALTH, health(VIN, 81.0, battery_v=11.9))
    rows = changes.wait(watcher, _heard(VIN, lambda v: v.battery_v == 11.9))
    assert rows[0].health_time == 81.0


def test_two_fleet_views_of_one_workshop_do_not_push_each_other_off(cloud, watch):
    watcher, changes, _ = watch
    other_changes = Changes()
    other = FleetWatcher(cloud.garage1, on_change=other_changes)  # e.g. a CLI run beside the window
    other.start()
    try:
        assert other.wait_connected(WAIT)
        car = cloud.connect(cloud.vehicle)
        for n in range(3):
            publish(car, VIN, topics.HEALTH, health(VIN, 90.0 + n, battery_v=12.0 + n / 10))
        changes.wait(watcher, _heard(VIN, lambda v: v.health_time == 92.0))
        other_changes.wait(other, _heard(VIN, lambda v: v.health_time == 92.0))
        assert watcher.connected and other.connected
    finally:
        other.stop()
