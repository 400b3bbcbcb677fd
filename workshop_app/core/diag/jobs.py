"""DiagJobs: the diagnostic workflows of a connection as core jobs, for the CLI and the window.

Each job takes ``progress`` (:class:`JobProgress`) and ``cancel`` (:class:`CancelToken`) and
blocks its caller until done; the window runs it through its worker module, the CLI on its
own thread. Every UDS call runs on the connection's one diagnostic worker thread
(:class:`DiagSession`), so a watch and a scan asked at once take turns instead of mixing
their requests on one ECU. The job's thread only waits, watching its token and the link: a
link that fails under a job ends it at once with a plain :class:`SourceError`.

* :meth:`DiagJobs.scan_and_store`: scan, complete with the ECUs the history expects, store.
* :meth:`DiagJobs.clear_with_scans`: pre-repair scan, clear, post-repair scan, all stored.
* :meth:`DiagJobs.watch`: poll the fault memories; report codes as they appear.
* :meth:`DiagJobs.triggered_capture`: save the recording around a signal limit or a new fault.

The triggered capture is fed by the core: given a session with ``subscribe`` (the
``WorkshopSession``), the jobs subscribe to its frames; given a plain source or capture
session, whoever ticks it passes each batch to :meth:`DiagJobs.feed`.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, TypeVar

import can

from workshop_app.core.capture.trigger import TriggerCapture, TriggerEvent
from workshop_app.core.diag.activity import CAR_ACTIVITY
from workshop_app.core.diag.client import DiagError, EcuAddress, EcuClient
from workshop_app.core.diag.descriptions import DtcDescriptions
from workshop_app.core.diag.ecu_spec import VehicleSpec, demo_vehicle_spec
from workshop_app.core.diag.model import ScanComparison, ScanLabel, ScanResult, compare_scans
from workshop_app.core.diag.scan import ClearOutcome, ScanOptions, VehicleScanner
from workshop_app.core.diag.session import DiagSession
from workshop_app.core.diag.watch import DtcEvent, DtcWatcher
from workshop_app.core.errors import SourceError, WorkshopError
from workshop_app.core.history import HistoryStore
from workshop_app.core.jobs import CancelToken, JobCancelled, JobProgress, ProgressFn, no_progress
from workshop_app.core.sources.base import FrameSource, SourceState
from workshop_app.core.types import Frame

T = TypeVar("T")

_LINK_CHECK_S = 0.1  # how often a waiting job looks at its token and the link
DID_VIN = 0xF190  # ISO 14229-1 Annex C
SETTLE_AFTER_CLEAR_S = 0.3  # modules finish their own housekeeping before they are read again


class NotStored(WorkshopError):
    """The scan ran but the history refused it; ``result`` holds it for showing anyway."""

    def __init__(self, problem: str, result: ScanResult) -> None:
        super().__init__(f"not stored in the history: {problem}")
        self.result = result


@dataclass
class ClearReport:
    """A clear with the scans around it; ``history_problems`` says what was not stored."""

    before: ScanResult
    outcomes: list[ClearOutcome]
    after: ScanResult
    history_problems: list[str] = field(default_factory=list)

    @property
    def comparison(self) -> ScanComparison:
        return compare_scans(self.before, self.after)

    @property
    def all_cleared(self) -> bool:
        return all(o.done for o in self.outcomes)


class DiagJobs:
    """The diagnostic jobs of one connection.

    ``session_or_source``: a ``WorkshopSession`` (its current source; triggers subscribe to its
    frames), a ``CaptureSession`` or a ``FrameSource``. ``history``: where scans, clears,
    fault events and trigger recordings are stored (None: nowhere).
    """

    def __init__(
        self,
        session_or_source: Any,
        spec: VehicleSpec | None,
        history: HistoryStore | None = None,
        *,
        descriptions: DtcDescriptions | None = None,
    ) -> None:
        self._target = session_or_source
        # Every entry point defaults to the demo vehicle; a session built without a spec too.
        self.spec = spec if spec is not None else demo_vehicle_spec()
        self.history = history
        self.descriptions = descriptions if descriptions is not None else DtcDescriptions()
        self.vin = ""  # of the last scan: fault events and trigger recordings are filed under it
        self._lock = threading.Lock()
        self._diag: DiagSession | None = None
        self._trigger: TriggerCapture | None = None
        self._subscribed = False

    # -- the connection ------------------------------------------------------------------------
    @property
    def source(self) -> FrameSource:
        """The connection's current source (it changes when the session switches source)."""
        capture = getattr(self._target, "capture", None)  # a WorkshopSession
        holder = capture if capture is not None else self._target
        source = getattr(holder, "source", None)  # a CaptureSession
        return source if isinstance(source, FrameSource) else self._target

    def diag(self) -> DiagSession:
        """The diagnostic worker of the current source (a new one after a source switch)."""
        source = self.source
        with self._lock:
            if self._diag is None or self._diag.source is not source:
                if self._diag is not None:
                    self._diag.close()
                self._diag = DiagSession(source, self.spec, descriptions=self.descriptions)
            return self._diag

    def close(self) -> None:
        """Disarm any trigger and stop the worker (after the call it is running)."""
        self.disarm()
        with self._lock:
            diag, self._diag = self._diag, None
        if diag is not None:
            diag.close()

    def __enter__(self) -> DiagJobs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _link(self, what: str) -> tuple[can.BusABC, can.Notifier]:
        """The connection's bus and notifier: SourceError when the link failed under ``what``,
        DiagError on a connection without a bus (a replayed log)."""
        diag = self.diag()
        if diag.source.state is SourceState.FAILED:
            raise SourceError(_lost(diag.source, what))
        return diag.link()

    def _run(self, fn: Callable[[threading.Event], T], cancel: CancelToken, what: str) -> T:
        """``fn(stop)`` on the diagnostic worker; this thread waits, watching token and link.

        ``stop`` is set on cancel or a lost link, so the worker ends at its next safe point;
        this thread raises at once and never stores a half result.
        """
        diag = self.diag()
        self._link(what)
        source = diag.source
        stop = threading.Event()
        future = diag.submit(fn, stop)
        while True:
            try:
                result = future.result(timeout=_LINK_CHECK_S)
            except FutureTimeout:
                pass
            except BaseException:  # the job failed, or Ctrl-C in a CLI waiting here: stop the worker
                stop.set()
                raise
            else:
                if source.state is SourceState.FAILED:
                    raise SourceError(_lost(source, what))
                return result
            if source.state is SourceState.FAILED:
                stop.set()
                raise SourceError(_lost(source, what))
            if cancel.cancelled:
                stop.set()
                raise JobCancelled(cancel.reason or "cancelled")

    def _scan(
        self, options: ScanOptions, label: ScanLabel, progress: ProgressFn, cancel: CancelToken, what: str
    ) -> ScanResult:
        bus, notifier = self._link(what)

        def scan(stop: threading.Event) -> ScanResult:
            scanner = VehicleScanner(
                bus,
                notifier,
                self.spec,
                descriptions=self.descriptions,
                options=options,
                connection=self.source.describe(),
            )
            return scanner.scan(
                label=label,
                progress=lambda text, fraction: progress(JobProgress(text, round(fraction * 1000), 1000)),
                cancel=stop,
            )

        result = self._run(scan, cancel, what)
        cancel.check()  # a scan stopped between ECUs is not the car's state
        if result.vin:
            self.vin = result.vin
        return result

    # -- scan ----------------------------------------------------------------------------------
    def scan_and_store(
        self,
        options: ScanOptions | None = None,
        label: ScanLabel = ScanLabel.NONE,
        progress: ProgressFn = no_progress,
        cancel: CancelToken | None = None,
        *,
        car_claimed: bool = False,
    ) -> ScanResult:
        """Scan the vehicle and store the scan (``scan_id`` set); NotStored if the history refused.

        The scan holds the car (``CAR_ACTIVITY``) against a flash; ``car_claimed``: the caller
        already holds it (the window claims it on its own thread, to refuse at once).
        """
        cancel = cancel or CancelToken()
        with _holding_car("a fault-code scan", car_claimed):
            result = self._scan(options or ScanOptions(), label, progress, cancel, "the scan")
        problem = self._store_scan(result)
        if problem:
            raise NotStored(problem, result)
        return result

    def _store_scan(self, result: ScanResult) -> str:
        """Store ``result`` (with the ECUs seen in earlier scans); the problem, or ''."""
        if self.history is None:
            return ""
        try:
            if result.vin:
                result.add_missing(self.history.expected_ecus(result.vin))
            self.history.add_scan(result)
        except WorkshopError as exc:
            return str(exc)
        return ""

    # -- clear ---------------------------------------------------------------------------------
    def clear_with_scans(
        self,
        names: list[str] | None = None,
        progress: ProgressFn = no_progress,
        cancel: CancelToken | None = None,
        *,
        options: ScanOptions | None = None,
        before_clear: Callable[[ScanResult, list[str]], bool] | None = None,
        settle: float = SETTLE_AFTER_CLEAR_S,
        car_claimed: bool = False,
    ) -> ClearReport:
        """Scan (pre-repair, stored), clear ``names`` (default: every ECU that answered and is
        expected), scan again (post-repair, stored).

        ``before_clear(before, targets)`` runs on this job's thread between the first scan and
        the clear (the CLI shows the scan, repairs the simulated car, asks); False ends the job
        with JobCancelled and nothing cleared. Each step is stored as soon as it is done, so a
        job that ends half-way leaves what happened in the history.
        """
        cancel = cancel or CancelToken()
        options = options or ScanOptions()
        for name in names or []:
            try:
                self.spec.ecu(name)  # unknown names fail before anything is cleared
            except KeyError as exc:
                raise WorkshopError(str(exc.args[0])) from None
        problems: list[str] = []
        with _holding_car("a fault-code clear", car_claimed):
            before = self._scan(
                options, ScanLabel.PRE_REPAIR, _prefixed(progress, "before clearing: "), cancel, "the scan"
            )
            problems += [p for p in [self._store_scan(before)] if p]
            targets = names or [e.name for e in before.ecus if e.responded and e.expected]
            if before_clear is not None and not before_clear(before, targets):
                raise JobCancelled("nothing cleared")
            cancel.check()
            progress(JobProgress(f"clearing {', '.join(targets)}", 0, 0))

            bus, notifier = self._link("the clear")

            def clear(_stop: threading.Event) -> list[ClearOutcome]:
                scanner = VehicleScanner(
                    bus, notifier, self.spec, descriptions=self.descriptions, options=options
                )
                return scanner.clear(targets)

            # Not cancellable once sent: an ECU clears or answers why not; either is stored.
            outcomes = self._run(clear, CancelToken(), "the clear")
            if self.history is not None:
                try:
                    self.history.add_clears(outcomes, vin=before.vin)
                except WorkshopError as exc:
                    problems.append(str(exc))
            if cancel.wait(settle):
                cancel.check()
            after = self._scan(
                options, ScanLabel.POST_REPAIR, _prefixed(progress, "after clearing: "), cancel, "the scan"
            )
            problems += [p for p in [self._store_scan(after)] if p]
        return ClearReport(before, outcomes, after, problems)

    # -- watch ---------------------------------------------------------------------------------
    def watch(
        self,
        interval: float,
        on_new_fault: Callable[[DtcEvent], None],
        progress: ProgressFn = no_progress,
        cancel: CancelToken | None = None,
        *,
        on_cleared: Callable[[DtcEvent], None] | None = None,
        until: threading.Event | None = None,
    ) -> list[DtcEvent]:
        """Read every ECU's fault memory each ``interval`` seconds until cancelled (or ``until``
        is set); ``on_new_fault`` gets each code that appears, on this job's thread.

        The first poll learns what is already stored (progress ``done`` counts polls, so
        ``done >= 1`` means "watching"). Each event is stored in the history. Cancelling is the
        normal end of a watch: it returns every event seen instead of raising.
        """
        cancel = cancel or CancelToken()
        events: list[DtcEvent] = []
        watcher: DtcWatcher | None = None
        polls = 0
        try:
            while not cancel.cancelled and not (until is not None and until.is_set()):
                bus, notifier = self._link("the fault watch")
                if watcher is None or watcher.bus is not bus:  # a new connection: learn afresh
                    watcher = DtcWatcher(
                        bus,
                        notifier,
                        list(self.spec.ecus),
                        descriptions=self.descriptions,
                        manufacturer=self.spec.manufacturer,
                    )
                    polls = 0
                    if not self.vin:  # events and recordings are filed under the car
                        read_vin = functools.partial(self._read_vin, bus, notifier)
                        self.vin = self._run(_call(read_vin), cancel, "the fault watch")
                found = self._run(_call(watcher.poll), cancel, "the fault watch")
                polls += 1
                for event in found:
                    events.append(event)
                    self._store_event(event)
                    if event.kind == "appeared":
                        on_new_fault(event)
                    elif on_cleared is not None:
                        on_cleared(event)
                appeared = sum(e.kind == "appeared" for e in events)
                phase = "stored fault codes read" if polls == 1 else f"watching: {appeared} new fault codes"
                progress(JobProgress(phase, polls, 0))
                _wait_either(cancel, until, interval)
        except JobCancelled:
            pass
        return events

    def _read_vin(self, bus: can.BusABC, notifier: can.Notifier) -> str:
        """The VIN (DID 0xF190) from the first described ECU that gives it; '' if none does."""
        for ecu in self.spec.ecus:
            try:
                with EcuClient(bus, notifier, EcuAddress.of(ecu), spec=ecu, timeout=0.5) as client:
                    value = client.read_did(DID_VIN)
            except DiagError:
                continue
            text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
            if text.strip():
                return text.strip()
        return ""

    def _store_event(self, event: DtcEvent) -> None:
        if self.history is None:
            return
        # The watch goes on when the history refuses; the event still reaches the caller.
        with contextlib.suppress(WorkshopError):
            self.history.add_dtc_event(
                event.ecu,
                event.dtc.code,
                event.kind,
                status=event.dtc.status,
                time=event.time,
                vin=self.vin or None,
            )

    # -- triggered capture ---------------------------------------------------------------------
    def arm(self, trigger: TriggerCapture) -> None:
        """Pass every captured batch through ``trigger`` from now on (one trigger at a time)."""
        with self._lock:
            if self._trigger is not None:
                raise WorkshopError("a trigger is already armed")
            self._trigger = trigger
            subscribe = getattr(self._target, "subscribe", None)
            if callable(subscribe) and not self._subscribed:
                subscribe("frames", self.feed)
                self._subscribed = True

    def disarm(self) -> TriggerEvent | None:
        """Stop feeding the trigger; a capture under way is saved with what it has."""
        with self._lock:
            trigger, self._trigger = self._trigger, None
            unsubscribe = getattr(self._target, "unsubscribe", None)
            if self._subscribed and callable(unsubscribe):
                unsubscribe("frames", self.feed)
            self._subscribed = False
        return trigger.finish_now() if trigger is not None else None

    @property
    def armed(self) -> TriggerCapture | None:
        return self._trigger

    def feed(self, frames: list[Frame]) -> None:
        """A captured batch, on the thread that ticks the capture."""
        trigger = self._trigger
        if trigger is not None and frames:
            trigger.feed(frames)

    def triggered_capture(
        self,
        trigger: TriggerCapture,
        progress: ProgressFn = no_progress,
        cancel: CancelToken | None = None,
        *,
        watch_interval: float | None = None,
        fire_on_new_fault: bool = True,
        on_new_fault: Callable[[DtcEvent], None] | None = None,
        on_cleared: Callable[[DtcEvent], None] | None = None,
    ) -> TriggerEvent | None:
        """Arm ``trigger`` and wait until it has saved its recording; returns that event.

        With ``watch_interval`` the fault memories are watched too (``on_new_fault`` and
        ``on_cleared`` hear of each change) and, with ``fire_on_new_fault``, a new code fires
        the trigger. The recording is indexed in the history with the trigger's reason. Cancelled
        before it fired: None; cancelled while it was recording: the part recorded so far.
        """
        cancel = cancel or CancelToken()
        saved: list[TriggerEvent] = []
        done = threading.Event()
        on_saved = trigger.on_saved

        def saved_now(event: TriggerEvent) -> None:  # the feeding thread, under the trigger's lock
            self._index(event)
            if on_saved is not None:
                on_saved(event)
            saved.append(event)
            done.set()

        def fired(event: DtcEvent) -> None:
            if fire_on_new_fault:
                trigger.fire(f"fault code {event.dtc.sae} appeared on {event.ecu}")
            if on_new_fault is not None:
                on_new_fault(event)

        trigger.on_saved = saved_now
        try:
            self.arm(trigger)
        except WorkshopError:
            trigger.on_saved = on_saved
            raise
        try:
            fault = watch_interval is not None and fire_on_new_fault
            progress(JobProgress(f"armed: {_trigger_text(trigger, fault)}"))
            if watch_interval is not None:
                self.watch(watch_interval, fired, progress, cancel, on_cleared=on_cleared, until=done)
            while not done.is_set() and not cancel.cancelled:
                if trigger.capturing:
                    progress(JobProgress(f"triggered: recording {trigger.post_seconds:g} s more"))
                _wait_either(cancel, done, _LINK_CHECK_S)
        finally:
            self.disarm()  # saves a capture cut short by the cancel
            trigger.on_saved = on_saved
        return saved[0] if saved else None

    def _index(self, event: TriggerEvent) -> None:
        if self.history is None or event.summary is None:
            return
        try:
            vehicle = self.history.find_vehicle(self.vin) if self.vin else None
            self.history.index_recording(
                event.summary,
                self.source.describe(),
                vehicle.id if vehicle else None,
                notes=f"trigger: {event.reason}",
            )
        except WorkshopError as exc:
            event.reason += f" (not indexed in the history: {exc})"


