"""Look at an adapter before capturing: does it open, what does the bus look like, which bitrate.

Both checks only receive. :func:`detect_bitrate` opens the controller in listen-only mode,
because a controller in normal mode acknowledges frames and sends error frames when its
bitrate is wrong, which disturbs every ECU on a running car's bus.

>>> check = check_adapter(BusConfig("virtual", "bench"), listen=0.1)  # doctest: +SKIP
>>> print(check.summary())  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import can

from workshop_app.core.errors import SourceError
from workshop_app.core.sources.adapter import open_bus, plain_reason
from workshop_app.core.types import BusConfig

__all__ = [
    "DEFAULT_BITRATES",
    "ERROR_COUNTER_READERS",
    "LISTEN_ONLY_KWARGS",
    "AdapterCheck",
    "check_adapter",
    "detect_bitrate",
    "friendly_error",
    "supports_listen_only",
]

OpenFn = Callable[..., can.BusABC]

DEFAULT_BITRATES = (500_000, 250_000, 125_000, 1_000_000, 800_000, 100_000, 50_000)

# How each python-can interface (4.6) is opened listen-only; read from can/interfaces/*.
# Interfaces missing here either have no such switch in python-can (socketcan sets it with
# `ip link`, ixxat, gs_usb, neovi, ...) or no bitrate at all (virtual, socketcand, udp_multicast).
LISTEN_ONLY_KWARGS: dict[str, dict[str, object]] = {
    "pcan": {"state": can.BusState.PASSIVE},
    "systec": {"state": can.BusState.PASSIVE},
    "kvaser": {"driver_mode": False},  # can.interfaces.kvaser.canlib.DRIVER_MODE_SILENT
    "vector": {"listen_only": True},
    "slcan": {"listen_only": True},
    "nixnet": {"listen_only": True},
    "cantact": {"monitor": True},
    "seeedstudio": {"operation_mode": "silent"},
}


def _systec_counters(bus: can.BusABC) -> tuple[int, int]:
    tx, rx = bus._ucan.get_can_error_counter(bus.channel)  # type: ignore[attr-defined]
    return int(getattr(tx, "value", tx)), int(getattr(rx, "value", rx))


# Interfaces whose python-can bus lets us read the controller's (transmit, receive) error
# counters. A bus of any other interface may offer an ``error_counters()`` method instead.
ERROR_COUNTER_READERS: dict[str, Callable[[can.BusABC], tuple[int, int]]] = {
    "systec": _systec_counters,
}

_BASE_STATE = inspect.getattr_static(can.BusABC, "state")
_STATE_WORDS = {
    can.BusState.ACTIVE: "active",
    can.BusState.PASSIVE: "passive",
    can.BusState.ERROR: "error (bus off)",
}


def friendly_error(exc: BaseException, interface: str | None = None) -> str:
    """Plain words for an error from opening or using an adapter.

    Covers a missing driver, an absent adapter, a bitrate the adapter refuses and an
    unreachable socketcand server; anything else comes back as its own message.
    """
    return plain_reason(exc, interface)


def _reason(exc: BaseException, config: BusConfig) -> str:
    # open_bus's errors already name the bus; a check of that bus need not say it twice.
    text = friendly_error(exc, config.interface)
    prefix = f"{config.describe()}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _as_source_error(exc: BaseException, config: BusConfig) -> SourceError:
    return (
        exc if isinstance(exc, SourceError) else SourceError(f"{config.describe()}: {_reason(exc, config)}")
    )


def supports_listen_only(interface: str) -> bool:
    """Whether :func:`detect_bitrate` knows how to open ``interface`` without transmitting."""
    return interface in LISTEN_ONLY_KWARGS


@dataclass(frozen=True, slots=True)
class AdapterCheck:
    """What :func:`check_adapter` found. Counts cover the ``listened`` seconds only."""

    config: BusConfig
    opened: bool
    error: str | None = None  # why it did not open, in plain words
    bus_state: str | None = None  # "active", "passive", "error (bus off)"; None: not reported
    error_counters: tuple[int, int] | None = None  # (transmit, receive); None: not available
    frames: int = 0
    error_frames: int = 0
    ids: tuple[int, ...] = ()  # distinct arbitration ids seen, sorted
    listened: float = 0.0

    @property
    def distinct_ids(self) -> int:
        return len(self.ids)

    @property
    def healthy(self) -> bool:
        """Opened, traffic seen, no error frames and not bus off."""
        return (
            self.opened
            and self.frames > 0
            and self.error_frames == 0
            and (self.bus_state is None or not self.bus_state.startswith("error"))
        )

    def summary(self) -> str:
        """A few lines for a person: what worked, what was seen, what to check next."""
        if not self.opened:
            return f"Could not open {self.config.describe()}.\n{self.error}"
        lines = [f"Opened {self.config.describe()}."]
        lines.append(f"Bus state: {self.bus_state or 'not reported by this interface'}.")
        if self.error_counters is None:
            lines.append("Error counters: not available for this interface.")
        else:
            tx, rx = self.error_counters
            lines.append(f"Error counters: transmit {tx}, receive {rx}.")
        lines.append(
            f"Listened {self.listened:.1f} s: {self.frames} frame(s) from {self.distinct_ids} id(s), "
            f"{self.error_frames} error frame(s)."
        )
        if self.frames == 0 and self.error_frames == 0:
            lines.append("No traffic: is the ignition on, and is the adapter on the right bus and bitrate?")
        elif self.frames == 0:
            lines.append("Only error frames: the bitrate is probably wrong.")
        elif self.error_frames:
            lines.append("Error frames among the traffic: check wiring, termination and bitrate.")
        return "\n".join(lines)


def _bus_state(bus: can.BusABC) -> str | None:
    # BusABC.state always says ACTIVE; only a bus class that overrides it really knows.
    if inspect.getattr_static(type(bus), "state", _BASE_STATE) is _BASE_STATE:
        return None
    try:
        state = bus.state
    except Exception:
        return None
    return _STATE_WORDS.get(state) if isinstance(state, can.BusState) else None


def _error_counters(bus: can.BusABC, interface: str) -> tuple[int, int] | None:
    known = ERROR_COUNTER_READERS.get(interface)
    reader = getattr(bus, "error_counters", None) if known is None else functools.partial(known, bus)
    if not callable(reader):
        return None
    try:
        tx, rx = reader()
        return int(tx), int(rx)
    except Exception:
        return None


def _listen(bus: can.BusABC, seconds: float, stop_on_error: bool = False) -> tuple[int, int, set[int]]:
    """Receive for ``seconds``; returns (valid frames, error frames, distinct ids)."""
    frames = errors = 0
    ids: set[int] = set()
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        msg = bus.recv(min(left, 0.05))
        if msg is None:
            continue
        if msg.is_error_frame:
            errors += 1
            if stop_on_error:
                break
        else:
            frames += 1
            ids.add(msg.arbitration_id)
    return frames, errors, ids


def check_adapter(config: BusConfig, listen: float = 0.5, *, open_fn: OpenFn = open_bus) -> AdapterCheck:
    """Open the bus, listen for ``listen`` seconds, report what was seen, close it again.

    Never raises for adapter problems: a bus that does not open comes back with
    ``opened=False`` and the reason in plain words. Nothing is transmitted.
    """
    try:
        bus = open_fn(config)
    except Exception as exc:
        return AdapterCheck(config, False, error=_reason(exc, config))
    try:
        start = time.monotonic()
        try:
            frames, errors, ids = _listen(bus, listen)
        except Exception as exc:
            return AdapterCheck(config, True, error=f"receiving failed: {_reason(exc, config)}")
        listened = time.monotonic() - start
        return AdapterCheck(
            config,
            True,
            bus_state=_bus_state(bus),
            error_counters=_error_counters(bus, config.interface),
            frames=frames,
            error_frames=errors,
            ids=tuple(sorted(ids)),
            listened=listened,
        )
    finally:
        bus.shutdown()


def detect_bitrate(
    config: BusConfig,
    candidates: Iterable[int] = DEFAULT_BITRATES,
    listen: float = 0.3,
    *,
    open_fn: OpenFn = open_bus,
    listen_only: Mapping[str, object] | None = None,
    cancel: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int | None:
    """The first of ``candidates`` at which the bus shows valid frames and no error frames.

    Each candidate opens the bus listen-only (``listen_only``: the keyword arguments that do
    that for this interface; default from :data:`LISTEN_ONLY_KWARGS`) through
    ``open_fn(config, **listen_only)``. Returns None if no candidate fits (or ``cancel`` was
    set). Raises ``SourceError`` if the interface cannot listen without transmitting, or if
    the adapter did not open at any candidate.
    """
    if listen_only is None:
        if config.interface not in LISTEN_ONLY_KWARGS:
            raise SourceError(
                f"{config.describe()}: bitrate detection needs a listen-only mode, which python-can "
                f"does not offer for {config.interface!r}; set the bitrate by hand"
            )
        listen_only = LISTEN_ONLY_KWARGS[config.interface]
    rates = list(candidates)
    opened_any = False
    last_error: SourceError | None = None
    for done, bitrate in enumerate(rates):
        if cancel is not None and cancel.is_set():
            return None
        if progress is not None:
            progress(done, len(rates))
        trial = dataclasses.replace(config, bitrate=bitrate)
        try:
            bus = open_fn(trial, **listen_only)
        except Exception as exc:  # e.g. a rate the adapter refuses: try the next one
            last_error = _as_source_error(exc, trial)
            continue
        opened_any = True
        try:
            frames, errors, _ids = _listen(bus, listen, stop_on_error=True)
        except Exception as exc:
            last_error = _as_source_error(exc, trial)
            continue
        finally:
            bus.shutdown()
        if frames and not errors:
            if progress is not None:
                progress(len(rates), len(rates))
            return bitrate
    if not opened_any and last_error is not None:
        raise last_error
    return None
