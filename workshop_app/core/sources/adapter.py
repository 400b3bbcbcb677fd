"""AdapterSource: a live python-can bus (any interface python-can supports).

Threads: python-can's Notifier thread receives (convert + append to the ring, nothing else);
one ``adapter-watch`` thread per started source notices a lost connection, closes the dead bus
and, with ``auto_reconnect``, reopens it every ``retry_interval`` seconds until it is back.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading

import can

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.errors import SourceError
from workshop_app.core.sources.base import FrameSource, SourceState
from workshop_app.core.types import BusConfig, Frame, SourceCaps

log = logging.getLogger(__name__)

# python-can's socketcand client warns "Got incomplete message" whenever a TCP read ends inside
# a frame: ordinary stream segmentation, and at tens of thousands of frames/s the log output
# alone took a fifth of capture's time. Its real errors are logged at ERROR and still shown.
logging.getLogger("can.interfaces.socketcand.socketcand").setLevel(logging.ERROR)

# Short Notifier timeout: python-can's default makes every stop() wait up to a second.
NOTIFIER_TIMEOUT = 0.05
# How often the watch thread looks for a connection that died without an error.
WATCH_INTERVAL = 0.2
# How long stop() waits for the watch thread (it may be inside a slow open_bus()).
_JOIN_TIMEOUT = 15.0

# errno values that mean "no such device" rather than a bad setting.
_ABSENT_ERRNOS = frozenset({errno.ENOENT, errno.ENODEV, errno.ENXIO})


def plain_reason(exc: BaseException, interface: str | None = None) -> str:
    """Say in plain words why opening or using an adapter failed (no config prefix)."""
    if isinstance(exc, SourceError):
        return str(exc)
    if isinstance(exc, can.CanInterfaceNotImplementedError):
        name = f" {interface!r}" if interface else ""
        return f"driver for interface{name} is not installed or not supported on this machine ({exc})"
    if isinstance(exc, (can.CanInitializationError, can.CanOperationError)):
        return f"adapter could not be opened ({exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "server refused the connection (is it running?)"
    if isinstance(exc, TimeoutError):
        return f"no answer in time; check the host, port and cable ({exc})"
    if isinstance(exc, OSError) and exc.errno in _ABSENT_ERRNOS:
        return f"adapter not found; is it plugged in? ({exc.strerror or exc})"
    if isinstance(exc, OSError) and exc.errno == errno.EAFNOSUPPORT:
        return f"this operating system has no support for the interface ({exc.strerror or exc})"
    if isinstance(exc, OSError) and exc.errno is None and "librar" in str(exc).lower():
        name = f" {interface!r}" if interface else ""
        return f"the driver library for interface{name} is not installed ({exc})"
    if isinstance(exc, (NameError, AttributeError)):
        # python-can's ctypes wrappers (kvaser, ...) fail like this when the vendor library is absent
        name = f" {interface!r}" if interface else ""
        return f"the driver library for interface{name} did not load; is it installed? ({exc})"
    if isinstance(exc, ValueError) and "bitrate" in str(exc).lower():
        return f"the adapter does not accept this bitrate ({exc})"
    if isinstance(exc, ImportError):
        return f"a driver library is missing ({exc})"
    return str(exc) or type(exc).__name__


def _check_server_reachable(config: BusConfig) -> None:
    # python-can's socketcand client retries a refused connection for 10 s; ask once first.
    host, port = config.host or "127.0.0.1", config.port or 29536
    try:
        socket.create_connection((host, port), timeout=3.0).close()
    except ConnectionRefusedError as exc:
        raise SourceError(f"{config.describe()}: server refused the connection (is it running?)") from exc
    except OSError as exc:
        raise SourceError(f"{config.describe()}: server unreachable ({exc.strerror or exc})") from exc


def open_bus(config: BusConfig, **extra: object) -> can.BusABC:
    """Open a python-can bus, turning driver errors into one plain-words SourceError.

    ``extra`` keyword arguments go to ``can.Bus`` as they are (e.g. an interface's
    listen-only switch, see :mod:`workshop_app.core.sources.probe`).
    """
    if config.interface == "socketcand":
        _check_server_reachable(config)
    try:
        return can.Bus(**config.bus_kwargs(), **extra)
    except Exception as exc:  # drivers raise all sorts; every one means "did not open"
        raise SourceError(f"{config.describe()}: {plain_reason(exc, config.interface)}") from exc


def _link_closed(bus: can.BusABC) -> bool:
    """True if the bus's TCP link is known to be closed by the other end.

    python-can's socketcand client does not raise when the server goes away: its recv()
    sees end-of-stream and just returns None forever. Peek at its socket instead.
    """
    sock = getattr(bus, "_SocketCanDaemonBus__socket", None)
    if not isinstance(sock, socket.socket):
        return False
    if sock.fileno() < 0:
        return True
    dontwait = getattr(socket, "MSG_DONTWAIT", 0)
    if not dontwait:
        return False  # a blocking peek could hang; rely on send errors there
    try:
        # MSG_PEEK leaves any data for the Notifier thread; b"" means end of stream.
        return sock.recv(1, socket.MSG_PEEK | dontwait) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


class _RingListener(can.Listener):
    """Runs on the Notifier thread: convert and append, nothing else."""

    def __init__(self, source: AdapterSource, generation: int) -> None:
        self._source = source
        self._generation = generation
        self._push = source.ring.push
        self._channel = source.channel_label

    def on_message_received(self, msg: can.Message) -> None:
        self._push(Frame.from_message(msg, self._channel))

    def on_error(self, exc: Exception) -> None:
        # Only flag it: the watch thread closes the bus (stopping the Notifier from its own
        # thread would deadlock on the join).
        self._source._report_lost(self._generation, f"connection lost: {plain_reason(exc)}")


class AdapterSource(FrameSource):
    """Frames from a python-can bus, received on a python-can Notifier thread.

    Args:
        ring: Where received frames go.
        config: How to open the bus.
        channel_label: Channel name given to the frames (default: ``config.channel``).
        auto_reconnect: When the connection is lost, go to ``RECONNECTING`` and reopen the
            bus every ``retry_interval`` seconds until it is back (``RUNNING``, ``reconnects``
            + 1) or :meth:`stop` is called. Without it the source goes to ``FAILED``.
        retry_interval: Seconds between reconnection attempts.

    Listeners others added to :attr:`notifier` are moved to the new Notifier on reconnect;
    anything holding the old :attr:`bus` object must fetch the new one.
    """

    def __init__(
        self,
        ring: FrameRing,
        config: BusConfig,
        *,
        channel_label: str | None = None,
        auto_reconnect: bool = False,
        retry_interval: float = 1.0,
    ) -> None:
        super().__init__(ring)
        if retry_interval <= 0:
            raise ValueError("retry_interval must be positive")
        self.config = config
        self.channel_label = channel_label or config.channel
        self.caps = SourceCaps(live=True, can_transmit=True, fd=config.fd)
        self.auto_reconnect = auto_reconnect
        self.retry_interval = retry_interval
        self._bus: can.BusABC | None = None
        self._notifier: can.Notifier | None = None
        # Guards swapping _bus/_notifier between stop() and the watch thread.
        self._link_lock = threading.Lock()
        self._generation = 0  # bumped per opened bus, so stale error reports are ignored
        self._lost_reason: str | None = None
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._watch: threading.Thread | None = None

    @property
    def bus(self) -> can.BusABC | None:
        return self._bus

    @property
    def notifier(self) -> can.Notifier | None:
        """The Notifier, so ISO-TP can attach listeners instead of reading the bus twice."""
        return self._notifier

    @property
    def bitrate(self) -> int | None:
        return self.config.bitrate

    @property
    def data_bitrate(self) -> int | None:
        return self.config.data_bitrate

    def describe(self) -> str:
        return self.config.describe()

    # -- opening and closing --------------------------------------------------------------------
    def _open(self) -> None:
        bus, notifier, generation = self._connect([])
        with self._link_lock:
            self._bus, self._notifier, self._generation = bus, notifier, generation
            self._lost_reason = None
        self._halt.clear()
        self._wake.clear()
        self._watch = threading.Thread(
            target=self._watch_loop, name=f"adapter-watch {self.channel_label}", daemon=True
        )
        self._watch.start()

    def _connect(self, listeners: list[can.Listener]) -> tuple[can.BusABC, can.Notifier, int]:
        generation = self._generation + 1
        bus = open_bus(self.config)
        try:
            notifier = can.Notifier(
                bus, [_RingListener(self, generation), *listeners], timeout=NOTIFIER_TIMEOUT
            )
        except Exception:
            bus.shutdown()
            raise
        return bus, notifier, generation

    def _close(self) -> None:
        self._halt.set()
        self._wake.set()
        watch, self._watch = self._watch, None
        if watch is not None and watch is not threading.current_thread():
            watch.join(_JOIN_TIMEOUT)
            if watch.is_alive():
                log.warning("%s: reconnection attempt still running after stop()", self.describe())
        self._drop_link()

    def _drop_link(self) -> list[can.Listener]:
        """Stop the Notifier and close the bus; returns the listeners others had added."""
        with self._link_lock:
            notifier, bus = self._notifier, self._bus
            self._notifier = self._bus = None
        others: list[can.Listener] = []
        if notifier is not None:
            others = [x for x in notifier.listeners if not isinstance(x, _RingListener)]
            notifier.stop()
        if bus is not None:
            try:
                bus.shutdown()
            except Exception as exc:  # a vanished adapter may fail to close; nothing to save
                log.warning("closing %s: %s", self.describe(), exc)
        return others

    # -- losing and regaining the connection ---------------------------------------------------
    def _report_lost(self, generation: int, reason: str) -> None:
        """Any thread: the bus of ``generation`` is gone. The watch thread acts on it."""
        if generation == self._generation and self._lost_reason is None:
            self._lost_reason = reason
            self._wake.set()

    def _watch_loop(self) -> None:
        while not self._halt.is_set():
            self._wake.wait(WATCH_INTERVAL)
            self._wake.clear()
            # Until start() has marked us RUNNING a loss stays pending (start would overwrite it).
            if self._halt.is_set() or self._state is not SourceState.RUNNING:
                continue
            reason = self._lost_reason
            if reason is None:
                bus = self._bus
                if bus is not None and _link_closed(bus):
                    reason = "connection lost: the server closed the connection"
            if reason is None:
                continue
            log.warning("%s: %s", self.describe(), reason)
            if not self.auto_reconnect:
                self._fail(reason)
                self._drop_link()
                return
            self._error = f"{reason}; reconnecting"
            self._state = SourceState.RECONNECTING
            listeners = self._drop_link()
            if not self._reconnect(reason, listeners):
                return

    def _reconnect(self, reason: str, listeners: list[can.Listener]) -> bool:
        """Retry until the bus is back (True) or stop() was called (False)."""
        attempt = 0
        while not self._halt.wait(self.retry_interval):
            attempt += 1
            try:
                bus, notifier, generation = self._connect(listeners)
            except Exception as exc:  # never let the thread die; the next attempt may work
                why = plain_reason(exc).removeprefix(f"{self.describe()}: ")
                self._error = f"{reason}; reconnecting (attempt {attempt}: {why})"
                log.debug("%s: reconnect attempt %d failed: %s", self.describe(), attempt, exc)
                continue
            with self._link_lock:
                if self._halt.is_set():
                    notifier.stop()
                    bus.shutdown()
                    return False
                self._bus, self._notifier, self._generation = bus, notifier, generation
                self._lost_reason = None
                self._error = None
                self.reconnects += 1
                self._state = SourceState.RUNNING
            log.info("%s: reconnected after %d attempt(s)", self.describe(), attempt)
            return True
        return False

    # -- transmitting ---------------------------------------------------------------------------
    def _send(self, frame: Frame) -> None:
        bus, generation = self._bus, self._generation
        if bus is None:
            raise SourceError(f"{self.describe()} is not connected")
        try:
            bus.send(frame.to_message(), timeout=0.2)
        except can.CanError as exc:
            raise SourceError(f"{self.describe()}: send failed ({exc})") from exc
        except OSError as exc:
            # A socket-based bus whose server went away raises a bare OSError (broken pipe).
            self._report_lost(generation, f"connection lost: {plain_reason(exc)}")
            raise SourceError(f"{self.describe()}: send failed, connection lost ({exc})") from exc
