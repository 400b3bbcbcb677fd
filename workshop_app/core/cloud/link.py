"""The workshop's MQTT connection to one vehicle: subscriptions, requests, replies, link health.

Shared by :class:`~workshop_app.core.cloud.canbus.CloudBus` (frames and UDS) and
:class:`~workshop_app.core.cloud.remote.RemoteControl` (signed commands). Threads: paho's
network thread runs every callback here (decode and hand over, never block); one
``cloud-ping`` thread per link measures the round trip to the agent when asked to.

Replies are matched to requests by their MQTT 5 correlation data only: a reply whose
correlation this link never sent (forged, or meant for another window of the same workshop,
which shares the reply topic) is counted in ``ignored_replies`` and dropped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from workshop_app.core.cloud import messages, topics
from workshop_app.core.cloud.errors import CloudError
from workshop_app.core.cloud.profile import CloudProfile, mqtt_client

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 8.0  # first connection; later ones are paho's, with the profile's back-off
PING_INTERVAL = 2.0
# Pings unanswered in a row before the vehicle is called offline (its agent would have answered).
PING_MISSES_OFFLINE = 2

FrameHandler = Callable[[bytes], None]


class PendingRequest:
    """Replies to one request, in arrival order (``queue`` of decoded reply documents)."""

    def __init__(self, correlation: bytes) -> None:
        self.correlation = correlation
        self.replies: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()

    def get(self, timeout: float) -> dict[str, Any] | None:
        try:
            return self.replies.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None

    def drain(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self.replies.get_nowait()


class VehicleLink:
    """One MQTT 5 connection of this workshop, aimed at one VIN.

    With ``on_frames`` the VIN's frame batches are subscribed too, each payload handed to it
    on paho's thread. ``ping_interval`` > 0 starts the latency probe. Raises :class:`CloudError`
    with a plain reason when the first connection fails within ``connect_timeout``.
    """

    def __init__(
        self,
        profile: CloudProfile,
        vin: str,
        *,
        role: str = "link",
        on_frames: FrameHandler | None = None,
        ping_interval: float = 0.0,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.profile = profile
        self.vin = topics.check_vin(vin)
        self.workshop_id = profile.client_id
        try:
            self.reply_topic = topics.reply_topic(self.vin, self.workshop_id)
        except topics.TopicError as exc:
            raise CloudError(f"cloud profile {profile.client_id}: not a workshop's profile ({exc})") from None
        self.request_topic = topics.vehicle_topic(self.vin, topics.REQUEST)
        self._frames_topic = topics.vehicle_topic(self.vin, topics.FRAMES)
        self._state_topic = topics.vehicle_topic(self.vin, topics.STATE)
        self._on_frames = on_frames
        self._lock = threading.Lock()
        self._pending: dict[bytes, PendingRequest] = {}
        self._connected = threading.Event()
        self._closed = threading.Event()
        self._why = "not connected yet"  # the latest reason the broker link is down
        self._log_why = ""
        self._vehicle_online: bool | None = None  # from the state topic; None until heard
        self._ping_misses = 0
        self.latency_ms: float | None = None
        self.ignored_replies = 0
        self.bad_payloads = 0
        self.last_problem = ""  # the latest malformed payload, in one line
        self.connects = 0
        # Each window, CLI run and remote command is its own MQTT session: a shared client id
        # would make the broker drop the older one. Topics and ACLs use the certificate name.
        client_id = f"{profile.client_id}.{role}-{os.urandom(3).hex()}"
        self._client = mqtt_client(replace(profile, client_id=client_id))
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._client.on_log = self._on_log
        self._client.on_connect_fail = self._on_connect_fail
        where = f"cloud broker {profile.host}:{profile.port}"
        # The first connection on this thread, so a refusal or a TLS failure is told with its
        # reason; paho's own thread reconnects after that (it only logs why).
        self._client.connect_timeout = connect_timeout
        try:
            self._client.connect(profile.host, profile.port, keepalive=profile.keepalive)
        except OSError as exc:
            self._closed.set()
            with contextlib.suppress(Exception):
                self._client.disconnect()
            raise CloudError(f"{where}: {_connect_reason(exc, profile)}") from None
        self._client.loop_start()
        if not self._connected.wait(connect_timeout):
            why = self._why
            self._stop_client()
            raise CloudError(f"{where}: not connected within {connect_timeout:g} s ({why})")
        self._ping_interval = ping_interval
        self._pinger: threading.Thread | None = None
        if ping_interval > 0:
            self._pinger = threading.Thread(
                target=self._ping_loop, name=f"cloud-ping {self.vin}", daemon=True
            )
            self._pinger.start()

    # -- state ------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def state(self) -> str:
        """``connected``, ``reconnecting: <why>`` or ``vehicle offline``."""
        if self._closed.is_set():
            return "closed"
        if not self._connected.is_set():
            return f"reconnecting: {self._why}"
        if self._vehicle_online is False or self._ping_misses >= PING_MISSES_OFFLINE:
            return "vehicle offline"
        return "connected"

    def describe(self) -> str:
        return f"the cloud link to {self.vin} ({self.profile.host}:{self.profile.port})"

    # -- paho callbacks (paho's network thread) ---------------------------------------------
    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            self._why = f"the broker refused the connection: {reason}"
            return
        sock = client.socket()
        if isinstance(sock, socket.socket):
            # Requests are small and wait for their answer: send at once, not after Nagle's delay.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        subs = [(self._state_topic, 1), (self.reply_topic, 1)]
        if self._on_frames is not None:
            subs.append((self._frames_topic, 0))
        # Subscribed again on every connect: a broker restart forgets the session.
        client.subscribe(subs)
        self.connects += 1

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, _codes: Any, _p: Any) -> None:
        # Ready once the broker has our subscriptions: nothing sent to us after this is missed.
        self._connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        self._connected.clear()
        if self._closed.is_set():
            return
        text = str(reason)
        if text in ("Unspecified error", "Success", "Normal disconnection"):
            # paho tells socket and TLS failures only in its log, just before this call.
            text = self._log_why or "the broker closed the connection"
        self._why, self._log_why = text, ""
        log.info("%s: disconnected (%s)", self.describe(), text)

    def _on_connect_fail(self, _c: mqtt.Client, _u: Any) -> None:
        if not self._closed.is_set():
            self._why = (
                self._log_why or f"the broker at {self.profile.host}:{self.profile.port} cannot be reached"
            )

    def _on_log(self, _c: mqtt.Client, _u: Any, level: int, text: str) -> None:
        if level in (mqtt.MQTT_LOG_ERR, mqtt.MQTT_LOG_WARNING):
            self._log_why = _tls_alert(text)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        topic, payload = msg.topic, bytes(msg.payload)
        if topic == self._frames_topic:
            if self._on_frames is not None:
                self._on_frames(payload)
        elif topic == self.reply_topic:
            self._on_reply(msg)
        elif topic == self._state_topic:
            self._on_state(payload)

    def _on_reply(self, msg: mqtt.MQTTMessage) -> None:
        correlation = getattr(msg.properties, "CorrelationData", None) if msg.properties else None
        with self._lock:
            pending = self._pending.get(bytes(correlation)) if correlation else None
        if pending is None:
            self.ignored_replies += 1
            return
        try:
            doc = messages.decode(bytes(msg.payload), expect=messages.KINDS_REPLY)
        except messages.MessageError as exc:
            self._bad(f"reply from {self.vin}: {exc}")
            return
        pending.replies.put(doc)

    def _on_state(self, payload: bytes) -> None:
        if not payload:
            return  # a cleared retained state
        try:
            doc = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            word = payload.decode("utf-8", "replace").strip().lower()
            if word not in ("online", "offline"):  # the bare word is a presence too
                self._bad(f"state of {self.vin} is neither JSON nor online/offline")
                return
            doc = word
        online = doc.get("online") if isinstance(doc, dict) else None
        state = doc.get("state") if isinstance(doc, dict) else doc
        if isinstance(online, bool):
            self._vehicle_online = online
        elif isinstance(state, str):
            self._vehicle_online = state.lower() != "offline"
        if self._vehicle_online:
            self._ping_misses = 0

    def _bad(self, text: str) -> None:
        self.bad_payloads += 1
        self.last_problem = text
        log.warning("%s", text)

    # -- requests ---------------------------------------------------------------------------
    def request(self, payload: bytes) -> PendingRequest:
        """Publish one request (QoS 1) and register for its replies; :meth:`forget` it after."""
        pending = PendingRequest(messages.new_correlation())
        with self._lock:
            self._pending[pending.correlation] = pending
        props = messages.request_properties(self.reply_topic, pending.correlation)
        # Queued by paho while the broker is away and sent once it is back.
        self._client.publish(self.request_topic, payload, qos=1, properties=props)
        return pending

    def forget(self, pending: PendingRequest) -> None:
        with self._lock:
            self._pending.pop(pending.correlation, None)

    def _ping_loop(self) -> None:
        wait = 0.0  # the first probe at once, so the window shows a latency straight away
        while not self._closed.wait(wait):
            wait = self._ping_interval
            if not self._connected.is_set():
                continue
            pending = self.request(messages.encode("ping", sent=time.time()))
            t0 = time.monotonic()
            doc: dict[str, Any] | None = None
            try:
                while True:  # skip anything but the pong (an error reply ends the wait)
                    left = self._ping_interval - (time.monotonic() - t0)
                    doc = pending.get(left) if left > 0 else None
                    if doc is None or doc.get("kind") in ("pong", "error"):
                        break
            finally:
                self.forget(pending)
            if doc is None or doc.get("kind") != "pong":
                self._ping_misses += 1
            else:
                self._ping_misses = 0
                self._vehicle_online = True  # an answer proves it, whatever a stale state said
                self.latency_ms = (time.monotonic() - t0) * 1000.0
            wait = max(0.0, self._ping_interval - (time.monotonic() - t0))

    def probe(self, timeout: float) -> float | None:
        """One ping now: the round trip in ms, or None when no pong came within ``timeout``."""
        pending = self.request(messages.encode("ping", sent=time.time()))
        t0 = time.monotonic()
        try:
            while (left := timeout - (time.monotonic() - t0)) > 0:
                doc = pending.get(left)
                if doc is None or doc.get("kind") == "error":
                    break
                if doc.get("kind") == "pong":
                    self._ping_misses = 0
                    self._vehicle_online = True
                    self.latency_ms = (time.monotonic() - t0) * 1000.0
                    return self.latency_ms
        finally:
            self.forget(pending)
        return None

    # -- closing ----------------------------------------------------------------------------
    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        with self._lock:
            waiting = list(self._pending.values())
        for pending in waiting:  # wake every waiter with a plain reason
            pending.replies.put(
                {"v": 1, "kind": "error", "code": "closed", "message": f"{self.describe()} was closed"}
            )
        if self._pinger is not None:
            self._pinger.join(timeout=5)
        self._stop_client()

    def _stop_client(self) -> None:
        self._closed.set()
        with contextlib.suppress(Exception):
            self._client.disconnect()
        self._client.loop_stop()


def _connect_reason(exc: OSError, profile: CloudProfile) -> str:
    """Why the first connection failed, in words a user can act on."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"its certificate is not trusted by {profile.ca} ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"the TLS handshake failed ({exc.reason or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "nothing is listening there (is the broker running?)"
    if isinstance(exc, TimeoutError):
        return "no answer in time (check the host and port)"
    return exc.strerror or str(exc)


_TLS_ALERTS = {
    "ALERT_UNKNOWN_CA": "the broker does not accept this certificate (issued by a CA it does not know)",
    "CERTIFICATE_REQUIRED": "the broker requires a client certificate",
    "BAD_CERTIFICATE": "the broker refused this certificate",
    "CERTIFICATE_EXPIRED": "the broker refused this certificate: it has expired",
    "CERTIFICATE_REVOKED": "the broker refused this certificate: it was revoked",
}


def _tls_alert(text: str) -> str:
    """paho's log line of a TLS alert from the broker, as what it means for the user."""
    return next((meaning for alert, meaning in _TLS_ALERTS.items() if alert in text), text)
