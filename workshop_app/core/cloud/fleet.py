"""Fleet overview: every vehicle this workshop may see, sorted by what needs attention.

``FleetWatcher`` subscribes ``wsp/v1/+/state`` and ``wsp/v1/+/health``; the broker's access
list delivers only the vehicles granted to this workshop, so whatever arrives is ours to
show. Each VIN gets a :class:`VehicleStatus` built from its latest presence message and
health summary; health summaries are also kept in the history (``vehicle_health``).

Offline is known two ways: the agent's last will (the broker publishes ``offline`` when the
car's connection dies) and silence — a vehicle not heard from for three health intervals
while we were listening is shown as "not heard from since …", because a will can be lost
with a broker restart and retained presence may be stale or absent.

Threads: paho's network thread parses messages, updates the table under a lock and calls
``on_change`` (keep it short; the window re-emits it as a queued Qt signal). Readers call
:meth:`FleetWatcher.vehicles` from any thread.

>>> watcher = FleetWatcher(CloudProfile.load(path), store=FleetStore(history))   # doctest: +SKIP
>>> watcher.start(); watcher.wait_connected(5)                                     # doctest: +SKIP
>>> [v.vin for v in watcher.vehicles()]                                            # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt

from workshop_app.core.cloud import topics
from workshop_app.core.cloud.errors import CloudError
from workshop_app.core.cloud.fleet_status import (
    DEFAULT_HEALTH_INTERVAL,
    LOW_BATTERY_V,
    MAX_SUMMARY,
    SILENCE_INTERVALS,
    FleetMessageError,
    HealthSummary,
    VehicleStatus,
    assess,
    parse_health,
    parse_presence,
    sort_key,
)

if TYPE_CHECKING:
    from workshop_app.core.cloud.profile import CloudProfile
    from workshop_app.core.history.fleet_store import FleetStore

# The vehicle's values and their parsing live in fleet_status.py; importable from here too.
__all__ = [
    "DEFAULT_HEALTH_INTERVAL",
    "LOW_BATTERY_V",
    "MAX_SUMMARY",
    "SILENCE_INTERVALS",
    "FleetMessageError",
    "FleetWatcher",
    "HealthSummary",
    "VehicleStatus",
    "assess",
    "parse_health",
    "parse_presence",
    "sort_key",
]

log = logging.getLogger(__name__)

# -- the watcher --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    vin: str
    online: bool | None = None  # None: no presence message yet
    presence_time: float | None = None
    last_heard: float | None = None  # receipt time of any live message (workshop clock)
    interval: float | None = None
    health: HealthSummary | None = None
    health_from_history: bool = False
    was_silent: bool = False


class FleetWatcher:
    """Listens to every granted vehicle's presence and health; see the module docstring.

    Args:
        profile: the workshop's cloud profile (certificate, key, broker).
        store: where health summaries are kept (None: not kept); its latest summary of a VIN
            fills the table until the vehicle publishes a new one.
        on_change: called with the VIN whenever a vehicle's row may have changed (paho's
            network thread, or the caller of :meth:`poll`).
        default_interval: health interval assumed when the vehicle does not say.
    """

    def __init__(
        self,
        profile: CloudProfile,
        store: FleetStore | None = None,
        *,
        on_change: Callable[[str], None] | None = None,
        default_interval: float = DEFAULT_HEALTH_INTERVAL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.profile = profile
        self.store = store
        self.on_change = on_change
        self.default_interval = default_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._connected = threading.Event()
        self._client: mqtt.Client | None = None
        self._listening_since: float | None = None
        self.problems = 0  # malformed messages and failed writes, each logged once as a plain line
        self.last_problem = ""
        self.link_error = ""  # why the broker connection is down, '' while connected
        self._log_why = ""

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (paho's thread); reconnects on its own after an outage."""
        if self._client is not None:
            return
        from workshop_app.core.cloud.profile import mqtt_client

        # Its own client id: a broker drops the older of two connections with one id, and the
        # window, a CLI run and the cloud bus of the same workshop may all be connected at once.
        # The access list goes by the certificate's name, not the client id.
        client_id = f"{self.profile.client_id}.fleet-{os.urandom(3).hex()}"
        client = mqtt_client(replace(self.profile, client_id=client_id))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_connect_fail = self._on_connect_fail
        client.on_log = self._on_log
        try:
            client.connect_async(self.profile.host, self.profile.port, keepalive=30)
        except (OSError, ValueError) as exc:
            raise CloudError(f"broker {self.profile.host}:{self.profile.port}: {exc}") from exc
        self._client = client
        client.loop_start()

    def stop(self) -> None:
        """Disconnect and join paho's thread. Idempotent."""
        client, self._client = self._client, None
        if client is None:
            return
        client.disconnect()
        client.loop_stop()
        self._connected.clear()

    def __enter__(self) -> FleetWatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """True once the broker has acknowledged the subscriptions (for the CLI and tests)."""
        return self._connected.wait(timeout)

    # -- reading ------------------------------------------------------------------------------

    def vehicles(self, now: float | None = None) -> list[VehicleStatus]:
        """Every vehicle heard of, most attention first."""
        now = self._clock() if now is None else now
        with self._lock:
            rows = [self._status(e, now) for e in self._entries.values()]
        return sorted(rows, key=sort_key)

    def vehicle(self, vin: str, now: float | None = None) -> VehicleStatus | None:
        now = self._clock() if now is None else now
        with self._lock:
            entry = self._entries.get(vin)
            return self._status(entry, now) if entry is not None else None

    def poll(self, now: float | None = None) -> list[str]:
        """Re-check silence (nothing arrives when a car goes quiet); calls ``on_change`` for
        the VINs whose state changed and returns them. The window calls it on a timer."""
        now = self._clock() if now is None else now
        changed: list[str] = []
        with self._lock:
            for entry in self._entries.values():
                silent = self._silent(entry, now)
                if silent != entry.was_silent:
                    entry.was_silent = silent
                    changed.append(entry.vin)
        for vin in changed:
            self._notify(vin)
        return changed

    def _silent(self, entry: _Entry, now: float) -> bool:
        # Only a vehicle said to be online can fall silent, and only after we have listened
        # for three of its intervals: a fresh CLI run is not yet evidence of silence.
        if entry.online is not True or self._listening_since is None:
            return False
        interval = entry.interval or self.default_interval
        heard = max(entry.last_heard or 0.0, self._listening_since)
        return now - heard > SILENCE_INTERVALS * interval

    def _status(self, entry: _Entry, now: float) -> VehicleStatus:
        silent = self._silent(entry, now)
        if entry.online is None:
            presence = "unknown"
        elif silent:
            presence = "silent"
        else:
            presence = "online" if entry.online else "offline"
        health = entry.health
        heard = [t for t in (entry.last_heard, entry.presence_time) if t is not None]
        if health is not None and entry.health_from_history:
            heard.append(health.time)
        status = VehicleStatus(
            vin=entry.vin,
            online=presence == "online" or (presence == "unknown" and entry.last_heard is not None),
            last_seen=max(heard) if heard else None,
            presence=presence,
            health_interval=entry.interval,
            health_from_history=entry.health_from_history,
        )
        if health is not None:
            status = replace(
                status,
                dtc_count=health.dtc_count,
                dtcs=health.dtcs,
                mil=health.mil,
                battery_v=health.battery_v,
                odometer_km=health.odometer_km,
                software=health.software,
                frames_dropped=health.frames_dropped,
                health_time=health.time,
            )
        return assess(status)

    # -- paho callbacks (network thread) ------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if getattr(reason, "is_failure", False):
            self._problem(f"broker {self.profile.host}:{self.profile.port} refused the connection: {reason}")
            self.link_error = str(reason)
            return
        # Subscribed again on every (re)connect: a clean session forgets subscriptions.
        client.subscribe([(topics.all_vehicles(topics.STATE), 1), (topics.all_vehicles(topics.HEALTH), 1)])
        self.link_error = self._log_why = ""

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: Any, _reasons: Any, _props: Any
    ) -> None:
        # Listening from here on: silence is measured from now, and wait_connected returns.
        if self._listening_since is None:
            self._listening_since = self._clock()
        self._connected.set()

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self._connected.clear()
        # paho's reason is often just "Unspecified error"; its log line says more when it has one.
        why = self._log_why or ("" if str(reason) in ("Unspecified error", "Success") else str(reason))
        self.link_error = "broker connection lost" + (f" ({why})" if why else "") + "; reconnecting"

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        # paho keeps retrying on its own: say so, whichever failure was the last.
        where = f"the broker at {self.profile.host}:{self.profile.port}"
        why = f"{where}: {self._log_why}" if self._log_why else f"{where} cannot be reached"
        self.link_error = f"{why}; reconnecting"

    def _on_log(self, _client: mqtt.Client, _userdata: Any, level: int, text: str) -> None:
        # paho says why a connection failed only in its log (a refused certificate, a reset).
        if level in (mqtt.MQTT_LOG_ERR, mqtt.MQTT_LOG_WARNING):
            self._log_why = text

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            vin, leaf, _ = topics.parse(msg.topic)
            if leaf == topics.STATE:
                self._presence(vin, bytes(msg.payload), bool(msg.retain))
            elif leaf == topics.HEALTH:
                self._health(vin, bytes(msg.payload), bool(msg.retain))
            else:
                return
        except (topics.TopicError, FleetMessageError) as exc:
            self._problem(str(exc))
            return
        self._notify(vin)

    def _notify(self, vin: str) -> None:
        callback = self.on_change
        if callback is None:
            return
        try:
            callback(vin)
        except Exception as exc:  # a listener's bug must not kill paho's thread
            self._problem(f"fleet listener failed: {type(exc).__name__}: {exc}")

    def _problem(self, text: str) -> None:
        self.problems += 1
        self.last_problem = text
        log.warning("%s", text)

    def _entry(self, vin: str) -> _Entry:
        entry = self._entries.get(vin)
        if entry is None:
            entry = self._entries[vin] = _Entry(vin)
            self._seed_from_history(entry)
        return entry

    def _seed_from_history(self, entry: _Entry) -> None:
        if self.store is None:
            return
        try:
            row = self.store.latest(entry.vin)
        except Exception as exc:  # HistoryError and friends: shown, never raised into paho
            self._problem(f"reading the stored health of {entry.vin}: {exc}")
            return
        if row is None:
            return
        try:
            summary = parse_health(entry.vin, json.dumps(row.summary).encode(), row.time)
        except FleetMessageError:
            return
        entry.health = replace(summary, time=row.time)
        entry.health_from_history = True

    def _presence(self, vin: str, payload: bytes, retained: bool) -> None:
        if not payload:  # a cleared retained message: nothing to say
            return
        online, said_time, interval = parse_presence(vin, payload)
        now = self._clock()
        with self._lock:
            entry = self._entry(vin)
            entry.online = online
            if interval:
                entry.interval = interval
            # A retained message may be hours old: it counts as "heard" only at the time it says.
            entry.presence_time = said_time if retained else now
            if not retained:
                entry.last_heard = now
            entry.was_silent = self._silent(entry, now)

    def _health(self, vin: str, payload: bytes, retained: bool) -> None:
        now = self._clock()
        summary = parse_health(vin, payload, now)
        with self._lock:
            entry = self._entry(vin)
            if (
                entry.health is not None
                and not entry.health_from_history
                and summary.time < entry.health.time
            ):
                return  # an older summary redelivered after a newer one
            entry.health = summary
            entry.health_from_history = False
            if summary.interval:
                entry.interval = summary.interval
            if not retained:
                entry.last_heard = now
                # Health is proof of life even when the presence message was lost or stale.
                entry.online = True
            entry.was_silent = self._silent(entry, now)
        if self.store is not None:
            try:
                self.store.add(
                    vin,
                    summary.time,
                    dict(summary.raw),
                    dtc_count=summary.dtc_count,
                    battery_v=summary.battery_v,
                    odometer_km=summary.odometer_km,
                )
            except Exception as exc:  # HistoryError: the table still shows it; say it once
                self._problem(f"storing the health summary of {vin}: {exc}")
