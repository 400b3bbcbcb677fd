"""A UDS client for one ECU, on the connection's existing bus and notifier.

ISO-TP runs as a can-isotp ``NotifierBasedCanStack`` registered on the capture's own
``can.Notifier``: capture keeps running and nothing else reads the bus. udsoncan does the
service encoding; this module adds what a workshop needs around it: P2/P2* taken from the
ECU's session response, NRC 0x78 waited out (the overall timeout is long enough for slow
erases), TesterPresent kept up while a non-default session is open, ISO-TP faults collected as
plain problems, and every negative response turned into a ``DiagError`` that says what to do.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import can
import isotp
import udsoncan
from udsoncan.client import Client
from udsoncan.connections import BaseConnection, PythonIsoTpConnection
from udsoncan.exceptions import (
    InvalidResponseException,
    NegativeResponseException,
    TimeoutException,
    UnexpectedResponseException,
)

from workshop_app.core.diag.addressed_stack import AddressedCanStack
from workshop_app.core.diag.ecu_spec import DidSpec, EcuSpec
from workshop_app.core.diag.nrc import nrc_info
from workshop_app.core.errors import WorkshopError

KEEPALIVE_SECONDS = 2.0  # TesterPresent period in a non-default session (S3 is 5 s)
DEFAULT_SESSION = 0x01


class DiagError(WorkshopError):
    """A diagnostic step that failed, in plain words; ``nrc`` is set for negative responses."""

    def __init__(self, message: str, *, nrc: int | None = None, kind: str = "error") -> None:
        super().__init__(message)
        self.nrc = nrc
        self.kind = kind  # "nrc", "timeout", "invalid", "transport", "error"


@dataclass(frozen=True)
class EcuAddress:
    """The CAN identifiers of one ECU's diagnostic link (normal addressing)."""

    request_id: int
    response_id: int
    extended: bool = False

    @classmethod
    def of(cls, spec: EcuSpec) -> EcuAddress:
        return cls(spec.request_id, spec.response_id, spec.extended_ids)

    def isotp_address(self) -> isotp.Address:
        mode = isotp.AddressingMode.Normal_29bits if self.extended else isotp.AddressingMode.Normal_11bits
        return isotp.Address(mode, txid=self.request_id, rxid=self.response_id)

    @property
    def text(self) -> str:
        width = 8 if self.extended else 3
        return f"0x{self.request_id:0{width}X}/0x{self.response_id:0{width}X}"


class SpecCodec(udsoncan.DidCodec):
    """udsoncan codec of a described DID (decodes to the physical value)."""

    def __init__(self, spec: DidSpec) -> None:
        self.spec = spec

    def encode(self, *values: Any) -> bytes:
        return self.spec.encode(values[0])

    def decode(self, data: bytes) -> Any:
        return self.spec.decode(bytes(data))

    def __len__(self) -> int:
        return self.spec.length


class _RawCodec(udsoncan.DidCodec):
    """Any undescribed DID read on its own: all remaining bytes, as text when printable."""

    def encode(self, *values: Any) -> bytes:
        return bytes(values[0])

    def decode(self, data: bytes) -> Any:
        raw = bytes(data)
        text = raw.rstrip(b"\x00 ").decode("latin-1")
        if text and all(32 <= ord(c) < 127 for c in text):
            return text
        return raw.hex(" ").upper()

    def __len__(self) -> int:
        raise udsoncan.DidCodec.ReadAllRemainingData


def isotp_params(fd: bool = False) -> dict[str, Any]:
    return {
        "stmin": 0,
        "blocksize": 0,
        "tx_padding": 0xCC,
        "tx_data_length": 64 if fd else 8,
        "can_fd": fd,
        "bitrate_switch": fd,
        "rx_flowcontrol_timeout": 1000,
        "rx_consecutive_frame_timeout": 1000,
        "blocking_send": False,
        "max_frame_size": 16 * 1024 * 1024,
    }


