"""Option groups several commands share; here so a command can add them without importing the
cli (which imports every command)."""

from __future__ import annotations

import argparse

from workshop_app import cli_values as values
from workshop_app.core.sources.factory import SOCKETCAND_PORT


def add_bus_options(g: argparse._ArgumentGroup, interface_help: str) -> None:
    """The options that name one bus: interface, channel, bitrates, socketcand server."""
    g.add_argument("-i", "--interface", help=interface_help)
    g.add_argument("-c", "--channel", help="channel of the interface (e.g. can0, PCAN_USBBUS1)")
    g.add_argument("-b", "--bitrate", type=values.bitrate, help="nominal bitrate in bit/s")
    g.add_argument(
        "--data-bitrate", type=values.data_bitrate, help="CAN FD data bitrate in bit/s (implies --fd)"
    )
    g.add_argument("--fd", action="store_true", help="open the bus in CAN FD mode")
    g.add_argument("--host", help="socketcand server host (default 127.0.0.1)")
    g.add_argument("--port", type=values.port, help=f"socketcand server port (default {SOCKETCAND_PORT})")
