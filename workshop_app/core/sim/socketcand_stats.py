"""The socketcand server's counters: totals over every client it has had, connected or gone.

Written by three threads: the loop (connections, refusals, retired clients, under ``lock``),
the bus Notifier (``frames_from_bus``, ``inbox_dropped``: plain ints, one writer each) and read
by anyone through :meth:`StatsBook.snapshot`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from workshop_app.core.sim.socketcand_connection import Connection


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


def _counters(conn: Connection) -> tuple[int, int, int, int, int]:
    return conn.frames_sent, conn.frames_received, conn.frames_dropped, conn.fd_skipped, conn.protocol_errors


class StatsBook:
    """Counters of one server; a client's counters move here when it disconnects."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.connections = 0
        self.refused = 0
        self.frames_from_bus = 0
        self.inbox_dropped = 0  # frames the loop never saw (its inbox was full)
        self._retired = [0, 0, 0, 0, 0]  # sent, received, dropped, fd skipped, errors

    def retire(self, conn: Connection) -> None:
        """Keep a disconnected client's counters (caller holds ``lock``)."""
        for i, value in enumerate(_counters(conn)):
            self._retired[i] += value

    def snapshot(self, connected: Callable[[], tuple[Connection, ...]]) -> ServerStats:
        # The clients are read under the lock: a disconnect retires a client and removes it
        # from the table in one hold of it, so no client is counted twice or not at all.
        with self.lock:
            clients = connected()
            sent, received, dropped, skipped, errors = self._retired
            for c in clients:
                s, r, d, k, e = _counters(c)
                sent, received, dropped, skipped, errors = (
                    sent + s,
                    received + r,
                    dropped + d,
                    skipped + k,
                    errors + e,
                )
            return ServerStats(
                clients=len(clients),
                connections=self.connections,
                refused=self.refused,
                frames_from_bus=self.frames_from_bus,
                frames_sent=sent,
                frames_received=received,
                frames_dropped=dropped + self.inbox_dropped,
                fd_skipped=skipped,
                protocol_errors=errors,
            )
