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

Threads and modules
-------------------
One event-loop thread (``socketcand-loop``, here) serves every connection with a selector: it
accepts, reads commands, answers and writes frames without ever blocking on a socket
(accepting and keeping clients: ``socketcand_accept``; one client: ``socketcand_connection``).
The bus side (``socketcand_fanout``) reads the bus on a :class:`can.Notifier` that only appends
to the loop's inbox, and writes clients' frames from one thread (``socketcand-tx``). Counters
live in ``socketcand_stats``. Three threads in all, whatever the number of clients.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import selectors
import socket
import threading
import time
from types import TracebackType

import can

from workshop_app.core.sim.socketcand_accept import ClientTable
from workshop_app.core.sim.socketcand_connection import ClientStats, Connection
from workshop_app.core.sim.socketcand_fanout import FanOut
from workshop_app.core.sim.socketcand_protocol import format_message
from workshop_app.core.sim.socketcand_stats import ServerStats, StatsBook

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

_JOIN_TIMEOUT = 5.0
_LISTEN_BACKLOG = 128


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
        self._stats = StatsBook()
        self._wake_pending = False
        self._fan_out = FanOut(bus, self._stats, lambda: self._clients, self._wake)
        self._table: ClientTable | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._listen_sock: socket.socket | None = None
        self._selector: selectors.BaseSelector | None = None
        self._loop_thread: threading.Thread | None = None
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
    def _clients(self) -> tuple[Connection, ...]:
        return self._table.clients if self._table is not None else ()

    @property
    def clients(self) -> int:
        """Number of connected clients (in any mode)."""
        return len(self._clients)

    @property
    def stats(self) -> ServerStats:
        """Totals over all clients since :meth:`start`, including disconnected ones."""
        return self._stats.snapshot(lambda: self._clients)

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
            self._table = ClientTable(self._selector, self._listen_sock, self._stats, self.max_clients)
            self._fan_out.attach()
        except BaseException:
            self._close_sockets()
            with self._lock:
                self._state = "stopped"
            raise
        host, port = self._listen_sock.getsockname()[:2]
        self._address = (host, port)
        self._fan_out.start_writer()
        self._loop_thread = threading.Thread(target=self._loop, name="socketcand-loop", daemon=True)
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
            if self._loop_thread is not None:
                self._loop_thread.join(_JOIN_TIMEOUT)
            stuck = [self._fan_out.stop()]
            if self._loop_thread is not None and self._loop_thread.is_alive():
                stuck.append(self._loop_thread)
            for thread in stuck:
                if thread is not None:
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

    # -- for connections and the bus side --------------------------------------------------------

    def _transmit(self, sender: Connection, msg: can.Message) -> None:
        """Loop thread: a client's frame for the bus."""
        self._fan_out.transmit(sender, msg)

    def _wake(self) -> None:
        # One byte per loop turn is enough: the loop clears the flag before it drains.
        if self._wake_pending or self._wake_w is None:
            return
        self._wake_pending = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    # -- the loop thread --------------------------------------------------------------------------

    def _loop(self) -> None:
        sel, table = self._selector, self._table
        assert sel is not None and table is not None
        try:
            while not self._stopping:
                events = sel.select(table.timeout(time.monotonic()))
                now = time.monotonic()
                touched: set[Connection] = set()
                for key, mask in events:
                    if key.data is None:
                        table.accept(now, lambda sock, peer: Connection(self, sock, peer))
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
                            table.disconnect(conn)
                            continue
                        touched.add(conn)
                touched.update(self._fan_out.fan_out())
                touched.update(table.due(now))
                for conn in touched:
                    if not conn.closed:
                        table.flush(conn, now)
        except Exception:
            log.exception("socketcand server: event loop failed")
        finally:
            table.close_all()
            sel.close()

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
