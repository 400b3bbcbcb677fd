"""What the agent tests share: a workshop-side observer of frames and replies, and a bus spy.

The observer is a real paho client with garage-1's certificate; it subscribes again after every
reconnect (a broker restart forgets clean sessions) and keeps each frame by its index, so
repeats after a link loss are counted once, exactly as ``SequenceTracker`` counts them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import can
import paho.mqtt.client as mqtt

from workshop_app.core.cloud import messages, topics
from workshop_app.core.cloud.profile import CloudProfile, mqtt_client
from workshop_app.core.cloud.wire import SequenceTracker, decode_batch
from workshop_app.core.types import Frame

TIMEOUT = 20.0


@dataclass
class Observer:
    profile: CloudProfile
    vin: str
    client: mqtt.Client | None = None
    tracker: SequenceTracker = field(default_factory=SequenceTracker)
    frames: dict[tuple[int, int], Frame] = field(default_factory=dict)  # (session, index) → frame
    replies: dict[bytes, list[dict[str, Any]]] = field(default_factory=dict)
    health: list[bytes] = field(default_factory=list)
    states: list[bytes] = field(default_factory=list)
    subscribed: int = 0  # subscriptions acknowledged (one per connect)
    cond: threading.Condition = field(default_factory=threading.Condition)

    @property
    def reply_topic(self) -> str:
        return topics.reply_topic(self.vin, self.profile.client_id)

    def start(self) -> None:
        client = mqtt_client(self.profile)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self.client = client
        client.connect(self.profile.host, self.profile.port, keepalive=self.profile.keepalive)
        client.loop_start()
        assert self.wait(lambda: self.subscribed >= 1), "observer did not subscribe"

    def stop(self) -> None:
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()
            self.client = None

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            return
        leaves = (topics.FRAMES, topics.HEALTH, topics.STATE)
        client.subscribe(
            [(topics.vehicle_topic(self.vin, leaf), 1) for leaf in leaves] + [(self.reply_topic, 1)]
        )

    def _on_subscribe(self, *_a: Any) -> None:
        with self.cond:
            self.subscribed += 1
            self.cond.notify_all()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        _vin, leaf, _w = topics.parse(msg.topic)
        with self.cond:
            if leaf == topics.FRAMES:
                batch = decode_batch(msg.payload)
                self.tracker.feed(batch)
                for i, f in enumerate(batch.frames):
                    self.frames.setdefault((batch.session, batch.first_index + i), f)
            elif leaf == topics.HEALTH:
                self.health.append(bytes(msg.payload))
            elif leaf == topics.STATE:
                self.states.append(bytes(msg.payload))
            elif leaf == topics.REPLY:
                corr = bytes(msg.properties.CorrelationData)  # type: ignore[union-attr]
                doc = messages.decode(msg.payload, expect=messages.KINDS_REPLY)
                self.replies.setdefault(corr, []).append(doc)
            self.cond.notify_all()

    def wait(self, predicate: Any, timeout: float = TIMEOUT) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout)

    def request(self, payload: bytes, correlation: bytes | None = None) -> bytes:
        """Publish a request at QoS 1 with our reply topic; returns its correlation data."""
        assert self.client is not None
        corr = correlation or messages.new_correlation()
        props = messages.request_properties(self.reply_topic, corr)
        self.client.publish(topics.vehicle_topic(self.vin, topics.REQUEST), payload, qos=1, properties=props)
        return corr

    def final_reply(self, corr: bytes, timeout: float = TIMEOUT) -> dict[str, Any]:
        def done() -> bool:
            return any(_final(d) for d in self.replies.get(corr, []))

        assert self.wait(done, timeout), f"no final reply; got {self.replies.get(corr)}"
        with self.cond:
            return next(d for d in self.replies[corr] if _final(d))

    def ordered_frames(self) -> list[Frame]:
        """Frames of the (one) agent session by index; asserts there is no hole."""
        with self.cond:
            keys = sorted(self.frames)
            assert keys == [(keys[0][0], i) for i in range(len(keys))], "frame indices have holes"
            return [self.frames[k] for k in keys]


def _final(doc: dict[str, Any]) -> bool:
    kind = doc["kind"]
    if kind == "uds":
        return bool(doc["final"])
    if kind == "result":
        return doc["ok"] is not None
    return True


@contextmanager
def observer(profile: CloudProfile, vin: str) -> Iterator[Observer]:
    obs = Observer(profile, vin)
    obs.start()
    try:
        yield obs
    finally:
        obs.stop()


class BusSpy(can.Listener):
    """Every frame on a virtual channel, by a connection of its own (the ground truth)."""

    def __init__(self, channel: str) -> None:
        self.bus = can.Bus(interface="virtual", channel=channel)
        self.frames: list[can.Message] = []
        self.lock = threading.Lock()
        self.notifier = can.Notifier(self.bus, [self], timeout=0.05)

    def on_message_received(self, msg: can.Message) -> None:
        with self.lock:
            self.frames.append(msg)

    def close(self) -> None:
        self.notifier.stop()
        self.bus.shutdown()


def same_frame(f: Frame, m: can.Message) -> bool:
    return (
        abs(f.timestamp - m.timestamp) < 2e-6
        and f.arbitration_id == m.arbitration_id
        and f.data == bytes(m.data)
        and f.is_extended == m.is_extended_id
        and f.is_fd == m.is_fd
    )


def wait_until(predicate: Any, timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())
