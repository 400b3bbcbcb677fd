"""LinkBus: a python-can bus in the window's process for a bus that lives in a capture process.

Diagnostics (can-isotp stacks, udsoncan, the discovery listeners) want a ``can.BusABC`` and a
``can.Notifier``. With capture in a capture process the real bus is over there, so
:class:`LinkBus` stands in for it:

- ``send`` hands the frame to the capture process (its echo comes back with the received
  frames, as for any transmit);
- the window's pipe reader thread offers every received batch to :meth:`LinkBus.offer`, which
  picks the rows the bus wants with numpy masks on the id column (a batch without a wanted id
  costs a few array operations, no Python per frame) and queues them as ``can.Message`` for
  ``recv``.

What the bus wants is python-can's ``set_filters``, narrowed by what its :class:`LinkNotifier`'s
listeners can accept: an ISO-TP stack names its receive ids (its address), any other listener
takes everything. The ids wanted are also told to the capture process (``wanted``), which then
sends a batch as soon as such a frame arrives instead of at its next tick, so a flow control or
an answer is not held back for 20 ms.

Threads: ``offer`` runs on the pipe reader thread, ``recv`` on the notifier's thread (or any one
reader), ``send`` on any thread.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import can
import isotp
import numpy as np

from workshop_app.core.capture.columns import BRS, ERROR, ESI, EXTENDED, FD, REMOTE, RX, FrameColumns
from workshop_app.core.errors import WorkshopError
from workshop_app.core.types import Frame

# (can_id, can_mask, extended or None for both widths): one python-can filter, normalised.
Filter = tuple[int, int, bool | None]
# Ids a bus wants told to the capture process: (id, extended) pairs; None: every id.
Wanted = frozenset[tuple[int, bool]] | None

MASK_11 = 0x7FF
MASK_29 = 0x1FFFFFFF


class LinkEnd(Protocol):
    """What a LinkBus needs from the capture process's window side."""

    def send(self, frame: Frame) -> None: ...

    def attach(self, bus: LinkBus) -> None: ...

    def retap(self) -> None: ...

    def forget(self, bus: LinkBus) -> None: ...


def _normalise(filters: Iterable[Any]) -> list[Filter]:
    out: list[Filter] = []
    for f in filters:
        ext = f.get("extended")
        out.append((int(f["can_id"]), int(f["can_mask"]), None if ext is None else bool(ext)))
    return out


def _mask(cols: FrameColumns, filters: Sequence[Filter]) -> np.ndarray:
    """Rows of ``cols`` that match at least one filter (python-can's rule)."""
    ids = cols.can_id
    extended = (cols.flags & EXTENDED) != 0
    hit = np.zeros(len(cols), dtype=bool)
    for can_id, can_mask, ext in filters:
        match = (ids & can_mask) == (can_id & can_mask)
        if ext is not None:
            match &= extended == ext
        hit |= match
    return hit


def _exact_ids(filters: Sequence[Filter]) -> Wanted:
    """The (id, extended) pairs filters accept, or None when one takes a range (a partial mask)."""
    out: set[tuple[int, bool]] = set()
    for can_id, can_mask, ext in filters:
        widths = (False, True) if ext is None else (ext,)
        for wide in widths:
            full = MASK_29 if wide else MASK_11
            if can_mask & full != full:
                return None
            out.add((can_id & full, wide))
    return frozenset(out)


