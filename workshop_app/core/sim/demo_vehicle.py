"""The demo vehicle on a bus: sends the demo DBC's frames, answers body commands.

:class:`DemoVehicle` owns one thread. The thread steps the :class:`VehicleModel`, sends every
periodic message of the DBC at its ``GenMsgCycleTime`` (absolute deadlines from a heap, so
cycle times do not drift), fills rolling counters and checksums, and reads the bus for
BODY_COMMAND frames in between.

With ``pace_bitrate`` the frames are laid on a virtual bus timeline: a frame starts no
earlier than the previous one ended (exact ISO 11898-1 frame length, stuff bits included),
pending frames win arbitration by identifier, so the offered load can never exceed what a
real bus at that bitrate carries. Optional filler traffic (ids 0x580..0x5BF) loads the bus up
to a fraction, or at a fixed frame rate when unpaced, for benchmarks.

The caller owns the bus: :meth:`DemoVehicle.stop` stops the thread, it does not shut the
bus down.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import random
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import can
import cantools

from workshop_app.core import bittiming
from workshop_app.core.decode.checksums import ROLE_CHECKSUM_CRC8 as _CHECKSUM_CRC8
from workshop_app.core.decode.checksums import ROLE_CHECKSUM_XOR8 as _CHECKSUM_XOR8
from workshop_app.core.decode.checksums import ROLE_COUNTER as _ROLLING_COUNTER
from workshop_app.core.decode.checksums import crc8_sae_j1850, xor8
from workshop_app.core.decode.numbers import decode_numbers
from workshop_app.core.sim.bus_schedule import FILLER_IDS, MAX_FILLER_CREDIT_S
from workshop_app.core.sim.bus_schedule import MIN_SLEEP_S as _MIN_SLEEP_S
from workshop_app.core.sim.bus_schedule import Filler as _Filler
from workshop_app.core.sim.bus_schedule import LoadMeter as _LoadMeter
from workshop_app.core.sim.bus_schedule import Pending as _Pending
from workshop_app.core.sim.bus_schedule import Tx as _Tx
from workshop_app.core.sim.bus_schedule import arbitration_priority as _arbitration_priority
from workshop_app.core.sim.faults import SignalValue, available_faults, get_fault
from workshop_app.core.sim.vehicle_model import MESSAGES, VehicleModel, VehicleState

__all__ = ["FILLER_IDS", "DemoVehicle", "crc8_sae_j1850", "xor8"]

_PHYSICS_PERIOD_S = 0.005  # step the model at most this often (wall time)
_MAX_CONSECUTIVE_SEND_ERRORS = 1000
_FILLER_PRIORITY = (FILLER_IDS[0], 0, 0)
_REFERENCE_BITRATE = 500_000


class DemoVehicle:
    """The simulated car on any python-can bus.

    >>> import can
    >>> bus = can.Bus(interface="virtual", channel="doc-demo")
    >>> car = DemoVehicle(bus, start_at=15.0)  # begin with the engine already running
    >>> car.start()
    >>> car.inject_fault("misfire_cyl2")
    >>> car.stop(); bus.shutdown()

    Args:
        bus: any python-can bus; frames are sent on it and BODY_COMMAND is read from it.
        dbc_path: database to drive (default: the shipped demo vehicle DBC).
        pace_bitrate: serialise frames as on a bus at this nominal bitrate (None: unpaced).
        data_bitrate: CAN FD data-phase bitrate; when set, FD frames use bit-rate switching.
        time_scale: speeds up the physics (e.g. 20 for a quick warm-up); cycle times stay.
        seed: seed of the model and of the start offsets.
        channel: channel name put on the sent messages.
        extra_load: fraction of the paced bus to fill with filler frames (needs pace_bitrate).
        start_at: simulated seconds of the story to run before the first frame.
        listen: read the bus for BODY_COMMAND on the vehicle thread. Pass False when another
            reader owns ``bus`` (e.g. a Notifier) and forward frames to :meth:`handle_message`.
    """

    def __init__(
        self,
        bus: can.BusABC,
        *,
        dbc_path: Path | None = None,
        pace_bitrate: int | None = None,
        data_bitrate: int | None = None,
        time_scale: float = 1.0,
        seed: int = 0,
        channel: str | None = None,
        extra_load: float = 0.0,
        start_at: float = 0.0,
        listen: bool = True,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        if pace_bitrate is not None and pace_bitrate <= 0:
            raise ValueError("pace_bitrate must be positive")
        if dbc_path is None:
            from workshop_app.paths import demo_dbc_path

            dbc_path = demo_dbc_path()
        self.bus = bus
        self.dbc_path = Path(dbc_path)
        db = cantools.database.load_file(str(self.dbc_path))
        if not isinstance(db, cantools.database.can.Database):
            # load_file also reads diagnostic (CDD) databases, which have no messages to send
            raise TypeError(f"{self.dbc_path} is not a CAN database")
        self.db = db
        self.pace_bitrate = pace_bitrate
        self.data_bitrate = data_bitrate
        self.time_scale = float(time_scale)
        self.seed = seed
        self.channel = channel
        self.listen = listen
        self._model = VehicleModel(seed)
        if start_at > 0:
            self._model.step(start_at)
        self._lock = threading.Lock()  # guards the model: vehicle thread vs. callers
        self._tx = self._build_tx()
        self._by_name = {tx.name: tx for tx in self._tx}
        self._command: cantools.database.can.Message | None
        try:
            self._command = self.db.get_message_by_name("BODY_COMMAND")
        except KeyError:
            self._command = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._silenced: frozenset[str] = frozenset()
        self._quiet_nodes: frozenset[str] = frozenset()  # ECUs whose frames are stopped
        self._bad_checksum: frozenset[str] = frozenset()
        self._filler_load = 0.0
        self._filler_rate = 0.0
        self.set_extra_load(extra_load)
        self._frames_sent = 0
        self._frames_received = 0
        self._commands_received = 0
        self._send_errors = 0
        self._bus_load = 0.0
        # Load is accounted at the paced bitrate, or (unpaced) at a reference classic rate.
        self._load_bitrate = pace_bitrate or _REFERENCE_BITRATE
        self.last_error: BaseException | None = None

    # --- setup ----------------------------------------------------------------------------

    def _build_tx(self) -> list[_Tx]:
        txs = []
        for msg in self.db.messages:
            if not msg.cycle_time or msg.name not in MESSAGES:
                continue
            limits = tuple(
                (s.name, float(s.minimum), float(s.maximum))
                for s in msg.signals
                if s.minimum is not None and s.maximum is not None
            )
            tx = _Tx(
                name=msg.name,
                message=msg,
                frame_id=msg.frame_id,
                is_extended=msg.is_extended_frame,
                is_fd=msg.is_fd,
                cycle_s=msg.cycle_time / 1000.0,
                priority=_arbitration_priority(msg.frame_id, msg.is_extended_frame),
                limits=limits,
                sender=msg.senders[0] if msg.senders else "",
            )
            for s in msg.signals:
                attr = s.dbc.attributes.get("SignalFunction") if s.dbc else None
                role = int(attr.value) if attr is not None else 0
                if role == _ROLLING_COUNTER:
                    tx.counter = s.name
                elif role in (_CHECKSUM_XOR8, _CHECKSUM_CRC8):
                    aligned = s.length == 8 and s.start % 8 == (0 if s.byte_order == "little_endian" else 7)
                    if not aligned:
                        raise ValueError(f"{msg.name}.{s.name}: checksums must fill one whole byte")
                    tx.checksum, tx.checksum_kind, tx.checksum_byte = s.name, role, s.start // 8
            if msg.is_multiplexed():
                tree = msg.signal_tree
                for node in tree:
                    if isinstance(node, dict):
                        ((tx.mux, pages_by_id),) = node.items()
                        tx.pages = tuple(
                            (page, tuple(_flatten(names))) for page, names in sorted(pages_by_id.items())
                        )
            txs.append(tx)
        return txs

    # --- public API -----------------------------------------------------------------------

    @property
    def model(self) -> VehicleModel:
        """The physics model. While the thread runs it is stepped concurrently: read single
        values from it, do not expect a consistent snapshot."""
        return self._model

    def state_snapshot(self) -> VehicleState:
        """A consistent copy of the model's state (taken under the model lock: thread-safe)."""
        with self._lock:
            return dataclasses.replace(self._model.state)

    @property
    def messages(self) -> tuple[str, ...]:
        """Messages sent periodically: those of the DBC with a cycle time that the model knows."""
        return tuple(tx.name for tx in self._tx)

    @property
    def frames_sent(self) -> int:
        """Frames put on the bus since construction (filler included)."""
        return self._frames_sent

    @property
    def frames_received(self) -> int:
        """Frames read from the bus by the vehicle thread."""
        return self._frames_received

    @property
    def commands_received(self) -> int:
        """BODY_COMMAND frames acted on."""
        return self._commands_received

    @property
    def send_errors(self) -> int:
        """Frames the bus refused."""
        return self._send_errors

    @property
    def bus_load(self) -> float:
        """Fraction of the last second the bus was busy.

        Paced: exact, at most 1.0. Unpaced: the time the frames sent in the last second would
        occupy a 500 kbit/s bus, which exceeds 1.0 when the simulation offers more than a real
        bus could carry.
        """
        return self._bus_load

    @property
    def sim_time(self) -> float:
        """Simulated seconds since the start of the story."""
        with self._lock:
            return self._model.state.t

    @property
    def running(self) -> bool:
        """True while the vehicle thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the vehicle thread (no-op when it already runs)."""
        if self.running:
            return
        self._stop.clear()
        name = f"DemoVehicle[{self.channel or getattr(self.bus, 'channel_info', 'bus')}]"
        self._thread = threading.Thread(target=self._run_guarded, name=name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the vehicle thread and wait for it (idempotent). The bus stays open."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                raise RuntimeError(f"{thread.name} did not stop within {timeout} s")
        self._thread = None

    def __enter__(self) -> DemoVehicle:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @staticmethod
    def available_faults() -> dict[str, str]:
        """Name → description of every fault that can be injected."""
        return available_faults()

    def inject_fault(self, name: str) -> None:
        """Activate a fault (see :meth:`available_faults`); its effects start at once."""
        fault = get_fault(name)
        with self._lock:
            self._model.inject_fault(fault)
            self._refresh_fault_effects()

    def park(self, parked: bool = True) -> None:
        """Park the car for a workshop job (stops, P, engine off, key on); ``False`` drives on."""
        with self._lock:
            self._model.parked = parked

    @property
    def parked(self) -> bool:
        return self._model.parked

    def clear_faults(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._model.clear_faults()
            self._refresh_fault_effects()

    @property
    def active_faults(self) -> tuple[str, ...]:
        """Names of the active faults."""
        with self._lock:
            return self._model.active_faults

    def active_dtcs(self) -> list[tuple[str, str, str]]:
        """``(ecu, code, text)`` of the DTCs the active faults set."""
        with self._lock:
            return self._model.active_dtcs()

    def set_extra_load(self, fraction: float) -> None:
        """Fill ``fraction`` (0..1) of the paced bus with filler frames."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("extra_load is a fraction between 0 and 1")
        if fraction and not self.pace_bitrate:
            raise ValueError("extra_load needs pace_bitrate (use set_filler_rate when unpaced)")
        self._filler_load = float(fraction)

    def set_filler_rate(self, frames_per_second: float) -> None:
        """Send filler frames at this rate (``math.inf``: as fast as the thread can)."""
        if frames_per_second < 0:
            raise ValueError("frames_per_second must not be negative")
        self._filler_rate = float(frames_per_second)

    def set_node_quiet(self, node: str, quiet: bool) -> None:
        """Stop (or resume) every periodic frame the DBC node ``node`` sends: an ECU whose
        communication a tester disabled (UDS 0x28) or that runs its bootloader."""
        with self._lock:
            nodes = set(self._quiet_nodes)
            if quiet:
                nodes.add(node)
            else:
                nodes.discard(node)
            self._quiet_nodes = frozenset(nodes)

    def handle_message(self, msg: can.Message) -> None:
        """Act on a frame read from the bus (BODY_COMMAND; anything else is ignored).

        Thread-safe: usable as the callback of a Notifier owning the bus (``listen=False``).
        """
        cmd = self._command
        if (
            cmd is None
            or msg.arbitration_id != cmd.frame_id
            or msg.is_extended_id != cmd.is_extended_frame
            or msg.is_error_frame
            or msg.is_remote_frame
        ):
            return
        try:
            request = decode_numbers(cmd, bytes(msg.data), allow_truncated=True)
        except Exception:  # a malformed command is ignored, as an ECU would
            return
        if not request:
            return
        with self._lock:
            self._model.apply_body_command(request)
        self._commands_received += 1

    def encode(self, name: str) -> bytes:
        """Payload the vehicle would send for message ``name`` now (advances its counter)."""
        with self._lock:
            return bytes(self._encode(self._by_name[name]))

    # --- vehicle thread -------------------------------------------------------------------

    def _refresh_fault_effects(self) -> None:
        faults = [get_fault(n) for n in self._model.active_faults]
        self._silenced = frozenset().union(*(f.silenced for f in faults)) if faults else frozenset()
        self._bad_checksum = frozenset().union(*(f.bad_checksum for f in faults)) if faults else frozenset()

    def _encode(self, tx: _Tx) -> bytearray:
        values: dict[str, SignalValue] = self._model.signals_for(tx.name)
        if tx.mux is not None:
            page, names = tx.pages[tx.page]
            tx.page = (tx.page + 1) % len(tx.pages)
            values = {n: values[n] for n in names}
            values[tx.mux] = page
        for sig, lo, hi in tx.limits:
            v = values.get(sig)
            if v is not None and not isinstance(v, str):
                values[sig] = lo if v < lo else hi if v > hi else v
        if tx.counter is not None:
            values[tx.counter] = tx.count
            tx.count = (tx.count + 1) & 0x0F
        if tx.checksum is not None:
            values[tx.checksum] = 0
        data = bytearray(tx.message.encode(values, scaling=True, strict=False))
        if tx.checksum is not None:
            i = tx.checksum_byte
            cs = xor8(data, i) if tx.checksum_kind == _CHECKSUM_XOR8 else crc8_sae_j1850(data, i)
            if tx.name in self._bad_checksum:
                cs ^= 0x5A  # a corrupted sender: never the right value
            data[i] = cs
        return data

    @staticmethod
    def _next_paced(pending: list[_Pending], bus_free_at: float, now: float, filler: bool) -> _Pending | None:
        """Arbitration on the virtual bus timeline: which frame takes the next slot.

        The bus timeline may lag behind ``now`` (the thread woke late); frames are then placed
        retroactively, back to back, exactly as the bus would have carried them.
        """
        if bus_free_at > now:
            return None
        ready = [p for p in pending if p.ready <= bus_free_at]
        if ready:
            frame = min(ready)  # lowest identifier wins arbitration
            pending.remove(frame)
            frame.ready = bus_free_at
            return frame
        # Nothing queued when the bus went idle: filler (offered since at most the credit
        # horizon) or the first frame queued later, whichever came first.
        filler_at = max(bus_free_at, now - MAX_FILLER_CREDIT_S) if filler else math.inf
        if pending:
            first = min(pending, key=lambda p: (p.ready, p.priority))
            if first.ready <= filler_at:
                pending.remove(first)
                return first
        if filler_at <= now:
            return _Pending(_FILLER_PRIORITY, filler_at, None)
        return None

    @staticmethod
    def _next_unpaced(pending: list[_Pending], filler: bool, now: float) -> _Pending | None:
        if pending:
            frame = min(pending)
            pending.remove(frame)
            return frame
        if filler:
            return _Pending(_FILLER_PRIORITY, now, None)
        return None

    def _run_guarded(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # keep the reason for the caller; the thread ends
            self.last_error = exc

    def _run(self) -> None:
        clock = time.perf_counter
        epoch_offset = time.time() - clock()  # perf_counter instants -> message timestamps
        rng = random.Random(self.seed ^ 0x5EED)
        t0 = clock()
        last_physics = t0
        # Staggered first deadlines: real ECUs are not synchronised to each other.
        schedule = [(t0 + rng.uniform(0.0, min(tx.cycle_s, 0.01)), i) for i, tx in enumerate(self._tx)]
        heapq.heapify(schedule)
        pending: list[_Pending] = []
        seq = 0
        paced = self.pace_bitrate is not None
        bus_free_at = t0  # end of the last frame on the virtual bus timeline
        meter = _LoadMeter()
        filler = _Filler(self._load_bitrate)
        last_filler = t0
        consecutive_errors = 0

        while not self._stop.is_set():
            now = clock()
            if now - last_physics >= _PHYSICS_PERIOD_S:
                with self._lock:
                    self._model.step((now - last_physics) * self.time_scale)
                last_physics = now

            while schedule and schedule[0][0] <= now:
                due, i = heapq.heappop(schedule)
                tx = self._tx[i]
                nxt = due + tx.cycle_s  # absolute deadlines: no drift
                if nxt < now - tx.cycle_s:
                    nxt = now + tx.cycle_s  # after a stall, resume instead of bursting
                heapq.heappush(schedule, (nxt, i))
                if tx.name not in self._silenced and tx.sender not in self._quiet_nodes:
                    seq += 1
                    pending.append(_Pending(tx.priority, due, tx, seq))

            filler.refill(
                now - last_filler, self._filler_load if paced else 0.0, 0.0 if paced else self._filler_rate
            )
            last_filler = now

            # Transmit everything whose slot on the bus has begun.
            while True:
                if paced:
                    frame = self._next_paced(pending, bus_free_at, now, filler.credit > 0)
                else:
                    frame = self._next_unpaced(pending, filler.credit >= 1.0, now)
                if frame is None:
                    break
                if frame.tx is None:
                    msg = filler.message()
                else:
                    with self._lock:
                        data = bytes(self._encode(frame.tx))
                    msg = can.Message(
                        arbitration_id=frame.tx.frame_id,
                        is_extended_id=frame.tx.is_extended,
                        data=data,
                        is_fd=frame.tx.is_fd,
                        bitrate_switch=frame.tx.is_fd and self.data_bitrate is not None,
                    )
                stamp = now
                if paced or frame.tx is not None:
                    dur = bittiming.frame_duration(
                        msg.arbitration_id,
                        msg.is_extended_id,
                        msg.data,
                        is_fd=msg.is_fd,
                        bitrate_switch=msg.bitrate_switch,
                        bitrate=self._load_bitrate,
                        data_bitrate=self.data_bitrate,
                    )
                else:
                    dur = filler.typical_duration  # unpaced filler may run at 100k frames/s
                if paced:
                    bus_free_at = frame.ready + dur
                    stamp = bus_free_at  # a receiver timestamps a frame at its end
                if frame.tx is None:
                    filler.credit -= dur if paced else 1.0
                meter.add(stamp, dur)
                msg.timestamp = stamp + epoch_offset
                msg.channel = self.channel
                try:
                    self.bus.send(msg)
                except can.CanError:
                    self._send_errors += 1
                    consecutive_errors += 1
                    if consecutive_errors >= _MAX_CONSECUTIVE_SEND_ERRORS:
                        raise
                else:
                    consecutive_errors = 0
                    self._frames_sent += 1

            # Paced slots never overlap, so only the frame straddling the window's start
            # can push the sum past 1.0.
            load = meter.value(now)
            self._bus_load = min(1.0, load) if paced else load

            # Sleep (reading the bus) until the next thing to do.
            wake = min(schedule[0][0] if schedule else math.inf, last_physics + 4 * _PHYSICS_PERIOD_S)
            if paced and (pending or self._filler_load > 0):
                wake = min(wake, max(bus_free_at, now + _MIN_SLEEP_S))
            elif not paced and self._filler_rate > 0:
                wake = min(wake, now + filler.wait(self._filler_rate))
            timeout = max(0.0, wake - clock())
            if self.listen:
                received = self.bus.recv(timeout=timeout)
                drained = 0
                while received is not None:
                    self._frames_received += 1
                    self.handle_message(received)
                    drained += 1
                    # Bounded, so that a flood of incoming frames cannot starve sending.
                    received = self.bus.recv(timeout=0.0) if drained < 1000 else None
            elif timeout > 0:
                self._stop.wait(timeout)


def _flatten(names: Sequence[object]) -> list[str]:
    """Signal names of a cantools signal tree node (nested muxes are flattened)."""
    out: list[str] = []
    for n in names:
        if isinstance(n, str):
            out.append(n)
        elif isinstance(n, Mapping):
            for sel, sub in n.items():
                out.append(sel)
                for page in sub.values():
                    out.extend(_flatten(page))
    return out
