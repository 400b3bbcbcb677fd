"""AdapterSource: a live python-can bus (any interface python-can supports).

Threads: a python-can Notifier thread receives (convert + append to the ring, nothing else;
whole batches where the bus hands them out, see batch_notifier.py);
one ``adapter-watch`` thread per started source notices a lost connection, closes the dead bus
and, with ``auto_reconnect``, reopens it every ``retry_interval`` seconds until it is back.
With ``connect_in_background`` the first connect also runs on that thread, so a caller on the
GUI thread never waits for a bus or a network.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Sequence

import can
from can.notifier import MessageRecipient

from workshop_app.core.capture.ring import FrameRing
from workshop_app.core.errors import SourceError
from workshop_app.core.sources.base import FrameSource, SourceState
from workshop_app.core.sources.batch_notifier import BatchNotifier
from workshop_app.core.sources.opening import open_bus, plain_reason
from workshop_app.core.sources.reconnect import LinkGap, ReconnectPolicy
from workshop_app.core.types import BusConfig, Frame, SourceCaps

__all__ = ["AdapterSource", "open_bus", "plain_reason"]  # open_bus and plain_reason: for callers of old

log = logging.getLogger(__name__)

# python-can's socketcand client warns "Got incomplete message" whenever a TCP read ends inside
# a frame: ordinary stream segmentation, and at tens of thousands of frames/s the log output
# alone took a fifth of capture's time. Its errors come with a whole traceback in the text;
# the source reports each one itself, in one plain line (see opening.DeadlineSocketcandBus).
logging.getLogger("can.interfaces.socketcand.socketcand").setLevel(logging.CRITICAL)

# Short Notifier timeout: python-can's default makes every stop() wait up to a second.
NOTIFIER_TIMEOUT = 0.05
# How often the watch thread looks for a connection that died without an error.
WATCH_INTERVAL = 0.2
# How long stop() waits for the watch thread; it gives up a connect in progress when halted.
_JOIN_TIMEOUT = 15.0


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
        self._push_many = source.ring.push_many
        self._channel = source.channel_label

    def on_message_received(self, msg: can.Message) -> None:
        self._push(Frame.from_message(msg, self._channel))

    def on_messages(self, messages: Sequence[can.Message]) -> None:
        """A whole batch (BatchNotifier): one hand-over to the ring."""
        channel = self._channel
        self._push_many([Frame.from_message(msg, channel) for msg in messages])

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
        policy: A :class:`ReconnectPolicy`; when given it sets ``auto_reconnect``,
            ``retry_interval`` and the connect deadlines.
        connect_in_background: :meth:`start` returns at once in ``CONNECTING``; the watch
            thread connects (and with ``auto_reconnect`` keeps retrying a failed first connect).

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
        policy: ReconnectPolicy | None = None,
        connect_in_background: bool = False,
    ) -> None:
        super().__init__(ring)
        if policy is None:
            policy = ReconnectPolicy(enabled=auto_reconnect, retry_interval=retry_interval)
        self.policy = policy
        self.config = config
        self.channel_label = channel_label or config.channel
        self.caps = SourceCaps(live=True, can_transmit=True, fd=config.fd)
        self.auto_reconnect = policy.enabled
        self.retry_interval = policy.retry_interval
        self.connect_in_background = connect_in_background
        # Appended/replaced by the watch thread only; readers take a snapshot (tuple).
        self._gaps: list[LinkGap] = []
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
    def gaps(self) -> tuple[LinkGap, ...]:
        return tuple(self._gaps)

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
        self._halt.clear()
        self._wake.clear()
        self._gaps = []
        if self.connect_in_background:
            # What needs no driver call is told at once (a misspelt interface is not retried).
            if self.config.interface not in can.util.VALID_INTERFACES:
                unknown = can.CanInterfaceNotImplementedError(f"unknown interface {self.config.interface!r}")
                raise SourceError(f"{self.describe()}: {plain_reason(unknown, self.config.interface)}")
            self._state = SourceState.CONNECTING
            target = self._connect_then_watch
        else:
            bus, notifier, generation = self._connect([])
            with self._link_lock:
                self._bus, self._notifier, self._generation = bus, notifier, generation
                self._lost_reason = None
            target = self._watch_loop
        self._watch = threading.Thread(target=target, name=f"adapter-watch {self.channel_label}", daemon=True)
        self._watch.start()

    def _connect_then_watch(self) -> None:
        """Watch thread of a background connect: the first connect, retried under the policy."""
        attempt = 0
        while not self._halt.is_set():
            attempt += 1
            try:
                bus, notifier, generation = self._connect([])
            except Exception as exc:  # the thread must live on to retry or to report
                why = plain_reason(exc)
                if not self.auto_reconnect:
                    self._fail(why)
                    return
                self._error = f"{why}; retrying (attempt {attempt})"
                if self._halt.wait(self.retry_interval):
                    return
                continue
            with self._link_lock:
                if self._halt.is_set():
                    notifier.stop()
                    bus.shutdown()
                    return
                self._bus, self._notifier, self._generation = bus, notifier, generation
                self._lost_reason = None
                self._error = None
                self._state = SourceState.RUNNING
            break
        self._watch_loop()

    def _connect(self, listeners: list[MessageRecipient]) -> tuple[can.BusABC, can.Notifier, int]:
        generation = self._generation + 1
        bus = open_bus(
            self.config,
            connect_timeout=self.policy.connect_timeout,
            open_timeout=self.policy.open_timeout,
            halt=self._halt,
        )
        try:
            notifier = BatchNotifier(
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

    def _drop_link(self) -> list[MessageRecipient]:
        """Stop the Notifier and close the bus; returns the listeners others had added."""
        with self._link_lock:
            notifier, bus = self._notifier, self._bus
            self._notifier = self._bus = None
        others: list[MessageRecipient] = []
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
            self._gaps.append(LinkGap(time.time(), None, reason))
            listeners = self._drop_link()
            if not self._reconnect(reason, listeners):
                return

    def _reconnect(self, reason: str, listeners: list[MessageRecipient]) -> bool:
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
                gap = self._gaps[-1]
                self._gaps[-1] = LinkGap(gap.started, time.time(), gap.reason)
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
