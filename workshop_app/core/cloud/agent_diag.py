"""The agent's UDS relay: a workshop's request runs over ISO-TP on the car's own bus.

One can-isotp ``NotifierBasedCanStack`` per ECU route, on the source's bus and Notifier (capture
keeps running, nothing reads the bus twice), made on first use and reused. Stacks are closed
before anything else talks ISO-TP to the same ECUs (the health scan, a flash): an idle stack
listening on an ECU's response id would answer that ECU's first frames with flow control of
its own. Called from the agent's one diag worker thread only.

Programming is refused on this channel: the only way to program the car from the cloud is a
signed flash command, which the agent verifies itself (``agent_commands.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import can
import isotp

from workshop_app.core.cloud.messages import EcuRoute
from workshop_app.core.diag.client import isotp_params
from workshop_app.core.update import protocol as p

NOT_ALLOWED = "not-allowed"
TIMEOUT = "timeout"
LINK = "link"
PROGRAMMING_ONLY_SIGNED = "programming only through a signed flash command"
RESPONSE_PENDING = 0x78


class RelayError(Exception):
    """A request that could not run, with the ``error`` reply's code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def refusal(request: bytes) -> str | None:
    """Why this request may not run over the cloud, or None when it may."""
    if not request:
        return "an empty request"
    sid = request[0]
    sub = request[1] & 0x7F if len(request) > 1 else None
    name: str | None = None
    if 0x34 <= sid <= 0x38:
        name = {0x34: "RequestDownload", 0x35: "RequestUpload", 0x36: "TransferData"}.get(sid)
        name = name or {0x37: "RequestTransferExit", 0x38: "RequestFileTransfer"}[sid]
    elif sid == 0x3D:
        name = "WriteMemoryByAddress"
    elif sid == 0x10 and sub == p.PROGRAMMING_SESSION:
        name = "the programming session (0x10 0x02)"
    elif sid == 0x28:
        name = "CommunicationControl"
    elif sid == 0x85:
        name = "ControlDTCSetting"
    elif sid == 0x11:
        name = "ECUReset"
    elif sid == 0x27 and sub in (p.PROGRAMMING_SECURITY_LEVEL, p.PROGRAMMING_SECURITY_LEVEL + 1):
        name = "the programming security level"
    elif sid == 0x31 and len(request) >= 4:
        routine = int.from_bytes(request[2:4], "big")
        if routine in (p.ROUTINE_ERASE_MEMORY, p.ROUTINE_CHECK_DEPENDENCIES):
            name = f"routine 0x{routine:04X}"
    if name is None:
        return None
    return f"service 0x{sid:02X} ({name}) refused: {PROGRAMMING_ONLY_SIGNED}"


def suppressed(request: bytes) -> bool:
    """A request with the suppress-positive-response bit: only a negative answer may come."""
    with_subfunction = (0x10, 0x11, 0x19, 0x27, 0x28, 0x31, 0x3E, 0x85, 0x87)
    return len(request) > 1 and request[0] in with_subfunction and bool(request[1] & 0x80)


class UdsRelay:
    """ISO-TP stacks per route on a bus that may be replaced (the source reconnects)."""

    def __init__(self, bus_and_notifier: Callable[[], tuple[can.BusABC | None, can.Notifier | None]]) -> None:
        self._link = bus_and_notifier
        self._stacks: dict[EcuRoute, isotp.NotifierBasedCanStack] = {}
        self._bus: can.BusABC | None = None
        self.problems: list[str] = []

    def _problem(self, text: str) -> None:
        self.problems.append(text)
        del self.problems[:-50]  # the latest few say enough; an agent runs for months

    def close(self) -> None:
        for stack in self._stacks.values():
            stack.stop()
        self._stacks.clear()
        self._bus = None

    def _stack(self, route: EcuRoute) -> isotp.NotifierBasedCanStack:
        bus, notifier = self._link()
        if bus is None or notifier is None:
            raise RelayError(LINK, "the car's bus is not connected")
        if bus is not self._bus:
            self.close()  # the source reopened its bus: the old stacks listen on a dead one
            self._bus = bus
        stack = self._stacks.get(route)
        if stack is None:
            mode = (
                isotp.AddressingMode.Normal_29bits if route.extended else isotp.AddressingMode.Normal_11bits
            )
            stack = isotp.NotifierBasedCanStack(
                bus,
                notifier,
                address=isotp.Address(mode, txid=route.tx, rxid=route.rx),
                error_handler=lambda e: self._problem(f"ISO-TP 0x{route.tx:X}: {e}"),
                params=isotp_params(route.fd),
            )
            stack.start()
            self._stacks[route] = stack
        return stack

    def run(
        self, route: EcuRoute, request: bytes, timeout: float, reply: Callable[[bytes, bool], None]
    ) -> None:
        """Send ``request``; ``reply(pdu, final)`` for each answer (NRC 0x78 ones not final).

        ``timeout`` bounds each wait for an answer; a 0x78 starts the wait again.
        RelayError(``timeout``) when nothing comes.
        """
        why = refusal(request)
        if why is not None:
            raise RelayError(NOT_ALLOWED, why)
        stack = self._stack(route)
        while stack.available():  # a late answer to an earlier request must not pass for this one's
            stack.recv()
        try:
            stack.send(request)
        except (isotp.IsoTpError, can.CanError, OSError, ValueError) as exc:
            raise RelayError(LINK, f"sending on the car's bus failed: {exc}") from None
        quiet = suppressed(request)
        while True:
            deadline = time.monotonic() + timeout
            pdu = stack.recv(block=True, timeout=max(0.0, deadline - time.monotonic()))
            if pdu is None:
                if stack.transmitting():
                    stack.stop_sending()
                    raise RelayError(
                        TIMEOUT,
                        f"ECU 0x{route.tx:X} did not accept the request (no ISO-TP flow control in {timeout:g} s)",
                    )
                if quiet:
                    return  # no positive answer asked for, and no refusal came: nothing to reply
                raise RelayError(TIMEOUT, f"ECU 0x{route.tx:X} gave no answer in {timeout:g} s")
            data = bytes(pdu)
            pending = len(data) >= 3 and data[0] == 0x7F and data[2] == RESPONSE_PENDING
            reply(data, not pending)
            if not pending:
                return
