"""The vehicle side of the cloud link: ``workshop cloud agent``, the telematics unit's bridge.

::

    agent = CloudAgent(CloudProfile.load(path), SourceSpec(), buffer_frames=100_000,
                       health_interval=60.0, allow_remote_flash=False, trust_dir=None)
    agent.start()      # bus opened, broker connecting (retried with back-off until it answers)
    ...
    agent.stop()       # "offline" published, everything closed

Threads (all stopped by :meth:`CloudAgent.stop`):

* the source's own (python-can Notifier, reconnect watch) fill a FrameRing;
* ``cloud-frames`` (``agent_frames.FramePump``) turns the ring into batches on ``frames``;
* paho's network thread runs the callbacks: it decodes requests and answers pings, and hands
  everything slower to
* ``cloud-diag``, the one worker that talks to the car: UDS requests over ISO-TP, signed
  commands, a remote flash, and the periodic health scan — one at a time, so two users never
  speak ISO-TP to one ECU at once.

Requests are remembered by correlation data: one the broker delivers again (QoS 1 is
at-least-once) gets the replies already sent, and never runs a second time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import can
import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.cloud import messages, topics
from workshop_app.core.cloud.agent_commands import BodyFunctions, Outcome, RemoteFlash, audit_refusal
from workshop_app.core.cloud.agent_diag import RelayError, UdsRelay
from workshop_app.core.cloud.agent_frames import FramePump, StatusWatch
from workshop_app.core.cloud.errors import CloudError
from workshop_app.core.cloud.health import AgentHealth, FrameCounters, summary_from_scan
from workshop_app.core.cloud.profile import CloudProfile, connection_problem, mqtt_client
from workshop_app.core.diag.ecu_spec import VehicleSpec, demo_vehicle_spec
from workshop_app.core.diag.scan import ScanOptions, VehicleScanner
from workshop_app.core.errors import WorkshopError
from workshop_app.core.history.location import default_history_path
from workshop_app.core.sources.adapter import AdapterSource
from workshop_app.core.sources.base import FrameSource
from workshop_app.core.sources.factory import SourceSpec, make_source
from workshop_app.core.types import Frame
from workshop_app.paths import demo_dbc_path

log = logging.getLogger(__name__)

DEFAULT_BUFFER_FRAMES = 200_000  # ~45 s of a saturated 500 kbit/s bus, ~3.4 MB
DEFAULT_HEALTH_INTERVAL = 60.0
# After a reconnect the backlog waits this long: a broker restart drops the workshops too, and
# QoS 0 frames published before they have subscribed again would reach nobody.
RESUME_DELAY_S = 2.0
REMEMBERED_REQUESTS = 512
HEALTH_SCAN_TIMEOUT = 0.5
_STOP_TIMEOUT = 10.0

EventSink = Callable[[str], None]


@dataclass
class _Request:
    """One request by correlation: its replies so far (sent again on a redelivery)."""

    reply_topic: str
    replies: list[bytes] = field(default_factory=list)


class CloudAgent:
    """Bridges one vehicle bus to the broker; see the module docstring.

    Args:
        profile: the vehicle's cloud profile (client id = VIN = certificate name; ``owner_key``
            is the owner's public key signed commands are checked against).
        source_spec: the car's bus (default SourceSpec(): the in-process simulated vehicle).
        buffer_frames: frames kept during a broker outage; older ones beyond are dropped and counted.
        health_interval: seconds between health summaries (0: none).
        allow_remote_flash: accept signed ``flash`` commands (off unless the owner enables it).
        trust_dir: the agent's own update trust store (default: the workshop home's).
        history: the agent's own history database (the audit of flash attempts).
        dbc_path: the database that defines BODY_COMMAND and the status frames.
        vehicle_spec: ECUs the health scan reads and a remote flash addresses (default: the demo
            vehicle's).
        resume_delay: seconds an outage's backlog waits after a reconnect (workshops subscribe again).
        on_event: gets one plain line per link change or problem (the CLI prints them).
        source: an already built source instead of ``source_spec`` (benchmarks: a loaded simulator).
    """

    def __init__(
        self,
        profile: CloudProfile,
        source_spec: SourceSpec | None = None,
        *,
        buffer_frames: int = DEFAULT_BUFFER_FRAMES,
        health_interval: float = DEFAULT_HEALTH_INTERVAL,
        allow_remote_flash: bool = False,
        trust_dir: Path | None = None,
        history: Path | None = None,
        dbc_path: Path | None = None,
        vehicle_spec: VehicleSpec | None = None,
        resume_delay: float = RESUME_DELAY_S,
        on_event: EventSink | None = None,
        source: FrameSource | None = None,
    ) -> None:
        self.profile = profile
        self.vin = topics.check_vin(profile.client_id)
        self.spec = source_spec or SourceSpec()
        self.health_interval = health_interval
        self.allow_remote_flash = allow_remote_flash
        self.history = history if history is not None else default_history_path()
        self.resume_delay = resume_delay
        self._on_event = on_event or (lambda line: log.info("%s", line))
        self.ring = FrameRing()
        self.source = source if source is not None else make_source(self.spec, self.ring)
        self.ring = self.source.ring
        self.watch = StatusWatch()
        self.pump = FramePump(self.ring, self._publish_frames, buffer_frames=buffer_frames, watch=self.watch)
        self.body = BodyFunctions(dbc_path or demo_dbc_path(), self._send_frame, self.watch)
        for name in ("BATTERY_STATUS", "CLUSTER_STATUS"):
            m = self._message(name)
            if m is not None:
                self.watch.watch(m.frame_id, m.is_extended_frame)
        self.vehicle_spec = vehicle_spec or demo_vehicle_spec()
        self.relay = UdsRelay(self._link)
        self.flash = RemoteFlash(
            vin=self.vin,
            enabled=allow_remote_flash,
            trust_dir=trust_dir,
            history=self.history,
            link=self._link,
            spec=self.vehicle_spec,
        )
        self._topic_req = topics.vehicle_topic(self.vin, topics.REQUEST)
        self._topic_frames = topics.vehicle_topic(self.vin, topics.FRAMES)
        self._topic_state = topics.vehicle_topic(self.vin, topics.STATE)
        self._topic_health = topics.vehicle_topic(self.vin, topics.HEALTH)
        self._requests: OrderedDict[bytes, _Request] = OrderedDict()
        self._requests_lock = threading.Lock()
        self._jobs: queue.Queue[Callable[[], object] | None] = queue.Queue()
        self._busy = ""  # what the diag worker is doing that refuses other requests (a flash)
        self._worker: threading.Thread | None = None
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()  # connected and subscribed to requests
        self._mqtt_up = threading.Event()  # connected (frames may go)
        self._stopping = threading.Event()
        self._last_line = ""
        self.connects = 0
        self.requests = 0  # distinct requests received (a redelivery is not counted again)
        self.link_state = "stopped"
        self.health_published = 0
        self.last_health: AgentHealth | None = None
        self._guard: Any = None

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        """Open the bus, start the pump and worker, and connect (retried until the broker answers)."""
        self._stopping.clear()
        will = (self._topic_state, self._presence("offline", reason="connection lost"))
        client = mqtt_client(self.profile, will=will)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self.source.start()
        try:
            self.pump.start()
            self._worker = threading.Thread(target=self._work, name="cloud-diag", daemon=True)
            self._worker.start()
            self._client = client
            self.link_state = "connecting"
            client.connect_async(self.profile.host, self.profile.port, keepalive=self.profile.keepalive)
            client.loop_start()
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        """Finish the current job, flush what the link takes in a second, say "offline", close."""
        self._stopping.set()
        self.flash.cancel.set()
        worker, self._worker = self._worker, None
        if worker is not None:
            self._jobs.put(None)
            worker.join(_STOP_TIMEOUT)
        self.relay.close()
        self.source.stop()
        self.pump.stop(flush_s=1.0)
        client, self._client = self._client, None
        if client is not None:
            if self._mqtt_up.is_set():
                info = client.publish(
                    self._topic_state, self._presence("offline", reason="stopped"), qos=1, retain=True
                )
                # The link may go while stopping: then the broker sends the will instead.
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(2.0)
            client.disconnect()
            client.loop_stop()
        self._connected.clear()
        self.link_state = "stopped"

    def __enter__(self) -> CloudAgent:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def counters(self) -> FrameCounters:
        return self.pump.counters()

    # -- the bus --------------------------------------------------------------------------------
    def _link(self) -> tuple[can.BusABC | None, can.Notifier | None]:
        source = self.source
        notifier = source.notifier if isinstance(source, AdapterSource) else None
        return source.bus, notifier

    def _send_frame(self, frame: Frame) -> None:
        self.source.send(frame)

    def _message(self, name: str) -> Any:
        try:
            return self.body.db.get_message_by_name(name)
        except KeyError:
            return None

    # -- MQTT callbacks (paho's network thread: decode and hand over, never block) ---------------
    def _event(self, line: str) -> None:
        if line != self._last_line:
            self._last_line = line
            self._on_event(line)

    def _presence(self, state: str, **extra: Any) -> bytes:
        doc = {
            "v": 1,
            "vin": self.vin,
            "state": state,
            "time": time.time(),
            "health_interval": self.health_interval or None,
            "session": self.pump.session,
            "remote_flash": self.allow_remote_flash,
            **extra,
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            self.link_state = f"refused: {reason}"
            self._event(
                f"broker {self.profile.host}:{self.profile.port} refused the agent: {reason}; retrying"
            )
            return
        # paho leaves Nagle's algorithm on: a small reply would wait for the ACK of the previous
        # write (~40 ms per hop with delayed ACKs). Replies and pongs must go at once.
        sock = client.socket()
        if isinstance(sock, socket.socket):  # ssl.SSLSocket included
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._mqtt_up.set()
        client.subscribe(self._topic_req, qos=1)
        client.publish(self._topic_state, self._presence("online"), qos=1, retain=True)
        # The first connection streams at once; after an outage the backlog waits for workshops.
        self.pump.link_up(resume_after=self.resume_delay if self.connects else 0.0)
        self.connects += 1  # after link_up: a caller seeing the count sees the link up
        again = " again" if self.connects > 1 else ""
        self._event(f"connected{again} to {self.profile.host}:{self.profile.port} as {self.vin}")

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, codes: list[ReasonCode], _p: Any) -> None:
        # Requests published before the broker took our subscription reach nobody: "online" for
        # callers (wait_connected) means requests are being listened to.
        if codes and codes[0].is_failure:
            self._event(f"the broker refused the request subscription: {codes[0]}")
            return
        self._connected.set()
        self.link_state = "online"

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        self._mqtt_up.clear()
        self._connected.clear()
        self.pump.link_down()
        if self._stopping.is_set():
            return
        self.link_state = f"reconnecting: {reason}"
        self._event(f"broker link lost ({reason}); buffering frames and reconnecting")

    def _on_connect_fail(self, _c: mqtt.Client, _u: Any) -> None:
        # paho says only that it failed; a probe says why (nothing listens, TLS refused), which
        # is worth the second it takes on paho's thread: paho is waiting to retry anyway.
        why = connection_problem(self.profile, timeout=1.0) if not self._stopping.is_set() else None
        why = why or f"broker {self.profile.host}:{self.profile.port}: not reachable"
        self.link_state = f"reconnecting: {why}"
        self._event(f"{why}; retrying")

    def _publish_frames(self, payload: bytes) -> bool:
        client = self._client
        if client is None or not self._mqtt_up.is_set():
            return False
        info = client.publish(self._topic_frames, payload, qos=0)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def _on_message(self, client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic != self._topic_req:
            return
        props = msg.properties
        reply_topic = getattr(props, "ResponseTopic", None)
        correlation = getattr(props, "CorrelationData", None)
        if not reply_topic or not correlation:
            self._event("a request without response topic or correlation data was ignored")
            return
        try:
            vin, leaf, workshop = topics.parse(reply_topic)
        except topics.TopicError:
            vin, leaf, workshop = "", "", None
        if vin != self.vin or leaf != topics.REPLY or workshop is None:
            self._event(
                f"a request asking for replies on {reply_topic!r} was ignored (not this vehicle's reply topic)"
            )
            return
        correlation = bytes(correlation)
        with self._requests_lock:
            known = self._requests.get(correlation)
            if known is not None:
                again = list(known.replies)
            else:
                self._requests[correlation] = _Request(reply_topic)
                self.requests += 1
                while len(self._requests) > REMEMBERED_REQUESTS:
                    self._requests.popitem(last=False)
        if known is not None:
            for payload in again:  # a redelivery: answered again, never run twice
                self._publish_reply(correlation, payload, remember=False)
            return
        try:
            doc = messages.decode(bytes(msg.payload), expect=messages.KINDS_REQUEST)
        except messages.MessageError as exc:
            self._reply(correlation, "error", code="bad-request", message=str(exc))
            return
        kind = doc["kind"]
        if kind == "ping":
            self._reply(correlation, "pong", sent=doc.get("sent"), agent_time=time.time())
            return
        if self._busy:
            self._reply(correlation, "error", code="busy", message=f"the vehicle is busy: {self._busy}")
            return
        if kind == "uds":
            self._jobs.put(lambda: self._run_uds(correlation, doc))
        else:
            self._jobs.put(lambda: self._run_command(correlation, doc, workshop or "?"))

    # -- replies ----------------------------------------------------------------------------------
    def _reply(self, correlation: bytes, kind: str, **body: Any) -> None:
        self._publish_reply(correlation, messages.encode(kind, **body))

    def _publish_reply(self, correlation: bytes, payload: bytes, *, remember: bool = True) -> None:
        with self._requests_lock:
            request = self._requests.get(correlation)
            if request is None:
                return
            if remember:
                request.replies.append(payload)
            topic = request.reply_topic
        client = self._client
        if client is not None:
            client.publish(topic, payload, qos=1, properties=messages.reply_properties(correlation))

    def _result(self, correlation: bytes, outcome: Outcome) -> None:
        self._reply(correlation, "result", **outcome.as_reply())

    # -- the diag worker ------------------------------------------------------------------------
    def _work(self) -> None:
        next_health = time.monotonic() + min(5.0, self.health_interval) if self.health_interval else None
        while not self._stopping.is_set():
            wait = None if next_health is None else max(0.0, next_health - time.monotonic())
            try:
                job: Callable[[], object] | None = self._jobs.get(timeout=wait)
            except queue.Empty:
                job = self.publish_health
                assert next_health is not None
                next_health = time.monotonic() + self.health_interval
            if job is None:
                return
            try:
                job()
            except Exception as exc:  # a job's failure is reported; the worker lives on
                log.exception("cloud agent job failed")
                self._event(f"a request failed: {exc}")

    def _run_uds(self, correlation: bytes, doc: dict[str, Any]) -> None:
        try:
            route = messages.EcuRoute.from_json(doc.get("ecu"))
            data = messages.hex_field(doc)
            timeout = doc.get("timeout", 2.0)
            if not isinstance(timeout, int | float) or not 0 < timeout <= 60:
                raise messages.MessageError(
                    f"'timeout' must be a number of seconds in (0, 60], got {timeout!r}"
                )
        except messages.MessageError as exc:
            self._reply(correlation, "error", code="bad-request", message=str(exc))
            return
        try:
            self.relay.run(
                route,
                data,
                float(timeout),
                lambda pdu, final: self._reply(correlation, "uds", data=pdu.hex(), final=final),
            )
        except RelayError as exc:
            self._reply(correlation, "error", code=exc.code, message=str(exc))

    def _command_guard(self) -> Any:
        if self._guard is None:
            from workshop_app.core.cloud.signing import CommandGuard, load_public_key

            if self.profile.owner_key is None:
                raise CloudError("the vehicle profile names no owner_key: signed commands cannot be checked")
            state_dir = self.profile.data_dir or self.history.parent / "cloud"
            self._guard = CommandGuard(
                self.vin, load_public_key(self.profile.owner_key), state_dir / f"commands-{self.vin}.json"
            )
        return self._guard

    def _run_command(self, correlation: bytes, doc: dict[str, Any], workshop: str) -> None:
        command = doc.get("command")
        if not isinstance(command, dict):
            self._reply(
                correlation, "error", code="bad-request", message="'command' must be a signed command object"
            )
            return
        action = str(command.get("action", ""))
        raw_args = command.get("args")
        args: dict[str, Any] = raw_args if isinstance(raw_args, dict) else {}
        try:
            guard = self._command_guard()
        except WorkshopError as exc:  # no owner key, or the guard's memory unreadable: fail closed
            self._result(correlation, Outcome(False, "guard-unavailable", str(exc)))
            return
        verdict = guard.check(command)
        if verdict.duplicate_of is not None:
            self._reply(correlation, "result", **verdict.duplicate_of)
            return
        if not verdict.ok:
            if action == "flash":  # every flash attempt is audited, refused ones too
                audit_refusal(
                    self.history,
                    self.vin,
                    str(args.get("ecu", "")),
                    f"remote flash from {workshop}: {verdict.reason}",
                )
            self._result(correlation, Outcome(False, verdict.code, verdict.reason))
            return
        if action == "flash":
            self.relay.close()  # the flash job speaks ISO-TP to the ECU itself
            self._busy = "a remote flash is running"
            try:
                outcome = self.flash.run(args, lambda o: self._result(correlation, o), workshop)
            finally:
                self._busy = ""
        else:
            outcome = self.body.run(action, args)
        result = outcome.as_reply()
        guard.remember(command, result)
        self._result(correlation, outcome)

    # -- health -----------------------------------------------------------------------------------
    def _signal(self, message_name: str, signal: str) -> float | None:
        m = self._message(message_name)
        if m is None:
            return None
        frame = self.watch.latest(m.frame_id, m.is_extended_frame)
        if frame is None:
            return None
        try:
            value = m.decode(bytes(frame.data), decode_choices=False)[signal]
        except (KeyError, ValueError):
            return None
        return float(value) if isinstance(value, int | float) else None

    def health(self) -> AgentHealth:
        """Scan the car quickly (no address sweep, no OBD) and add the values its frames carry."""
        bus, notifier = self._link()
        scan = None
        problems: tuple[str, ...] = ()
        if bus is None or notifier is None:
            problems = ("the car's bus is not connected",)
        else:
            self.relay.close()  # the scan's clients talk ISO-TP to the same ECUs
            try:
                scan = VehicleScanner(
                    bus,
                    notifier,
                    self.vehicle_spec,
                    options=ScanOptions(sweep=False, obd=False, timeout=HEALTH_SCAN_TIMEOUT),
                    connection=f"cloud agent {self.vin}",
                ).scan()
            except WorkshopError as exc:
                problems = (f"scan failed: {exc}",)
        return summary_from_scan(
            self.vin,
            time.time(),
            self.health_interval,
            scan,
            vehicle_time=self.watch.newest_time,
            battery_v=self._signal("BATTERY_STATUS", "BatteryVoltage"),
            odometer_km=self._signal("CLUSTER_STATUS", "Odometer"),
            frames=self.pump.counters(),
            problems=problems,
        )

    def publish_health(self) -> AgentHealth:
        """Make a summary now and publish it (QoS 1). Runs on the diag worker."""
        summary = self.health()
        self.last_health = summary
        client = self._client
        if client is not None and self._connected.is_set():
            client.publish(self._topic_health, summary.encode(), qos=1)
            self.health_published += 1
        return summary

    def request_health(self) -> None:
        """Ask the worker for a summary at once (tests, and the CLI at start)."""
        self._jobs.put(self.publish_health)
