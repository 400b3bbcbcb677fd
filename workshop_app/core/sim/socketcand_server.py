"""Share a python-can bus with other programs over the socketcand TCP protocol.

socketcand (linux-can/socketcand) is the ASCII protocol that python-can's ``socketcand``
interface, SavvyCAN and Kayak speak. This machine has no SocketCAN, so instead of running the
real daemon on a vcan interface we serve any python-can bus ourselves.

The protocol (what a client sends and sees, CAN FD, python-can's quirks) is described in
:mod:`workshop_app.core.sim.socketcand_protocol`. Specific to this server:

* Beyond ``max_clients`` connected clients, a new connection gets
  ``< error too many clients (limit N) >`` instead of ``< hi >`` and is closed.
* A client that reads more slowly than the bus runs loses its own newest frames once
  ``max_queue`` frames wait for it; they are counted (``frames_dropped``) and nobody else,
  the bus included, waits for it.
* No UDP discovery beacon: traffic of this tool stays on loopback.

Threads
-------
One event-loop thread (``socketcand-loop``) serves every connection with a selector: it
accepts, reads commands, answers and writes frames without ever blocking on a socket. The bus
is read by a :class:`can.Notifier` whose callback only appends the message to the loop's inbox
(it never touches a socket, so the car's side never waits for a client). Frames clients send
go to the bus from one writer thread (``socketcand-tx``), because ``bus.send`` may block on a
real adapter. Three threads in all, whatever the number of clients.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import queue
import selectors
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from types import TracebackType

import can

from workshop_app.core.sim.socketcand_connection import ClientStats, Connection, Mode
from workshop_app.core.sim.socketcand_protocol import format_message, quote

__all__ = [
    "DEFAULT_MAX_CLIENTS",
    "DEFAULT_PORT",
    "ClientStats",
    "ServerStats",
    "SocketcandServer",
    "format_message",
]

log = logging.getLogger(__name__)

DEFAULT_PORT = 29536
DEFAULT_MAX_CLIENTS = 64

_BUS_SEND_TIMEOUT = 1.0
_JOIN_TIMEOUT = 5.0
# Frames waiting for the loop; only reached if the loop thread is starved for seconds.
_INBOX_LIMIT = 200_000
# Frames from clients waiting for the bus writer; beyond it a client's frame is refused.
_TX_QUEUE_LIMIT = 1000
# Frames fanned out per loop turn, so reading clients is never put off for long.
_BATCH_LIMIT = 5000
_ACCEPTS_PER_TURN = 32
# Refusing costs an accept, a send and a close: at most 1,000 a second (measured: ~6 % of a
# core), so a connection storm cannot take the loop or the car's CPU from connected clients.
# Attempts beyond that wait in the backlog for their refusal.
_REFUSALS_PER_SLOT = 10
_REFUSAL_SLOT = 0.01
_REFUSAL_LOG_INTERVAL = 10.0
_LISTEN_BACKLOG = 128
_SEND_BUFFER = 256 * 1024


@dataclass(frozen=True, slots=True)
class ServerStats:
    """Totals over every client the server has had, connected or gone."""

    clients: int  # connected now
    connections: int  # accepted since start()
    refused: int  # connections turned away because max_clients were connected
    frames_from_bus: int
    frames_sent: int
    frames_received: int
    frames_dropped: int
    fd_skipped: int
    protocol_errors: int


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
        max_clients: Clients served at once; further connections are refused with
            ``< error too many clients (limit N) >``.

    Example::

        with SocketcandServer(can.Bus(interface="virtual", channel="car"), port=0) as server:
            print(server.address, server.stats)
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
        max_clients: int = DEFAULT_MAX_CLIENTS,
    ) -> None:
        if not channel or any(ch.isspace() or ch in "<>" for ch in channel):
            raise ValueError(f"invalid socketcand channel name {channel!r}")
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        if max_clients < 1:
            raise ValueError("max_clients must be at least 1")
        self._bus = bus
        self._host = host
        self._port = port
        self.channel = channel
        self.fd = fd
        self.max_queue = max_queue
        self.raw_start_delay = raw_start_delay
        self.max_clients = max_clients
        self._lock = threading.Lock()
        self._stop_lock = threading.Lock()
        self._state = "new"
        self._stopping = False
        # Replaced, never mutated, so other threads can read it without a lock.
        self._clients: tuple[Connection, ...] = ()
        self._retired = [0, 0, 0, 0, 0]  # sent, received, dropped, fd skipped, errors
        self._connections = 0
        self._refused = 0
        self._frames_from_bus = 0
        self._inbox_dropped = 0
        # Filled by the Notifier and the bus writer, emptied by the loop: (frame, sending client).
        self._inbox: deque[tuple[can.Message, Connection | None]] = deque()
        self._tx_errors: deque[tuple[Connection, str]] = deque()
        self._tx_queue: queue.SimpleQueue[tuple[can.Message, Connection] | None] = queue.SimpleQueue()
        self._wake_pending = False
        self._notifier: can.Notifier | None = None
        self._listen_sock: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._selector: selectors.BaseSelector | None = None
        self._loop_thread: threading.Thread | None = None
        self._tx_thread: threading.Thread | None = None
        self._address: tuple[str, int] | None = None
        # Loop-thread state.
        self._paused: set[Connection] = set()
        self._listen_paused_until = 0.0
        self._slot_start = 0.0
        self._slot_refusals = 0
        self._refusal_logged_at = -_REFUSAL_LOG_INTERVAL
        self._refused_logged = 0

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
                refused=self._refused,
                frames_from_bus=self._frames_from_bus,
                frames_sent=sent,
                frames_received=received,
                frames_dropped=dropped + self._inbox_dropped,
                fd_skipped=skipped,
                protocol_errors=errors,
            )

    def client_stats(self) -> list[ClientStats]:
        """Counters of each connected client, in connection order."""
        return [c.snapshot() for c in self._clients]

    def start(self) -> None:
        """Listen, attach to the bus and start serving clients.

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
            self._listen_sock = socket.create_server(
                (self._host, self._port), family=family, backlog=_LISTEN_BACKLOG
            )
            self._listen_sock.setblocking(False)
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)
            self._selector = selectors.DefaultSelector()
            self._selector.register(self._listen_sock, selectors.EVENT_READ, None)
            self._selector.register(self._wake_r, selectors.EVENT_READ, self._wake_r)
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
        self._tx_thread = threading.Thread(target=self._tx_loop, name="socketcand-tx", daemon=True)
        self._loop_thread = threading.Thread(target=self._loop, name="socketcand-loop", daemon=True)
        self._tx_thread.start()
        self._loop_thread.start()
        with self._lock:
            self._state = "running"
        if not _is_loopback(host):
            log.warning("socketcand server listens on %s: any host that reaches it can use the bus", host)
        log.info(
            "socketcand server on %s:%d serving bus %s (at most %d clients)",
            host,
            port,
            self.channel,
            self.max_clients,
        )

    def stop(self) -> None:
        """Close the listening socket and every client and join all threads. Idempotent."""
        with self._stop_lock:
            with self._lock:
                if self._state != "running":
                    self._state = "stopped"
                    return
                self._stopping = True
            if self._wake_w is not None:
                with contextlib.suppress(OSError):
                    self._wake_w.send(b"\0")
            for thread in (self._loop_thread,):
                if thread is not None:
                    thread.join(_JOIN_TIMEOUT)
            if self._notifier is not None:
                self._notifier.stop(timeout=_JOIN_TIMEOUT)
            self._tx_queue.put(None)
            if self._tx_thread is not None:
                self._tx_thread.join(_JOIN_TIMEOUT)
            for thread in (self._loop_thread, self._tx_thread):
                if thread is not None and thread.is_alive():
                    log.warning("socketcand: thread %s did not stop", thread.name)
            self._close_sockets()
            with self._lock:
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

    # -- other threads: Notifier callback, bus writer ---------------------------------------------

    def _on_bus_message(self, msg: can.Message) -> None:
        # The car's side (Notifier thread): append and wake, never a socket call that can block.
        self._frames_from_bus += 1
        if not self._clients:
            return
        if len(self._inbox) >= _INBOX_LIMIT:
            self._inbox_dropped += 1
            return
        self._inbox.append((msg, None))
        self._wake()

    def _wake(self) -> None:
        # One byte per loop turn is enough: the loop clears the flag before it drains.
        if self._wake_pending or self._wake_w is None:
            return
        self._wake_pending = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _transmit(self, sender: Connection, msg: can.Message) -> None:
        """Loop thread: hand a client's frame to the bus writer."""
        if self._tx_queue.qsize() >= _TX_QUEUE_LIMIT:
            sender.error(f"bus busy: {_TX_QUEUE_LIMIT} frames wait to be sent, frame not sent")
            return
        self._tx_queue.put((msg, sender))

    def _tx_loop(self) -> None:
        while (item := self._tx_queue.get()) is not None:
            msg, sender = item
            try:
                self._bus.send(msg, timeout=_BUS_SEND_TIMEOUT)
            except Exception as exc:  # whatever the bus raises is the sender's problem only
                log.warning("socketcand client %s: bus refused frame %s: %s", sender.name, msg, exc)
                self._tx_errors.append((sender, f"could not send frame: {quote(str(exc), 80)}"))
            else:
                # On the bus: now the other clients see it, as nodes on a real bus would.
                self._inbox.append((msg, sender))
            self._wake()

    # -- the loop thread --------------------------------------------------------------------------

    def _loop(self) -> None:
        sel = self._selector
        assert sel is not None
        try:
            while not self._stopping:
                events = sel.select(self._timeout(time.monotonic()))
                now = time.monotonic()
                touched: set[Connection] = set()
                for key, mask in events:
                    if key.data is None:
                        self._accept(now)
                    elif key.data is self._wake_r:
                        with contextlib.suppress(OSError):
                            while self._wake_r.recv(4096):
                                pass
                        # Only after draining: a wake-up sent while we drained must stay
                        # visible, or the flag would stay set with no byte to wake us.
                        self._wake_pending = False
                    else:
                        conn: Connection = key.data
                        if mask & selectors.EVENT_READ and not conn.read():
                            self._disconnect(conn)
                            continue
                        touched.add(conn)
                touched.update(self._fan_out())
                for conn in [c for c in self._paused if c.paused_until <= now]:
                    self._paused.discard(conn)
                    touched.add(conn)
                for conn in touched:
                    if not conn.closed:
                        self._flush(conn, now)
                if self._listen_paused_until and now >= self._listen_paused_until:
                    self._listen_paused_until = 0.0
                    sel.register(self._listen_sock, selectors.EVENT_READ, None)  # type: ignore[arg-type]
        except Exception:
            log.exception("socketcand server: event loop failed")
        finally:
            for conn in self._clients:
                self._disconnect(conn)
            self._paused.clear()
            sel.close()

    def _timeout(self, now: float) -> float | None:
        waits = [c.paused_until for c in self._paused]
        if self._listen_paused_until:
            waits.append(self._listen_paused_until)
        return max(0.0, min(waits) - now) if waits else None

    def _accept(self, now: float) -> None:
        listen = self._listen_sock
        assert listen is not None and self._selector is not None
        for _ in range(_ACCEPTS_PER_TURN):
            if len(self._clients) >= self.max_clients:
                if now - self._slot_start >= _REFUSAL_SLOT:
                    self._slot_start, self._slot_refusals = now, 0
                if self._slot_refusals >= _REFUSALS_PER_SLOT:
                    # The rest wait in the backlog and are refused in the next slots.
                    self._pause_listening(self._slot_start + _REFUSAL_SLOT)
                    return
            try:
                sock, peer = listen.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # e.g. out of file descriptors: wait a little instead of spinning
                log.warning("socketcand server: accept failed: %s", exc)
                self._pause_listening(now + 0.1)
                return
            if len(self._clients) >= self.max_clients:
                self._refuse(sock, now)
            else:
                self._add(sock, (str(peer[0]), int(peer[1])), now)

    def _pause_listening(self, until: float) -> None:
        assert self._selector is not None and self._listen_sock is not None
        if not self._listen_paused_until:
            self._selector.unregister(self._listen_sock)
        self._listen_paused_until = until

    def _refuse(self, sock: socket.socket, now: float) -> None:
        self._slot_refusals += 1
        with self._lock:
            self._refused += 1
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.send(f"< error too many clients (limit {self.max_clients}) >".encode("ascii"))
            # Anything the peer already said would turn our close into a reset that can
            # destroy the reply before it is read.
            sock.recv(4096)
        with contextlib.suppress(OSError):
            sock.close()
        if now - self._refusal_logged_at >= _REFUSAL_LOG_INTERVAL:
            log.warning(
                "socketcand server: client limit %d reached, %d connection(s) refused",
                self.max_clients,
                self._refused - self._refused_logged,
            )
            self._refusal_logged_at, self._refused_logged = now, self._refused

    def _add(self, sock: socket.socket, peer: tuple[str, int], now: float) -> None:
        assert self._selector is not None
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            # Frames are already batched; don't let Nagle add latency on top.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # A fixed kernel buffer instead of one that grows to megabytes: what a slow reader
            # has not taken stays in our queue, where it is bounded and counted.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER)
        conn = Connection(self, sock, peer)
        self._selector.register(sock, selectors.EVENT_READ, conn)
        with self._lock:
            self._clients = (*self._clients, conn)
            self._connections += 1
        conn.reply("< hi >")
        self._flush(conn, now)
        log.info("socketcand client %s connected (%d connected)", conn.name, len(self._clients))

    def _disconnect(self, conn: Connection) -> None:
        if conn.closed:
            return
        assert self._selector is not None
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.sock)
        conn.close()
        self._paused.discard(conn)
        with self._lock:
            self._clients = tuple(c for c in self._clients if c is not conn)
            for i, value in enumerate(
                (
                    conn.frames_sent,
                    conn.frames_received,
                    conn.frames_dropped,
                    conn.fd_skipped,
                    conn.protocol_errors,
                )
            ):
                self._retired[i] += value
        log.info(
            "socketcand client %s disconnected: %d frames sent, %d received, %d dropped, %d FD skipped",
            conn.name,
            conn.frames_sent,
            conn.frames_received,
            conn.frames_dropped,
            conn.fd_skipped,
        )

    def _flush(self, conn: Connection, now: float) -> None:
        assert self._selector is not None
        if not conn.flush(now):
            self._disconnect(conn)
            return
        if conn.paused_until > now:
            self._paused.add(conn)
        # Waiting for the socket to drain only makes sense while not paused on purpose.
        want_write = conn.has_output() and conn.paused_until <= now
        if want_write != conn.wants_write:
            conn.wants_write = want_write
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if want_write else 0)
            self._selector.modify(conn.sock, events, conn)

    def _fan_out(self) -> list[Connection]:
        """Queue the inbox's frames for every raw-mode client; return the clients that got some."""
        while self._tx_errors:
            refused_sender, reason = self._tx_errors.popleft()
            refused_sender.error(reason)
        inbox = self._inbox
        if not inbox:
            return []
        batch: list[tuple[bytes, bool, Connection | None]] = []
        while inbox and len(batch) < _BATCH_LIMIT:
            msg, origin = inbox.popleft()
            text, is_fd = format_message(msg)
            batch.append((text.encode("ascii"), is_fd, origin))
        if inbox:
            self._wake()  # more next turn, after the sockets had their say
        raw = [c for c in self._clients if c.mode is Mode.RAW]
        if not raw:
            return []
        lines = [line for line, _, _ in batch]
        if not any(is_fd or sender is not None for _, is_fd, sender in batch):
            # The common case: one joined chunk shared by every client.
            joined = b"".join(lines)
            for conn in raw:
                conn.queue_frames(lines, joined)
            return raw
        for conn in raw:
            chosen: list[bytes] = []
            for line, is_fd, sender in batch:
                if sender is conn:
                    continue  # a real bus does not echo a node's own frame to it
                if is_fd and not conn.fd_frames:
                    conn.fd_skipped += 1
                    continue
                chosen.append(line)
            if chosen:
                conn.queue_frames(chosen)
        return raw

    def _close_sockets(self) -> None:
        for sock in (self._listen_sock, self._wake_r, self._wake_w):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