def _holding_car(what: str, claimed: bool) -> contextlib.AbstractContextManager[object]:
    return contextlib.nullcontext() if claimed else CAR_ACTIVITY.hold("scan", what)


def _trigger_text(trigger: TriggerCapture, fault: bool) -> str:
    parts = [t.describe() for t in trigger.triggers]
    if fault:
        parts.append("a new fault code")
    return " or ".join(parts) or "nothing"


def _wait_either(cancel: CancelToken, other: threading.Event | None, seconds: float) -> None:
    """Sleep up to ``seconds``, waking soon after either event is set."""
    deadline = time.monotonic() + seconds
    while not cancel.cancelled and not (other is not None and other.is_set()):
        left = deadline - time.monotonic()
        if left <= 0:
            return
        cancel.wait(min(left, _LINK_CHECK_S))


def _call(fn: Callable[[], T]) -> Callable[[threading.Event], T]:
    """``fn`` as a worker call that has no safe point to stop at (one poll is short)."""
    return lambda _stop: fn()


def _prefixed(progress: ProgressFn, prefix: str) -> ProgressFn:
    return lambda p: progress(JobProgress(prefix + p.phase, p.done, p.total))


def _lost(source: FrameSource, what: str) -> str:
    why = (source.error or "").removeprefix("connection lost: ")
    return f"{source.describe()}: connection lost during {what} ({why})"
