"""A programming ECU for the flash tests: the bytes of ``core/update/protocol.py`` over can-isotp.

It can misbehave in ways the simulated vehicle cannot: echo a wrong block counter, fail the
memory check, lose one answer, hold the erase behind NRC 0x78, hold a block in flight.
"""

from __future__ import annotations

import threading
import time
import zlib
from dataclasses import dataclass, field

import can
import isotp

from workshop_app.core.update import protocol as p


@dataclass
class Faults:
    battery_mv: int = 13800
    max_block_length: int = 0x0FFF + 2
    erase_pending_s: float = 0.0
    crc_fails: bool = False
    wrong_echo_at: int | None = None  # block number (1-based, whole download) echoed wrongly
    drop_answer_at: int | None = None  # block number whose first answer is lost
    pause_at: int | None = None  # block number after which `paused` is set (tests cancel there)
    paused: threading.Event = field(default_factory=threading.Event)
    hold_at: int | None = None  # block number held in flight (not written, no answer) until `release`
    hold_written: bool = False  # the held block is written first (only its answer is lost)
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    block_delay_s: float = 0.0  # before each TransferData answer (a slow flash)


class Responder:
    """A programming ECU on ``channel``: sessions, 0x27 0x11, 0x31, 0x34/0x36/0x37, 0x2E, 0x11."""

    def __init__(self, channel: str, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self.bus = can.Bus(interface="virtual", channel=channel, receive_own_messages=False)
        self.notifier = can.Notifier(self.bus, [], timeout=0.05)
        self.stack = isotp.NotifierBasedCanStack(
            self.bus,
            self.notifier,
            address=isotp.Address(isotp.AddressingMode.Normal_11bits, txid=0x7E8, rxid=0x7E0),
            params={"tx_padding": 0xAA, "blocksize": 0, "stmin": 0, "max_frame_size": 1 << 20},
        )
        self.memory: dict[int, int] = {}  # address -> byte written since the erase
        self.version, self.release, self.app_valid = "OLD-0001", 3, 1
        self._pending: tuple[str | None, int | None] = (None, None)
        self.session, self.unlocked, self.seed = 1, False, b"\x12\x34\x56\x78"
        self.download: list[int] | None = None  # [address, size, received, expected, last]
        self.blocks = 0
        self.requests: list[bytes] = []
        self._dropped = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Responder:
        self.stack.start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        self.stack.stop()
        self.notifier.stop()
        self.bus.shutdown()

    def crc(self) -> int:
        return zlib.crc32(bytes(self.memory[a] for a in sorted(self.memory)))

    def _serve(self) -> None:
        while not self._stop.is_set():
            req = self.stack.recv(block=True, timeout=0.05)
            if req is None:
                continue
            req = bytes(req)
            self.requests.append(req)
            for answer in self._answer(req):
                if answer:
                    self.stack.send(answer)

    def _answer(self, req: bytes) -> list[bytes]:
        sid, f = req[0], self.faults
        if sid == 0x10:
            self.session, self.unlocked = req[1], False
            if self.download:
                self.download = None
            return [bytes((0x50, req[1], 0x00, 0x32, 0x01, 0xF4))]
        if sid == 0x3E:
            return [] if req[1] & 0x80 else [b"\x7e\x00"]
        if sid in (0x85, 0x28):
            return [bytes((sid + 0x40, req[1]))]
        if sid == 0x22:
            did = int.from_bytes(req[1:3], "big")
            values = {
                0xF1A1: f.battery_mv.to_bytes(2, "big"),
                0x1001: b"\x00\x00",
                0x1003: b"\x00",
                p.DID_APP_SOFTWARE: self.version.encode().ljust(8),
                p.DID_RELEASE_COUNTER: self.release.to_bytes(4, "big"),
                p.DID_APP_VALID: bytes((self.app_valid,)),
            }
            return [b"\x62" + req[1:3] + values[did]] if did in values else [b"\x7f\x22\x31"]
        if sid == 0x27:
            if req[1] == p.PROGRAMMING_SECURITY_LEVEL:
                return [b"\x67\x11" + self.seed]
            self.unlocked = req[2:] == p.demo_programming_key(self.seed)
            return [b"\x67\x12"] if self.unlocked else [b"\x7f\x27\x35"]
        if sid == 0x31:
            rid = int.from_bytes(req[2:4], "big")
            head = b"\x71\x01" + req[2:4]
            if rid == p.ROUTINE_CHECK_PROGRAMMING_PRECONDITIONS:
                return [head + b"\x00"]
            if not self.unlocked or self.session != p.PROGRAMMING_SESSION:
                return [b"\x7f\x31\x33"]
            if rid == p.ROUTINE_ERASE_MEMORY:
                self.memory.clear()
                self.app_valid = 0
                pending = []
                deadline = time.monotonic() + f.erase_pending_s
                while time.monotonic() < deadline:  # NRC 0x78 every second, well inside P2*
                    self.stack.send(b"\x7f\x31\x78")
                    time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
                return [*pending, head + b"\x00"]
            if rid == p.ROUTINE_CHECK_MEMORY:
                ok = not f.crc_fails and int.from_bytes(req[4:8], "big") == self.crc()
                return [head + (b"\x00" if ok else b"\x01")]
            return [head + b"\x00"]
        if sid == 0x34:
            address, size = int.from_bytes(req[3:7], "big"), int.from_bytes(req[7:11], "big")
            if any(a in self.memory for a in (address, address + size - 1)):
                return [b"\x7f\x34\x70"]
            self.download = [address, size, 0, 1, -1]
            return [b"\x74\x20" + f.max_block_length.to_bytes(2, "big")]
        if sid == 0x36:
            dl, counter = self.download, req[1]
            if dl is None:
                return [b"\x7f\x36\x24"]
            if f.hold_at == self.blocks + 1 and not f.release.is_set() and not f.hold_written:
                f.holding.set()
                f.release.wait(30)
                return []  # dropped unwritten: the tester that sent it is gone
            if f.block_delay_s:
                time.sleep(f.block_delay_s)
            if counter != dl[3]:
                return [b"\x76" + req[1:2]] if counter == dl[4] else [b"\x7f\x36\x73"]
            for i, byte in enumerate(req[2:]):
                self.memory[dl[0] + dl[2] + i] = byte
            dl[2] += len(req) - 2
            dl[4], dl[3] = counter, (counter + 1) & 0xFF
            self.blocks += 1
            if f.hold_at == self.blocks and f.hold_written and not f.release.is_set():
                f.holding.set()
                f.release.wait(30)
                return []  # written, but the tester that sent it is gone
            if f.pause_at == self.blocks:
                f.paused.set()
                time.sleep(0.3)
            if f.drop_answer_at == self.blocks and not self._dropped:
                self._dropped = True
                return []
            if f.wrong_echo_at == self.blocks:
                return [b"\x76" + bytes(((counter + 1) & 0xFF,))]
            return [b"\x76" + req[1:2]]
        if sid == 0x37:
            self.download = None
            return [b"\x77"]
        if sid == 0x2E:
            did = int.from_bytes(req[1:3], "big")
            if did == p.DID_APP_SOFTWARE:
                self._pending = (req[3:].decode().strip(), self._pending[1])
            else:
                self._pending = (self._pending[0], int.from_bytes(req[3:7], "big"))
            return [b"\x6e" + req[1:3]]
        if sid == 0x11:
            version, release = self._pending
            if version is not None and release is not None:
                self.version, self.release, self.app_valid = version, release, 1
            self.session, self.unlocked = 1, False
            return [b"\x51\x01"]
        return [bytes((0x7F, sid, 0x11))]
