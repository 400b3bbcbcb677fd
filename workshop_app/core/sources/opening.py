"""Opening a python-can bus under a deadline, with failures in plain words.

Two guards, because drivers can block forever:

* socketcand: python-can's client waits for the server's ``< hi >`` (and each later answer)
  with no timeout, so a listener that accepts and never speaks hangs the caller. Our subclass
  gives every handshake read a socket timeout and says which answer did not come.
* every interface: the open runs on a short-lived ``adapter-open`` thread and the caller waits
  at most ``open_timeout`` seconds (or until ``halt`` is set). A driver that returns later has
  its bus closed by that thread, so nothing stays open behind the caller's back.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from typing import Any, cast

import can
from can.interfaces.socketcand import SocketCanDaemonBus

from workshop_app.core.errors import SourceError
from workshop_app.core.types import BusConfig

CONNECT_TIMEOUT = 3.0  # seconds for a TCP connect and for each socketcand handshake answer
OPEN_TIMEOUT = 10.0  # seconds for any adapter's open as a whole

log = logging.getLogger(__name__)

# errno values that mean "no such device" rather than a bad setting.
_ABSENT_ERRNOS = frozenset({errno.ENOENT, errno.ENODEV, errno.ENXIO})


class LinkBroken(can.CanOperationError):
    """The connection broke while receiving; the message is the plain reason."""


def plain_reason(exc: BaseException, interface: str | None = None) -> str:
    """Say in plain words why opening or using an adapter failed (no config prefix)."""
    if isinstance(exc, (SourceError, LinkBroken)):
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


class _HandshakeTimeout(Exception):
    """A socketcand handshake answer did not come in time (message is the plain reason)."""


class DeadlineSocketcandBus(SocketCanDaemonBus):
    """python-can's socketcand client whose handshake reads time out instead of blocking forever.

    Once connected the socket is blocking again: python-can's receive loop relies on select().
    """

    def __init__(
        self, channel: str, host: str, port: int, *, handshake_timeout: float, **kwargs: object
    ) -> None:
        self._where = f"{host}:{port}"
        self._handshake_timeout = handshake_timeout
        try:
            super().__init__(channel, host, port, **kwargs)
        except BaseException:
            sock = getattr(self, "_SocketCanDaemonBus__socket", None)
            if isinstance(sock, socket.socket):
                sock.close()  # python-can leaves it open when the handshake fails
            raise

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        if self._is_shutdown:
            # The source closed this bus because its link was lost, and has said so. An ISO-TP
            # stack still holding it would die with a traceback on its own thread if this raised;
            # the frame cannot go anywhere, and whoever watches the source fails the scan plainly.
            log.debug("%s: frame %03X dropped, the bus was closed", self._where, msg.arbitration_id)
            return
        super().send(msg, timeout)

    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        try:
            received: tuple[can.Message | None, bool] = super()._recv_internal(timeout)
            return received
        except can.CanError as exc:
            # python-can puts a whole traceback into this message; keep the reason only.
            cause = exc.__cause__
            if isinstance(cause, OSError):
                raise LinkBroken(f"the connection broke ({cause.strerror or cause})") from cause
            raise LinkBroken(str(exc).split("  Traceback", 1)[0]) from exc

    def _expect_msg(self, msg: str) -> None:
        sock: socket.socket = self._SocketCanDaemonBus__socket  # type: ignore[attr-defined]
        sock.settimeout(self._handshake_timeout)
        try:
            super()._expect_msg(msg)
        except TimeoutError:
            what = "did not greet" if msg == "< hi >" else f"did not answer with {msg!r}"
            raise _HandshakeTimeout(
                f"socketcand server {self._where} accepted but {what} within {self._handshake_timeout:g} s"
            ) from None
        finally:
            sock.settimeout(None)


def _check_server_reachable(config: BusConfig, timeout: float) -> None:
    # python-can's socketcand client retries a refused connection for 10 s; ask once first.
    host, port = config.host or "127.0.0.1", config.port or 29536
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except ConnectionRefusedError as exc:
        raise SourceError(f"{config.describe()}: server refused the connection (is it running?)") from exc
    except TimeoutError as exc:
        raise SourceError(
            f"{config.describe()}: server did not accept the connection within {timeout:g} s"
        ) from exc
    except OSError as exc:
        raise SourceError(f"{config.describe()}: server unreachable ({exc.strerror or exc})") from exc


def _construct(config: BusConfig, connect_timeout: float, extra: dict[str, object]) -> can.BusABC:
    if config.interface == "socketcand":
        _check_server_reachable(config, connect_timeout)
        kwargs = config.bus_kwargs()
        rest = {k: v for k, v in kwargs.items() if k not in ("interface", "channel", "host", "port")}
        return DeadlineSocketcandBus(
            str(kwargs["channel"]),
            str(kwargs.get("host", "127.0.0.1")),
            int(kwargs.get("port", 29536)),
            handshake_timeout=connect_timeout,
            **rest,
            **extra,
        )
    if config.interface == "workshop-socketcand":
        # Our client keeps its own deadlines (core/sources/socketcand_client.py).
        extra = {"connect_timeout": connect_timeout, **extra}
    # ``extra`` holds interface-specific options passed through unchecked; can.Bus takes them
    # as ``**kwargs: Any``, but mypy would match them against its named parameters too.
    return can.Bus(**config.bus_kwargs(), **cast("dict[str, Any]", extra))


class _Opening:
    """One open on its own thread; whoever comes second (caller giving up, or the driver
    returning late) cleans up, under a lock so exactly one of them does."""

    def __init__(self, config: BusConfig, connect_timeout: float, extra: dict[str, object]) -> None:
        self._config = config
        self._connect_timeout = connect_timeout
        self._extra = extra
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._abandoned = False
        self.bus: can.BusABC | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(
            target=self._run, name=f"adapter-open {config.describe()}", daemon=True
        )

    def _run(self) -> None:
        try:
            bus = _construct(self._config, self._connect_timeout, self._extra)
        except BaseException as exc:  # handed to the caller as it is
            with self._lock:
                self.error = exc
        else:
            with self._lock:
                if self._abandoned:
                    bus.shutdown()  # the caller gave up long ago: nobody else will close it
                else:
                    self.bus = bus
        self._done.set()

    def wait(self, timeout: float, halt: threading.Event | None) -> bool:
        """True once the open ended; False if the deadline passed or ``halt`` was set first."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if self._done.wait(min(0.05, max(0.0, left))):
                return True
            if left <= 0 or (halt is not None and halt.is_set()):
                with self._lock:
                    if self._done.is_set() or self.bus is not None or self.error is not None:
                        return True
                    self._abandoned = True
                return False


