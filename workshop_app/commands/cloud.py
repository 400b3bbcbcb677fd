"""`workshop cloud ACTION`: the cloud link (docs/cloud.md).

Each action adds its options in :func:`add_parser` and its runner in ``_ACTIONS``; runners
import their modules when they run, so `workshop --help` never loads paho or cryptography.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from workshop_app import cli_values as values  # noqa: F401  (numeric options use its validators)


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cloud = sub.add_parser(
        "cloud", help="the cloud link: trial broker, vehicle agent, remote functions, fleet (docs/cloud.md)"
    )
    csub = cloud.add_subparsers(dest="cloud_action", metavar="ACTION", required=True)
    from workshop_app.commands import cloud_broker

    cloud_broker.add_arguments(csub)
    from workshop_app.commands import cloud_vehicles

    cloud_vehicles.add_arguments(csub)
    from workshop_app.commands import cloud_remote

    cloud_remote.add_arguments(csub)
    from workshop_app.commands import cloud_agent

    cloud_agent.add_arguments(csub)
    del csub  # actions are added below as they land


_ACTIONS: dict[str, Callable[[argparse.Namespace], int]] = {}


def _vehicles(args: argparse.Namespace) -> int:
    from workshop_app.commands import cloud_vehicles

    return cloud_vehicles.run(args)


_ACTIONS["vehicles"] = _vehicles


def _remote(args: argparse.Namespace) -> int:
    from workshop_app.commands import cloud_remote

    return cloud_remote.run(args)


for _action in ("lock", "unlock", "lights", "flash"):
    _ACTIONS[_action] = _remote


def _broker(args: argparse.Namespace) -> int:
    from workshop_app.commands import cloud_broker

    return cloud_broker.run(args)


_ACTIONS["broker"] = _broker


def _agent(args: argparse.Namespace) -> int:
    from workshop_app.commands import cloud_agent

    return cloud_agent.run(args)


_ACTIONS["agent"] = _agent


def run(args: argparse.Namespace) -> int:
    return _ACTIONS[args.cloud_action](args)
