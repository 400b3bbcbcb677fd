"""Our socketcand client as a python-can bus: CAN FD frames included, parsed in bulk.

``can.Bus(interface="workshop-socketcand", host="127.0.0.1", port=29536, channel="can0")``
(registered through python-can's ``can.interface`` entry point) or ``-i socketcand`` on any
``workshop`` command. python-can's own ``socketcand`` client stays reachable as
``-i socketcand-python-can``.

Why our own: python-can's client understands only ``< frame … >``, so every CAN FD frame of a
socketcand server is lost, and it parses one element per ``recv`` call with string slicing in
the caller's thread. This one:

* connects under a deadline (TCP connect and each handshake answer: ``connect_timeout``, 3 s by
  default) and says in plain words which answer did not come, naming ``host:port``;
* asks for CAN FD frames with ``< fdframes on >`` (the workshop simulator's extension). A real
  socketcand answers ``< error unknown command >``; that is fine: on an FD-capable interface it
  sends ``< fdframe … >`` to everybody anyway, on a classic one there are no FD frames.
  :attr:`SocketcandBus.fd_frames_requested` says which of the two happened;
* reads on its own ``socketcand-rx`` thread: one ``recv`` takes whatever the socket has (up
  to 256 KiB), the complete elements are parsed in one go (:mod:`.socketcand_wire`) and handed
  over as one batch. :meth:`recv` pops from those batches; at most ``max_queue`` frames wait,
  further frames are dropped and counted (:attr:`SocketcandBus.stats`), never silently;
* sends ``< echo >`` after ``keepalive`` seconds without a byte from the server, and calls the
  link dead after ``link_timeout`` seconds of silence (a cable pulled, a host gone), or when a
  send finds no room in the kernel's buffer for a whole tick (a server that stopped reading);
* raises :class:`~workshop_app.core.sources.opening.LinkBroken` from :meth:`recv` once the
  server has closed the connection and every frame received before is delivered, so a
  :class:`~workshop_app.core.sources.adapter.AdapterSource` notices the loss and reconnects.

Threads: the rx thread owns reading; :meth:`send` may be called from any thread (one lock per
element written); :meth:`recv` is for one reader at a time (python-can's Notifier): the batch
it pops from is its own, without a lock.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import can

from workshop_app.core.errors import SourceError
from workshop_app.core.sources.opening import LinkBroken
from workshop_app.core.sources.socketcand_wire import format_send, parse_elements

__all__ = ["SocketcandBus", "SocketcandClientStats", "SocketcandConnectError"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 29536
CONNECT_TIMEOUT = 3.0
# One read takes whatever the kernel has, up to this; bigger reads mean fewer, larger batches.
_RECV_SIZE = 256 * 1024
# An element longer than this without its '>' is garbage (an fdframe with 64 bytes is ~170).
_MAX_ELEMENT = 4096
_JOIN_TIMEOUT = 5.0
_CLOSED = object()


class SocketcandConnectError(SourceError, can.CanInitializationError):
    """Connecting or the handshake failed; the message is the plain reason with host:port.

    A :class:`SourceError` so the workshop reports it as it is, and a python-can
    ``CanInitializationError`` for any other program that opens this bus through ``can.Bus``.
    """


@dataclass(frozen=True, slots=True)
class SocketcandClientStats:
    """Counters of one connection (the rx thread writes them, anyone may read them)."""

    frames_received: int  # frames parsed off the socket, FD included
    fd_frames: int  # of those, CAN FD frames
    frames_dropped: int  # parsed but not queued: the reader fell ``max_queue`` frames behind
    frames_queued: int  # waiting for recv()
    echoes: int  # answers to our keep-alive
    complaints: int  # ``< error TEXT >`` answers of the server (e.g. to a send it refused)
    malformed: int  # elements that are not socketcand
    bytes_received: int


class SocketcandBus(can.BusABC):
    """A CAN bus served by a socketcand server, CAN FD frames included.

    Args:
        channel: The bus name on the server (``< open CHANNEL >``).
        host: The server's address.
        port: The server's TCP port.
        connect_timeout: Seconds for the TCP connect and for each handshake answer.
        fd: Ask the server for CAN FD frames (``< fdframes on >``); a refusal is tolerated.
        max_queue: Frames waiting for :meth:`recv` at most (besides the batch it is reading);
            beyond it frames are dropped and counted in :attr:`stats`.
        keepalive: Seconds of silence from the server before we send ``< echo >`` (0: never).
        link_timeout: Seconds of silence after which the link counts as dead (0: never).
        can_filters: python-can's software filters.

    Other keyword arguments python-can passes (``bitrate``, ``data_bitrate``, ...) are ignored:
    the server's interface has its own bit timing.

    Example::

        with can.Bus(interface="workshop-socketcand", host="127.0.0.1", port=29536, channel="can0") as bus:
            print(bus.recv(1.0), bus.stats)
    """

    def __init__(
        self,
        channel: str = "can0",
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        fd: bool = True,
        max_queue: int = 200_000,
        keepalive: float = 1.0,
        link_timeout: float = 5.0,
        can_filters: can.typechecking.CanFilters | None = None,
        **kwargs: Any,
    ) -> None:
        channel = str(channel)
        if not channel or any(ch.isspace() or ch in "<>" for ch in channel):
            raise ValueError(f"invalid socketcand bus name {channel!r}")
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self.host = str(host)
        self.port = int(port)
        self.where = f"{self.host}:{self.port}"
        self.channel = channel
        self.channel_info = f"socketcand {self.where} {channel}"
        self._connect_timeout = float(connect_timeout)
        self._keepalive = float(keepalive)
        self._link_timeout = float(link_timeout)
        self._max_queue = int(max_queue)
        # Counters: written by the rx thread only.
        self._frames = self._fd_frames = self._dropped = 0
        self._echoes = self._complaints = self._malformed = self._bytes = 0
        self.last_complaint: str | None = None
        # The hand-over: batches of parsed frames, then possibly one LinkBroken or _CLOSED. A
        # SimpleQueue: its put and blocking get run in C, cheaper than a Condition in Python.
        self._inbox: queue.SimpleQueue[list[can.Message] | LinkBroken | object] = queue.SimpleQueue()
        # Frames handed over / taken: each written by one thread only, so no lock is needed.
        self._delivered = 0
        self._taken = 0
        self._current: list[can.Message] = []  # the batch recv() pops from
        self._pos = 0
        self._failure: LinkBroken | None = None  # set by the rx thread when the link ends
        self._raised: LinkBroken | None = None  # what recv() raises from now on
        self._closing = False
        self._send_lock = threading.Lock()
        self._buffer = b""  # bytes read during the handshake past its last answer
        self._sock = self._connect()
        try:
            self.fd_frames_requested = self._handshake(fd)
            super().__init__(channel=channel, can_filters=can_filters, **kwargs)
        except BaseException:
            self._sock.close()
            raise
        self._can_protocol = can.CanProtocol.CAN_FD if fd else can.CanProtocol.CAN_20
        self._last_rx = time.monotonic()
        # The socket's timeout: how often the rx thread looks at the keep-alive, and how long a
        # send may wait for room in the kernel's buffer.
        self._tick = min(x for x in (self._keepalive, self._link_timeout, 0.5) if x > 0)
        self._sock.settimeout(self._tick)
        self._rx_thread = threading.Thread(
            target=self._rx_loop, name=f"socketcand-rx {self.where}", daemon=True
        )
        self._rx_thread.start()

    # -- connecting -----------------------------------------------------------------------------

    def _connect(self) -> socket.socket:
        timeout = self._connect_timeout
        try:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
        except ConnectionRefusedError as exc:
            raise SocketcandConnectError(
                f"socketcand server {self.where} refused the connection (is it running?)"
            ) from exc
        except TimeoutError as exc:
            raise SocketcandConnectError(
                f"socketcand server {self.where} did not accept the connection within {timeout:g} s"
            ) from exc
        except OSError as exc:
            raise SocketcandConnectError(
                f"socketcand server {self.where} is unreachable ({exc.strerror or exc})"
            ) from exc
        with contextlib.suppress(OSError):
            # Our sends are single elements (ISO-TP flow control among them): no Nagle delay.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _handshake(self, fd: bool) -> bool:
        """Greeting, open, (fdframes), rawmode; True if the server agreed to send FD frames."""
        greeting = self._answer("did not greet")
        if greeting != "hi":
            if greeting.startswith("error "):
                raise SocketcandConnectError(
                    f"socketcand server {self.where} turned the connection away: {greeting[6:]}"
                )
            raise SocketcandConnectError(
                f"socketcand server {self.where} greeted with {_shown(greeting)} instead of < hi >"
            )
        self._command(f"< open {self.channel} >")
        opened = self._answer(f"did not answer < open {self.channel} >")
        if opened != "ok":
            why = opened[6:] if opened.startswith("error ") else _shown(opened)
            raise SocketcandConnectError(
                f"socketcand server {self.where} could not open bus {self.channel!r}: {why}"
            )
        agreed = False
        if fd:
            # Asked in BCM mode, where nothing streams yet, so the answer is the next element.
            self._command("< fdframes on >")
            answer = self._answer("did not answer < fdframes on >")
            agreed = answer == "ok"
            if not agreed:
                log.info(
                    "socketcand server %s does not take < fdframes on > (%s): CAN FD frames arrive "
                    "only if its interface is CAN FD",
                    self.where,
                    _shown(answer),
                )
        self._command("< rawmode >")
        raw = self._answer("did not answer < rawmode >")
        if raw != "ok":
            raise SocketcandConnectError(f"socketcand server {self.where} refused raw mode: {_shown(raw)}")
        return agreed

    def _command(self, text: str) -> None:
        try:
            self._sock.sendall(text.encode("ascii"))
        except OSError as exc:
            raise SocketcandConnectError(
                f"socketcand server {self.where} dropped the connection during the handshake "
                f"({exc.strerror or exc})"
            ) from exc

    def _answer(self, what: str) -> str:
        """The next element's words, waiting at most connect_timeout; frames after it stay buffered."""
        deadline = time.monotonic() + self._connect_timeout
        while True:
            start = self._buffer.find(b"<")
            end = self._buffer.find(b">", max(start, 0))
            if start >= 0 and end >= 0:
                element = self._buffer[start + 1 : end].decode("latin-1")
                self._buffer = self._buffer[end + 1 :]
                return " ".join(element.split())
            if len(self._buffer) > _MAX_ELEMENT:
                raise SocketcandConnectError(
                    f"socketcand server {self.where} sent {len(self._buffer)} bytes that are not socketcand"
                )
            left = deadline - time.monotonic()
            if left <= 0:
                raise SocketcandConnectError(
                    f"socketcand server {self.where} accepted but {what} within {self._connect_timeout:g} s"
                )
            self._sock.settimeout(left)
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError as exc:
                raise SocketcandConnectError(
                    f"socketcand server {self.where} dropped the connection during the handshake "
                    f"({exc.strerror or exc})"
                ) from exc
            finally:
                self._sock.settimeout(None)
            if not data:
                raise SocketcandConnectError(
                    f"socketcand server {self.where} closed the connection during the handshake"
                )
            self._buffer += data

    # -- receiving ------------------------------------------------------------------------------

    def _rx_loop(self) -> None:
        sock = self._sock
        tail = self._buffer
        self._buffer = b""
        last_ping = 0.0
        try:
            if tail:
                tail = self._take(tail)
            while not self._closing:
                try:
                    # A socket timeout instead of select(): the wait happens in C, one call per read.
                    data = sock.recv(_RECV_SIZE)
                except TimeoutError:
                    now = time.monotonic()
                    silent = now - self._last_rx
                    if self._link_timeout > 0 and silent >= self._link_timeout:
                        self._fail(
                            f"the server sent nothing for {silent:.1f} s, not even an answer to "
                            f"< echo > (socketcand {self.where})"
                        )
                        return
                    if (
                        self._keepalive > 0
                        and silent >= self._keepalive
                        and now - last_ping >= self._keepalive
                    ):
                        last_ping = now
                        self._write(b"< echo >")
                    continue
                if not data:
                    if not self._closing:
                        self._fail(f"the server closed the connection (socketcand {self.where})")
                    return
                self._last_rx = time.monotonic()
                self._bytes += len(data)
                tail = self._take(tail + data if tail else data)
        except OSError as exc:
            if not self._closing:
                self._fail(f"connection to socketcand server {self.where} broke ({exc.strerror or exc})")
        except Exception as exc:  # a bug must end in a plain error on recv(), not a silent thread
            log.exception("socketcand client %s: receive thread failed", self.where)
            self._fail(f"socketcand client {self.where} failed: {exc}")

    def _take(self, data: bytes) -> bytes:
        """Parse the complete elements of ``data``, queue their frames; return the unfinished rest."""
        cut = data.rfind(b">") + 1
        if cut == 0:
            if len(data) > _MAX_ELEMENT:
                self._malformed += 1
                log.warning("socketcand server %s: %d bytes without '>' discarded", self.where, len(data))
                return b""
            return data
        parsed = parse_elements(data[:cut].decode("latin-1"), self.channel)
        self._echoes += parsed.echoes
        if parsed.complaints:
            self._complaints += len(parsed.complaints)
            self.last_complaint = parsed.complaints[-1]
            for text in parsed.complaints:
                log.warning("socketcand server %s: %s", self.where, text)
        if parsed.malformed:
            if not self._malformed:
                log.warning(
                    "socketcand server %s sent something that is not socketcand: %r",
                    self.where,
                    parsed.malformed[0],
                )
            self._malformed += len(parsed.malformed)
        messages = parsed.messages
        if messages:
            self._deliver(messages)
            # Counted after the hand-over, so a reader of stats never sees frames without their drops.
            self._fd_frames += parsed.fd_frames
            self._frames += len(messages)
        return data[cut:]

    def _deliver(self, messages: list[can.Message]) -> None:
        room = self._max_queue - (self._delivered - self._taken)
        if len(messages) > room:
            if not self._dropped:
                log.warning(
                    "socketcand client %s: %d frames wait to be read; further frames are dropped (counted)",
                    self.where,
                    self._max_queue,
                )
            self._dropped += len(messages) - max(room, 0)
            messages = messages[: max(room, 0)]
            if not messages:
                return
        self._delivered += len(messages)
        self._inbox.put(messages)

    def _fail(self, reason: str) -> None:
        if self._failure is None and not self._closing:
            self._failure = LinkBroken(reason)
            log.info("%s", reason)
            self._inbox.put(self._failure)  # after every batch: frames first, then the error

    def recv(self, timeout: float | None = None) -> can.Message | None:
        # Without filters, skip BusABC.recv's per-frame bookkeeping: at tens of thousands of
        # frames a second it costs as much as handing the frame over.
        if self._filters is None:
            return self._recv_internal(timeout)[0]
        return super().recv(timeout)

    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        # The current batch belongs to the one reader: no lock, no queue until it is used up.
        pos = self._pos
        current = self._current
        if pos < len(current):
            self._pos = pos + 1
            return current[pos], False
        if self._raised is not None:
            raise self._raised
        if self._closing:
            return None, False
        try:
            if timeout is not None and timeout <= 0:
                item = self._inbox.get_nowait()
            else:
                item = self._inbox.get(timeout=timeout)
        except queue.Empty:
            return None, False
        if isinstance(item, LinkBroken):
            self._raised = item
            raise item
        if not isinstance(item, list):  # _CLOSED: shut down while waiting
            self._inbox.put(item)
            return None, False
        self._taken += len(item)
        self._current = item
        self._pos = 1
        return item[0], False

    def recv_batch(self, timeout: float | None = None) -> list[can.Message]:
        """Every frame received and not yet read, at once (waiting up to ``timeout`` for one);
        ``[]`` when none came. Raises as :meth:`recv` does. A reader taking whole batches
        (see ``sources/batch_notifier.py``) skips a call and a queue look per frame."""
        pos, current = self._pos, self._current
        if pos >= len(current):
            if self._recv_internal(timeout)[0] is None:
                return []
            pos, current = 0, self._current
        self._pos = len(current)
        batch = current[pos:] if pos else current
        if self._filters is not None:
            batch = [msg for msg in batch if self._matches_filters(msg)]
        return batch

    # -- sending --------------------------------------------------------------------------------

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        """Transmit ``msg`` (classic, CAN FD or remote) as one socketcand element.

        ``timeout`` is not used: the element goes to the kernel's send buffer at once. After
        :meth:`shutdown` a frame is dropped quietly (an ISO-TP stack may still hold this bus
        while the source reconnects; the source reports the loss itself).
        """
        try:
            line = format_send(msg)
        except ValueError as exc:
            raise can.CanOperationError(f"socketcand {self.where}: frame not sent: {exc}") from exc
        if self._is_shutdown:
            log.debug("socketcand %s: frame %X dropped, the bus was closed", self.where, msg.arbitration_id)
            return
        if self._failure is not None:
            raise can.CanOperationError(f"{self._failure}; frame {msg.arbitration_id:X} not sent")
        try:
            self._write(line.encode("ascii"))
        except OSError as exc:
            raise can.CanOperationError(
                f"socketcand server {self.where}: frame {msg.arbitration_id:X} not sent ({exc.strerror or exc})"
            ) from exc

    def _write(self, data: bytes) -> None:
        with self._send_lock:
            try:
                self._sock.sendall(data)
            except TimeoutError:
                # The server took nothing for a whole tick: part of an element may be out, so
                # the stream is spoilt. End the link; the source reconnects.
                self._fail(
                    f"the server did not take what we sent within {self._tick:g} s (socketcand {self.where})"
                )
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)
                raise

    # -- state ----------------------------------------------------------------------------------

    @property
    def stats(self) -> SocketcandClientStats:
        queued = self._delivered - self._taken + max(0, len(self._current) - self._pos)
        return SocketcandClientStats(
            frames_received=self._frames,
            fd_frames=self._fd_frames,
            frames_dropped=self._dropped,
            frames_queued=queued,
            echoes=self._echoes,
            complaints=self._complaints,
            malformed=self._malformed,
            bytes_received=self._bytes,
        )

    def fileno(self) -> int:
        raise NotImplementedError("frames come through the receive thread, not a readable socket")

    def shutdown(self) -> None:
        """Close the connection and join the receive thread. Safe to call more than once."""
        if self._is_shutdown:
            return
        super().shutdown()
        self._closing = True
        self._inbox.put(_CLOSED)  # a reader waiting in recv() returns None
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the rx thread's select at once
        if self._rx_thread.is_alive() and self._rx_thread is not threading.current_thread():
            self._rx_thread.join(_JOIN_TIMEOUT)
        with contextlib.suppress(OSError):
            self._sock.close()


def _shown(words: str) -> str:
    return f"< {words} >" if words else "an empty element"