def open_bus(
    config: BusConfig,
    *,
    connect_timeout: float = CONNECT_TIMEOUT,
    open_timeout: float = OPEN_TIMEOUT,
    halt: threading.Event | None = None,
    **extra: object,
) -> can.BusABC:
    """Open a python-can bus within ``open_timeout`` s, turning driver errors into one SourceError.

    ``extra`` keyword arguments go to ``can.Bus`` as they are (e.g. an interface's
    listen-only switch, see :mod:`workshop_app.core.sources.probe`). ``halt`` set by another
    thread gives up the wait early (a source being stopped while it connects).
    """
    opening = _Opening(config, connect_timeout, extra)
    opening.thread.start()
    if not opening.wait(open_timeout, halt):
        if halt is not None and halt.is_set():
            raise SourceError(f"{config.describe()}: connecting was cancelled")
        raise SourceError(f"{config.describe()}: the adapter did not open within {open_timeout:g} s")
    opening.thread.join()
    if opening.error is not None:
        exc = opening.error
        if isinstance(exc, _HandshakeTimeout):
            raise SourceError(str(exc)) from None
        if isinstance(exc, SourceError):
            raise exc
        raise SourceError(f"{config.describe()}: {plain_reason(exc, config.interface)}") from exc
    assert opening.bus is not None
    return opening.bus
