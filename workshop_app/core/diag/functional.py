"""Functionally addressed UDS requests: one single frame that every ECU on the bus acts on.

Before programming, ISO 14229-1 has the tester quiet the whole car, not only the ECU it flashes:
DiagnosticSessionControl extended, ControlDTCSetting off and CommunicationControl "disable normal
messages" go to the functional address (0x7DF, or 0x18DB33F1 with 29-bit identifiers) with the
suppressPosRspMsgIndicationBit set, so no ECU answers; TesterPresent 0x3E 0x80 every two seconds
keeps them in that session (S3 is 5 s), and the same requests undo it afterwards.

Functional requests are single frames (ISO 15765-2), so they go straight onto the bus as one frame:
no ISO-TP stack, no lock shared with the physical link's requests.
"""

from __future__ import annotations

import threading

import can

__all__ = [
    "FUNCTIONAL_ID_11BIT",
    "FUNCTIONAL_ID_29BIT",
    "FunctionalTester",
    "functional_frame",
]

FUNCTIONAL_ID_11BIT = 0x7DF
FUNCTIONAL_ID_29BIT = 0x18DB33F1
SUPPRESS = 0x80  # suppressPosRspMsgIndicationBit of the sub-function byte
KEEPALIVE_S = 2.0  # TesterPresent period (S3server is 5 s)
SETTLE_S = 0.05  # after each request: P2server of an ECU acting on it (no answer to wait for)
DEFAULT_SESSION, EXTENDED_SESSION = 0x01, 0x03
DTC_SETTING_ON, DTC_SETTING_OFF = 0x01, 0x02  # ControlDTCSetting 0x85
ENABLE_RX_AND_TX, DISABLE_RX_AND_TX = 0x00, 0x03  # CommunicationControl 0x28
NORMAL_MESSAGES = 0x01  # CommunicationControl's communicationType


def functional_frame(payload: bytes, *, extended: bool = False, fd: bool = False) -> can.Message:
    """The ISO-TP single frame of ``payload`` (≤ 7 bytes) to the functional address, padded 0xCC."""
    if not 0 < len(payload) <= 7:
        raise ValueError(f"a functional request is one single frame: 1..7 bytes, not {len(payload)}")
    data = bytes((len(payload),)) + payload
    return can.Message(
        arbitration_id=FUNCTIONAL_ID_29BIT if extended else FUNCTIONAL_ID_11BIT,
        is_extended_id=extended,
        data=data.ljust(8, b"\xcc"),
        is_fd=fd,
        bitrate_switch=fd,
    )


class FunctionalTester:
    """Requests to every ECU of one identifier width, and TesterPresent while a job needs them.

    >>> with FunctionalTester(bus) as everyone:              # doctest: +SKIP
    ...     everyone.request(bytes((0x28, 0x03 | 0x80, 0x01)))  # all ECUs: normal messages off
    """

    def __init__(self, bus: can.BusABC, *, extended: bool = False, fd: bool = False) -> None:
        self.bus = bus
        self.extended = extended
        self.fd = fd
        self.sent: list[bytes] = []  # every request sent, in order (for the job's notes and tests)
        self.problems: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def request(self, payload: bytes) -> None:
        """Send one request (its positive answer suppressed) and give the ECUs time to act on it."""
        self.bus.send(functional_frame(payload, extended=self.extended, fd=self.fd))
        self.sent.append(bytes(payload))
        self._stop.wait(SETTLE_S)

    def quiet_for_programming(self) -> None:
        """Extended session, ControlDTCSetting off, CommunicationControl "disable rx and tx of
        normal messages", then TesterPresent every 2 s: every ECU, no answers."""
        self.request(bytes((0x10, SUPPRESS | EXTENDED_SESSION)))
        self.request(bytes((0x85, SUPPRESS | DTC_SETTING_OFF)))
        self.request(bytes((0x28, SUPPRESS | DISABLE_RX_AND_TX, NORMAL_MESSAGES)))
        self.keep_alive()

    def give_back(self) -> None:
        """Stop TesterPresent; communication and DTC setting back on, default session: every ECU."""
        self.close()
        self.request(bytes((0x28, SUPPRESS | ENABLE_RX_AND_TX, NORMAL_MESSAGES)))
        self.request(bytes((0x85, SUPPRESS | DTC_SETTING_ON)))
        self.request(bytes((0x10, SUPPRESS | DEFAULT_SESSION)))

    def keep_alive(self) -> None:
        """Send TesterPresent (no answers) every 2 s from a thread of its own until :meth:`close`."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="diag-functional-keepalive", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        frame = functional_frame(bytes((0x3E, SUPPRESS)), extended=self.extended, fd=self.fd)
        while not self._stop.wait(KEEPALIVE_S):
            try:
                self.bus.send(frame)
            except can.CanError as exc:  # noted; the job's own requests report a dead link
                self.problems.append(f"functional tester present failed: {exc}")

    def close(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=KEEPALIVE_S + 1)

    def __enter__(self) -> FunctionalTester:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
