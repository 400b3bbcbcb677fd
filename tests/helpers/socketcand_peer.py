"""Second-process peer for the socketcand server tests.

Usage: ``python socketcand_peer.py HOST PORT COUNT [TIMEOUT]``

Connects with python-can's own socketcand client and answers each received frame with one
frame: id + 1, same id kind, data reversed. Prints ``done COUNT`` and exits 0 after COUNT
frames; exits 2 if they do not arrive within TIMEOUT seconds (default 10).
"""

from __future__ import annotations

import os
import sys
import time

import can


def main(argv: list[str]) -> int:
    host, port, count = argv[1], int(argv[2]), int(argv[3])
    timeout = float(argv[4]) if len(argv) > 4 else 10.0
    # python-can would merge CAN_* variables and config files into the explicit arguments.
    for key in [k for k in os.environ if k.startswith("CAN_")]:
        del os.environ[key]
    can.util.CONFIG_FILES = []

    bus = can.Bus(interface="socketcand", host=host, port=port, channel="can0")
    try:
        deadline = time.monotonic() + timeout
        answered = 0
        while answered < count:
            left = deadline - time.monotonic()
            if left <= 0:
                print(f"timeout after {answered} of {count} frames", file=sys.stderr)
                return 2
            msg = bus.recv(min(left, 0.5))
            if msg is None or msg.is_error_frame:
                continue
            reply = can.Message(
                arbitration_id=msg.arbitration_id + 1,
                is_extended_id=msg.is_extended_id,
                data=bytes(reversed(msg.data)),
            )
            bus.send(reply)
            answered += 1
        print(f"done {answered}", flush=True)
        return 0
    finally:
        bus.shutdown()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