class EcuClient:
    """Diagnostics with one ECU. Thread-safe: calls are serialised; use as a context manager."""

    def __init__(
        self,
        bus: can.BusABC,
        notifier: can.Notifier,
        address: EcuAddress,
        *,
        spec: EcuSpec | None = None,
        fd: bool = False,
        timeout: float = 1.0,
        overall_timeout: float = 30.0,
        name: str = "",
    ) -> None:
        self.address = address
        self.spec = spec
        self.name = name or (spec.name if spec else address.text)
        self.problems: list[str] = []  # ISO-TP faults seen on this link, in plain words
        self._lock = threading.RLock()
        self._session = DEFAULT_SESSION
        self._timeout = timeout
        self.server_timing: tuple[float, float] | None = None  # (P2, P2*) the ECU announced
        self._last_request = time.monotonic()
        self._stop = threading.Event()
        self._keepalive: threading.Thread | None = None
        # TesterPresent period; settable so a test can outpace a shortened S3 in little time.
        self.keepalive_seconds = KEEPALIVE_SECONDS
        self._stack: isotp.NotifierBasedCanStack | None = None
        self._conn: BaseConnection
        self._via = ""
        uds_connection = getattr(bus, "uds_connection", None)
        if callable(uds_connection):
            # A bus that carries UDS messages rather than frames (the cloud link): the far end
            # runs ISO-TP, so no stack here.
            from workshop_app.core.cloud.messages import EcuRoute

            self._conn = uds_connection(
                EcuRoute(address.request_id, address.response_id, address.extended, fd)
            )
            self._via = f" over {self._conn.describe()}" if hasattr(self._conn, "describe") else ""
        else:
            self._stack = AddressedCanStack(
                bus,
                notifier,
                address=address.isotp_address(),
                error_handler=self._isotp_error,
                params=isotp_params(fd),
            )
            self._conn = PythonIsoTpConnection(self._stack)
        dids: dict[Any, Any] = {"default": _RawCodec}
        if spec is not None:
            dids.update({did: SpecCodec(d) for did, d in spec.dids.items()})
        config = udsoncan.configs.default_client_config.copy()
        config.update(
            {
                "data_identifiers": dids,
                # First answer within P2 (updated from the ECU's session response), and the
                # whole exchange, NRC 0x78 included, within overall_timeout.
                "p2_timeout": timeout,
                "p2_star_timeout": max(5.0, timeout),
                "request_timeout": overall_timeout,
                # Our own P2 (the tester's, with network margin) rather than the ECU's bare
                # value: a 50 ms P2server leaves no room for a loaded PC or a relay.
                "use_server_timing": False,
                "exception_on_negative_response": True,
                "exception_on_invalid_response": True,
                "exception_on_unexpected_response": True,
                "dtc_snapshot_did_size": 2,
                "extended_data_size": self._extended_sizes() or None,
            }
        )
        self.client = Client(self._conn, config=config)
        # Every failure udsoncan logs it also raises, and we report it once in plain words;
        # its own "[TimeoutException] : ..." lines would reach the terminal as raw noise.
        self.client.logger.setLevel(logging.CRITICAL)
        # Work a caller does while its next request travels (see after_send).
        self._after_send: tuple[int, Callable[[], None]] | None = None
        self._conn_send = self._conn.send
        self._conn.send = self._send_then  # type: ignore[method-assign]

    def after_send(self, work: Callable[[], None]) -> None:
        """Run ``work`` once, on this thread, as soon as its next request is handed to the transport.

        It then overlaps the request's bus time instead of delaying it (the flash job commits
        the previous block's journal row while the next block is on the wire). A request from
        another thread (TesterPresent) does not run it.
        """
        self._after_send = (threading.get_ident(), work)

    def _send_then(self, data: Any, timeout: float | None = None) -> None:
        self._conn_send(data, timeout)
        pending = self._after_send
        if pending is not None and pending[0] == threading.get_ident():
            self._after_send = None
            pending[1]()

    def _extended_sizes(self) -> int:
        if self.spec is None or not self.spec.extended_records:
            return 0
        sizes = {r.length for r in self.spec.extended_records.values()}
        return sizes.pop() if len(sizes) == 1 else 0

    def _isotp_error(self, error: Exception) -> None:
        self.problems.append(f"ISO-TP: {error}")

    def __enter__(self) -> EcuClient:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        self.client.open()

    def close(self) -> None:
        self._stop.set()
        if self._keepalive is not None:
            self._keepalive.join(timeout=3)
            self._keepalive = None
        try:
            if self._session != DEFAULT_SESSION:
                self.call("return to the default session", self.client.change_session, DEFAULT_SESSION)
        except DiagError:
            pass  # the ECU falls back on its own after S3
        finally:
            self.client.close()

    def call(self, action: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one udsoncan call; failures become DiagError in plain words."""
        with self._lock:
            self._last_request = time.monotonic()
            try:
                return fn(*args, **kwargs)
            except NegativeResponseException as exc:
                code = exc.response.code
                assert code is not None  # udsoncan raises this only for a parsed negative response
                raise DiagError(
                    f"{self.name}: {action}: {nrc_info(code).text()}", nrc=code, kind="nrc"
                ) from None
            except TimeoutException:
                if self._stack is not None and self._stack.transmitting():
                    # Our multi-frame request is still waiting for the ECU's flow control.
                    self.problems.append("ISO-TP: no flow control from the ECU for a multi-frame request")
                    self._stack.stop_sending()
                    raise DiagError(
                        f"{self.name}: {action}: the ECU did not accept the request (no ISO-TP flow control)",
                        kind="transport",
                    ) from None
                raise DiagError(
                    f"{self.name}: {action}: no answer in time{self._via}", kind="timeout"
                ) from None
            except (InvalidResponseException, UnexpectedResponseException) as exc:
                raise DiagError(f"{self.name}: {action}: malformed answer ({exc})", kind="invalid") from None
            except (udsoncan.exceptions.ConfigError, ValueError) as exc:
                raise DiagError(f"{self.name}: {action}: cannot decode ({exc})", kind="invalid") from None
            except (isotp.IsoTpError, OSError, can.CanError) as exc:
                raise DiagError(f"{self.name}: {action}: link problem ({exc})", kind="transport") from None
            finally:
                self._last_request = time.monotonic()

    # --- services a scan needs ---------------------------------------------------------------
    def tester_present(self) -> None:
        self.call("tester present", self.client.tester_present)

    def change_session(self, session: int) -> None:
        response = self.call(f"diagnostic session 0x{session:02X}", self.client.change_session, session)
        self._session = session
        data = getattr(response, "service_data", None)
        p2 = getattr(data, "p2_server_max", None)
        p2_star = getattr(data, "p2_star_server_max", None)
        if p2 is not None and p2_star is not None:
            self.server_timing = (float(p2), float(p2_star))
            # The tester waits the ECU's P2 plus a margin for the network (ISO 14229-2 ΔP2).
            self.client.set_config("p2_timeout", max(self._timeout, float(p2) + 0.2))
            self.client.set_config("p2_star_timeout", max(5.0, float(p2_star) + 0.5))
        if session != DEFAULT_SESSION and self._keepalive is None:
            self._keepalive = threading.Thread(
                target=self._keep_alive, name=f"diag-keepalive-{self.name}", daemon=True
            )
            self._keepalive.start()

    @property
    def p2_timing(self) -> tuple[float, float]:
        """(P2, P2*) in seconds the tester waits now (after a session change: the ECU's plus margin)."""
        cfg = self.client.config
        return float(cfg["p2_timeout"]), float(cfg["p2_star_timeout"])

    def _keep_alive(self) -> None:
        while not self._stop.wait(min(0.2, self.keepalive_seconds)):
            if self._session == DEFAULT_SESSION:
                continue
            if time.monotonic() - self._last_request < self.keepalive_seconds:
                continue
            try:
                with self._lock, self.client.suppress_positive_response:
                    self.client.tester_present()
                self._last_request = time.monotonic()
            except Exception as exc:  # a keep-alive failure is noted, the next call will report it
                self.problems.append(f"tester present failed: {exc}")

    def read_did(self, did: int) -> Any:
        name = self.spec.dids[did].name if self.spec and did in self.spec.dids else f"DID 0x{did:04X}"
        response = self.call(f"read {name}", self.client.read_data_by_identifier, [did])
        return response.service_data.values[did]

    def dtcs_by_status(self, mask: int = 0xFF) -> list[udsoncan.Dtc]:
        response = self.call("read fault codes", self.client.get_dtc_by_status_mask, mask)
        return list(response.service_data.dtcs)

    def snapshots(self, dtc: int) -> list[Any]:
        response = self.call(
            f"read freeze frame of {dtc:06X}", self.client.get_dtc_snapshot_by_dtc_number, dtc, 0xFF
        )
        found = response.service_data.dtcs
        return list(found[0].snapshots) if found else []

    def extended_data(self, dtc: int) -> list[Any]:
        size = self._extended_sizes() or 1
        response = self.call(
            f"read extended data of {dtc:06X}",
            self.client.get_dtc_extended_data_by_dtc_number,
            dtc,
            0xFF,
            size,
        )
        found = response.service_data.dtcs
        return list(found[0].extended_data) if found else []

    def clear(self, group: int = 0xFFFFFF) -> None:
        what = "all fault codes" if group == 0xFFFFFF else f"fault code {group:06X}"
        self.call(f"clear {what}", self.client.clear_dtc, group)
