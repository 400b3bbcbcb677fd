"""The options of `workshop dtc watch`, apart from the command so `workshop --help` stays light."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from workshop_app import cli_values as values


def add_watch_parser(
    dsub: argparse._SubParsersAction,  # type: ignore[type-arg]
    source_options: Callable[[argparse.ArgumentParser], None],
) -> None:
    """The `dtc watch` options (called by cli.py with its shared option helpers)."""
    p = dsub.add_parser(
        "watch",
        help="watch the fault memories, print codes as they appear, save a recording around a trigger",
    )
    source_options(p)
    p.add_argument(
        "--spec", type=Path, metavar="FILE", help="ECU description file (default: the demo vehicle's)"
    )
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME",
        help="simulated vehicle only: inject this fault once the watch has read the stored codes",
    )
    p.add_argument(
        "--interval", type=values.seconds, default=3.0, metavar="S", help="seconds between reads (default 3)"
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--trigger",
        metavar="MESSAGE.Signal>VALUE",
        help="save a recording when the signal crosses the limit (>, <, >=, <=), "
        "e.g. ENGINE_TEMPS.CoolantTemp>110",
    )
    g.add_argument("--on-new-fault", action="store_true", help="save a recording when a fault code appears")
    p.add_argument(
        "--before",
        type=values.seconds,
        default=10.0,
        metavar="S",
        help="seconds kept before the trigger (10)",
    )
    p.add_argument(
        "--after", type=values.seconds_or_zero, default=5.0, metavar="S", help="seconds taken after it (5)"
    )
    p.add_argument(
        "--record",
        type=Path,
        metavar="FILE",
        help="the recording to write, format by suffix (default: recordings/triggers/trigger-<time>-1.blf)",
    )
    h = p.add_mutually_exclusive_group()
    h.add_argument("--history", type=Path, metavar="PATH", help="history database (default: as for record)")
    h.add_argument("--no-history", action="store_true", help="store no fault events or recordings")
