"""Share a python-can bus with other programs over the socketcand TCP protocol.

socketcand (linux-can/socketcand) is the ASCII protocol that python-can's ``socketcand``
interface, SavvyCAN and Kayak speak. This machine has no SocketCAN, so instead of running the
real daemon on a vcan interface we serve any python-can bus ourselves.

What a client sees
------------------
* ``< hi >`` on connect, then ``< open CHANNEL >`` answered by ``< ok >``. An unknown channel
  gets ``< error could not open bus >`` and the connection is closed, as socketcand does.
* ``< rawmode >`` → ``< ok >``. From then on every frame on the bus arrives as
  ``< frame ID SECONDS.USEC HEXDATA >`` (ID as 3 hex digits, or 8 for an extended id), error
  frames as ``< error CLASS SECONDS.USEC >`` and remote frames as ``< rtr ID SECONDS.USEC DLC >``.
  ``< bcmmode >`` stops the stream again. The broadcast-manager jobs of BCM mode (``add``,
  ``subscribe``, ``filter``, ...), ISO-TP and control mode are not implemented; they are
  answered with ``< error ... >``.
* Only in raw mode may a client transmit: ``< send ID LEN B0 B1 ... >``,
  ``< sendrtr ID DLC >`` and ``< fdsend ID FLAGS LEN B0 ... >``. A frame a client sends goes onto
  the bus and to every *other* raw-mode client, as a real bus would show it.
* ``< echo >`` → ``< echo >`` in every mode.
* Malformed input (text outside ``< >``, unknown commands, bad hex, wrong lengths) is answered
  with ``< error REASON >``; the connection stays usable.

CAN FD
------
python-can's client only understands ``< frame ... >`` (at most 8 bytes), so CAN FD frames are
sent as socketcand's ``< fdframe ID FLAGS SECONDS.USEC HEXDATA >`` (FLAGS: 0x01 bit rate
switch, 0x02 error state indicator) only to clients that want them: all clients when the
server is built with ``fd=True`` (what socketcand does on an FD interface), or a single client
after it sent the extension command ``< fdframes on >``. Every other client skips FD frames;
the skips are counted in ``fd_skipped``. A client may send FD frames with ``fdsend``;
``send`` with more than 8 bytes is also accepted as an FD frame without bit rate switch,
because that is what python-can's client writes for an FD message (length in hex).

Known limits
------------
* python-can's client reads the ``< ok >`` of ``< rawmode >`` with one ``recv`` and compares it
  verbatim, so a frame in the same read would break its handshake. Frames for a client are
  therefore held back (not dropped) for ``raw_start_delay`` seconds after that ``< ok >``.
* python-can's client writes a remote frame as ``< send ID DLC >`` without data bytes; that is
  malformed, the error reply makes its next ``recv`` raise ``CanError``.
* The bus must not hand our own transmissions back to us (python-can's default), otherwise
  the other clients would see client frames twice.
* No UDP discovery beacon: traffic of this tool stays on loopback.
"""

from __future__ import annotations

import contextlib
import enum
import ipaddress
import logging
import re
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType

import can

log = logging.getLogger(__name__)

DEFAULT_PORT = 29536

_SFF_MASK = 0x7FF
_EFF_MASK = 0x1FFFFFFF
_CANFD_BRS = 0x01
_CANFD_ESI = 0x02
_FD_LENGTHS = frozenset((*range(9), 12, 16, 20, 24, 32, 48, 64))

# An fdsend with 64 bytes is ~220 characters; anything far longer is garbage.
_MAX_COMMAND_CHARS = 1024
# Replies (ok, echo, errors) are not counted as frames; this caps what a client that never
# reads can make us buffer with a flood of commands.
_REPLY_HEADROOM = 1000
_BUS_SEND_TIMEOUT = 1.0
_JOIN_TIMEOUT = 5.0

_HEX_ID = re.compile(r"[0-9A-Fa-f]{1,8}")
_HEX_BYTE = re.compile(r"[0-9A-Fa-f]{1,2}")
_NUMBER = re.compile(r"[0-9A-Fa-f]{1,3}")
_DLC = re.compile(r"[0-8]")
_BCM_COMMANDS = frozenset(("add", "update", "delete", "filter", "muxfilter", "subscribe", "unsubscribe"))


