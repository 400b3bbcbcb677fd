"""ISO 14229-1 (UDS) service dispatch of one simulated ECU (udsoncan has no server side).

Supported: DiagnosticSessionControl 0x10, ECUReset 0x11, ClearDiagnosticInformation 0x14,
ReadDTCInformation 0x19 (0x01, 0x02, 0x04, 0x06, 0x0A), ReadDataByIdentifier 0x22,
SecurityAccess 0x27 (level 1; level 0x11 in the programming session when the ECU has a
bootloader), CommunicationControl 0x28, TesterPresent 0x3E and ControlDTCSetting 0x85; with a
:class:`~workshop_app.core.sim.ecus.bootloader.Bootloader` also 0x2E, 0x31, 0x34, 0x36, 0x37.
The server is transport-free: :meth:`UdsServer.handle` maps a request to a :class:`Reply`
(or None: no answer).

An ECU whose application is invalid (an interrupted flash) runs its bootloader: in the default
session it answers only 0x10, 0x3E and 0x22 of identification DIDs and the supply voltage
(NRC 0x7F for other services and for the application's live values), and it reports DID
0xF1B1 = 0.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workshop_app.core.diag.ecu_spec import EcuSpec
from workshop_app.core.sim.ecus.dtc_memory import DtcMemory, DtcRecord
from workshop_app.core.update.protocol import PROGRAMMING_SECURITY_LEVEL, demo_programming_key

if TYPE_CHECKING:
    from workshop_app.core.sim.ecus.bootloader import Bootloader

__all__ = [
    "P2_SERVER_MAX_MS",
    "P2_STAR_SERVER_MAX_MS",
    "S3_SERVER_S",
    "EcuBehaviour",
    "Reply",
    "UdsServer",
    "negative",
    "security_key",
]

P2_SERVER_MAX_MS = 50
P2_STAR_SERVER_MAX_MS = 5000
S3_SERVER_S = 5.0  # a non-default session ends after this long without requests
SECURITY_ATTEMPTS = 3
SECURITY_LOCKOUT_S = 10.0

DEFAULT_SESSION, PROGRAMMING_SESSION, EXTENDED_SESSION = 0x01, 0x02, 0x03

# Negative response codes (ISO 14229-1 Annex A.1).
SERVICE_NOT_SUPPORTED = 0x11
SUBFUNCTION_NOT_SUPPORTED = 0x12
INCORRECT_LENGTH = 0x13
CONDITIONS_NOT_CORRECT = 0x22
REQUEST_SEQUENCE_ERROR = 0x24
REQUEST_OUT_OF_RANGE = 0x31
INVALID_KEY = 0x35
EXCEEDED_ATTEMPTS = 0x36
DELAY_NOT_EXPIRED = 0x37
RESPONSE_PENDING = 0x78
SUBFUNCTION_NOT_IN_SESSION = 0x7E
SERVICE_NOT_IN_SESSION = 0x7F
# ISO 14229-1 7.5: on functional requests these NRCs are never sent.
SUPPRESSED_ON_FUNCTIONAL = frozenset(
    {
        SERVICE_NOT_SUPPORTED,
        SUBFUNCTION_NOT_SUPPORTED,
        REQUEST_OUT_OF_RANGE,
        SUBFUNCTION_NOT_IN_SESSION,
        SERVICE_NOT_IN_SESSION,
    }
)

DTC_FORMAT_ISO15031_6 = 0x01
STATUS_AVAILABILITY_MASK = 0xFF
PENDING_REPEAT_S = 1.0  # a long job repeats NRC 0x78 this often, well inside P2* (5 s)
# What a bootloader still reports: identification (the tool recognises the state by 0xF1B1 = 0)
# and the supply voltage it measures itself for its programming preconditions.
BOOT_IDENTIFICATION = frozenset(
    {0xF180, 0xF187, 0xF189, 0xF18A, 0xF18C, 0xF190, 0xF191, 0xF195, 0xF1A1, 0xF1B0, 0xF1B1}
)


def security_key(seed: bytes) -> bytes:
    """The level-1 key of a 4-byte ``seed``.

    key = rotate_left_32(seed XOR 0x5EC0DE42, 7) + 0x1234 (mod 2**32), big-endian. Simple on
    purpose: the simulator demonstrates the exchange, it protects nothing.
    """
    if len(seed) != 4:
        raise ValueError("the seed is 4 bytes")
    x = int.from_bytes(seed, "big") ^ 0x5EC0DE42
    x = ((x << 7) | (x >> 25)) & 0xFFFFFFFF
    return ((x + 0x1234) & 0xFFFFFFFF).to_bytes(4, "big")


@dataclass
class EcuBehaviour:
    """Misbehaviour switches for robustness tests (all off: a well-behaved ECU).

    Mutable on purpose: flip them on a running ECU (``network.behaviour("ABS").silent = True``).
    """

    silent: bool = False  # never answers anything
    malformed: bool = False  # ReadDTCInformation 0x02 answers with a truncated DTC record
    slow: int = 0  # NRC 0x78 (response pending) sent this many times before every answer
    slow_interval_s: float = 0.05  # between those 0x78s: well inside P2*


@dataclass(frozen=True)
class Reply:
    """One answer; with ``pending_s`` the ECU first sends NRC 0x78 (repeated every
    ``pending_every_s``) and answers that much later; ``delay_s`` answers late without 0x78."""

    data: bytes
    pending_s: float = 0.0
    pending_every_s: float = PENDING_REPEAT_S
    delay_s: float = 0.0


def negative(sid: int, nrc: int) -> bytes:
    return bytes((0x7F, sid, nrc))


class UdsServer:
    """Session, security and diagnostic services of one ECU.

    Args:
        spec: the ECU's description (DIDs, snapshot and extended record layouts).
        memory: its fault memory.
        read_did: encoded current value of a DID of ``spec`` (identification or live).
        sim_time: the vehicle's simulated clock (for the fault memory).
        behaviour: misbehaviour switches (shared with the transport side).
        clear_pending_s: ClearDiagnosticInformation answers NRC 0x78 first and the positive
            response this much later (a slow EEPROM erase); 0 answers at once.
        before_dtc_read: run the monitors before DTC services (deterministic reads).
        bootloader: the programming services (None: the ECU cannot be flashed).
    """

    def __init__(
        self,
        spec: EcuSpec,
        memory: DtcMemory,
        read_did: Callable[[int], bytes],
        sim_time: Callable[[], float],
        behaviour: EcuBehaviour | None = None,
        *,
        clear_pending_s: float = 0.0,
        before_dtc_read: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        bootloader: Bootloader | None = None,
    ) -> None:
        self.spec = spec
        self.memory = memory
        self.behaviour = behaviour or EcuBehaviour()
        self.clear_pending_s = clear_pending_s
        self.s3_seconds = S3_SERVER_S
        self.lockout_seconds = SECURITY_LOCKOUT_S
        self._read_did = read_did
        self._sim_time = sim_time
        self._before_dtc_read = before_dtc_read or (lambda: None)
        self._clock = clock
        self._lock = threading.RLock()
        self.bootloader = bootloader
        self._session = DEFAULT_SESSION
        self._last_request = clock()
        self._level = 0  # unlocked security level (0: locked)
        self._seed: bytes | None = None
        self._seed_level = 0
        self._communication = 0x00  # CommunicationControl type: 0x00 rx and tx enabled
        self._dtc_setting_on = True
        self.busy = False  # a long job is being answered: S3 does not run meanwhile
        self._failed_keys = 0
        self._locked_until = 0.0
        self._services: dict[int, Callable[[bytes], bytes | Reply | None]] = {
            0x10: self._session_control,
            0x11: self._ecu_reset,
            0x14: self._clear_dtcs,
            0x19: self._read_dtc_information,
            0x22: self._read_data_by_identifier,
            0x27: self._security_access,
            0x28: self._communication_control,
            0x3E: self._tester_present,
            0x85: self._control_dtc_setting,
        }
        if bootloader is not None:
            self._services.update(
                {
                    0x2E: lambda r: bootloader.write_data_by_identifier(r, self._session, self._level),
                    0x31: lambda r: bootloader.routine_control(r, self._session, self._level),
                    0x34: lambda r: bootloader.request_download(r, self._session, self._level),
                    0x36: lambda r: bootloader.transfer_data(r, self._session),
                    0x37: lambda r: bootloader.request_transfer_exit(r, self._session),
                }
            )

    # --- state ----------------------------------------------------------------------------

    @property
    def session(self) -> int:
        """Active session (0x01 default, 0x02 programming, 0x03 extended)."""
        with self._lock:
            self.check_s3()
            return self._session

    @property
    def unlocked(self) -> bool:
        with self._lock:
            self.check_s3()
            return self._level != 0

    @property
    def unlocked_level(self) -> int:
        """The security level unlocked (0x01, 0x11), 0 when locked."""
        with self._lock:
            self.check_s3()
            return self._level

    @property
    def in_bootloader(self) -> bool:
        """True when the application is invalid and the bootloader answers."""
        return self.bootloader is not None and not self.bootloader.application_valid

    @property
    def transmitting(self) -> bool:
        """False while CommunicationControl disabled the transmission of normal messages."""
        return self._communication not in (0x02, 0x03)

    @property
    def dtc_setting_on(self) -> bool:
        """False while ControlDTCSetting 0x02 holds the fault memory (no new DTCs recorded)."""
        return self._dtc_setting_on

    def check_s3(self) -> None:
        """Fall back to the default session when S3 expired (called on requests and by a timer)."""
        with self._lock:
            if self.busy:
                return
            if self._session != DEFAULT_SESSION and self._clock() - self._last_request > self.s3_seconds:
                self._enter_default()

    def touch(self) -> None:
        """Restart the S3 timer (the answer to a long job has just been sent)."""
        with self._lock:
            self._last_request = self._clock()

    def _enter_default(self) -> None:
        self._session = DEFAULT_SESSION
        self._lock_security()
        # Back in the default session the ECU sends and records as usual (ISO 14229-1 9.3, 9.9).
        self._communication = 0x00
        self._dtc_setting_on = True
        if self.bootloader is not None:
            self.bootloader.on_session(DEFAULT_SESSION)

    def _lock_security(self) -> None:
        self._level = 0
        self._seed = None

    # --- dispatch -------------------------------------------------------------------------

    def handle(self, request: bytes, functional: bool = False) -> Reply | None:
        """The answer to one request, or None when the ECU stays silent."""
        if not request:
            return None
        sid = request[0]
        with self._lock:
            self.check_s3()
            self._last_request = self._clock()
            service = self._services.get(sid)
            if service is None:
                out: bytes | Reply | None = negative(sid, SERVICE_NOT_SUPPORTED)
            elif self.in_bootloader and (
                sid in (0x14, 0x19) or (self._session == DEFAULT_SESSION and sid not in (0x10, 0x22, 0x3E))
            ):
                out = negative(sid, SERVICE_NOT_IN_SESSION)  # only the bootloader runs
            else:
                out = service(request)
        if out is None:
            return None
        reply = out if isinstance(out, Reply) else Reply(out)
        if functional and reply.data[:1] == b"\x7f" and reply.data[2] in SUPPRESSED_ON_FUNCTIONAL:
            return None
        return reply

    @staticmethod
    def _positive(request: bytes, body: bytes) -> bytes | None:
        """Positive response, or None when the suppressPosRspMsgIndicationBit is set."""
        if len(request) > 1 and request[1] & 0x80:
            return None
        return bytes((request[0] + 0x40,)) + body

    # --- services -------------------------------------------------------------------------

    def _session_control(self, req: bytes) -> bytes | None:
        if len(req) != 2:
            return negative(0x10, INCORRECT_LENGTH)
        sub = req[1] & 0x7F
        if sub not in (DEFAULT_SESSION, PROGRAMMING_SESSION, EXTENDED_SESSION):
            return negative(0x10, SUBFUNCTION_NOT_SUPPORTED)
        if sub == PROGRAMMING_SESSION and self._session == DEFAULT_SESSION:
            # As on most vehicles: programming is entered from the extended session only.
            return negative(0x10, SUBFUNCTION_NOT_IN_SESSION)
        if sub == DEFAULT_SESSION:
            self._enter_default()
        else:
            self._session = sub
            self._lock_security()  # every session transition relocks (ISO 14229-1 9.2)
            if self.bootloader is not None:
                self.bootloader.on_session(sub)
        timing = P2_SERVER_MAX_MS.to_bytes(2, "big") + (P2_STAR_SERVER_MAX_MS // 10).to_bytes(2, "big")
        return self._positive(req, bytes((req[1] & 0x7F,)) + timing)

    def _ecu_reset(self, req: bytes) -> bytes | None:
        if len(req) != 2:
            return negative(0x11, INCORRECT_LENGTH)
        sub = req[1] & 0x7F
        if sub not in (0x01, 0x03):
            return negative(0x11, SUBFUNCTION_NOT_SUPPORTED)
        self._enter_default()
        self._failed_keys = 0
        if self.bootloader is not None:
            self.bootloader.on_reset()  # a checked download becomes the running application
        return self._positive(req, bytes((sub,)))

    def _communication_control(self, req: bytes) -> bytes | None:
        if len(req) != 3:
            return negative(0x28, INCORRECT_LENGTH)
        if self._session == DEFAULT_SESSION:
            return negative(0x28, SERVICE_NOT_IN_SESSION)
        sub, kind = req[1] & 0x7F, req[2] & 0x03
        if sub > 0x03:
            return negative(0x28, SUBFUNCTION_NOT_SUPPORTED)
        if kind == 0:
            return negative(0x28, REQUEST_OUT_OF_RANGE)
        if kind & 0x01:  # normal communication messages; network management has none here
            self._communication = sub
        return self._positive(req, bytes((sub,)))

    def _control_dtc_setting(self, req: bytes) -> bytes | None:
        if len(req) < 2:
            return negative(0x85, INCORRECT_LENGTH)
        if self._session == DEFAULT_SESSION:
            return negative(0x85, SERVICE_NOT_IN_SESSION)
        sub = req[1] & 0x7F
        if sub not in (0x01, 0x02):
            return negative(0x85, SUBFUNCTION_NOT_SUPPORTED)
        self._dtc_setting_on = sub == 0x01
        return self._positive(req, bytes((sub,)))

    def _tester_present(self, req: bytes) -> bytes | None:
        if len(req) != 2:
            return negative(0x3E, INCORRECT_LENGTH)
        if req[1] & 0x7F:
            return negative(0x3E, SUBFUNCTION_NOT_SUPPORTED)
        return self._positive(req, b"\x00")

    def _read_data_by_identifier(self, req: bytes) -> bytes:
        if len(req) < 3 or (len(req) - 1) % 2:
            return negative(0x22, INCORRECT_LENGTH)
        body = bytearray()
        held_back = False  # live values the application would measure: not while it is invalid
        for i in range(1, len(req), 2):
            did = int.from_bytes(req[i : i + 2], "big")
            if did in self.spec.dids:
                if self.in_bootloader and did not in BOOT_IDENTIFICATION:
                    held_back = True
                    continue
                body += did.to_bytes(2, "big") + self._read_did(did)
        # Unsupported DIDs are left out; only a request with none supported is refused.
        if not body:
            # Not in the bootloader's session: a tester reads that as "not there", not as a fault.
            return negative(0x22, SERVICE_NOT_IN_SESSION if held_back else REQUEST_OUT_OF_RANGE)
        return b"\x62" + bytes(body)

    def _security_access(self, req: bytes) -> bytes:
        if len(req) < 2:
            return negative(0x27, INCORRECT_LENGTH)
        if self._session == DEFAULT_SESSION:
            return negative(0x27, SERVICE_NOT_IN_SESSION)
        sub = req[1] & 0x7F
        levels = {0x01: security_key}
        if self.bootloader is not None:
            levels[PROGRAMMING_SECURITY_LEVEL] = demo_programming_key
        level = sub if sub % 2 else sub - 1  # odd: request seed; even: send key
        if level not in levels:
            return negative(0x27, SUBFUNCTION_NOT_SUPPORTED)
        if level == PROGRAMMING_SECURITY_LEVEL and self._session != PROGRAMMING_SESSION:
            return negative(0x27, SUBFUNCTION_NOT_IN_SESSION)
        if self._clock() < self._locked_until:
            return negative(0x27, DELAY_NOT_EXPIRED)
        if sub == level:
            if self._level == level:
                return bytes((0x67, sub)) + bytes(4)  # already unlocked: zero seed
            seed = b"\x00" * 4
            while seed == b"\x00" * 4:
                seed = os.urandom(4)
            self._seed, self._seed_level = seed, level
            return bytes((0x67, sub)) + seed
        if len(req) != 6:
            return negative(0x27, INCORRECT_LENGTH)
        if self._seed is None or self._seed_level != level:
            return negative(0x27, REQUEST_SEQUENCE_ERROR)
        seed, self._seed = self._seed, None  # a seed is good for one key only
        if req[2:] == levels[level](seed):
            self._level = level
            self._failed_keys = 0
            return bytes((0x67, sub))
        self._failed_keys += 1
        if self._failed_keys >= SECURITY_ATTEMPTS:
            self._failed_keys = 0
            self._locked_until = self._clock() + self.lockout_seconds
            return negative(0x27, EXCEEDED_ATTEMPTS)
        return negative(0x27, INVALID_KEY)

    def _clear_dtcs(self, req: bytes) -> bytes | Reply:
        if len(req) != 4:
            return negative(0x14, INCORRECT_LENGTH)
        group = int.from_bytes(req[1:4], "big")
        if not self.memory.clear(group, self._sim_time()):
            return negative(0x14, REQUEST_OUT_OF_RANGE)
        return Reply(b"\x54", self.clear_pending_s) if self.clear_pending_s > 0 else b"\x54"

    def _read_dtc_information(self, req: bytes) -> bytes:
        if len(req) < 2:
            return negative(0x19, INCORRECT_LENGTH)
        sub = req[1]
        lengths = {0x01: 3, 0x02: 3, 0x04: 6, 0x06: 6, 0x0A: 2}
        if sub not in lengths:
            return negative(0x19, SUBFUNCTION_NOT_SUPPORTED)
        if len(req) != lengths[sub]:
            return negative(0x19, INCORRECT_LENGTH)
        self._before_dtc_read()
        records = self.memory.records()
        head = bytes((0x59, sub))
        if sub in (0x01, 0x02):
            mask = req[2]
            hits = [r for r in records if r.status & mask]
            if sub == 0x01:
                return (
                    head
                    + bytes((STATUS_AVAILABILITY_MASK, DTC_FORMAT_ISO15031_6))
                    + len(hits).to_bytes(2, "big")
                )
            body = b"".join(r.code.to_bytes(3, "big") + bytes((r.status,)) for r in hits)
            if self.behaviour.malformed:
                # A record cut short: a buggy ECU the scanner must survive.
                body = body[:-1] if body else b"\x01\x18"
            return head + bytes((STATUS_AVAILABILITY_MASK,)) + body
        if sub == 0x0A:
            body = b"".join(r.code.to_bytes(3, "big") + bytes((r.status,)) for r in records)
            return head + bytes((STATUS_AVAILABILITY_MASK,)) + body
        code = int.from_bytes(req[2:5], "big")
        number = req[5]
        rec = next((r for r in records if r.code == code), None)
        if rec is None:
            return negative(0x19, REQUEST_OUT_OF_RANGE)
        head += req[2:5] + bytes((rec.status,))
        if sub == 0x04:
            return self._snapshot_response(head, rec, number)
        return self._extended_response(head, rec, number)

    def _snapshot_response(self, head: bytes, rec: DtcRecord, number: int) -> bytes:
        if number != 0xFF and number not in self.spec.snapshot_records:
            return negative(0x19, REQUEST_OUT_OF_RANGE)
        body = bytearray()
        for rec_no, values in sorted((rec.snapshot or {}).items()):
            if number in (0xFF, rec_no):
                body += bytes((rec_no, len(values)))
                for did, data in values:
                    body += did.to_bytes(2, "big") + data
        return head + bytes(body)

    def _extended_response(self, head: bytes, rec: DtcRecord, number: int) -> bytes:
        layouts = self.spec.extended_records
        if number != 0xFF and number not in layouts:
            return negative(0x19, REQUEST_OUT_OF_RANGE)
        if rec.occurrences == 0:
            return head  # nothing stored yet: no records, as a real ECU answers
        values = {1: rec.occurrences, 2: rec.aging, 3: rec.failed_cycles}
        body = bytearray()
        for rec_no, layout in sorted(layouts.items()):
            if number in (0xFF, rec_no):
                value = min(values.get(rec_no, 0), (1 << (8 * layout.length)) - 1)
                body += bytes((rec_no,)) + value.to_bytes(layout.length, "big")
        return head + bytes(body)
