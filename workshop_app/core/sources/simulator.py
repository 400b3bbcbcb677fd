"""SimulatorSource: the built-in demo vehicle, connected like any adapter.

The simulated car runs its ECUs on one python-can ``virtual`` channel; the workshop attaches
to that channel with an ordinary AdapterSource, so capture, transmit and (later) diagnostics
take exactly the path they take on a real car. Optionally the same channel is shared with
other processes over socketcand.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import can

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.sim.demo_vehicle import DemoVehicle
from workshop_app.core.sim.ecus import EcuNetwork
from workshop_app.core.sim.socketcand_server import SocketcandServer
from workshop_app.core.sources.adapter import AdapterSource
from workshop_app.core.types import BusConfig, SourceCaps


class SimulatorSource(AdapterSource):
    """The demo vehicle on a private virtual bus, captured through an AdapterSource."""

    def __init__(
        self,
        ring: FrameRing,
        *,
        dbc_path: Path | None = None,
        pace_bitrate: int | None = 500_000,
        time_scale: float = 1.0,
        seed: int = 0,
        serve_socketcand: tuple[str, int] | None = None,
        channel_label: str = "can0",
        extra_load: float = 0.0,
        ecus: bool = True,
    ) -> None:
        self.virtual_channel = f"workshop-sim-{uuid.uuid4().hex[:8]}"
        super().__init__(
            ring,
            BusConfig(interface="virtual", channel=self.virtual_channel, bitrate=pace_bitrate, fd=True),
            channel_label=channel_label,
        )
        self.caps = SourceCaps(live=True, can_transmit=True, fd=True)
        self.dbc_path = dbc_path
        self.pace_bitrate = pace_bitrate
        self.time_scale = time_scale
        self.seed = seed
        self.serve_socketcand = serve_socketcand
        self.extra_load = extra_load  # filler traffic, as a fraction of the bus (benchmarks)
        self.with_ecus = ecus  # serve the diagnostic ECUs (UDS, OBD-II) on the bus
        self.vehicle: DemoVehicle | None = None
        self.ecus: EcuNetwork | None = None  # while open: the simulated ECUs (behaviours, memories)
        self.server: SocketcandServer | None = None
        self._vehicle_bus: can.BusABC | None = None
        self._server_bus: can.BusABC | None = None
        self._ecu_bus: can.BusABC | None = None

    def describe(self) -> str:
        text = "simulated vehicle"
        if self.pace_bitrate:
            text += f" @ {self.pace_bitrate // 1000} kbit/s"
        if self.server is not None:
            host, port = self.server.address
            text += f" (socketcand {host}:{port})"
        return text

    def _open(self) -> None:
        # Capture first, so the car's very first frames are seen.
        super()._open()
        try:
            self._vehicle_bus = can.Bus(interface="virtual", channel=self.virtual_channel)
            self.vehicle = DemoVehicle(
                self._vehicle_bus,
                dbc_path=self.dbc_path,
                pace_bitrate=self.pace_bitrate,
                time_scale=self.time_scale,
                seed=self.seed,
                extra_load=self.extra_load,
            )
            if self.serve_socketcand is not None:
                host, port = self.serve_socketcand
                self._server_bus = can.Bus(interface="virtual", channel=self.virtual_channel)
                self.server = SocketcandServer(self._server_bus, host=host, port=port, channel="can0")
                self.server.start()
            if self.with_ecus:
                # A connection of its own: the ECU network reads it with its own Notifier.
                self._ecu_bus = can.Bus(interface="virtual", channel=self.virtual_channel)
                self.ecus = EcuNetwork(self._ecu_bus, self.vehicle)
            self.vehicle.start()
            if self.ecus is not None:
                self.ecus.start()
        except Exception:
            self._close()
            raise

    def _close(self) -> None:
        if self.ecus is not None:
            self.ecus.stop()
            self.ecus = None
        if self.vehicle is not None:
            self.vehicle.stop()
            self.vehicle = None
        if self.server is not None:
            self.server.stop()
            self.server = None
        for bus in (self._vehicle_bus, self._server_bus, self._ecu_bus):
            if bus is not None:
                bus.shutdown()
        self._vehicle_bus = self._server_bus = self._ecu_bus = None
        super()._close()
