"""Requests from the workshop and the agent's replies: small JSON documents.

A request goes to ``wsp/v1/<VIN>/req`` at QoS 1 with two MQTT 5 properties: the response
topic (the workshop's ``reply`` topic) and 16 random bytes of correlation data. Every reply
carries the same correlation data back, so a workshop matches replies to requests and
ignores any it never asked for; the agent keeps recent correlation data so a request the
broker delivers twice (QoS 1 is at-least-once) runs once and its replies are sent again.

Request kinds::

    {"v": 1, "kind": "uds", "ecu": {"tx": 2016, "rx": 2024, "extended": false, "fd": false},
     "data": "<hex>", "timeout": 5.0}
    {"v": 1, "kind": "command", "command": {...}}      (a signed command, see signing.py)
    {"v": 1, "kind": "ping", "sent": 1733500000.123}

Reply kinds::

    {"v": 1, "kind": "uds", "data": "<hex>", "final": false}   (one per response PDU; 0x78 ones not final)
    {"v": 1, "kind": "result", "ok": true, "code": "done", "message": "...", "data": {...}}
    {"v": 1, "kind": "error", "code": "timeout", "message": "..."}
    {"v": 1, "kind": "pong", "sent": 1733500000.123, "agent_time": 1733500000.140}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

VERSION = 1
MAX_MESSAGE = 64 * 1024  # a 4095-byte TransferData block is ~8 KB of hex; commands are smaller
KINDS_REQUEST = ("uds", "command", "ping")
KINDS_REPLY = ("uds", "result", "error", "pong")


class MessageError(ValueError):
    """A request or reply that is not one of ours, in plain words."""


@dataclass(frozen=True, slots=True)
class EcuRoute:
    """Where the agent sends a UDS request on its bus: the ECU's ISO-TP address pair."""

    tx: int
    rx: int
    extended: bool = False
    fd: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"tx": self.tx, "rx": self.rx, "extended": self.extended, "fd": self.fd}

    @classmethod
    def from_json(cls, value: Any) -> EcuRoute:
        if not isinstance(value, dict):
            raise MessageError("'ecu' must be an object with tx and rx")
        tx, rx = value.get("tx"), value.get("rx")
        if (
            not isinstance(tx, int)
            or not isinstance(rx, int)
            or not 0 <= tx <= 0x1FFFFFFF
            or not 0 <= rx <= 0x1FFFFFFF
        ):
            raise MessageError(f"ecu addresses must be CAN ids, got tx={tx!r} rx={rx!r}")
        return cls(tx, rx, bool(value.get("extended", False)), bool(value.get("fd", False)))


def new_correlation() -> bytes:
    return os.urandom(16)


def encode(kind: str, **body: Any) -> bytes:
    if kind not in KINDS_REQUEST + KINDS_REPLY:
        raise MessageError(f"unknown message kind {kind!r}")
    return json.dumps({"v": VERSION, "kind": kind, **body}, separators=(",", ":")).encode()


def decode(payload: bytes, *, expect: tuple[str, ...]) -> dict[str, Any]:
    """Parse a message and check its kind is one of ``expect``; MessageError otherwise."""
    if len(payload) > MAX_MESSAGE:
        raise MessageError(f"message of {len(payload)} bytes is over the {MAX_MESSAGE}-byte limit")
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MessageError(f"message is not JSON: {e}") from e
    if not isinstance(doc, dict) or doc.get("v") != VERSION:
        raise MessageError(f"message is not a version-{VERSION} object")
    if doc.get("kind") not in expect:
        raise MessageError(f"unexpected message kind {doc.get('kind')!r} (expected {', '.join(expect)})")
    return doc


def uds_request(route: EcuRoute, data: bytes, timeout: float) -> bytes:
    return encode("uds", ecu=route.as_json(), data=data.hex(), timeout=timeout)


def hex_field(doc: dict[str, Any], name: str = "data") -> bytes:
    value = doc.get(name)
    if not isinstance(value, str):
        raise MessageError(f"'{name}' must be a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError as e:
        raise MessageError(f"'{name}' is not hex: {e}") from e


def request_properties(response_topic: str, correlation: bytes) -> Properties:
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = response_topic
    props.CorrelationData = correlation
    return props


def reply_properties(correlation: bytes) -> Properties:
    props = Properties(PacketTypes.PUBLISH)
    props.CorrelationData = correlation
    return props
