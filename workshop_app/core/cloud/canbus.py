"""python-can interface ``workshop-cloud``: a connected car's bus, reached through the MQTT broker.

Any python-can program opens it like a cable::

    bus = can.Bus(interface="workshop-cloud", channel="WSADEM5T2T0000421",
                  profile="~/.local/share/workshop/cloud/workshop.json")
    msg = bus.recv(1.0)          # the car's frames, with the vehicle's own timestamps

The link carries the agent's frame batches one way and UDS requests and signed commands the
other, never raw frames: :meth:`CloudBus.send` refuses them. Diagnostics use
:meth:`CloudBus.uds_connection`, which :class:`~workshop_app.core.diag.client.EcuClient` picks
up on its own. Threads: paho's network thread decodes each batch and appends its frames to a
bounded queue (what does not fit is counted in ``overflow``); ``recv`` reads that queue.
"""

from __future__ import annotations

import queue
from pathlib import Path
from typing import Any

import can

from workshop_app.core.cloud import topics, wire
from workshop_app.core.cloud.errors import CloudError
from workshop_app.core.cloud.link import CONNECT_TIMEOUT, PING_INTERVAL, VehicleLink
from workshop_app.core.cloud.messages import EcuRoute
from workshop_app.core.cloud.profile import CloudProfile, default_workshop_profile
from workshop_app.core.cloud.uds_link import REQUEST_TIMEOUT, UdsLink
from workshop_app.core.errors import SourceError

INTERFACE = "workshop-cloud"
# About 25 s of a saturated 500 kbit/s bus: enough to ride out a slow reader, bounded memory.
QUEUE_FRAMES = 100_000
VEHICLE_TIMEOUT = 5.0  # for the agent's first pong before diagnostics


class CloudOpenError(can.CanInitializationError, SourceError):
    """The bus could not be opened; a SourceError too, so sources show the reason as it is."""


class CloudBus(can.BusABC):
    """The bus of vehicle ``channel`` (its VIN) as seen through the cloud link.

    Args:
        channel: The VIN.
        profile: The workshop's cloud profile (path, or a loaded :class:`CloudProfile`);
            default :func:`default_workshop_profile`.
        connect_timeout: Seconds for the first connection to the broker; later losses are
            reconnected by the link on its own (``link_state`` says so meanwhile).
        ping_interval: Seconds between latency probes (``latency_ms``); 0 turns them off.
        queue_frames: Frames held for ``recv`` before new ones are counted as ``overflow``.
    """

    def __init__(
        self,
        channel: Any = None,
        can_filters: can.typechecking.CanFilters | None = None,
        *,
        profile: str | Path | CloudProfile | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        ping_interval: float = PING_INTERVAL,
        queue_frames: int = QUEUE_FRAMES,
        **kwargs: object,
    ) -> None:
        try:
            vin = topics.check_vin(str(channel or ""))
        except topics.TopicError as exc:
            raise CloudOpenError(f"{INTERFACE}: channel must be the VIN: {exc}") from None
        try:
            loaded = (
                profile if isinstance(profile, CloudProfile) else CloudProfile.load(_profile_path(profile))
            )
            self.tracker = wire.SequenceTracker()
            self.bad_batches = 0
            self.overflow = 0
            self._rx: queue.Queue[can.Message] = queue.Queue(maxsize=queue_frames)
            self.link = VehicleLink(
                loaded,
                vin,
                role="bus",
                on_frames=self._on_frames,
                ping_interval=ping_interval,
                connect_timeout=connect_timeout,
            )
        except CloudError as exc:
            raise CloudOpenError(f"cloud vehicle {vin}: {exc}") from None
        self.vin = vin
        self.profile = loaded
        # Constructed last: a bus that failed to connect never counts as opened.
        super().__init__(channel=vin, can_filters=can_filters, **kwargs)
        self.channel_info = f"{INTERFACE} {vin} via {loaded.host}:{loaded.port}"

    # -- link health ------------------------------------------------------------------------
    @property
    def link_state(self) -> str:
        """``connected``, ``reconnecting: <why>`` or ``vehicle offline``."""
        return self.link.state

    @property
    def latency_ms(self) -> float | None:
        """Round trip workshop → broker → agent → workshop of the latest ping (None before one)."""
        return self.link.latency_ms

    @property
    def lost_frames(self) -> int:
        """Frames missing between agent and workshop (gaps in the batches' frame indices)."""
        return self.tracker.lost

    @property
    def dropped_by_agent(self) -> int:
        return self.tracker.dropped_by_agent

    def check_vehicle(self, timeout: float = VEHICLE_TIMEOUT) -> None:
        """Return once the vehicle's agent answers a ping; CloudError in plain words otherwise.

        Diagnostics call this first: a car that is offline, or not granted to this workshop
        (the broker then silently drops our requests), is one clear message, not a timeout per ECU.
        """
        if self.link.state == "connected" and self.link.probe(timeout) is not None:
            return
        raise CloudError(
            f"{self.vin} does not answer through the cloud link ({self.link_state}): the vehicle is "
            f"offline, or not granted to workshop {self.profile.client_id}"
        )

    # -- receiving (paho's thread fills, recv empties) --------------------------------------
    def _on_frames(self, payload: bytes) -> None:
        try:
            batch = wire.decode_batch(payload)
        except wire.WireError as exc:
            self.bad_batches += 1
            self.link.last_problem = f"frame batch from {self.vin}: {exc}"
            return
        duplicates = self.tracker.duplicates
        self.tracker.feed(batch)
        if self.tracker.duplicates != duplicates:
            return  # a batch delivered twice (the agent resent it after an outage)
        put = self._rx.put_nowait
        for i, f in enumerate(batch.frames):
            if self._rx.full():
                self.overflow += len(batch.frames) - i
                break
            put(
                can.Message(
                    timestamp=f.timestamp,
                    arbitration_id=f.arbitration_id,
                    is_extended_id=f.is_extended,
                    is_remote_frame=f.is_remote,
                    is_error_frame=f.is_error,
                    is_fd=f.is_fd,
                    bitrate_switch=f.bitrate_switch,
                    error_state_indicator=f.error_state_indicator,
                    is_rx=f.is_rx,
                    channel=f.channel,
                    dlc=len(f.data),
                    data=f.data,
                    check=False,
                )
            )

    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        try:
            msg = self._rx.get(timeout=timeout) if timeout is None or timeout > 0 else self._rx.get_nowait()
        except queue.Empty:
            return None, False
        return msg, False

    # -- sending ----------------------------------------------------------------------------
    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        raise can.CanOperationError(
            f"{INTERFACE} {self.vin}: the cloud link carries diagnostics and signed commands, "
            f"not raw frames (frame 0x{msg.arbitration_id:X} not sent)"
        )

    def uds_connection(self, route: EcuRoute, *, request_timeout: float = REQUEST_TIMEOUT) -> UdsLink:
        """A udsoncan connection to one ECU of this vehicle, through the agent's ISO-TP."""
        return UdsLink(self.link, route, request_timeout=request_timeout)

    def shutdown(self) -> None:
        if self._is_shutdown:
            return
        super().shutdown()
        self.link.close()


def _profile_path(profile: str | Path | None) -> Path:
    return Path(profile).expanduser() if profile else default_workshop_profile()