class LinkBus(can.BusABC):
    """A ``can.BusABC`` whose frames travel through a capture process (see the module doc).

    ``receive_own_messages``: also return the echoes of frames sent (python-can's default: no).
    """

    def __init__(
        self,
        link: LinkEnd,
        channel: str = "capture-process",
        *,
        can_filters: Any = None,
        receive_own_messages: bool = False,
    ) -> None:
        self._link = link
        self._queue: queue.SimpleQueue[can.Message | None] = queue.SimpleQueue()
        self._parsed: list[Filter] | None = None  # python-can filters; None: all
        self._demand: list[Filter] | None = None  # what the notifier's listeners take; None: all
        self._own = receive_own_messages
        self._lock = threading.Lock()
        self._closed = False
        self.channel_info = f"capture process link ({channel})"
        # Channel name given to sent frames without one (the capture process learns it first).
        self.default_channel = channel
        self.queued = 0  # frames this bus has taken from batches (for tests and figures)
        super().__init__(channel=channel, can_filters=can_filters)
        link.attach(self)

    # -- what the bus wants ----------------------------------------------------------------
    def _apply_filters(self, filters: Any) -> None:
        with self._lock:
            self._parsed = _normalise(filters) if filters else None
        self._link.retap()

    def set_demand(self, demand: list[Filter] | None) -> None:
        """What the notifier's listeners can take: None every frame, [] none (no listener)."""
        with self._lock:
            self._demand = demand
        self._link.retap()

    def wanted(self) -> Wanted:
        """Ids the capture process should send at once; None: all of them (a fast tick)."""
        with self._lock:
            parsed, demand = self._parsed, self._demand
        if self._closed or demand == []:
            return frozenset()
        from_filters = _exact_ids(parsed) if parsed is not None else None
        from_demand = _exact_ids(demand) if demand is not None else None
        if from_filters is None:
            return from_demand
        if from_demand is None:
            return from_filters
        return from_filters & from_demand

    # -- the reader thread ---------------------------------------------------------------
    def offer(self, cols: FrameColumns) -> int:
        """Queue the rows of a received batch this bus wants; returns how many."""
        with self._lock:
            parsed, demand = self._parsed, self._demand
        if self._closed or demand == [] or not len(cols):
            return 0
        hit: np.ndarray | None = None
        if parsed is not None:
            hit = _mask(cols, parsed)
        if demand is not None:
            wanted = _mask(cols, demand)
            hit = wanted if hit is None else hit & wanted
        if not self._own:
            received = (cols.flags & RX) != 0
            hit = received if hit is None else hit & received
        rows = np.flatnonzero(hit) if hit is not None else np.arange(len(cols))
        if not len(rows):
            return 0
        names = cols.channels
        for i in rows.tolist():
            flags = int(cols.flags[i])
            n = int(cols.length[i])
            self._queue.put(
                can.Message(
                    timestamp=float(cols.timestamp[i]),
                    arbitration_id=int(cols.can_id[i]),
                    is_extended_id=bool(flags & EXTENDED),
                    is_remote_frame=bool(flags & REMOTE),
                    is_error_frame=bool(flags & ERROR),
                    channel=names[int(cols.channel[i])],
                    dlc=n,
                    data=cols.data[i, :n].tobytes(),
                    is_fd=bool(flags & FD),
                    is_rx=bool(flags & RX),
                    bitrate_switch=bool(flags & BRS),
                    error_state_indicator=bool(flags & ESI),
                )
            )
        self.queued += len(rows)
        return len(rows)

    # -- python-can ------------------------------------------------------------------------
    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        if self._closed:
            return None, True
        try:
            msg = (
                self._queue.get(timeout=timeout) if timeout is None or timeout > 0 else self._queue.get(False)
            )
        except queue.Empty:
            return None, True
        return msg, True  # filtered already, in offer

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        if self._closed:
            raise can.CanOperationError("the capture process link is closed")
        channel = self.default_channel if msg.channel is None else str(msg.channel)
        frame = Frame(
            time.time(),
            msg.arbitration_id,
            bytes(msg.data),
            channel,
            msg.is_extended_id,
            msg.is_fd,
            msg.bitrate_switch,
            msg.error_state_indicator,
            msg.is_remote_frame,
            False,
            False,
        )
        try:
            self._link.send(frame)
        except WorkshopError as exc:  # python-can users (can-isotp, testers) expect CanError
            raise can.CanOperationError(str(exc)) from exc

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)  # wake a reader waiting in recv
        self._link.forget(self)
        super().shutdown()


def _listener_demand(listener: object) -> list[Filter] | None:
    """The frames a notifier listener can accept: an ISO-TP stack's receive ids, else all."""
    owner = getattr(listener, "__self__", listener)
    address = getattr(owner, "address", None)
    if not isinstance(address, isotp.Address):
        return None
    try:
        wide = bool(address.is_rx_29bits())
        ids = {address.get_rx_arbitration_id(t) for t in isotp.TargetAddressType}
    except Exception:  # an addressing mode without fixed ids: take everything
        return None
    return [(i, MASK_29 if wide else MASK_11, wide) for i in ids if i is not None]


class LinkNotifier(can.Notifier):
    """A ``can.Notifier`` on a :class:`LinkBus` that tells the bus what its listeners take.

    With no listener the bus takes nothing, so an idle diagnostic link costs the reader
    thread one check per batch.
    """

    def __init__(self, bus: LinkBus, timeout: float = 0.1) -> None:
        self._link_bus = bus
        super().__init__(bus, [], timeout=timeout)
        self._update()

    def add_listener(self, listener: Any) -> None:
        super().add_listener(listener)
        self._update()

    def remove_listener(self, listener: Any) -> None:
        super().remove_listener(listener)
        self._update()

    def _update(self) -> None:
        demand: list[Filter] = []
        for listener in list(self.listeners):
            wants = _listener_demand(listener)
            if wants is None:
                self._link_bus.set_demand(None)
                return
            demand.extend(wants)
        self._link_bus.set_demand(demand)


