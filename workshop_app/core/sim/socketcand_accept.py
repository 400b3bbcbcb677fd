"""Accepting and keeping the socketcand server's clients (everything here runs on the loop thread).

Beyond ``max_clients`` a new connection gets ``< error too many clients (limit N) >`` instead of
``< hi >`` and is closed, at a bounded rate so a connection storm cannot take the loop from
connected clients. Each client's socket is registered with the loop's selector; it asks for
EVENT_WRITE only while it has output and is not holding on purpose.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
from collections.abc import Callable

from workshop_app.core.sim.socketcand_connection import Connection
from workshop_app.core.sim.socketcand_stats import StatsBook

log = logging.getLogger("workshop_app.core.sim.socketcand_server")

_ACCEPTS_PER_TURN = 32
# Refusing costs an accept, a send and a close: at most 1,000 a second (measured: ~6 % of a
# core), so a connection storm cannot take the loop or the car's CPU from connected clients.
# Attempts beyond that wait in the backlog for their refusal.
_REFUSALS_PER_SLOT = 10
_REFUSAL_SLOT = 0.01
_REFUSAL_LOG_INTERVAL = 10.0
_SEND_BUFFER = 256 * 1024


class ClientTable:
    """The listening socket and the connected clients of one server, on its selector.

    ``clients`` is a tuple replaced, never mutated, so other threads read it without a lock.
    """

    def __init__(
        self,
        selector: selectors.BaseSelector,
        listen: socket.socket,
        stats: StatsBook,
        max_clients: int,
    ) -> None:
        self.clients: tuple[Connection, ...] = ()
        self._selector = selector
        self._listen = listen
        self._stats = stats
        self._max_clients = max_clients
        self._paused: set[Connection] = set()
        self._listen_paused_until = 0.0
        self._slot_start = 0.0
        self._slot_refusals = 0
        self._refusal_logged_at = -_REFUSAL_LOG_INTERVAL
        self._refused_logged = 0

    # -- timing of the loop --------------------------------------------------------------------
    def timeout(self, now: float) -> float | None:
        """How long the loop may sleep: until a held client or the paused listener is due."""
        waits = [c.paused_until for c in self._paused]
        if self._listen_paused_until:
            waits.append(self._listen_paused_until)
        return max(0.0, min(waits) - now) if waits else None

    def due(self, now: float) -> list[Connection]:
        """Clients whose hold ended (to flush), and listening again once its pause is over."""
        ready = [c for c in self._paused if c.paused_until <= now]
        for conn in ready:
            self._paused.discard(conn)
        if self._listen_paused_until and now >= self._listen_paused_until:
            self._listen_paused_until = 0.0
            self._selector.register(self._listen, selectors.EVENT_READ, None)
        return ready

    # -- accepting -----------------------------------------------------------------------------
    def accept(self, now: float, connect: Callable[[socket.socket, tuple[str, int]], Connection]) -> None:
        """Take what waits in the backlog; ``connect`` builds a client's Connection."""
        for _ in range(_ACCEPTS_PER_TURN):
            if len(self.clients) >= self._max_clients:
                if now - self._slot_start >= _REFUSAL_SLOT:
                    self._slot_start, self._slot_refusals = now, 0
                if self._slot_refusals >= _REFUSALS_PER_SLOT:
                    # The rest wait in the backlog and are refused in the next slots.
                    self._pause_listening(self._slot_start + _REFUSAL_SLOT)
                    return
            try:
                sock, peer = self._listen.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # e.g. out of file descriptors: wait a little instead of spinning
                log.warning("socketcand server: accept failed: %s", exc)
                self._pause_listening(now + 0.1)
                return
            if len(self.clients) >= self._max_clients:
                self._refuse(sock, now)
            else:
                _prepare(sock)
                self._add(connect(sock, (str(peer[0]), int(peer[1]))), now)

    def _pause_listening(self, until: float) -> None:
        if not self._listen_paused_until:
            self._selector.unregister(self._listen)
        self._listen_paused_until = until

    def _refuse(self, sock: socket.socket, now: float) -> None:
        self._slot_refusals += 1
        with self._stats.lock:
            self._stats.refused += 1
            refused = self._stats.refused
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.send(f"< error too many clients (limit {self._max_clients}) >".encode("ascii"))
            # Anything the peer already said would turn our close into a reset that can
            # destroy the reply before it is read.
            sock.recv(4096)
        with contextlib.suppress(OSError):
            sock.close()
        if now - self._refusal_logged_at >= _REFUSAL_LOG_INTERVAL:
            log.warning(
                "socketcand server: client limit %d reached, %d connection(s) refused",
                self._max_clients,
                refused - self._refused_logged,
            )
            self._refusal_logged_at, self._refused_logged = now, refused

    def _add(self, conn: Connection, now: float) -> None:
        self._selector.register(conn.sock, selectors.EVENT_READ, conn)
        with self._stats.lock:
            self.clients = (*self.clients, conn)
            self._stats.connections += 1
        conn.reply("< hi >")
        self.flush(conn, now)
        log.info("socketcand client %s connected (%d connected)", conn.name, len(self.clients))

    # -- connected clients ---------------------------------------------------------------------
    def disconnect(self, conn: Connection) -> None:
        if conn.closed:
            return
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.sock)
        conn.close()
        self._paused.discard(conn)
        with self._stats.lock:
            self.clients = tuple(c for c in self.clients if c is not conn)
            self._stats.retire(conn)
        log.info(
            "socketcand client %s disconnected: %d frames sent, %d received, %d dropped, %d FD skipped",
            conn.name,
            conn.frames_sent,
            conn.frames_received,
            conn.frames_dropped,
            conn.fd_skipped,
        )

    def flush(self, conn: Connection, now: float) -> None:
        if not conn.flush(now):
            self.disconnect(conn)
            return
        if conn.paused_until > now:
            self._paused.add(conn)
        # Waiting for the socket to drain only makes sense while not paused on purpose.
        want_write = conn.has_output() and conn.paused_until <= now
        if want_write != conn.wants_write:
            conn.wants_write = want_write
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if want_write else 0)
            self._selector.modify(conn.sock, events, conn)

    def close_all(self) -> None:
        for conn in self.clients:
            self.disconnect(conn)
        self._paused.clear()


def _prepare(sock: socket.socket) -> None:
    """Non-blocking, no Nagle, a fixed send buffer: the settings of every accepted client."""
    sock.setblocking(False)
    with contextlib.suppress(OSError):
        # Frames are already batched; don't let Nagle add latency on top.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # A fixed kernel buffer instead of one that grows to megabytes: what a slow reader
        # has not taken stays in our queue, where it is bounded and counted.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER)
