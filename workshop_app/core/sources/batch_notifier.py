"""BatchNotifier: python-can's Notifier, taking whole batches from buses that hand them out.

At tens of thousands of frames a second, the Notifier's per-frame work (a ``recv`` call, a lock,
a loop over the listeners) cost a capture process a fifth of its time on four buses. Our
socketcand client parses frames in batches anyway (``SocketcandBus.recv_batch``); for such a
bus the receive thread takes a batch at a time and gives it to listeners that take batches
(``on_messages``) in one call, and frame by frame to every other listener (ISO-TP, bus
discovery: they attach to it as to any Notifier). Any other bus is read as python-can does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import can

log = logging.getLogger(__name__)


@runtime_checkable
class BatchListener(Protocol):
    def on_messages(self, messages: Sequence[can.Message]) -> None: ...


class BatchNotifier(can.Notifier):
    """A ``can.Notifier`` (same listeners, errors and stop) that reads batches where it can."""

    def _rx_thread(self, bus: can.BusABC) -> None:
        recv_batch = getattr(bus, "recv_batch", None)
        if recv_batch is None or self._loop is not None:
            super()._rx_thread(bus)  # python-can's own per-frame loop (an asyncio loop too)
            return
        while not self._stopped:
            try:
                batch = recv_batch(self.timeout)
                if batch:
                    with self._lock:
                        self._deliver(batch)
            except Exception as exc:
                self.exception = exc
                if not self._on_error(exc):
                    raise
                log.debug("suppressed exception: %s", exc)

    def _deliver(self, batch: list[can.Message]) -> None:
        for listener in self.listeners:
            if isinstance(listener, BatchListener):
                listener.on_messages(batch)
            else:
                for msg in batch:
                    listener(msg)
