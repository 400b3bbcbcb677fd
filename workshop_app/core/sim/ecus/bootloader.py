"""The programming services of a simulated ECU's bootloader (ISO 14229-1, identifiers from
:mod:`workshop_app.core.update.protocol`).

RoutineControl 0x31 (erase 0xFF00, check memory 0x0202, check dependencies 0xFF01,
programming preconditions 0x0203), RequestDownload 0x34, TransferData 0x36,
RequestTransferExit 0x37 and WriteDataByIdentifier 0x2E of the software version (0xF189) and
release counter (0xF1B0). The :class:`~workshop_app.core.sim.ecus.uds_server.UdsServer`
dispatches to it and passes its session and unlocked security level; the bootloader keeps the
download state and the :class:`FlashMemory`.

The written identification only takes effect at the next ECUReset, and only when the
check-memory routine accepted what was downloaded: a reset or a restart before that leaves
the ECU in its bootloader with the application invalid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from workshop_app.core.sim.ecus.flash_memory import FlashMemory
from workshop_app.core.sim.ecus.uds_server import (
    CONDITIONS_NOT_CORRECT,
    INCORRECT_LENGTH,
    REQUEST_OUT_OF_RANGE,
    REQUEST_SEQUENCE_ERROR,
    SERVICE_NOT_IN_SESSION,
    SUBFUNCTION_NOT_SUPPORTED,
    Reply,
    negative,
)
from workshop_app.core.update import protocol as p

__all__ = [
    "DEFAULT_ERASE_SECONDS",
    "DEFAULT_MAX_BLOCK_LENGTH",
    "PRECONDITION_ENGINE_RUNNING",
    "PRECONDITION_VEHICLE_MOVING",
    "Bootloader",
    "ProgrammingTiming",
]

SECURITY_ACCESS_DENIED = 0x33
UPLOAD_DOWNLOAD_NOT_ACCEPTED = 0x70
TRANSFER_DATA_SUSPENDED = 0x71
WRONG_BLOCK_SEQUENCE_COUNTER = 0x73

DEFAULT_ERASE_SECONDS = 2.0
DEFAULT_MAX_BLOCK_LENGTH = 0x0FFF + 2  # SID + counter + 4095 data bytes: a full classic ISO-TP message
PRECONDITION_ENGINE_RUNNING = 0x01
PRECONDITION_VEHICLE_MOVING = 0x02
_P2_BUDGET_S = 0.04  # a write shorter than this is answered late; longer ones get NRC 0x78 first


@dataclass
class ProgrammingTiming:
    """How long the ECU takes (mutable: tests and benchmarks set it on a running ECU).

    ``write_bytes_per_s`` 0 writes instantly; ``max_block_length`` is what 0x34 answers.
    """

    erase_seconds: float = DEFAULT_ERASE_SECONDS
    write_bytes_per_s: float = 0.0
    max_block_length: int = DEFAULT_MAX_BLOCK_LENGTH


@dataclass
class _Download:
    address: int
    size: int
    received: int = 0
    expected: int = 0x01  # the first TransferData carries counter 0x01
    last: int | None = None  # counter of the last block accepted (a repeat is answered again)


class Bootloader:
    """Programming services over one ECU's :class:`FlashMemory`.

    Args:
        flash: the ECU's flash model.
        conditions: ``(engine rpm, vehicle speed km/h)`` now, for the preconditions routine.
        timing: erase and write times, maximum block length.
    """

    def __init__(
        self,
        flash: FlashMemory,
        conditions: Callable[[], tuple[float, float]],
        timing: ProgrammingTiming | None = None,
    ) -> None:
        self.flash = flash
        self.timing = timing or ProgrammingTiming()
        self._conditions = conditions
        self._download: _Download | None = None
        self._pending_version: str | None = None
        self._pending_counter: int | None = None
        self.corrupt_writes = False  # flips a bit in each written block: a failing flash cell
        self.blocks_written = 0

    @property
    def application_valid(self) -> bool:
        return self.flash.app_valid

    @property
    def downloading(self) -> bool:
        return self._download is not None

    # --- lifecycle hooks (called by the UDS server) -------------------------------------------

    def on_session(self, session: int) -> None:
        """Leaving the programming session abandons a download in progress."""
        if session != p.PROGRAMMING_SESSION:
            self._abort()

    def on_reset(self) -> None:
        """ECUReset: a checked download becomes the application; anything else stays invalid."""
        self._abort()
        self.flash.activate(self._pending_version, self._pending_counter)
        self._pending_version = self._pending_counter = None

    def _abort(self) -> None:
        if self._download is not None:
            self._download = None
            self.flash.save()  # what arrived so far, as a real page buffer would have written

    # --- 0x31 RoutineControl ------------------------------------------------------------------

    def routine_control(self, req: bytes, session: int, level: int) -> bytes | Reply:
        if len(req) < 4:
            return negative(0x31, INCORRECT_LENGTH)
        sub, rid = req[1] & 0x7F, int.from_bytes(req[2:4], "big")
        if sub != 0x01:
            return negative(0x31, SUBFUNCTION_NOT_SUPPORTED)  # start only: every routine runs to its end
        if session == p.DEFAULT_SESSION:
            return negative(0x31, SERVICE_NOT_IN_SESSION)
        head = b"\x71\x01" + req[2:4]
        if rid == p.ROUTINE_CHECK_PROGRAMMING_PRECONDITIONS:
            if len(req) != 4:
                return negative(0x31, INCORRECT_LENGTH)
            rpm, speed = self._conditions()
            status = p.ROUTINE_OK
            if rpm > 0:
                status = PRECONDITION_ENGINE_RUNNING
            elif speed > 0:
                status = PRECONDITION_VEHICLE_MOVING
            return head + bytes((status,))
        if rid not in (p.ROUTINE_ERASE_MEMORY, p.ROUTINE_CHECK_MEMORY, p.ROUTINE_CHECK_DEPENDENCIES):
            return negative(0x31, REQUEST_OUT_OF_RANGE)
        if session != p.PROGRAMMING_SESSION:
            return negative(0x31, SERVICE_NOT_IN_SESSION)
        if level != p.PROGRAMMING_SECURITY_LEVEL:
            return negative(0x31, SECURITY_ACCESS_DENIED)
        if self._download is not None:
            return negative(0x31, REQUEST_SEQUENCE_ERROR)  # finish the transfer (0x37) first
        if rid == p.ROUTINE_ERASE_MEMORY:
            return self._erase(req, head)
        if rid == p.ROUTINE_CHECK_MEMORY:
            if len(req) != 8:
                return negative(0x31, INCORRECT_LENGTH)
            ok = self.flash.written > 0 and self.flash.crc32() == int.from_bytes(req[4:8], "big")
            self.flash.mark_checked(ok)
            return head + bytes((p.ROUTINE_OK if ok else p.ROUTINE_FAILED,))
        if len(req) != 4:
            return negative(0x31, INCORRECT_LENGTH)
        complete = self.flash.checked or self.flash.app_valid
        return head + bytes((p.ROUTINE_OK if complete else p.ROUTINE_FAILED,))

    def _erase(self, req: bytes, head: bytes) -> bytes | Reply:
        parsed = _address_and_size(req[4:])
        if parsed is None:
            return negative(0x31, INCORRECT_LENGTH if len(req) != 13 else REQUEST_OUT_OF_RANGE)
        address, size = parsed
        if not self.flash.contains(address, size):
            return negative(0x31, REQUEST_OUT_OF_RANGE)
        self.flash.erase(address, size)
        answer = head + bytes((p.ROUTINE_OK,))
        seconds = self.timing.erase_seconds
        return Reply(answer, pending_s=seconds) if seconds > 0 else answer

    # --- 0x34 / 0x36 / 0x37 ------------------------------------------------------------------

    def request_download(self, req: bytes, session: int, level: int) -> bytes:
        if session != p.PROGRAMMING_SESSION:
            return negative(0x34, SERVICE_NOT_IN_SESSION)
        if level != p.PROGRAMMING_SECURITY_LEVEL:
            return negative(0x34, SECURITY_ACCESS_DENIED)
        if len(req) < 3:
            return negative(0x34, INCORRECT_LENGTH)
        if req[1] != 0x00:  # dataFormatIdentifier: neither compression nor encryption here
            return negative(0x34, REQUEST_OUT_OF_RANGE)
        parsed = _address_and_size(req[2:])
        if parsed is None:
            return negative(0x34, INCORRECT_LENGTH if len(req) != 11 else REQUEST_OUT_OF_RANGE)
        address, size = parsed
        if self._download is not None:
            return negative(0x34, CONDITIONS_NOT_CORRECT)
        if not self.flash.contains(address, size):
            return negative(0x34, REQUEST_OUT_OF_RANGE)
        if not self.flash.is_erased(address, size):
            return negative(0x34, UPLOAD_DOWNLOAD_NOT_ACCEPTED)  # erase (0x31 FF00) first
        self._download = _Download(address, size)
        length = self.timing.max_block_length
        return b"\x74\x20" + length.to_bytes(2, "big")

    def transfer_data(self, req: bytes, session: int) -> bytes | Reply:
        if session != p.PROGRAMMING_SESSION:
            return negative(0x36, SERVICE_NOT_IN_SESSION)
        if len(req) < 2:
            return negative(0x36, INCORRECT_LENGTH)
        dl = self._download
        if dl is None:
            return negative(0x36, REQUEST_SEQUENCE_ERROR)
        counter, data = req[1], req[2:]
        answer = b"\x76" + bytes((counter,))
        if counter != dl.expected:
            if counter == dl.last:
                return answer  # the tester lost our answer and repeats: already written once
            return negative(0x36, WRONG_BLOCK_SEQUENCE_COUNTER)
        if not data or len(req) > self.timing.max_block_length:
            return negative(0x36, INCORRECT_LENGTH)
        if dl.received + len(data) > dl.size:
            return negative(0x36, TRANSFER_DATA_SUSPENDED)
        if self.corrupt_writes:
            data = bytes((data[0] ^ 0x01,)) + data[1:]
        self.flash.write(dl.address + dl.received, data)
        dl.received += len(data)
        dl.last, dl.expected = counter, (counter + 1) & 0xFF  # 0xFF wraps to 0x00
        self.blocks_written += 1
        speed = self.timing.write_bytes_per_s
        seconds = len(data) / speed if speed > 0 else 0.0
        if seconds <= 0:
            return answer
        if seconds <= _P2_BUDGET_S:
            return Reply(answer, delay_s=seconds)
        return Reply(answer, pending_s=seconds)

    def request_transfer_exit(self, req: bytes, session: int) -> bytes:
        if session != p.PROGRAMMING_SESSION:
            return negative(0x37, SERVICE_NOT_IN_SESSION)
        dl = self._download
        if dl is None:
            return negative(0x37, REQUEST_SEQUENCE_ERROR)
        if dl.received != dl.size:
            return negative(0x37, REQUEST_SEQUENCE_ERROR)  # announced bytes missing
        self._download = None
        self.flash.save()
        return b"\x77"

    # --- 0x2E WriteDataByIdentifier ------------------------------------------------------------

    def write_data_by_identifier(self, req: bytes, session: int, level: int) -> bytes:
        if len(req) < 4:
            return negative(0x2E, INCORRECT_LENGTH)
        did, value = int.from_bytes(req[1:3], "big"), req[3:]
        if did not in (p.DID_APP_SOFTWARE, p.DID_RELEASE_COUNTER):
            return negative(0x2E, REQUEST_OUT_OF_RANGE)
        if session != p.PROGRAMMING_SESSION:
            return negative(0x2E, SERVICE_NOT_IN_SESSION)
        if level != p.PROGRAMMING_SECURITY_LEVEL:
            return negative(0x2E, SECURITY_ACCESS_DENIED)
        if did == p.DID_APP_SOFTWARE:
            if len(value) != 8:
                return negative(0x2E, INCORRECT_LENGTH)
            try:
                self._pending_version = value.decode("ascii").rstrip(" \x00")
            except UnicodeDecodeError:
                return negative(0x2E, REQUEST_OUT_OF_RANGE)
        else:
            if len(value) != 4:
                return negative(0x2E, INCORRECT_LENGTH)
            self._pending_counter = int.from_bytes(value, "big")
        return b"\x6e" + req[1:3]


def _address_and_size(record: bytes) -> tuple[int, int] | None:
    """``(address, size)`` of an ALFID 0x44 record (ALFID, 4-byte address, 4-byte size)."""
    if len(record) != 9 or record[0] != p.ADDRESS_AND_LENGTH_FORMAT:
        return None
    return int.from_bytes(record[1:5], "big"), int.from_bytes(record[5:9], "big")
