"""Build the right FrameSource from plain settings (shared by the CLI and the GUI)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.errors import SourceError
from workshop_app.core.sources.adapter import AdapterSource
from workshop_app.core.sources.base import FrameSource
from workshop_app.core.sources.reconnect import RECONNECT, ReconnectPolicy
from workshop_app.core.sources.replay import ReplaySource
from workshop_app.core.sources.simulator import SimulatorSource
from workshop_app.core.types import BusConfig

SOCKETCAND_PORT = 29536
# `-i socketcand` is our client (CAN FD frames included, core/sources/socketcand_client.py);
# python-can's own client stays reachable as `-i socketcand-python-can`.
SOCKETCAND_INTERFACES = {
    "socketcand": "workshop-socketcand",
    "workshop-socketcand": "workshop-socketcand",
    "socketcand-python-can": "socketcand",
}


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """Where frames come from. ``interface=None`` and no ``replay`` means the simulated vehicle."""

    interface: str | None = None
    channel: str | None = None
    bitrate: int | None = None
    data_bitrate: int | None = None
    fd: bool = False
    host: str | None = None
    port: int | None = None
    replay: Path | None = None
    speed: float = 1.0
    loop: bool = False
    sim_bitrate: int | None = 500_000
    sim_time_scale: float = 1.0
    # Every live source: connect deadlines, and reopening a lost link every second until it is back
    # (``NO_RECONNECT`` for --no-reconnect and for diagnostics, where a gap spoils the answer).
    reconnect: ReconnectPolicy = RECONNECT
    # The window's case: start() returns at once and the source connects on its own thread.
    connect_in_background: bool = False
    # interface "workshop-cloud": the workshop's cloud profile (None: the default one).
    cloud_profile: Path | None = None
    # Receive, count and record live sources in a capture process (core/capture/process.py);
    # sessions built by make_capture_session honour it. Diagnostics reach the bus through it.
    capture_process: bool = False

    @property
    def is_simulator(self) -> bool:
        return self.interface is None and self.replay is None

    def bus_config(self) -> BusConfig:
        assert self.interface is not None
        if self.interface in SOCKETCAND_INTERFACES:
            interface = SOCKETCAND_INTERFACES[self.interface]
            return BusConfig(
                interface,
                self.channel or "can0",
                host=self.host or "127.0.0.1",
                port=self.port or SOCKETCAND_PORT,
                fd=interface == "workshop-socketcand",  # ours carries CAN FD frames both ways
            )
        if self.interface == "workshop-cloud":
            if not self.channel:
                raise SourceError("the cloud link needs the vehicle's VIN as its channel (--channel VIN)")
            return BusConfig(
                "workshop-cloud",
                self.channel,
                cloud_profile=str(self.cloud_profile) if self.cloud_profile is not None else None,
            )
        return BusConfig(
            self.interface,
            self.channel or _default_channel(self.interface),
            bitrate=self.bitrate,
            data_bitrate=self.data_bitrate,
            fd=self.fd or self.data_bitrate is not None,
        )


def _default_channel(interface: str) -> str:
    return {"pcan": "PCAN_USBBUS1", "kvaser": "0", "vector": "0", "ixxat": "0", "slcan": "/dev/ttyACM0"}.get(
        interface, "can0"
    )


def make_source(spec: SourceSpec, ring: FrameRing | None = None) -> FrameSource:
    ring = ring if ring is not None else FrameRing()
    if spec.replay is not None:
        return ReplaySource(ring, spec.replay, speed=spec.speed, loop=spec.loop)
    if spec.interface is None:
        return SimulatorSource(ring, pace_bitrate=spec.sim_bitrate, time_scale=spec.sim_time_scale)
    return AdapterSource(
        ring, spec.bus_config(), policy=spec.reconnect, connect_in_background=spec.connect_in_background
    )
