"""Values shared across the core: frames, source capabilities, bus settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NotRequired, TypedDict

import can

# Data length codes of CAN FD: DLC 9..15 map to these payload lengths.
FD_LENGTHS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64)


def channel_label(channel: object) -> str:
    """Name a python-can channel: numbered channels of log formats become ``can<n>``."""
    if channel is None:
        return "can0"
    if isinstance(channel, int):
        return f"can{channel}"
    return str(channel)


@dataclass(frozen=True, slots=True)
class Frame:
    """One CAN frame as the workshop sees it, whatever the source.

    ``timestamp`` is seconds (epoch for live sources, the log's own clock for replays);
    ``channel`` is the source's channel name; ``is_rx`` is False for frames we sent.
    """

    timestamp: float
    arbitration_id: int
    data: bytes
    channel: str = "can0"
    is_extended: bool = False
    is_fd: bool = False
    bitrate_switch: bool = False
    error_state_indicator: bool = False
    is_remote: bool = False
    is_error: bool = False
    is_rx: bool = True

    @classmethod
    def from_message(cls, msg: can.Message, channel: str | None = None) -> Frame:
        """Convert a python-can message; ``channel`` overrides the message's own."""
        return cls(
            msg.timestamp,
            msg.arbitration_id,
            bytes(msg.data),
            channel if channel is not None else channel_label(msg.channel),
            msg.is_extended_id,
            msg.is_fd,
            msg.bitrate_switch,
            msg.error_state_indicator,
            msg.is_remote_frame,
            msg.is_error_frame,
            msg.is_rx,
        )

    def to_message(self) -> can.Message:
        return can.Message(
            timestamp=self.timestamp,
            arbitration_id=self.arbitration_id,
            data=self.data,
            channel=self.channel,
            is_extended_id=self.is_extended,
            is_fd=self.is_fd,
            bitrate_switch=self.bitrate_switch,
            error_state_indicator=self.error_state_indicator,
            is_remote_frame=self.is_remote,
            is_error_frame=self.is_error,
            is_rx=self.is_rx,
            dlc=len(self.data),
        )

    @property
    def key(self) -> tuple[str, int, bool]:
        """Identity of the message stream this frame belongs to."""
        return (self.channel, self.arbitration_id, self.is_extended)


class BusKwargs(TypedDict):
    """The keyword arguments ``BusConfig.bus_kwargs`` gives ``can.Bus``."""

    interface: str
    channel: str
    bitrate: NotRequired[int]
    fd: NotRequired[bool]
    data_bitrate: NotRequired[int]
    host: NotRequired[str]
    port: NotRequired[int]
    receive_own_messages: NotRequired[bool]
    profile: NotRequired[str]


@dataclass(frozen=True, slots=True)
class BusConfig:
    """How to open a python-can bus: any interface, channel, bitrate, CAN FD data bitrate."""

    interface: str
    channel: str
    bitrate: int | None = None
    data_bitrate: int | None = None
    fd: bool = False
    host: str | None = None  # socketcand
    port: int | None = None  # socketcand
    receive_own_messages: bool = False
    cloud_profile: str | None = None  # workshop-cloud: the workshop's cloud profile file

    def bus_kwargs(self) -> BusKwargs:
        kw: BusKwargs = {"interface": self.interface, "channel": self.channel}
        if self.bitrate:
            kw["bitrate"] = self.bitrate
        if self.fd:
            kw["fd"] = True
        if self.data_bitrate:
            kw["data_bitrate"] = self.data_bitrate
        if self.host is not None:
            kw["host"] = self.host
        if self.port is not None:
            kw["port"] = self.port
        if self.receive_own_messages:
            kw["receive_own_messages"] = True
        if self.cloud_profile is not None:
            kw["profile"] = self.cloud_profile
        return kw

    def describe(self) -> str:
        if self.interface in ("socketcand", "workshop-socketcand"):  # python-can's client, ours
            return f"socketcand {self.host or '127.0.0.1'}:{self.port or 29536} {self.channel}"
        if self.interface == "workshop-cloud":
            return f"cloud vehicle {self.channel}"
        rate = f" @ {self.bitrate // 1000} kbit/s" if self.bitrate else ""
        fd = f" FD {self.data_bitrate // 1000} kbit/s" if self.fd and self.data_bitrate else ""
        return f"{self.interface} {self.channel}{rate}{fd}"


@dataclass(frozen=True, slots=True)
class SourceCaps:
    """What a source can do; the GUI enables its controls from this."""

    live: bool
    can_transmit: bool
    fd: bool = False
    seekable: bool = False
