"""One socketcand client connection, driven by the server's event-loop thread.

Everything in this module runs on that one thread: it reads what the socket has, answers
commands, and writes without ever blocking. Other threads only read the counters (plain ints)
for statistics.

What goes to the socket (replies and frames, in order) waits in one queue of byte chunks.
Frames count against ``max_queue``; when a client reads too slowly the queue fills and its
newest frames are dropped and counted, for that client only. Replies are not frames and have
their own small headroom, so a flood of commands from a client that never reads cannot grow
the queue without bound either.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import socket
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import can

from workshop_app.core.sim.socketcand_protocol import (
    BCM_COMMANDS,
    BadInput,
    Command,
    ProtocolError,
    error_line,
    parse_fdsend,
    parse_send,
    parse_sendrtr,
    quote,
    split_commands,
)

if TYPE_CHECKING:
    from workshop_app.core.sim.socketcand_server import SocketcandServer

log = logging.getLogger("workshop_app.core.sim.socketcand_server")

# Replies (ok, echo, errors) queued at most, besides frames.
_REPLY_HEADROOM = 1000
# One write gathers at most this much of the queue.
_WRITE_CHUNK = 256 * 1024
_RECV_SIZE = 65536


class Mode(enum.Enum):
    NO_BUS = "nobus"
    BCM = "bcm"
    RAW = "raw"


class _Marker(enum.Enum):
    HOLD = "hold"  # pause for raw_start_delay before writing what follows
    CLOSE = "close"  # write what came before, then hang up


@dataclass(frozen=True, slots=True)
class ClientStats:
    """Counters of one connected client."""

    peer: tuple[str, int]
    mode: str  # "nobus", "bcm" or "raw"
    frames_sent: int  # frames written to the client
    frames_received: int  # frames the client sent
    frames_dropped: int  # frames not queued because the client's queue was full
    frames_queued: int  # frames waiting to be written
    fd_skipped: int  # CAN FD frames not sent because the client did not ask for them
    protocol_errors: int


class Connection:
    """One client socket (non-blocking) with its protocol state and its send queue."""

    def __init__(self, server: SocketcandServer, sock: socket.socket, peer: tuple[str, int]) -> None:
        self.server = server
        self.sock = sock
        self.peer = peer
        self.name = f"{peer[0]}:{peer[1]}"
        self.mode = Mode.NO_BUS
        self.fd_frames = server.fd
        self.frames_sent = 0
        self.frames_received = 0
        self.frames_dropped = 0
        self.fd_skipped = 0
        self.protocol_errors = 0
        self.closed = False
        # Until this monotonic time nothing is written (the hold after rawmode's < ok >).
        self.paused_until = 0.0
        self.wants_write = False  # registered for EVENT_WRITE with the selector
        self._max_queue = server.max_queue
        self._out: deque[tuple[bytes, int] | _Marker] = deque()
        self._queued_frames = 0
        self._queued_replies = 0
        self._partial: memoryview | None = None  # the unsent rest of the last write
        self._partial_frames = 0
        self._pending = ""  # an unfinished command from the last read
        self._hung_up = False  # refused: commands are ignored, the queue ends with CLOSE
        self._close_reached = False  # everything before CLOSE is written: hang up now

    @property
    def frames_queued(self) -> int:
        return self._queued_frames + self._partial_frames

    def snapshot(self) -> ClientStats:
        return ClientStats(
            peer=self.peer,
            mode=self.mode.value,
            frames_sent=self.frames_sent,
            frames_received=self.frames_received,
            frames_dropped=self.frames_dropped,
            frames_queued=self.frames_queued,
            fd_skipped=self.fd_skipped,
            protocol_errors=self.protocol_errors,
        )

    def has_output(self) -> bool:
        return self._partial is not None or bool(self._out)

    # -- queueing -----------------------------------------------------------------------------

    def queue_frames(self, lines: list[bytes], joined: bytes | None = None) -> None:
        """Queue frame lines (``joined`` is their concatenation when the caller has it)."""
        room = self._max_queue - self.frames_queued
        count = len(lines)
        if count <= room:
            self._out.append((joined if joined is not None else b"".join(lines), count))
            self._queued_frames += count
            return
        if room > 0:
            self._out.append((b"".join(lines[:room]), room))
            self._queued_frames += room
        if self.frames_dropped == 0:
            log.warning(
                "socketcand client %s reads too slowly: its queue of %d frames is full, "
                "its further frames are dropped (counted in its statistics)",
                self.name,
                self._max_queue,
            )
        self.frames_dropped += count - max(room, 0)

    def reply(self, *items: str | _Marker, mode: Mode | None = None) -> None:
        """Queue protocol replies; switching ``mode`` here keeps frames behind the reply."""
        if self.closed or self._hung_up:
            return
        if self._queued_replies >= _REPLY_HEADROOM:
            log.debug("socketcand client %s: reply queue full, reply dropped", self.name)
            return
        for item in items:
            if isinstance(item, _Marker):
                self._out.append(item)
            else:
                self._out.append((item.encode("ascii"), -1))
                self._queued_replies += 1
        if mode is not None:
            self.mode = mode

    def error(self, reason: str) -> None:
        self.protocol_errors += 1
        log.debug("socketcand client %s: %s", self.name, reason)
        self.reply(error_line(reason))

    # -- writing ------------------------------------------------------------------------------

    def flush(self, now: float) -> bool:
        """Write as much as the socket takes without blocking; False when the connection ended."""
        if now < self.paused_until:
            return True
        try:
            while True:
                if self._partial is None and not self._gather(now):
                    return not self._close_reached
                assert self._partial is not None
                sent = self.sock.send(self._partial)
                if sent < len(self._partial):
                    self._partial = self._partial[sent:]
                    return True  # the kernel buffer is full: wait until writable
                self._partial = None
                self.frames_sent += self._partial_frames
                self._partial_frames = 0
        except BlockingIOError:
            return True
        except OSError as exc:
            log.debug("socketcand client %s: write failed: %s", self.name, exc)
            return False

    def _gather(self, now: float) -> bool:
        """Join queued chunks up to the next marker into one write; False if nothing to write."""
        parts: list[bytes] = []
        size = frames = 0
        while self._out and size < _WRITE_CHUNK:
            item = self._out[0]
            if isinstance(item, _Marker):
                if parts:
                    break
                self._out.popleft()
                if item is _Marker.CLOSE:
                    self._out.clear()
                    self._close_reached = True
                    return False
                self.paused_until = now + self.server.raw_start_delay
                if self.paused_until > now:
                    return False
                continue
            self._out.popleft()
            data, count = item
            parts.append(data)
            size += len(data)
            if count < 0:
                self._queued_replies -= 1
            else:
                frames += count
                self._queued_frames -= count
        if not parts:
            return False
        self._partial = memoryview(parts[0] if len(parts) == 1 else b"".join(parts))
        self._partial_frames = frames
        return True

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.close()

    # -- reading ------------------------------------------------------------------------------

    def read(self) -> bool:
        """Handle what the socket has; False when the peer has gone."""
        try:
            data = self.sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
        if not data:
            return False
        if self._hung_up:
            return True  # refused: what it still says is ignored until the reply is out
        # latin-1 never fails; non-ASCII then simply makes a command invalid.
        items, self._pending = split_commands(self._pending + data.decode("latin-1"))
        for item in items:
            if self._hung_up:
                break
            if isinstance(item, BadInput):
                self.error(item.reason)
            else:
                self._handle(item)
        return True

    def _handle(self, command: Command) -> None:
        name, args = command.name, command.args
        try:
            if name == "echo":
                if args:
                    raise ProtocolError("echo takes no arguments")
                self.reply("< echo >")
            elif self.mode is Mode.NO_BUS:
                self._handle_no_bus(name, args)
            else:
                self._handle_open(name, args)
        except ProtocolError as exc:
            self.error(str(exc))
        except Exception:
            # A bug here must not cost the client its connection.
            log.exception(
                "socketcand client %s: command %s failed", self.name, quote(" ".join([name, *args]))
            )
            self.error("internal error")

    def _handle_no_bus(self, name: str, args: list[str]) -> None:
        if name == "open":
            if len(args) != 1:
                raise ProtocolError("open needs one bus name")
            if args[0] != self.server.channel:
                # socketcand hangs up on a bus it does not serve; do the same.
                log.info("socketcand client %s asked for unknown bus %s", self.name, quote(args[0]))
                self.protocol_errors += 1
                self.reply("< error could not open bus >", _Marker.CLOSE)
                self._hung_up = True
                return
            self.reply("< ok >", mode=Mode.BCM)
            log.debug("socketcand client %s opened %s", self.name, self.server.channel)
        elif name == self.server.channel:
            raise ProtocolError("bus configuration is not supported")
        elif name in ("rawmode", "bcmmode", "send", "sendrtr", "fdsend", *BCM_COMMANDS):
            raise ProtocolError(f"open a bus before {name}")
        else:
            raise ProtocolError(f"unknown command {quote(name)}")

    def _handle_open(self, name: str, args: list[str]) -> None:
        if name in ("send", "sendrtr", "fdsend"):
            if self.mode is not Mode.RAW:
                raise ProtocolError(f"{name} needs rawmode")
            msg: can.Message
            if name == "send":
                msg = parse_send(args)
            elif name == "sendrtr":
                msg = parse_sendrtr(args)
            else:
                msg = parse_fdsend(args)
            self.frames_received += 1
            self.server._transmit(self, msg)
        elif args and name in ("rawmode", "bcmmode"):
            raise ProtocolError(f"{name} takes no arguments")
        elif name == "rawmode":
            self.reply("< ok >", _Marker.HOLD, mode=Mode.RAW)
        elif name == "bcmmode":
            self.reply("< ok >", mode=Mode.BCM)
        elif name == "fdframes":
            if args not in (["on"], ["off"]):
                got = quote(" ".join(args)) if args else "nothing"
                raise ProtocolError(f'fdframes takes "on" or "off", got {got}')
            self.fd_frames = args[0] == "on"
            self.reply("< ok >")
        elif name == "open":
            raise ProtocolError("a bus is already open")
        elif name in BCM_COMMANDS:
            raise ProtocolError(f"{name}: bcm jobs are not supported, use rawmode")
        elif name in ("isotpmode", "controlmode"):
            raise ProtocolError(f"{name} is not supported")
        else:
            raise ProtocolError(f"unknown command {quote(name)}")
