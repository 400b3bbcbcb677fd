"""The ISO-TP stack the tester and the simulated ECUs use: only its own frames reach its threads.

Two real stacks on a python-can virtual bus, with foreign traffic beside them (other ids, the
right id with the wrong identifier width): every byte still arrives, and the stack's main thread
is handed exactly the frames of its own link.
"""

from __future__ import annotations

import queue
import threading

import can
import isotp

from workshop_app.core.diag.addressed_stack import AddressedCanStack

PARAMS = {"stmin": 0, "blocksize": 0, "tx_padding": 0xCC, "max_frame_size": 0xFFFF}


class CountingQueue(queue.Queue):
    """The stack's hand-over queue, counting the frames put into it (wake-up markers aside)."""

    def __init__(self) -> None:
        super().__init__()
        self.frames = 0

    def put(self, item, block=True, timeout=None) -> None:
        if item is not None:
            self.frames += 1
        super().put(item, block, timeout)


def test_only_the_links_own_frames_reach_the_stack_and_every_byte_arrives():
    channel = "addressed-stack"
    buses = [can.Bus(interface="virtual", channel=channel) for _ in range(3)]
    notifiers = [can.Notifier(b, [], timeout=0.05) for b in buses[:2]]
    tester = AddressedCanStack(
        buses[0],
        notifiers[0],
        address=isotp.Address(isotp.AddressingMode.Normal_11bits, txid=0x7E0, rxid=0x7E8),
        params=PARAMS,
    )
    ecu = AddressedCanStack(
        buses[1],
        notifiers[1],
        address=isotp.Address(isotp.AddressingMode.Normal_11bits, txid=0x7E8, rxid=0x7E0),
        params=PARAMS,
    )
    ecu.rx_relay_queue = CountingQueue()
    stop = threading.Event()

    def noise() -> None:  # the car's own traffic, and a 29-bit frame with the ECU's id
        n = 0
        while not stop.is_set():
            buses[2].send(can.Message(arbitration_id=0x100 + n % 0x100, data=bytes(8), is_extended_id=False))
            buses[2].send(can.Message(arbitration_id=0x7E0, data=b"\x10\x20" + bytes(6), is_extended_id=True))
            n += 1
            stop.wait(0.0005)

    noisy = threading.Thread(target=noise, daemon=True)
    tester.start()
    ecu.start()
    noisy.start()
    try:
        request = (bytes(range(256)) * 16)[:4095]  # a first frame and 585 consecutive frames
        tester.send(request)
        assert ecu.recv(block=True, timeout=10) == request
        answer = bytes(reversed(request))
        ecu.send(answer)
        assert tester.recv(block=True, timeout=10) == answer
        # The request's first and consecutive frames, the tester's flow control for the answer:
        # nothing of the noise.
        assert ecu.rx_relay_queue.frames == 1 + 585 + 1
    finally:
        stop.set()
        noisy.join(2)
        tester.stop()
        ecu.stop()
        for n in notifiers:
            n.stop()
        for b in buses:
            b.shutdown()
