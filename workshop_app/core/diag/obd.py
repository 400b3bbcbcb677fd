"""OBD-II (SAE J1979) requests to one ECU over ISO-TP: stored/pending/permanent codes, VIN, status."""

from __future__ import annotations

import can
import isotp
from udsoncan.connections import BaseConnection
from udsoncan.exceptions import TimeoutException

from workshop_app.core.diag.client import DiagError, EcuAddress, isotp_params
from workshop_app.core.diag.dtc import CONFIRMED, PENDING, WARNING_INDICATOR, Dtc
from workshop_app.core.diag.nrc import nrc_info

# mode → (status bits given to its codes, name)
DTC_MODES = {
    0x03: (CONFIRMED, "stored"),
    0x07: (PENDING, "pending"),
    0x0A: (CONFIRMED | WARNING_INDICATOR, "permanent"),
}


class ObdLink:
    """Physical OBD-II requests to one ECU; use as a context manager."""

    def __init__(
        self, bus: can.BusABC, notifier: can.Notifier, address: EcuAddress, *, timeout: float = 1.0
    ) -> None:
        self.address = address
        self.timeout = timeout
        self.problems: list[str] = []
        self._stack: isotp.NotifierBasedCanStack | None = None
        self._conn: BaseConnection | None = None
        uds_connection = getattr(bus, "uds_connection", None)
        if callable(uds_connection):
            # The cloud link: the vehicle's agent runs ISO-TP; requests travel as messages.
            from workshop_app.core.cloud.messages import EcuRoute

            self._conn = uds_connection(EcuRoute(address.request_id, address.response_id, address.extended))
        else:
            self._stack = isotp.NotifierBasedCanStack(
                bus,
                notifier,
                address=address.isotp_address(),
                error_handler=lambda e: self.problems.append(f"ISO-TP: {e}"),
                params=isotp_params(False),
            )

    def __enter__(self) -> ObdLink:
        if self._stack is not None:
            self._stack.start()
        if self._conn is not None:
            self._conn.open()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stack is not None:
            self._stack.stop()
        if self._conn is not None:
            self._conn.close()

    def _receive(self, timeout: float) -> bytes | None:
        if self._conn is not None:
            try:
                return self._conn.wait_frame(timeout=timeout, exception=True)
            except TimeoutException:
                return None
            except can.CanError as exc:
                raise DiagError(f"OBD: {exc}", kind="transport") from None
        assert self._stack is not None
        received = self._stack.recv(block=True, timeout=timeout)
        return None if received is None else bytes(received)

    def request(self, data: bytes) -> bytes:
        """The positive response to ``data`` (NRC 0x78 waited out); DiagError otherwise."""
        if self._conn is not None:
            self._conn.empty_rxqueue()
            self._conn.send(data)
        else:
            assert self._stack is not None
            self._stack.send(data)
        timeout = self.timeout
        while True:
            received = self._receive(timeout)
            if received is None:
                raise DiagError(f"OBD mode {data[0]:02X}: no answer from {self.address.text}", kind="timeout")
            reply = bytes(received)
            if reply[:1] == b"\x7f" and len(reply) >= 3 and reply[1] == data[0]:
                if reply[2] == 0x78:
                    timeout = 5.0
                    continue
                raise DiagError(
                    f"OBD mode {data[0]:02X}: {nrc_info(reply[2]).text()}", nrc=reply[2], kind="nrc"
                )
            if not reply or reply[0] != data[0] + 0x40:
                raise DiagError(f"OBD mode {data[0]:02X}: unexpected answer {reply.hex(' ')}", kind="invalid")
            return reply

    def dtcs(self, mode: int) -> list[Dtc]:
        """Codes of mode 03 (stored), 07 (pending) or 0A (permanent)."""
        status, _ = DTC_MODES[mode]
        reply = self.request(bytes([mode]))
        body = reply[1:]
        # On CAN the first byte is the number of codes (ISO 15765-4); tolerate its absence.
        if len(body) % 2 == 1:
            count, body = body[0], body[1:]
            if count * 2 > len(body):
                raise DiagError(
                    f"OBD mode {mode:02X}: {count} codes announced, {len(body) // 2} sent", kind="invalid"
                )
            body = body[: count * 2]
        codes = [int.from_bytes(body[i : i + 2], "big") for i in range(0, len(body), 2)]
        return [Dtc(code << 8, status, source="obd") for code in codes if code]

    def vin(self) -> str:
        reply = self.request(b"\x09\x02")
        if len(reply) < 3 or reply[1] != 0x02:
            raise DiagError("OBD VIN: unexpected answer", kind="invalid")
        return reply[3:].decode("latin-1").strip("\x00 ")

    def mil_and_count(self) -> tuple[bool, int]:
        """(MIL on, number of confirmed emission codes) from mode 01 PID 01."""
        reply = self.request(b"\x01\x01")
        if len(reply) < 3 or reply[1] != 0x01:
            raise DiagError("OBD monitor status: unexpected answer", kind="invalid")
        return bool(reply[2] & 0x80), reply[2] & 0x7F

    def clear(self) -> None:
        self.request(b"\x04")
