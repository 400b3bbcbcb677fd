"""Finding the ECUs on a bus: an OBD-II functional request and a physical address sweep.

The sweep sends a TesterPresent single frame (``02 3E 00``) to each candidate request id and
listens for any answer, positive (``02 7E 00``) or negative (``03 7F 3E xx``): an ECU that
answers at all is there. 11-bit ids are swept one after the other with a short gap, and an
answer is attributed to the request sent just before it; 29-bit normal-fixed addresses carry
the ECU's address in the response id itself. Frames go through the connection's bus and are
read by a listener on its notifier, like everything else.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

import can

from workshop_app.core.diag.client import EcuAddress

OBD_FUNCTIONAL_11 = 0x7DF
OBD_FUNCTIONAL_29 = 0x18DB33F1
TESTER = 0xF1
PAD = 0xCC
SWEEP_11 = range(0x700, 0x7F8)


def _frame(can_id: int, data: bytes, extended: bool) -> can.Message:
    return can.Message(arbitration_id=can_id, data=data.ljust(8, bytes([PAD])), is_extended_id=extended)


class _Collector(can.Listener):
    """Keeps the frames matching ``accept`` (called on the notifier thread)."""

    def __init__(self, accept: Callable[[can.Message], bool]) -> None:
        self.accept = accept
        self.frames: list[tuple[float, can.Message]] = []
        self.lock = threading.Lock()

    def on_message_received(self, msg: can.Message) -> None:
        if not msg.is_error_frame and not msg.is_remote_frame and self.accept(msg):
            with self.lock:
                self.frames.append((time.monotonic(), msg))


def _is_tp_answer(msg: can.Message) -> bool:
    d = msg.data
    return (len(d) >= 3 and d[0] == 0x02 and d[1] == 0x7E) or (
        len(d) >= 4 and d[0] == 0x03 and d[1] == 0x7F and d[2] == 0x3E
    )


def obd_discover(bus: can.BusABC, notifier: can.Notifier, *, wait: float = 0.3) -> list[EcuAddress]:
    """ECUs answering the OBD-II request ``01 00`` on 0x7DF (11-bit) and 0x18DB33F1 (29-bit)."""

    def accept(msg: can.Message) -> bool:
        ok_id = (0x7E8 <= msg.arbitration_id <= 0x7EF and not msg.is_extended_id) or (
            msg.is_extended_id and msg.arbitration_id & 0xFFFFFF00 == 0x18DAF100
        )
        return ok_id and len(msg.data) >= 3 and msg.data[1] == 0x41 and msg.data[2] == 0x00

    found = _Collector(accept)
    notifier.add_listener(found)
    try:
        bus.send(_frame(OBD_FUNCTIONAL_11, b"\x02\x01\x00", False))
        bus.send(_frame(OBD_FUNCTIONAL_29, b"\x02\x01\x00", True))
        time.sleep(wait)
    finally:
        notifier.remove_listener(found)
    out: dict[tuple[int, bool], EcuAddress] = {}
    for _, msg in found.frames:
        rid = msg.arbitration_id
        if msg.is_extended_id:
            source = rid & 0xFF
            out[(rid, True)] = EcuAddress(0x18DA0000 | source << 8 | TESTER, rid, True)
        else:
            out[(rid, False)] = EcuAddress(rid - 8, rid, False)
    return sorted(out.values(), key=lambda a: (a.extended, a.request_id))


def sweep(
    bus: can.BusABC,
    notifier: can.Notifier,
    *,
    ids_11: Iterable[int] = SWEEP_11,
    targets_29: Iterable[int] = range(0x100),
    gap: float = 0.003,
    wait: float = 0.2,
    cancel: threading.Event | None = None,
) -> list[EcuAddress]:
    """Physical addresses that answer TesterPresent (11-bit ids and 29-bit normal-fixed targets)."""
    ids_11 = [i for i in ids_11 if i != OBD_FUNCTIONAL_11]
    requested = set(ids_11)
    sent: list[tuple[float, int]] = []

    def accept(msg: can.Message) -> bool:
        if msg.is_extended_id:
            return msg.arbitration_id & 0xFFFFFF00 == 0x18DA0000 | TESTER << 8 and _is_tp_answer(msg)
        # Answers use ids of the swept range too; our own requests never look like answers.
        return _is_tp_answer(msg)

    answers = _Collector(accept)
    notifier.add_listener(answers)
    try:
        for can_id in ids_11:
            if cancel is not None and cancel.is_set():
                break
            sent.append((time.monotonic(), can_id))
            bus.send(_frame(can_id, b"\x02\x3e\x00", False))
            time.sleep(gap)
        for target in targets_29:
            if target == TESTER or (cancel is not None and cancel.is_set()):
                continue
            bus.send(_frame(0x18DA0000 | target << 8 | TESTER, b"\x02\x3e\x00", True))
            time.sleep(gap / 3)
        time.sleep(wait)
    finally:
        notifier.remove_listener(answers)
    out: dict[tuple[int, bool], EcuAddress] = {}
    times = [t for t, _ in sent]
    for seen, msg in answers.frames:
        rid = msg.arbitration_id
        if msg.is_extended_id:
            source = rid & 0xFF
            out[(rid, True)] = EcuAddress(0x18DA0000 | source << 8 | TESTER, rid, True)
            continue
        # The request just before the answer; the usual +8 pairing wins when it was sent.
        if rid - 8 in requested:
            out[(rid, False)] = EcuAddress(rid - 8, rid, False)
            continue
        before = [i for i, t in enumerate(times) if t <= seen]
        if before:
            out.setdefault((rid, False), EcuAddress(sent[before[-1]][1], rid, False))
    return sorted(out.values(), key=lambda a: (a.extended, a.request_id))