@dataclass(frozen=True, slots=True)
class ClientStats:
    """Counters of one connected client."""

    peer: tuple[str, int]
    mode: str  # "nobus", "bcm" or "raw"
    frames_sent: int  # frames written to the client
    frames_received: int  # frames the client sent
    frames_dropped: int  # frames not sent because the client's queue was full
    fd_skipped: int  # CAN FD frames not sent because the client did not ask for them
    protocol_errors: int


@dataclass(frozen=True, slots=True)
class ServerStats:
    """Totals over every client the server has had, connected or gone."""

    clients: int  # connected now
    connections: int  # accepted since start()
    frames_from_bus: int
    frames_sent: int
    frames_received: int
    frames_dropped: int
    fd_skipped: int
    protocol_errors: int


class _ProtocolError(Exception):
    """A client command that cannot be carried out; the text goes back in ``< error ... >``."""


class _Mode(enum.Enum):
    NO_BUS = "nobus"
    BCM = "bcm"
    RAW = "raw"


class _Marker:
    """Queue entries that tell the writer to do something besides writing."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


_HOLD = _Marker("hold")  # pause for raw_start_delay before writing what follows
_CLOSE = _Marker("close")  # write what came before, then hang up


def _clean(text: str, limit: int = 80) -> str:
    """Make text safe inside ``< error ... >``: printable ASCII, no angle brackets."""
    return "".join(ch if " " <= ch <= "~" and ch not in "<>" else "?" for ch in text[:limit])


def format_message(msg: can.Message) -> tuple[str, bool]:
    """Return the socketcand line for ``msg`` and whether it is a CAN FD frame."""
    stamp = f"{msg.timestamp:.6f}"
    if msg.is_error_frame:
        return f"< error {msg.arbitration_id & _EFF_MASK:03X} {stamp} >", False
    if msg.is_extended_id:
        can_id = f"{msg.arbitration_id & _EFF_MASK:08X}"
    else:
        can_id = f"{msg.arbitration_id & _SFF_MASK:03X}"
    if msg.is_remote_frame:
        return f"< rtr {can_id} {stamp} {msg.dlc} >", False
    data = msg.data.hex().upper()
    if msg.is_fd or len(msg.data) > 8:
        flags = (_CANFD_BRS if msg.bitrate_switch else 0) | (_CANFD_ESI if msg.error_state_indicator else 0)
        return f"< fdframe {can_id} {flags:02X} {stamp} {data} >", True
    # With no data this leaves two spaces before '>', which python-can's parser needs.
    return f"< frame {can_id} {stamp} {data} >", False


def _parse_id(token: str) -> tuple[int, bool]:
    if not _HEX_ID.fullmatch(token):
        raise _ProtocolError(f"bad CAN id {token}")
    value = int(token, 16)
    # socketcand's rule: exactly 8 digits means an extended id.
    if len(token) == 8:
        if value > _EFF_MASK:
            raise _ProtocolError(f"extended CAN id {token} out of range")
        return value, True
    if value > _SFF_MASK:
        raise _ProtocolError(f"standard CAN id {token} out of range (extended ids take 8 digits)")
    return value, False


def _parse_data(tokens: list[str]) -> bytes:
    for token in tokens:
        if not _HEX_BYTE.fullmatch(token):
            raise _ProtocolError(f"bad data byte {token}")
    return bytes(int(token, 16) for token in tokens)


def _check_length(command: str, token: str, count: int) -> None:
    # socketcand reads the length in decimal, python-can's client writes it in hex; for 0..8
    # both agree, beyond that the number of data bytes decides.
    if not _NUMBER.fullmatch(token):
        raise _ProtocolError(f"bad length {token} in {command}")
    if int(token, 16) != count and not (token.isdigit() and int(token) == count):
        raise _ProtocolError(f"{command} length {token} does not match {count} data bytes")


def _parse_send(args: list[str]) -> can.Message:
    if len(args) < 2:
        raise _ProtocolError("send needs an id and a length")
    can_id, extended = _parse_id(args[0])
    data = _parse_data(args[2:])
    _check_length("send", args[1], len(data))
    if len(data) not in _FD_LENGTHS:
        raise _ProtocolError(f"{len(data)} bytes is not a CAN frame length")
    return can.Message(
        timestamp=time.time(),
        arbitration_id=can_id,
        is_extended_id=extended,
        data=data,
        is_fd=len(data) > 8,
    )


def _parse_sendrtr(args: list[str]) -> can.Message:
    if len(args) != 2:
        raise _ProtocolError("sendrtr needs an id and a dlc")
    can_id, extended = _parse_id(args[0])
    if not _DLC.fullmatch(args[1]):
        raise _ProtocolError(f"bad dlc {args[1]} in sendrtr")
    return can.Message(
        timestamp=time.time(),
        arbitration_id=can_id,
        is_extended_id=extended,
        is_remote_frame=True,
        dlc=int(args[1]),
    )


def _parse_fdsend(args: list[str]) -> can.Message:
    if len(args) < 3:
        raise _ProtocolError("fdsend needs an id, flags and a length")
    can_id, extended = _parse_id(args[0])
    if not _HEX_BYTE.fullmatch(args[1]):
        raise _ProtocolError(f"bad flags {args[1]} in fdsend")
    flags = int(args[1], 16)
    data = _parse_data(args[3:])
    _check_length("fdsend", args[2], len(data))
    if len(data) not in _FD_LENGTHS:
        raise _ProtocolError(f"{len(data)} bytes is not a CAN FD frame length")
    return can.Message(
        timestamp=time.time(),
        arbitration_id=can_id,
        is_extended_id=extended,
        data=data,
        is_fd=True,
        bitrate_switch=bool(flags & _CANFD_BRS),
        error_state_indicator=bool(flags & _CANFD_ESI),
    )


class _Client:
    """One TCP connection: a reader thread parses commands, a writer thread drains the queue.

    Everything for the socket (replies and frames) goes through one queue so that a single
    thread writes it and lines never interleave; the bus side only appends, so a slow client
    never blocks the bus reader.
    """

    def __init__(self, server: SocketcandServer, sock: socket.socket, peer: tuple[str, int]) -> None:
        self.server = server
        self.sock = sock
        self.peer = peer
        self.name = f"{peer[0]}:{peer[1]}"
        self.mode = _Mode.NO_BUS
        self.fd_frames = server.fd
        self.frames_sent = 0
        self.frames_received = 0
        self.frames_dropped = 0
        self.fd_skipped = 0
        self.protocol_errors = 0
        self._max_queue = server.max_queue
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[str | _Marker] = deque()
        self._queued_frames = 0
        self._has_markers = False
        self._closed = False
        self._refused = False
        self._reader = threading.Thread(
            target=self._read_loop, name=f"socketcand-rx {self.name}", daemon=True
        )
        self._writer = threading.Thread(
            target=self._write_loop, name=f"socketcand-tx {self.name}", daemon=True
        )

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self.reply("< hi >")
        self._writer.start()
        self._reader.start()

    def close(self) -> None:
        """Hang up; wakes both threads (shutdown unblocks recv and sendall)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def join(self, timeout: float) -> None:
        for thread in (self._reader, self._writer):
            if thread.ident is not None:
                thread.join(timeout)
                if thread.is_alive():
                    log.warning("socketcand: thread %s did not stop", thread.name)

    def alive(self) -> bool:
        return self._reader.is_alive() or self._writer.is_alive()

    def snapshot(self) -> ClientStats:
        return ClientStats(
            peer=self.peer,
            mode=self.mode.value,
            frames_sent=self.frames_sent,
            frames_received=self.frames_received,
            frames_dropped=self.frames_dropped,
            fd_skipped=self.fd_skipped,
            protocol_errors=self.protocol_errors,
        )

    # -- queue ----------------------------------------------------------------------------------

    def push_frame(self, line: str, is_fd: bool) -> None:
        """Queue a frame line if the client is in raw mode; never blocks on the socket."""
        first_drop = False
        with self._cond:
            if self.mode is not _Mode.RAW or self._closed:
                return
            if is_fd and not self.fd_frames:
                self.fd_skipped += 1
                return
            if self._queued_frames >= self._max_queue:
                self.frames_dropped += 1
                first_drop = self.frames_dropped == 1
            else:
                self._queue.append(line)
                self._queued_frames += 1
                if len(self._queue) == 1:
                    self._cond.notify()
        if first_drop:
            log.warning(
                "socketcand client %s is too slow, dropping frames (queue of %d full)",
                self.name,
                self._max_queue,
            )

    def reply(self, *items: str | _Marker, mode: _Mode | None = None) -> None:
        """Queue protocol replies; switching ``mode`` here keeps frames behind the reply."""
        with self._cond:
            if self._closed:
                return
            if len(self._queue) >= self._max_queue + _REPLY_HEADROOM:
                log.debug("socketcand client %s: reply queue full, reply dropped", self.name)
                return
            was_empty = not self._queue
            for item in items:
                self._queue.append(item)
                if isinstance(item, _Marker):
                    self._has_markers = True
            if mode is not None:
                self.mode = mode
            if was_empty:
                self._cond.notify()

    def _write_loop(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._closed:
                        self._cond.wait()
                    if self._closed:
                        return
                    batch, self._queue = self._queue, deque()
                    frames, self._queued_frames = self._queued_frames, 0
                    has_markers, self._has_markers = self._has_markers, False
                if has_markers:
                    if not self._write_with_markers(batch):
                        return
                else:
                    # One sendall per batch is what makes 10k+ frames/s possible. Without
                    # markers the batch holds only str.
                    self.sock.sendall("".join(batch).encode("ascii"))  # type: ignore[arg-type]
                self.frames_sent += frames
        except OSError as exc:
            log.debug("socketcand client %s: write failed: %s", self.name, exc)
        finally:
            self.close()

    def _write_with_markers(self, batch: Iterable[str | _Marker]) -> bool:
        """Write a batch that contains markers; False when the connection is to end."""
        chunk: list[str] = []
        for item in batch:
            if isinstance(item, str):
                chunk.append(item)
                continue
            if chunk:
                self.sock.sendall("".join(chunk).encode("ascii"))
                chunk = []
            if item is _CLOSE:
                return False
            with self._cond:
                if self._cond.wait_for(lambda: self._closed, timeout=self.server.raw_start_delay):
                    return False
        if chunk:
            self.sock.sendall("".join(chunk).encode("ascii"))
        return True

    # -- input ----------------------------------------------------------------------------------

    def _read_loop(self) -> None:
        pending = ""
        try:
            while True:
                try:
                    data = self.sock.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                # latin-1 never fails; non-ASCII then simply makes a command invalid.
                pending = self._consume(pending + data.decode("latin-1"))
                if self._refused:
                    break
        except Exception:
            log.exception("socketcand client %s: handler failed", self.name)
        finally:
            if not self._refused:
                self.close()
            self._writer.join(_JOIN_TIMEOUT)
            self.close()
            with contextlib.suppress(OSError):
                self.sock.close()
            self.server._client_finished(self)

    def _consume(self, text: str) -> str:
        """Handle every complete ``< ... >`` in text; return the unfinished rest."""
        pos = 0
        while pos < len(text) and not self._refused:
            start = text.find("<", pos)
            if start < 0:
                if text[pos:].strip():
                    self._error("unexpected text outside < >")
                return ""
            if start > pos and text[pos:start].strip():
                self._error("unexpected text outside < >")
            end = text.find(">", start)
            if end < 0:
                if len(text) - start > _MAX_COMMAND_CHARS:
                    self._error("command too long")
                    return ""
                return text[start:]
            nested = text.rfind("<", start + 1, end)
            if nested >= 0:
                # The earlier '<' never got its '>': report it and carry on with the later one.
                self._error("unterminated command")
                start = nested
            self._handle(text[start + 1 : end].split())
            pos = end + 1
        return ""

    def _error(self, reason: str) -> None:
        self.protocol_errors += 1
        log.debug("socketcand client %s: %s", self.name, reason)
        self.reply(f"< error {_clean(reason)} >")

    def _handle(self, tokens: list[str]) -> None:
        if not tokens:
            self._error("empty command")
            return
        name, args = tokens[0], tokens[1:]
        try:
            if name == "echo":
                if args:
                    raise _ProtocolError("echo takes no arguments")
                self.reply("< echo >")
            elif self.mode is _Mode.NO_BUS:
                self._handle_no_bus(name, args)
            else:
                self._handle_open(name, args)
        except _ProtocolError as exc:
            self._error(str(exc))
        except Exception:
            # A bug here must not cost the client its connection.
            log.exception("socketcand client %s: command %r failed", self.name, _clean(" ".join(tokens)))
            self._error("internal error")

    def _handle_no_bus(self, name: str, args: list[str]) -> None:
        if name == "open":
            if len(args) != 1:
                raise _ProtocolError("open needs one bus name")
            if args[0] != self.server.channel:
                # socketcand hangs up on a bus it does not serve; do the same.
                log.info("socketcand client %s asked for unknown bus %r", self.name, _clean(args[0], 32))
                self.protocol_errors += 1
                self._refused = True
                self.reply("< error could not open bus >", _CLOSE)
                return
            self.reply("< ok >", mode=_Mode.BCM)
            log.debug("socketcand client %s opened %s", self.name, self.server.channel)
        elif name == self.server.channel:
            raise _ProtocolError("bus configuration is not supported")
        elif name in ("rawmode", "bcmmode", "send", "sendrtr", "fdsend", *_BCM_COMMANDS):
            raise _ProtocolError(f"open a bus before {name}")
        else:
            raise _ProtocolError(f"unknown command {name}")

    def _handle_open(self, name: str, args: list[str]) -> None:
        if name in ("send", "sendrtr", "fdsend"):
            if self.mode is not _Mode.RAW:
                raise _ProtocolError(f"{name} needs rawmode")
            if name == "send":
                msg = _parse_send(args)
            elif name == "sendrtr":
                msg = _parse_sendrtr(args)
            else:
                msg = _parse_fdsend(args)
            self.frames_received += 1
            self.server._from_client(self, msg)
        elif args and name in ("rawmode", "bcmmode"):
            raise _ProtocolError(f"{name} takes no arguments")
        elif name == "rawmode":
            self.reply("< ok >", _HOLD, mode=_Mode.RAW)
        elif name == "bcmmode":
            self.reply("< ok >", mode=_Mode.BCM)
        elif name == "fdframes":
            if args not in (["on"], ["off"]):
                raise _ProtocolError("use fdframes on or fdframes off")
            with self._cond:
                self.fd_frames = args[0] == "on"
            self.reply("< ok >")
        elif name == "open":
            raise _ProtocolError("a bus is already open")
        elif name in _BCM_COMMANDS:
            raise _ProtocolError(f"{name}: bcm jobs are not supported, use rawmode")
        elif name in ("isotpmode", "controlmode"):
            raise _ProtocolError(f"{name} is not supported")
        else:
            raise _ProtocolError(f"unknown command {name}")


class _BusListener(can.Listener):
    def __init__(self, server: SocketcandServer) -> None:
        self._server = server
        self._errors = 0

    def on_message_received(self, msg: can.Message) -> None:
        self._server._on_bus_message(msg)

    def on_error(self, exc: Exception) -> None:
        self._errors += 1
        if self._errors == 1:
            log.error("socketcand server: reading the bus failed: %s", exc)
        else:
            log.debug("socketcand server: reading the bus failed again: %s", exc)
        # A dead bus fails on every recv; handling the error keeps the Notifier alive, so
        # slow the retries down instead of spinning.
        time.sleep(0.1)


class SocketcandServer:
    """Serve a python-can bus to socketcand clients over TCP.

    The server needs its own handle of the bus (for ``virtual``: a second ``can.Bus`` on the
    same channel), because it reads it with a :class:`can.Notifier` of its own and python-can
    allows one active Notifier per bus object.

    Args:
        bus: The bus to share. Frames read from it go to every raw-mode client; frames clients
            send are transmitted on it.
        host: Address to listen on. Keep the default loopback address unless the network is
            trusted: the protocol has no authentication.
        port: TCP port; 0 picks a free one (see :attr:`address`).
        channel: The bus name clients pass to ``< open ... >``.
        fd: Send CAN FD frames as ``< fdframe ... >`` to every client. Off by default because
            python-can's client cannot parse them; a client can still ask with
            ``< fdframes on >``.
        max_queue: Frames buffered per client before further frames for it are dropped.
        raw_start_delay: Seconds frames are held back after the ``< ok >`` of ``< rawmode >``,
            so python-can's client reads that reply on its own.
    """

    def __init__(
        self,
        bus: can.BusABC,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        channel: str = "can0",
        fd: bool = False,
        max_queue: int = 10_000,
        raw_start_delay: float = 0.1,
    ) -> None:
        if not channel or any(ch.isspace() or ch in "<>" for ch in channel):
            raise ValueError(f"invalid socketcand channel name {channel!r}")
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self._bus = bus
        self._host = host
        self._port = port
        self.channel = channel
        self.fd = fd
        self.max_queue = max_queue
        self.raw_start_delay = raw_start_delay
        self._lock = threading.Lock()
        self._stop_lock = threading.Lock()
        # Several client threads may transmit at once; not every python-can bus is thread-safe.
        self._send_lock = threading.Lock()
        self._state = "new"
        self._stopping = False
        # Replaced, never mutated, so the bus thread can iterate it without a lock.
        self._clients: tuple[_Client, ...] = ()
        self._finished: list[_Client] = []
        self._retired = [0, 0, 0, 0, 0]  # sent, received, dropped, fd skipped, errors
        self._connections = 0
        self._frames_from_bus = 0
        self._notifier: can.Notifier | None = None
        self._listen_sock: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._address: tuple[str, int] | None = None

    # -- public API -----------------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``; valid after :meth:`start`."""
        if self._address is None:
            raise RuntimeError("SocketcandServer is not started")
        return self._address

    @property
    def running(self) -> bool:
        """True between a successful :meth:`start` and :meth:`stop`."""
        return self._state == "running"

    @property
    def clients(self) -> int:
        """Number of connected clients (in any mode)."""
        return len(self._clients)

    @property
    def stats(self) -> ServerStats:
        """Totals over all clients since :meth:`start`, including disconnected ones."""
        with self._lock:
            clients = self._clients
            sent, received, dropped, skipped, errors = self._retired
            for c in clients:
                sent += c.frames_sent
                received += c.frames_received
                dropped += c.frames_dropped
                skipped += c.fd_skipped
                errors += c.protocol_errors
            return ServerStats(
                clients=len(clients),
                connections=self._connections,
                frames_from_bus=self._frames_from_bus,
                frames_sent=sent,
                frames_received=received,
                frames_dropped=dropped,
                fd_skipped=skipped,
                protocol_errors=errors,
            )

    def client_stats(self) -> list[ClientStats]:
        """Counters of each connected client, in connection order."""
        return [c.snapshot() for c in self._clients]

    def start(self) -> None:
        """Listen, attach to the bus and start accepting clients.

        Raises:
            OSError: The address cannot be bound.
            ValueError: The bus already has an active :class:`can.Notifier`.
            RuntimeError: The server was started before.
        """
        with self._lock:
            if self._state != "new":
                raise RuntimeError("a SocketcandServer can only be started once")
            self._state = "starting"
        try:
            family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
            self._listen_sock = socket.create_server((self._host, self._port), family=family, backlog=16)
            self._listen_sock.setblocking(False)
            self._wake_r, self._wake_w = socket.socketpair()
            try:
                self._notifier = can.Notifier(self._bus, [_BusListener(self)], timeout=0.05)
            except ValueError as exc:
                raise ValueError(
                    "the bus already has an active can.Notifier; give the socketcand server its own "
                    "bus handle (e.g. a second virtual bus on the same channel)"
                ) from exc
        except BaseException:
            self._close_sockets()
            with self._lock:
                self._state = "stopped"
            raise
        host, port = self._listen_sock.getsockname()[:2]
        self._address = (host, port)
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name="socketcand-accept", daemon=True
        )
        self._accept_thread.start()
        with self._lock:
            self._state = "running"
        if not _is_loopback(host):
            log.warning("socketcand server listens on %s: any host that reaches it can use the bus", host)
        log.info("socketcand server on %s:%d serving bus %s", host, port, self.channel)

    def stop(self) -> None:
        """Close the listening socket and every client and join all threads. Idempotent."""
        with self._stop_lock:
            with self._lock:
                if self._state != "running":
                    self._state = "stopped"
                    return
                self._stopping = True
            # Accept thread first, so no client can be added after the snapshot below.
            if self._wake_w is not None:
                with contextlib.suppress(OSError):
                    self._wake_w.send(b"x")
            if self._accept_thread is not None:
                self._accept_thread.join(_JOIN_TIMEOUT)
            self._close_sockets()
            if self._notifier is not None:
                self._notifier.stop(timeout=_JOIN_TIMEOUT)
            with self._lock:
                clients = (*self._clients, *self._finished)
            for client in clients:
                client.close()
            for client in clients:
                client.join(_JOIN_TIMEOUT)
            with self._lock:
                self._finished.clear()
                self._state = "stopped"
            log.info("socketcand server on %s:%d stopped (%s)", *self.address, self.stats)

    def __enter__(self) -> SocketcandServer:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals ------------------------------------------------------------------------------

    def _close_sockets(self) -> None:
        for sock in (self._listen_sock, self._wake_r, self._wake_w):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()

    def _accept_loop(self) -> None:
        listen, wake = self._listen_sock, self._wake_r
        assert listen is not None and wake is not None
        while not self._stopping:
            try:
                readable, _, _ = select.select([listen, wake], [], [])
            except (OSError, ValueError):
                break
            if wake in readable or self._stopping:
                break
            try:
                conn, peer = listen.accept()
            except BlockingIOError:
                continue  # the peer gave up between select and accept
            except OSError as exc:
                # e.g. out of file descriptors: wait a little instead of spinning
                log.warning("socketcand server: accept failed: %s", exc)
                select.select([wake], [], [], 0.1)
                continue
            self._add_client(conn, (str(peer[0]), int(peer[1])))

    def _add_client(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        conn.setblocking(True)
        with contextlib.suppress(OSError):
            # Frames are already batched; don't let Nagle add latency on top.
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = _Client(self, conn, peer)
        with self._lock:
            if self._stopping:
                conn.close()
                return
            self._clients = (*self._clients, client)
            self._connections += 1
            self._finished = [c for c in self._finished if c.alive()]
        client.start()
        log.info("socketcand client %s connected (%d connected)", client.name, len(self._clients))

    def _client_finished(self, client: _Client) -> None:
        with self._lock:
            self._clients = tuple(c for c in self._clients if c is not client)
            self._finished.append(client)
            for i, value in enumerate(
                (
                    client.frames_sent,
                    client.frames_received,
                    client.frames_dropped,
                    client.fd_skipped,
                    client.protocol_errors,
                )
            ):
                self._retired[i] += value
        log.info(
            "socketcand client %s disconnected: %d frames sent, %d received, %d dropped, %d FD skipped",
            client.name,
            client.frames_sent,
            client.frames_received,
            client.frames_dropped,
            client.fd_skipped,
        )

    def _on_bus_message(self, msg: can.Message) -> None:
        self._frames_from_bus += 1
        clients = self._clients
        if not clients:
            return
        line, is_fd = format_message(msg)
        for client in clients:
            client.push_frame(line, is_fd)

    def _from_client(self, sender: _Client, msg: can.Message) -> None:
        try:
            with self._send_lock:
                self._bus.send(msg, timeout=_BUS_SEND_TIMEOUT)
        except Exception as exc:  # whatever the bus raises is the sender's problem only
            log.warning("socketcand client %s: bus refused frame %s: %s", sender.name, msg, exc)
            sender._error(f"could not send frame: {exc}")
            return
        line, is_fd = format_message(msg)
        for client in self._clients:
            if client is not sender:
                client.push_frame(line, is_fd)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
