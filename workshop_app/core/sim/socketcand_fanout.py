"""The bus side of the socketcand server: frames from the bus to every raw-mode client, and
frames clients send onto the bus.

The bus is read by a :class:`can.Notifier` whose callback only appends the message to the
loop's inbox (it never touches a socket, so the car's side never waits for a client). Frames
clients send go to the bus from one writer thread (``socketcand-tx``), because ``bus.send``
may block on a real adapter; once on the bus they join the inbox too, so the other clients
see them as nodes on a real bus would. The loop thread calls :meth:`FanOut.fan_out`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable

import can

from workshop_app.core.sim.socketcand_connection import Connection, Mode
from workshop_app.core.sim.socketcand_protocol import format_message, quote
from workshop_app.core.sim.socketcand_stats import StatsBook

log = logging.getLogger("workshop_app.core.sim.socketcand_server")

_BUS_SEND_TIMEOUT = 1.0
_JOIN_TIMEOUT = 5.0
# Frames waiting for the loop; only reached if the loop thread is starved for seconds.
_INBOX_LIMIT = 200_000
# Frames from clients waiting for the bus writer; beyond it a client's frame is refused.
_TX_QUEUE_LIMIT = 1000
# Frames fanned out per loop turn, so reading clients is never put off for long.
_BATCH_LIMIT = 5000


class _BusListener(can.Listener):
    def __init__(self, fan_out: FanOut) -> None:
        self._fan_out = fan_out
        self._errors = 0

    def on_message_received(self, msg: can.Message) -> None:
        self._fan_out.on_bus_message(msg)

    def on_error(self, exc: Exception) -> None:
        self._errors += 1
        if self._errors == 1:
            log.error("socketcand server: reading the bus failed: %s", exc)
        else:
            log.debug("socketcand server: reading the bus failed again: %s", exc)
        # A dead bus fails on every recv; handling the error keeps the Notifier alive, so
        # slow the retries down instead of spinning.
        time.sleep(0.1)


class FanOut:
    """Inbox, bus reader and bus writer of one server.

    ``clients`` returns the connected clients (a tuple replaced, never mutated); ``wake``
    makes the loop thread take a turn.
    """

    def __init__(
        self,
        bus: can.BusABC,
        stats: StatsBook,
        clients: Callable[[], tuple[Connection, ...]],
        wake: Callable[[], None],
    ) -> None:
        self._bus = bus
        self._stats = stats
        self._clients = clients
        self._wake = wake
        # Filled by the Notifier and the bus writer, emptied by the loop: (frame, sending client).
        self._inbox: deque[tuple[can.Message, Connection | None]] = deque()
        self._tx_errors: deque[tuple[Connection, str]] = deque()
        self._tx_queue: queue.SimpleQueue[tuple[can.Message, Connection] | None] = queue.SimpleQueue()
        self._notifier: can.Notifier | None = None
        self._tx_thread: threading.Thread | None = None

    def attach(self) -> None:
        """Start reading the bus (ValueError: the bus already has an active Notifier)."""
        try:
            self._notifier = can.Notifier(self._bus, [_BusListener(self)], timeout=0.05)
        except ValueError as exc:
            raise ValueError(
                "the bus already has an active can.Notifier; give the socketcand server its own "
                "bus handle (e.g. a second virtual bus on the same channel)"
            ) from exc

    def start_writer(self) -> None:
        self._tx_thread = threading.Thread(target=self._tx_loop, name="socketcand-tx", daemon=True)
        self._tx_thread.start()

    def stop(self) -> threading.Thread | None:
        """Stop reading the bus, then the writer; returns the writer if it did not stop."""
        if self._notifier is not None:
            self._notifier.stop(timeout=_JOIN_TIMEOUT)
        self._tx_queue.put(None)
        if self._tx_thread is not None:
            self._tx_thread.join(_JOIN_TIMEOUT)
            if self._tx_thread.is_alive():
                return self._tx_thread
        return None

    # -- Notifier thread -----------------------------------------------------------------------
    def on_bus_message(self, msg: can.Message) -> None:
        # The car's side: append and wake, never a socket call that can block.
        self._stats.frames_from_bus += 1
        if not self._clients():
            return
        if len(self._inbox) >= _INBOX_LIMIT:
            self._stats.inbox_dropped += 1
            return
        self._inbox.append((msg, None))
        self._wake()

    # -- bus writer ----------------------------------------------------------------------------
    def transmit(self, sender: Connection, msg: can.Message) -> None:
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

    # -- loop thread ---------------------------------------------------------------------------
    def fan_out(self) -> list[Connection]:
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
        raw = [c for c in self._clients() if c.mode is Mode.RAW]
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
