"""An ISO-TP stack on a shared notifier that only wakes up for its own frames.

can-isotp's ``NotifierBasedCanStack`` queues every frame the notifier sees and lets its relay
and main threads drop the ones for other addresses: two thread wake-ups per frame of the car's
own traffic, or of another ECU's link on the same notifier (the simulated car serves five ECUs
on one). Deciding in the notifier's thread keeps those threads asleep, and handing the frame
straight to the stack's main thread saves a third wake-up per frame.
"""

from __future__ import annotations

import can
import isotp

__all__ = ["AddressedCanStack"]


class AddressedCanStack(isotp.NotifierBasedCanStack):
    """``isotp.NotifierBasedCanStack`` that queues only frames its address accepts."""

    _ids_of: object = None  # the address _ids were taken from
    _ids: frozenset[int] = frozenset()

    def _rx_ids(self) -> frozenset[int]:
        """Arbitration ids the address can accept (physical and functional); empty: unknown."""
        if self._ids_of is not self.address:
            try:
                self._ids = frozenset(self.address.get_rx_arbitration_id(t) for t in isotp.TargetAddressType)
            except Exception:  # an addressing mode without fixed ids: is_for_me alone decides
                self._ids = frozenset()
            self._ids_of = self.address
        return self._ids

    def _on_message_received(self, msg: can.Message) -> None:
        if msg.is_error_frame or msg.is_remote_frame:
            return
        ids = self._rx_ids()
        if ids and msg.arbitration_id not in ids:
            return  # the cheap test first: most frames on a car's bus are someone else's
        frame = isotp.CanMessage(
            arbitration_id=msg.arbitration_id,
            data=bytes(msg.data),
            extended_id=msg.is_extended_id,
            is_fd=msg.is_fd,
            bitrate_switch=msg.bitrate_switch,
        )
        # The same test the stack's main thread applies (is_for_me), one thread earlier; the
        # frame goes straight to the queue the main thread reads. can-isotp's relay thread
        # (notifier queue -> that queue) would be one more wake-up per frame, and idles instead.
        if self.buffered_reader is not None and self.address.is_for_me(frame):
            self.rx_relay_queue.put(frame)