class FrameWriter:
    """Frames to send, handed to ``write`` in batches by a thread of its own (started on the
    first frame): a sender never waits for the capture process to read each frame, and
    frames queued while one batch is written go together in the next."""

    def __init__(self, write: Callable[[tuple[Frame, ...]], None]) -> None:
        self._write = write
        self._frames: deque[Frame] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self._thread is None:
                self._closing = False
                self._thread = threading.Thread(target=self._run, name="capture-link-writer", daemon=True)
                self._thread.start()
            self._frames.append(frame)
            self._cond.notify()

    def close(self, timeout: float) -> None:
        """Write what is queued, then end the thread (a later ``put`` starts another)."""
        with self._cond:
            thread, self._thread = self._thread, None
            self._closing = True
            self._cond.notify()
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._frames and not self._closing:
                    self._cond.wait()
                frames = tuple(self._frames)
                self._frames.clear()
            if not frames:
                return  # closing, and everything was written
            self._write(frames)


class LinkBusHost:
    """The diagnostics' side of a capture process's window end (mixed into
    ``CaptureProcessSource``): its LinkBuses, the one :attr:`bus` and :attr:`notifier`, and the
    ids tapped in the capture process.

    The host provides ``_cond`` (the Condition guarding its state), ``command`` (to the capture
    process) and ``_link_open`` (False while stopped or stopping).
    """

    _cond: threading.Condition

    def command(self, cmd: tuple[Any, ...]) -> None:
        raise NotImplementedError

    def _link_open(self) -> bool:
        raise NotImplementedError

    def _init_link_buses(self) -> None:
        self._link_buses: list[LinkBus] = []
        self._bus: LinkBus | None = None
        self._notifier: LinkNotifier | None = None
        self._tap: Wanted = frozenset()  # what the capture process was last told
        self._channel_name: str | None = None  # first channel seen: where sent frames go

    @property
    def bus(self) -> LinkBus | None:
        """A python-can bus whose frames travel through the capture process (made on first
        use, kept across restarts); None while stopped."""
        with self._cond:
            if not self._link_open():
                return None
            if self._bus is None:
                self._bus = self.open_bus()
            return self._bus

    @property
    def notifier(self) -> LinkNotifier | None:
        """The Notifier on :attr:`bus`, so ISO-TP attaches listeners as on an adapter's bus."""
        with self._cond:
            bus = self.bus
            if bus is not None and self._notifier is None:
                self._notifier = LinkNotifier(bus)
            return self._notifier if bus is not None else None

    def open_bus(self, **kwargs: Any) -> LinkBus:
        """A LinkBus of its own (filters, queue) on this capture process; the caller shuts it down."""
        return LinkBus(self, self._channel_name or "can0", **kwargs)  # type: ignore[arg-type]

    def retap(self) -> None:
        """Tell the capture process which ids to send at once (what the LinkBuses want)."""
        with self._cond:  # held while sending: two retaps never reach it out of order
            ids: set[tuple[int, bool]] = set()
            wanted: Wanted = None
            for bus in self._link_buses:
                wants = bus.wanted()
                if wants is None:
                    break
                ids |= wants
            else:
                wanted = frozenset(ids)
            if wanted != self._tap:
                self._tap = wanted
                with contextlib.suppress(WorkshopError):  # not running: told again when it is ready
                    self.command(("tap", wanted))

    def attach(self, bus: LinkBus) -> None:
        """A new LinkBus: the reader thread offers it every batch from now on."""
        with self._cond:
            if bus not in self._link_buses:
                self._link_buses.append(bus)
        self.retap()

    def forget(self, bus: LinkBus) -> None:
        """A LinkBus shut down."""
        with self._cond:
            if bus in self._link_buses:
                self._link_buses.remove(bus)
        self.retap()

    def _offer_link_buses(self, cols: FrameColumns) -> None:
        """The reader thread: a received batch to every LinkBus."""
        if self._channel_name is None and cols.channels:
            with self._cond:
                self._channel_name = cols.channels[0]
                for bus in self._link_buses:
                    if bus.default_channel == "can0":
                        bus.default_channel = self._channel_name
        for bus in tuple(self._link_buses):
            bus.offer(cols)

    def _close_link_buses(self) -> None:
        """The source stopped: the notifier and the bus go (anyone holding them is told by
        errors on send); buses opened with :meth:`open_bus` are their owners'."""
        with self._cond:
            notifier, bus = self._notifier, self._bus
            self._notifier = self._bus = None
        if notifier is not None:
            notifier.stop()
        if bus is not None:
            bus.shutdown()
