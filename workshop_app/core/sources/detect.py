"""Which CAN adapters this machine offers, without python-can's driver noise.

``can.detect_available_configs()`` imports every python-can backend, and each backend whose
vendor library is missing logs a warning on import (16 lines on a plain Linux machine);
with no logging configured they land on stderr. It also reports software buses as if they
were adapters: ``virtual`` with a channel name made up on each call and ``udp_multicast``
once per address family. :func:`detect_adapters` imports the backends one by one with
their log records collected (so each message is known to belong to one interface, for
``--verbose``), then runs the detection with its records collected too, and separates
the software buses from what was really found.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import can
from can.interfaces import BACKENDS

__all__ = ["SOFTWARE_BUSES", "AdapterReport", "DetectedAdapter", "detect_adapters"]

# Buses that need no hardware. Their "detected" channels say nothing about this machine.
SOFTWARE_BUSES: dict[str, str] = {
    "virtual": "in one process, any channel name",
    "udp_multicast": "between processes over IP multicast, any group address",
}

_CAPTURE_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class DetectedAdapter:
    """One channel an interface reports it could open now."""

    interface: str
    channel: str
    details: tuple[tuple[str, str], ...] = ()  # further constructor arguments, as text


@dataclass(frozen=True, slots=True)
class AdapterReport:
    """Adapters found, software buses, and what each driver said while loading."""

    adapters: tuple[DetectedAdapter, ...]
    software: tuple[str, ...]
    supported: tuple[str, ...]
    driver_messages: dict[str, tuple[str, ...]] = field(default_factory=dict)


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def _collected_logs() -> Iterator[_Collector]:
    """Route every log record (and Python warning) to a collector instead of the console.

    The root logger's handlers are swapped rather than a handler added: python-can's
    backends log under several logger names (``can.*``, ``seeedbus``), and the interpreter
    prints a record through its last-resort handler whenever no handler is installed.
    """
    collector = _Collector()
    root = logging.getLogger()
    with _CAPTURE_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        handlers = root.handlers[:]
        root.handlers = [collector]
        try:
            yield collector
        finally:
            root.handlers = handlers
            for warning in caught:
                collector.records.append(
                    logging.LogRecord("py.warnings", logging.WARNING, "", 0, str(warning.message), None, None)
                )


def _messages(records: list[logging.LogRecord]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for record in records:
        if record.levelno >= logging.WARNING:
            seen.setdefault(" ".join(record.getMessage().split()), None)
    return tuple(seen)


def _load_backends(names: list[str]) -> dict[str, tuple[str, ...]]:
    """Import each backend alone, so every message it logs is known to be its own."""
    messages: dict[str, tuple[str, ...]] = {}
    for name in names:
        module_name, class_name = BACKENDS[name]
        with _collected_logs() as collector:
            try:
                getattr(importlib.import_module(module_name), class_name)
            except Exception as exc:  # a backend that cannot even be imported
                collector.records.append(
                    logging.LogRecord(
                        module_name, logging.ERROR, "", 0, f"cannot be loaded: {exc}", None, None
                    )
                )
        if found := _messages(collector.records):
            messages[name] = found
    return messages


def _owner(logger_name: str) -> str | None:
    for name, (module_name, _cls) in BACKENDS.items():
        if logger_name.startswith((module_name, f"can.{name}")):
            return name
    return None


def quiet_detection(timeout: float = 5.0) -> tuple[list[dict[str, object]], dict[str, tuple[str, ...]]]:
    """python-can's own detection, its driver noise collected per interface instead of printed.

    Returns the raw configurations (virtual channels open in this process included) and
    what each driver said; for the window's list and for :func:`detect_adapters`.
    """
    driver_messages = _load_backends(sorted(BACKENDS))
    with _collected_logs() as collector:
        found = [dict(c) for c in can.detect_available_configs(timeout=timeout)]
    for record in collector.records:
        owner = _owner(record.name)
        if owner is not None and record.levelno >= logging.WARNING:
            merged = dict.fromkeys((*driver_messages.get(owner, ()), *_messages([record])))
            driver_messages[owner] = tuple(merged)
    return found, driver_messages


def detect_adapters(timeout: float = 5.0) -> AdapterReport:
    """Ask every python-can backend which channels it could open now.

    Never prints: driver messages come back in ``driver_messages`` keyed by interface.
    Takes up to ``timeout`` seconds (socketcand listens for server beacons for a few).
    """
    found, driver_messages = quiet_detection(timeout)
    adapters: dict[tuple[str, str], DetectedAdapter] = {}
    for config in found:
        interface = str(config.get("interface"))
        if interface in SOFTWARE_BUSES:
            continue
        channel = str(config.get("channel"))
        details = tuple(
            sorted((str(k), str(v)) for k, v in config.items() if k not in ("interface", "channel"))
        )
        adapters.setdefault((interface, channel), DetectedAdapter(interface, channel, details))
    return AdapterReport(
        adapters=tuple(sorted(adapters.values(), key=lambda a: (a.interface, a.channel))),
        software=tuple(name for name in SOFTWARE_BUSES if name in BACKENDS),
        supported=tuple(sorted(can.VALID_INTERFACES)),
        driver_messages=driver_messages,
    )
