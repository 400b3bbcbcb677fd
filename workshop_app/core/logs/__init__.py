"""Offline log analysis: frames as numpy columns and bulk readers that fill them."""

from __future__ import annotations

from workshop_app.core.logs.blf_reader import read_blf
from workshop_app.core.logs.candump_reader import read_candump
from workshop_app.core.logs.columns import FrameColumns, ReadCancelled

__all__ = ["FrameColumns", "ReadCancelled", "read_blf", "read_candump"]
