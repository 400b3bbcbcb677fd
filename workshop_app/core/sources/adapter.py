"""AdapterSource: a live python-can bus (any interface python-can supports)."""

from __future__ import annotations

import logging
import socket

import can

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.errors import SourceError
from workshop_app.core.sources.base import FrameSource
from workshop_app.core.types import BusConfig, Frame, SourceCaps

log = logging.getLogger(__name__)

# Short Notifier timeout: python-can's default makes every stop() wait up to a second.
NOTIFIER_TIMEOUT = 0.05


class _RingListener(can.Listener):
    """Runs on the Notifier thread: convert and append, nothing else."""

    def __init__(self, source: AdapterSource) -> None:
        self._source = source
        self._push = source.ring.push
        self._channel = source.channel_label

    def on_message_received(self, msg: can.Message) -> None:
        self._push(Frame.from_message(msg, self._channel))

    def on_error(self, exc: Exception) -> None:
        # The Notifier stops its thread after an error: the adapter is gone.
        self._source._fail(f"connection lost: {exc}")


def _check_server_reachable(config: BusConfig) -> None:
    # python-can's socketcand client retries a refused connection for 10 s; ask once first.
    host, port = config.host or "127.0.0.1", config.port or 29536
    try:
        socket.create_connection((host, port), timeout=3.0).close()
    except ConnectionRefusedError as exc:
        raise SourceError(f"{config.describe()}: server refused the connection (is it running?)") from exc
    except OSError as exc:
        raise SourceError(f"{config.describe()}: server unreachable ({exc.strerror or exc})") from exc


def open_bus(config: BusConfig) -> can.BusABC:
    """Open a python-can bus, turning driver errors into one plain-words SourceError."""
    if config.interface == "socketcand":
        _check_server_reachable(config)
    try:
        return can.Bus(**config.bus_kwargs())
    except can.CanInterfaceNotImplementedError as exc:
        raise SourceError(
            f"{config.describe()}: driver for interface {config.interface!r} is not installed or "
            f"not supported on this machine ({exc})"
        ) from exc
    except (can.CanInitializationError, can.CanOperationError) as exc:
        raise SourceError(f"{config.describe()}: adapter could not be opened ({exc})") from exc
    except ConnectionRefusedError as exc:
        raise SourceError(f"{config.describe()}: server refused the connection (is it running?)") from exc
    except (OSError, TimeoutError) as exc:
        raise SourceError(f"{config.describe()}: {exc}") from exc
    except (ValueError, TypeError, ImportError) as exc:
        raise SourceError(f"{config.describe()}: {exc}") from exc


class AdapterSource(FrameSource):
    """Frames from a python-can bus, received on a python-can Notifier thread."""

    def __init__(self, ring: FrameRing, config: BusConfig, *, channel_label: str | None = None) -> None:
        super().__init__(ring)
        self.config = config
        self.channel_label = channel_label or config.channel
        self.caps = SourceCaps(live=True, can_transmit=True, fd=config.fd)
        self._bus: can.BusABC | None = None
        self._notifier: can.Notifier | None = None

    @property
    def bus(self) -> can.BusABC | None:
        return self._bus

    @property
    def notifier(self) -> can.Notifier | None:
        """The Notifier, so ISO-TP can attach listeners instead of reading the bus twice."""
        return self._notifier

    def describe(self) -> str:
        return self.config.describe()

    def _open(self) -> None:
        bus = open_bus(self.config)
        try:
            self._notifier = can.Notifier(bus, [_RingListener(self)], timeout=NOTIFIER_TIMEOUT)
        except Exception:
            bus.shutdown()
            raise
        self._bus = bus

    def _close(self) -> None:
        if self._notifier is not None:
            self._notifier.stop()
            self._notifier = None
        if self._bus is not None:
            try:
                self._bus.shutdown()
            except Exception as exc:  # a vanished adapter may fail to close; nothing to save
                log.warning("closing %s: %s", self.describe(), exc)
            self._bus = None

    def _send(self, frame: Frame) -> None:
        assert self._bus is not None
        try:
            self._bus.send(frame.to_message(), timeout=0.2)
        except can.CanError as exc:
            raise SourceError(f"{self.describe()}: send failed ({exc})") from exc
