"""PlotLayout: which signals are plotted where, saved as a small JSON file.

Qt-free so the command line and scripts can write layouts the GUI opens. The file looks like::

    {"format": "workshop-plot-layout", "version": 1, "window_seconds": 30.0,
     "plots": [{"y_range": null,
                "signals": [{"message": "ENGINE_DATA", "signal": "EngineSpeed", "colour": "#3b82f6"}]}]}

>>> layout = PlotLayout((PlotSpec((PlotTrace("ENGINE_DATA", "EngineSpeed", "#3b82f6"),)),))
>>> PlotLayout.from_json(layout.to_json()) == layout
True

A database can also say which of its signals are worth plotting before the user has chosen
any: the DBC signal attribute ``WorkshopPlot`` (an integer) puts a signal in that plot of the
default layout, counted from 1; signals with the same number share a plot, 0 (the default)
leaves a signal out. The demo vehicle's database names engine speed, vehicle speed, coolant
temperature and battery voltage this way; databases without the attribute name nothing::

    BA_DEF_ SG_  "WorkshopPlot" INT 0 16;
    BA_DEF_DEF_  "WorkshopPlot" 0;
    BA_ "WorkshopPlot" SG_ 192 EngineSpeed 1;
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.errors import WorkshopError

__all__ = [
    "DEFAULT_PLOT_ATTRIBUTE",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "PlotLayout",
    "PlotLayoutError",
    "PlotSpec",
    "PlotTrace",
    "default_plot_signals",
]

FORMAT_NAME = "workshop-plot-layout"
FORMAT_VERSION = 1
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}([0-9a-fA-F]{2})?")


class PlotLayoutError(WorkshopError):
    """A plot layout file could not be read, parsed or written; the message names the file."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


@dataclass(frozen=True, slots=True)
class PlotTrace:
    """One curve: a signal of a message, drawn in ``colour`` ("#rrggbb" or "#rrggbbaa")."""

    message: str
    signal: str
    colour: str


@dataclass(frozen=True, slots=True)
class PlotSpec:
    """One plot of a stacked layout; ``y_range`` None means the y axis scales itself."""

    traces: tuple[PlotTrace, ...] = ()
    y_range: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class PlotLayout:
    """Plots from top to bottom, sharing one time axis that shows ``window_seconds`` (None: all)."""

    plots: tuple[PlotSpec, ...] = ()
    window_seconds: float | None = field(default=30.0)

    def to_json(self) -> str:
        document = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "window_seconds": self.window_seconds,
            "plots": [
                {
                    "y_range": list(plot.y_range) if plot.y_range is not None else None,
                    "signals": [
                        {"message": t.message, "signal": t.signal, "colour": t.colour} for t in plot.traces
                    ],
                }
                for plot in self.plots
            ],
        }
        return json.dumps(document, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "<plot layout>") -> PlotLayout:
        """Parse a layout; raises ``PlotLayoutError`` naming ``source`` on bad JSON or schema."""
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PlotLayoutError(source, f"not valid JSON (line {exc.lineno}: {exc.msg})") from None
        try:
            return _parse(document)
        except _SchemaError as exc:
            raise PlotLayoutError(source, str(exc)) from None

    def save(self, path: str | Path) -> None:
        target = Path(path)
        try:
            target.write_text(self.to_json(), encoding="utf-8")
        except OSError as exc:
            raise PlotLayoutError(str(path), f"cannot write file: {exc.strerror or exc}") from None

    @classmethod
    def load(cls, path: str | Path) -> PlotLayout:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PlotLayoutError(str(path), "file not found") from None
        except UnicodeDecodeError:
            raise PlotLayoutError(str(path), "not a text file") from None
        except OSError as exc:
            raise PlotLayoutError(str(path), f"cannot read file: {exc.strerror or exc}") from None
        return cls.from_json(text, str(path))


DEFAULT_PLOT_ATTRIBUTE = "WorkshopPlot"
_MAX_DEFAULT_PLOTS = 16  # the attribute's declared range; more would not fit a window anyway

SignalKey = tuple[str, str]  # (message, signal)


def default_plot_signals(databases: DatabaseSet) -> tuple[tuple[SignalKey, ...], ...]:
    """The plots the loaded databases ask for when no layout was saved: (message, signal) per plot.

    Plots come in the order of their ``WorkshopPlot`` numbers (gaps closed), signals within a
    plot in database order; a signal named by two loaded databases (one file on two channels)
    appears once. Formats without DBC attributes (KCD, SYM, ARXML) name nothing.
    """
    plots: dict[int, list[SignalKey]] = {}
    seen: set[SignalKey] = set()
    for loaded in databases.databases:
        for message in loaded.db.messages:
            for signal in message.signals:
                number = _plot_number(signal)
                key = (message.name, signal.name)
                if number is not None and key not in seen:
                    seen.add(key)
                    plots.setdefault(number, []).append(key)
    return tuple(tuple(plots[n]) for n in sorted(plots))


def _plot_number(signal: Any) -> int | None:
    specifics = getattr(signal, "dbc", None)
    attribute = (getattr(specifics, "attributes", None) or {}).get(DEFAULT_PLOT_ATTRIBUTE)
    value = getattr(attribute, "value", None)
    # A hand-edited file may hold text or a number out of range there: such a value is ignored.
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= _MAX_DEFAULT_PLOTS:
        return value
    return None


class _SchemaError(ValueError):
    """Internal: a schema violation, re-raised as PlotLayoutError with the file name."""


def _parse(document: Any) -> PlotLayout:
    if not isinstance(document, dict):
        raise _SchemaError("expected a JSON object at the top level")
    if document.get("format") != FORMAT_NAME:
        raise _SchemaError(f'not a plot layout ("format" must be "{FORMAT_NAME}")')
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= FORMAT_VERSION:
        raise _SchemaError(f"unsupported version {version!r} (this program reads 1..{FORMAT_VERSION})")
    window = document.get("window_seconds")
    if window is not None and (not _is_number(window) or not 0 < window < math.inf):
        raise _SchemaError('"window_seconds" must be a positive number or null')
    plots = document.get("plots")
    if not isinstance(plots, list):
        raise _SchemaError('"plots" must be a list')
    return PlotLayout(tuple(_parse_plot(p, i) for i, p in enumerate(plots)), window)


def _parse_plot(plot: Any, index: int) -> PlotSpec:
    where = f"plots[{index}]"
    if not isinstance(plot, dict):
        raise _SchemaError(f"{where} must be an object")
    y_range = plot.get("y_range")
    if y_range is not None:
        if (
            not isinstance(y_range, list)
            or len(y_range) != 2
            or not all(_is_number(v) and math.isfinite(v) for v in y_range)
            or not y_range[0] < y_range[1]
        ):
            raise _SchemaError(f"{where}.y_range must be null or [min, max] with min < max")
        y_range = (float(y_range[0]), float(y_range[1]))
    signals = plot.get("signals")
    if not isinstance(signals, list):
        raise _SchemaError(f"{where}.signals must be a list")
    traces = []
    for j, entry in enumerate(signals):
        at = f"{where}.signals[{j}]"
        if not isinstance(entry, dict):
            raise _SchemaError(f"{at} must be an object")
        for key in ("message", "signal", "colour"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise _SchemaError(f'{at}."{key}" must be a non-empty string')
        if not _COLOUR.fullmatch(entry["colour"]):
            raise _SchemaError(f'{at}.colour {entry["colour"]!r} is not "#rrggbb"')
        traces.append(PlotTrace(entry["message"], entry["signal"], entry["colour"]))
    return PlotSpec(tuple(traces), y_range)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
