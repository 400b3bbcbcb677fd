"""The one place that knows where the shipped databases and resources are.

In a built wheel they are inside the package (``workshop_app/_data``); in a development
checkout (editable install) they are the repository's top-level ``dbc/`` and ``resources/``.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path


@cache
def _data_root(name: str) -> Path:
    packaged = Path(str(resources.files("workshop_app"))) / "_data" / name
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parent.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"workshop_app data folder {name!r} is missing from the installation")


def dbc_dir() -> Path:
    """Folder of the shipped signal databases."""
    return _data_root("dbc")


def resources_dir() -> Path:
    """Folder of the shipped resources (icons, DTC texts, ...)."""
    return _data_root("resources")


def demo_dbc_path() -> Path:
    """The demo vehicle's database, driven by the built-in simulator."""
    return dbc_dir() / "demo_vehicle.dbc"
