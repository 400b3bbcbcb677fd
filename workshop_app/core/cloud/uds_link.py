"""A udsoncan connection whose transport is the cloud link: one UDS message per MQTT request.

``send`` publishes a ``uds`` request (QoS 1, response topic + fresh correlation data) to the
vehicle's agent, which runs ISO-TP on its own bus; ``wait_frame`` returns the response PDUs
the agent sends back, in order, NRC 0x78 "response pending" ones included, so udsoncan's own
P2/P2* handling works unchanged. Replies carrying any other correlation are not taken (see
:class:`~workshop_app.core.cloud.link.VehicleLink`). An ``error`` reply becomes a plain
exception: ``timeout`` a udsoncan ``TimeoutException`` (the ECU did not answer), anything else
:class:`CloudLinkError`, a ``can.CanOperationError`` callers already report as a link problem.
"""

from __future__ import annotations

import time

import can
from udsoncan.connections import BaseConnection
from udsoncan.exceptions import TimeoutException

from workshop_app.core.cloud import messages
from workshop_app.core.cloud.link import PendingRequest, VehicleLink
from workshop_app.core.cloud.messages import EcuRoute

# Seconds beyond the agent's own wait for its verdict to travel back through the broker.
LINK_MARGIN = 1.0
REQUEST_TIMEOUT = 2.0


class CloudLinkError(can.CanOperationError):
    """The agent refused or failed a diagnostic request; the message is the plain reason."""

    def __init__(self, message: str, code: str = "error") -> None:
        super().__init__(message)
        self.code = code


class UdsLink(BaseConnection):
    """UDS to the ECU at ``route`` of the link's vehicle.

    ``request_timeout`` is how long the agent waits for each answer of the ECU (restarted by
    an NRC 0x78) before it replies ``timeout``; when even that verdict does not come,
    ``wait_frame`` raises a timeout naming the VIN and the ECU.
    """

    def __init__(
        self, link: VehicleLink, route: EcuRoute, *, request_timeout: float = REQUEST_TIMEOUT
    ) -> None:
        self.link = link
        self.route = route
        self.request_timeout = request_timeout
        super().__init__(f"cloud {link.vin} 0x{route.tx:X}")
        self._open = False
        self._pending: PendingRequest | None = None

    @property
    def ecu_text(self) -> str:
        width = 8 if self.route.extended else 3
        return f"ECU 0x{self.route.tx:0{width}X}/0x{self.route.rx:0{width}X}"

    def describe(self) -> str:
        return f"{self.link.describe()}, {self.ecu_text}"

    def open(self) -> UdsLink:
        self._open = True
        return self

    def close(self) -> None:
        self._open = False
        self._forget()

    def is_open(self) -> bool:
        return self._open

    def __enter__(self) -> UdsLink:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _forget(self) -> None:
        if self._pending is not None:
            self.link.forget(self._pending)
            self._pending = None

    def specific_send(self, payload: bytes, timeout: float | None = None) -> None:
        # A new request makes the previous one's late replies foreign: they are ignored.
        self._forget()
        self._pending = self.link.request(messages.uds_request(self.route, payload, self.request_timeout))

    def specific_wait_frame(self, timeout: float | None = None) -> bytes | None:
        pending = self._pending
        # The agent waits ``request_timeout`` for the ECU and then says so; wait for that verdict
        # (plus the trip back) rather than udsoncan's P2, or the next request would queue behind
        # one the agent is still waiting on.
        wait = max(timeout or 0.0, self.request_timeout) + LINK_MARGIN
        if pending is None:
            raise TimeoutException(f"{self.describe()}: nothing was asked")
        deadline = time.monotonic() + wait
        while True:
            doc = pending.get(deadline - time.monotonic())
            if doc is None:
                raise TimeoutException(
                    f"{self.link.vin} {self.ecu_text}: no answer over the cloud link within {wait:g} s "
                    f"(link {self.link.state})"
                )
            kind = doc.get("kind")
            if kind == "uds":
                try:
                    return messages.hex_field(doc)
                except messages.MessageError as exc:
                    raise CloudLinkError(f"{self.describe()}: malformed answer ({exc})", "invalid") from None
            if kind == "error":
                code = str(doc.get("code", "error"))
                text = str(doc.get("message") or code)
                if code == "timeout":
                    raise TimeoutException(f"{self.link.vin} {self.ecu_text}: {text}")
                raise CloudLinkError(f"{self.link.vin} {self.ecu_text}: {text} ({code})", code)
            # pong or result on a UDS request: not an answer to it; keep waiting.

    def empty_rxqueue(self) -> None:
        if self._pending is not None:
            self._pending.drain()
