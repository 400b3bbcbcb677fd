"""Every MQTT topic of the cloud link, under one versioned prefix per vehicle.

Layout (at most 5 levels, well inside AWS IoT Core's 7 and 256 bytes)::

    wsp/v1/<VIN>/state              agent → all      presence, JSON (also sent as the last will)
    wsp/v1/<VIN>/frames             agent → all      binary frame batches, QoS 0 (see wire.py)
    wsp/v1/<VIN>/health             agent → all      periodic health summary, JSON, QoS 1
    wsp/v1/<VIN>/req                workshop → agent diagnostic requests and signed commands, QoS 1
    wsp/v1/<VIN>/reply/<workshop>   agent → workshop replies, QoS 1 (the request's MQTT 5 response topic)

The vehicle id is the VIN, which is also the MQTT client id and the certificate's common name;
a workshop id is its certificate's common name. Broker ACLs are written from these names.
"""

from __future__ import annotations

import re

PREFIX = "wsp/v1"
STATE = "state"
FRAMES = "frames"
HEALTH = "health"
REQUEST = "req"
REPLY = "reply"

# ISO 3779: 17 characters, no I, O or Q.
_VIN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")
# Lower case letters are required so a workshop id can never be read as a VIN.
_WORKSHOP = re.compile(r"^(?=.*[a-z])[a-z0-9][a-z0-9._-]{0,62}$")
MAX_TOPIC_BYTES = 256


class TopicError(ValueError):
    """A name that cannot be used in a topic, in plain words."""


def check_vin(vin: str) -> str:
    if not _VIN.match(vin):
        raise TopicError(f"{vin!r} is not a VIN (17 characters, digits and capitals without I, O or Q)")
    return vin


def check_workshop_id(workshop_id: str) -> str:
    if not _WORKSHOP.match(workshop_id):
        raise TopicError(
            f"{workshop_id!r} is not a workshop id (1–63 of a-z 0-9 . _ -, starting with a letter or digit, "
            "at least one letter)"
        )
    return workshop_id


def _topic(*levels: str) -> str:
    topic = "/".join((PREFIX, *levels))
    if len(topic.encode()) > MAX_TOPIC_BYTES:
        raise TopicError(f"topic {topic!r} is longer than {MAX_TOPIC_BYTES} bytes")
    return topic


def vehicle_topic(vin: str, leaf: str) -> str:
    """``wsp/v1/<VIN>/<leaf>`` for leaf in state, frames, health, req."""
    if leaf not in (STATE, FRAMES, HEALTH, REQUEST):
        raise TopicError(f"unknown vehicle topic {leaf!r}")
    return _topic(check_vin(vin), leaf)


def reply_topic(vin: str, workshop_id: str) -> str:
    return _topic(check_vin(vin), REPLY, check_workshop_id(workshop_id))


def all_vehicles(leaf: str) -> str:
    """Subscription filter for one leaf of every vehicle (the broker delivers only granted ones)."""
    if leaf not in (STATE, FRAMES, HEALTH):
        raise TopicError(f"unknown vehicle topic {leaf!r}")
    return _topic("+", leaf)


def parse(topic: str) -> tuple[str, str, str | None]:
    """``(vin, leaf, workshop_id_or_None)`` of a topic of ours; TopicError otherwise."""
    levels = topic.split("/")
    if len(levels) < 4 or "/".join(levels[:2]) != PREFIX:
        raise TopicError(f"{topic!r} is not a cloud-link topic")
    vin, leaf = check_vin(levels[2]), levels[3]
    if leaf == REPLY and len(levels) == 5:
        return vin, leaf, check_workshop_id(levels[4])
    if leaf in (STATE, FRAMES, HEALTH, REQUEST) and len(levels) == 4:
        return vin, leaf, None
    raise TopicError(f"{topic!r} is not a cloud-link topic")
