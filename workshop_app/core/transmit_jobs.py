"""Transmit jobs: frames sent through a FrameSource once, periodically, or N times.

A job either carries a raw :class:`Frame` or a DBC message name plus signal values. Signal jobs
are encoded with cantools at every send, so a value changed with :meth:`TransmitJobs.update`
(a counter, a setpoint) goes out with the next frame.

Threads: one ``transmit-scheduler`` thread serves every periodic job, whatever their number.
Deadlines are absolute (start + n × period), so the period does not drift with the time a
send takes. The thread never raises: a failed send or a source that is no longer running
stops the periodic jobs, and the reason is kept in ``last_error`` and :attr:`notice`.
:meth:`TransmitJobs.run_periodic` is the blocking form for the command line and for worker
threads: it reports :class:`JobProgress` and ends on its count, its duration or its
:class:`CancelToken`.

>>> jobs = TransmitJobs(source, databases)  # doctest: +SKIP
>>> job_id = jobs.start_periodic(TransmitJob(message="BODY_COMMAND", values={"LockRequest": 1},
...                                          period=0.1))  # doctest: +SKIP
>>> jobs.update(job_id, {"LockRequest": 2})  # doctest: +SKIP
>>> jobs.stop_all()  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import enum
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

from workshop_app.core.decode.database import DatabaseSet
from workshop_app.core.errors import SourceError, WorkshopError
from workshop_app.core.jobs import CancelToken, JobProgress, ProgressFn, no_progress
from workshop_app.core.sources.base import FrameSource, SourceState
from workshop_app.core.transmit_encode import SignalValue, check_frame, encode_signals
from workshop_app.core.transmit_protect import Protection
from workshop_app.core.types import Frame

if TYPE_CHECKING:
    from cantools.database.can import Message

__all__ = ["MIN_PERIOD", "JobStatus", "TransmitJob", "TransmitJobs", "TransmitScheduler"]

MIN_PERIOD = 0.001  # seconds; shorter periods would flood the bus and the Python thread
_STATE_POLL = 0.1  # the thread looks at the source at least this often while jobs run
_JOIN_TIMEOUT = 5.0
_SETTLE = 0.5  # seconds a failed send waits for the source's state to catch up
_PROGRESS_EVERY = 0.1  # seconds between progress reports of a blocking periodic run


class JobStatus(enum.Enum):
    RUNNING = "running"  # periodic job sending
    SENT = "sent"  # one-shot job sent
    FINISHED = "finished"  # periodic job sent its ``limit`` frames
    STOPPED = "stopped"  # stopped by the user
    DISCONNECTED = "stopped: disconnected"  # stopped because the source stopped running
    FAILED = "failed"  # a send or an encoding failed; ``last_error`` says why


@dataclass(slots=True)
class TransmitJob:
    """What to send and how often; the jobs fill in the id, counters and status.

    Give either ``frame`` (raw) or ``message`` (a DBC message name) with ``values`` (signal
    name → number or value-table name; signals left out take their initial value or 0).
    ``period`` None means one-shot. ``limit`` ends a periodic job after that many frames.
    ``channel`` names the bus for DBC jobs (default: the source's channel) and picks
    databases assigned to that channel first.
    """

    frame: Frame | None = None
    message: str | None = None
    values: dict[str, SignalValue] = field(default_factory=dict)
    period: float | None = None
    channel: str | None = None
    limit: int | None = None
    job_id: int = 0
    count: int = 0  # frames sent
    status: JobStatus = JobStatus.STOPPED
    last_error: str | None = None
    last_data: bytes | None = None  # payload of the last frame sent
    # Resolved when the job is added (from the frame, or from the DBC message).
    arbitration_id: int = 0
    is_extended: bool = False
    is_fd: bool = False
    bitrate_switch: bool = False

    @property
    def is_periodic(self) -> bool:
        return self.period is not None

    @property
    def is_signals(self) -> bool:
        return self.message is not None

    def describe(self) -> str:
        """``BODY_COMMAND (0x2B0)`` or ``0x123``, for progress lines and summaries."""
        ident = f"0x{self.arbitration_id:08X}" if self.is_extended else f"0x{self.arbitration_id:03X}"
        return f"{self.message} ({ident})" if self.message else ident


@dataclass(slots=True)
class _Entry:
    job: TransmitJob
    message: Message | None
    next_due: float = 0.0
    protection: Protection = field(default_factory=Protection)  # counter/checksum filled per frame


def _next_deadline(due: float, period: float, now: float) -> float:
    due += period
    if due <= now:
        # Fell behind by more than a period (a stall): skip the missed slots, keep the grid.
        due += math.ceil((now - due) / period) * period
    return due


# --- the scheduler ---------------------------------------------------------------------------


class TransmitJobs:
    """Sends jobs through ``source``; DBC jobs are encoded with ``databases`` at send time."""

    def __init__(self, source: FrameSource, databases: DatabaseSet) -> None:
        self._source = source
        self._databases = databases
        self._cond = threading.Condition()  # guards _entries, _notice, _closing
        self._lifecycle = threading.Lock()  # start/stop of the thread, so there is only ever one
        self._send_lock = threading.Lock()  # not every python-can bus may be sent on from two threads
        self._entries: dict[int, _Entry] = {}
        self._next_id = 1
        self._notice: str | None = None
        self._closing = False
        self._thread: threading.Thread | None = None

    @property
    def source(self) -> FrameSource:
        return self._source

    @property
    def default_channel(self) -> str:
        """The channel frames get when a job names none (the source's channel)."""
        return str(getattr(self._source, "channel_label", None) or "can0")

    @property
    def notice(self) -> str | None:
        """Why periodic jobs stopped on their own (disconnect, send error); None otherwise."""
        return self._notice

    # -- reading --------------------------------------------------------------------------------
    def jobs(self) -> list[TransmitJob]:
        """Copies of every job, in the order they were added (safe to read on any thread)."""
        with self._cond:
            return [_copy(e.job) for e in self._entries.values()]

    def job(self, job_id: int) -> TransmitJob:
        with self._cond:
            return _copy(self._entry(job_id).job)

    # -- one-shot --------------------------------------------------------------------------------
    def send_once(
        self,
        frame: Frame | None = None,
        *,
        message: str | None = None,
        values: Mapping[str, SignalValue] | None = None,
        channel: str | None = None,
    ) -> int:
        """Send a raw ``frame``, or ``message`` encoded from ``values``, now (on the calling
        thread); returns the one-shot job's id. Raises WorkshopError/SourceError, sending nothing."""
        return self._send_new(
            TransmitJob(frame=frame, message=message, values=dict(values or {}), channel=channel)
        )

    def send_signals_once(
        self, message_name: str, values: Mapping[str, SignalValue], channel: str | None = None
    ) -> int:
        """Encode ``values`` into ``message_name`` and send it now; returns the job id."""
        return self._send_new(TransmitJob(message=message_name, values=dict(values), channel=channel))

    def trigger(self, job_id: int) -> None:
        """Send an existing job once more now, with its current content."""
        with self._cond:
            entry = self._entry(job_id)
            frame = self._build(entry)
        self._transmit(frame)
        with self._cond:
            self._sent(entry, frame)
            if not entry.job.is_periodic:
                entry.job.status = JobStatus.SENT

    # -- periodic ---------------------------------------------------------------------------------
    def check(self, job: TransmitJob) -> TransmitJob:
        """``job`` resolved (id, FD) without sending it; raises WorkshopError as sending would
        for a bad frame, message, signal value, period or count (the source may be down)."""
        if job.period is not None and not job.period >= MIN_PERIOD:
            raise WorkshopError(f"a periodic job needs a period of at least {MIN_PERIOD * 1000:g} ms")
        return self._prepare(job).job

    def start_periodic(self, job: TransmitJob) -> int:
        """Start sending ``job`` every ``job.period`` seconds (first frame at once); returns its id.

        The job runs on the scheduler thread until :meth:`stop`, its ``limit``, a disconnect or
        a failed send. Raises ``WorkshopError`` for a bad frame, an unknown message or signal,
        a value out of range, or a source that is not running.
        """
        return self.add_periodic(job)

    def run_periodic(
        self,
        job: TransmitJob,
        *,
        duration: float | None = None,
        progress: ProgressFn = no_progress,
        cancel: CancelToken | None = None,
    ) -> TransmitJob:
        """Send ``job`` periodically and block until it ends; returns the job as it ended.

        It ends after ``job.limit`` frames (status FINISHED), after ``duration`` seconds or
        when ``cancel`` is cancelled (status STOPPED: both are the normal ways to end an open
        run, so no JobCancelled is raised), or on a disconnect or a failed send (status and
        ``last_error`` say so). ``progress`` gets the frames sent of ``limit`` (0: open-ended)
        about ten times a second, on the calling thread.
        """
        token = cancel if cancel is not None else CancelToken()
        job_id = self.start_periodic(job)
        deadline = None if duration is None else time.monotonic() + duration
        phase = f"sending {self.job(job_id).describe()}"
        try:
            while True:
                current = self.job(job_id)
                progress(JobProgress(phase, current.count, current.limit or 0))
                if current.status is not JobStatus.RUNNING:
                    return current
                wait = _PROGRESS_EVERY
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        break
                if token.wait(wait):
                    break
        finally:
            self.stop(job_id)
        ended = self.job(job_id)
        progress(JobProgress(phase, ended.count, ended.limit or 0))
        return ended

    def add_periodic(self, job: TransmitJob) -> int:
        """Start sending ``job`` every ``job.period`` seconds (first frame at once); returns its id.

        Raises ``WorkshopError`` for a bad frame, an unknown message or signal, a value out of
        range, or a source that is not running.
        """
        if job.period is None or not job.period >= MIN_PERIOD:
            raise WorkshopError(f"a periodic job needs a period of at least {MIN_PERIOD * 1000:g} ms")
        self._require_running()
        entry = self._prepare(job)
        with self._lifecycle:
            with self._cond:
                entry.job.job_id = self._next_id
                self._next_id += 1
                entry.job.status = JobStatus.RUNNING
                entry.next_due = time.monotonic()
                self._entries[entry.job.job_id] = entry
                self._notice = None
                self._cond.notify_all()
            self._ensure_thread()
        return entry.job.job_id

    def update(
        self,
        job_id: int,
        values: Mapping[str, SignalValue] | None = None,
        *,
        data: bytes | None = None,
        period: float | None = None,
    ) -> None:
        """Change a job; the next frame it sends carries the change.

        ``values`` are merged into a DBC job's values (checked by encoding them now);
        ``data`` replaces a raw job's payload; ``period`` changes a periodic job's period.
        """
        with self._cond:
            entry = self._entry(job_id)
            job = entry.job
            if values is not None:
                if entry.message is None:
                    raise WorkshopError(f"job {job_id} sends a raw frame; change its data instead")
                merged = {**job.values, **values}
                encode_signals(entry.message, merged)  # raises before anything changes
                job.values = merged
            if data is not None:
                if job.frame is None:
                    raise WorkshopError(f"job {job_id} is encoded from {job.message}; change its values")
                frame = dataclasses.replace(job.frame, data=bytes(data))
                check_frame(frame)
                job.frame = frame
            if period is not None:
                if not job.is_periodic:
                    raise WorkshopError(f"job {job_id} is a one-shot job")
                if not period >= MIN_PERIOD:
                    raise WorkshopError(f"the period must be at least {MIN_PERIOD * 1000:g} ms")
                job.period = period
                entry.next_due = time.monotonic()
            self._cond.notify_all()

    def stop(self, job_id: int) -> None:
        """Stop a periodic job; it stays listed and can be resumed.

        When this returns, the job sends nothing more and its count includes every frame that
        left (a send stalled in the driver is waited for at most half a second).
        """
        with self._cond:
            entry = self._entry(job_id)
            if entry.job.status is JobStatus.RUNNING:
                entry.job.status = JobStatus.STOPPED
        if self._send_lock.acquire(timeout=_SETTLE):  # a frame on its way has left when we get it
            self._send_lock.release()

    def resume(self, job_id: int) -> None:
        """Start a stopped (or disconnected, or failed) periodic job again."""
        self._require_running()
        with self._lifecycle:
            with self._cond:
                entry = self._entry(job_id)
                if not entry.job.is_periodic:
                    raise WorkshopError(f"job {job_id} is a one-shot job; send it again instead")
                entry.job.status = JobStatus.RUNNING
                entry.job.last_error = None
                entry.next_due = time.monotonic()
                self._notice = None
                self._cond.notify_all()
            self._ensure_thread()

    def remove(self, job_id: int) -> None:
        with self._cond:
            self._entry(job_id)
            del self._entries[job_id]

    def clear_finished(self) -> None:
        """Forget one-shot jobs (the periodic ones stay)."""
        with self._cond:
            self._entries = {k: e for k, e in self._entries.items() if e.job.is_periodic}

    def stop_all(self) -> None:
        """Stop every periodic job and end the scheduler thread (it restarts when needed)."""
        with self._lifecycle:
            with self._cond:
                for entry in self._entries.values():
                    if entry.job.status is JobStatus.RUNNING:
                        entry.job.status = JobStatus.STOPPED
                self._closing = True
                self._cond.notify_all()
                thread, self._thread = self._thread, None
            if thread is not None and thread is not threading.current_thread():
                thread.join(_JOIN_TIMEOUT)
            with self._cond:
                self._closing = False

    def close(self) -> None:
        """End every periodic job and the scheduler thread (the session closing)."""
        self.stop_all()

    def set_source(self, source: FrameSource) -> None:
        """Send through another source from now on; periodic jobs stop (the user resumes them)."""
        self.stop_all()
        with self._cond:
            self._source = source

    def __enter__(self) -> TransmitJobs:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_all()

    # -- internals ----------------------------------------------------------------------------------
    def _entry(self, job_id: int) -> _Entry:
        try:
            return self._entries[job_id]
        except KeyError:
            raise WorkshopError(f"no transmit job {job_id}") from None

    def _require_running(self) -> None:
        if self._source.state is not SourceState.RUNNING:
            raise SourceError(f"{self._source.describe()} is not connected")

    def find_message(self, name: str, channel: str | None = None) -> Message:
        """The DBC message ``name``: databases assigned to ``channel`` first, then the rest."""
        channel = channel or self.default_channel
        entries = self._databases.databases
        ordered = [e for e in entries if e.channel == channel] + [e for e in entries if e.channel is None]
        for entry in ordered + entries:
            try:
                return entry.db.get_message_by_name(name)
            except KeyError:
                continue
        raise WorkshopError(f"no loaded database has a message named {name!r}")

    def _prepare(self, job: TransmitJob) -> _Entry:
        """Check a new job and resolve what it sends; raises WorkshopError when it cannot be sent."""
        job = _copy(job)
        job.job_id, job.count, job.last_error, job.last_data = 0, 0, None, None
        if (job.frame is None) == (job.message is None):
            raise WorkshopError("a transmit job needs either a frame or a message name")
        message: Message | None = None
        if job.frame is not None:
            check_frame(job.frame)
            frame = job.frame
            job.arbitration_id, job.is_extended = frame.arbitration_id, frame.is_extended
            job.is_fd, job.bitrate_switch = frame.is_fd, frame.bitrate_switch
        else:
            assert job.message is not None
            job.channel = job.channel or self.default_channel
            message = self.find_message(job.message, job.channel)
            protection = Protection.of(message)
            protection.encode(message, job.values, 0)  # raises before anything is sent
            job.arbitration_id, job.is_extended = message.frame_id, message.is_extended_frame
            job.is_fd = job.bitrate_switch = bool(message.is_fd)
        if job.limit is not None and job.limit < 1:
            raise WorkshopError(f"a job's frame count must be at least 1, not {job.limit}")
        if job.is_fd and not self._source.caps.fd:
            raise WorkshopError(f"{self._source.describe()} is not opened for CAN FD")
        if message is None:
            return _Entry(job, None)
        return _Entry(job, message, protection=protection)

    def _build(self, entry: _Entry) -> Frame:
        """The frame to send now (caller holds ``_cond``)."""
        job = entry.job
        if job.frame is not None:
            return job.frame
        assert entry.message is not None
        return Frame(
            0.0,
            job.arbitration_id,
            entry.protection.encode(entry.message, job.values, job.count),
            job.channel or self.default_channel,
            job.is_extended,
            job.is_fd,
            job.bitrate_switch,
        )

    def _transmit(self, frame: Frame) -> None:
        with self._send_lock:
            self._source.send(frame)

    def _sent(self, entry: _Entry, frame: Frame) -> None:
        """Count a frame that left (caller holds ``_cond``); a job at its limit is finished."""
        job = entry.job
        job.count += 1
        job.last_data = frame.data
        if job.limit is not None and job.count >= job.limit and job.status is JobStatus.RUNNING:
            job.status = JobStatus.FINISHED

    def _send_new(self, job: TransmitJob) -> int:
        entry = self._prepare(job)
        with self._cond:
            frame = self._build(entry)
        self._transmit(frame)  # raises SourceError: nothing is recorded then
        with self._cond:
            entry.job.job_id = self._next_id
            self._next_id += 1
            entry.job.status = JobStatus.SENT
            self._sent(entry, frame)
            self._entries[entry.job.job_id] = entry
        return entry.job.job_id

    def _ensure_thread(self) -> None:
        # Caller holds _lifecycle, so stop_all cannot be joining the old thread meanwhile.
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="transmit-scheduler", daemon=True)
            self._thread.start()

    def _stop_running(self, status: JobStatus, reason: str) -> None:
        """Stop every running periodic job (caller holds ``_cond``)."""
        stopped = 0
        for entry in self._entries.values():
            if entry.job.status is JobStatus.RUNNING:
                entry.job.status = status
                entry.job.last_error = reason
                stopped += 1
        if stopped:
            self._notice = f"{stopped} periodic job(s) stopped: {reason}"

    def _run(self) -> None:
        while True:
            try:
                batch = self._collect_due()
            except Exception as exc:  # never let the thread die with jobs marked running
                with self._cond:
                    self._stop_running(JobStatus.FAILED, f"scheduler error: {exc}")
                continue
            if batch is None:
                return
            for entry, frame in batch:
                failure: Exception | None = None
                # Checked, sent and counted under the send lock: once stop() has the lock, no
                # frame of a stopped job leaves, and every frame that left is counted.
                with self._send_lock:
                    with self._cond:
                        if entry.job.status is not JobStatus.RUNNING:
                            continue  # stopped since the batch was built
                    try:
                        self._source.send(frame)
                    except Exception as exc:
                        failure = exc
                    else:
                        with self._cond:
                            self._sent(entry, frame)
                if failure is not None:
                    self._on_send_failed(entry, failure)

    def _collect_due(self) -> list[tuple[_Entry, Frame]] | None:
        """Wait until a periodic job is due; returns the frames to send (None: thread ends)."""
        with self._cond:
            while True:
                if self._closing:
                    return None
                running = [e for e in self._entries.values() if e.job.status is JobStatus.RUNNING]
                if not running:
                    self._cond.wait()
                    continue
                state = self._source.state
                if state is not SourceState.RUNNING:
                    self._stop_running(JobStatus.DISCONNECTED, f"{self._source.describe()} is {state.value}")
                    continue
                now = time.monotonic()
                due = [e for e in running if e.next_due <= now]
                if not due:
                    wait = min(e.next_due for e in running) - now
                    self._cond.wait(min(wait, _STATE_POLL))
                    continue
                batch: list[tuple[_Entry, Frame]] = []
                for entry in due:
                    assert entry.job.period is not None
                    entry.next_due = _next_deadline(entry.next_due, entry.job.period, now)
                    try:
                        batch.append((entry, self._build(entry)))
                    except WorkshopError as exc:
                        entry.job.status = JobStatus.FAILED
                        entry.job.last_error = str(exc)
                return batch

    def _on_send_failed(self, entry: _Entry, exc: Exception) -> None:
        # A source being stopped or losing its adapter refuses sends a moment before its
        # state says so; give the state that moment, so a disconnect is reported as one.
        deadline = time.monotonic() + _SETTLE
        while self._source.state is SourceState.RUNNING and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._cond:
            state = self._source.state
            if state is not SourceState.RUNNING:
                self._stop_running(JobStatus.DISCONNECTED, f"{self._source.describe()} is {state.value}")
            else:
                # The source is up but refused this frame: stop every periodic job, as a
                # workshop tool must not keep firing frames into a bus that rejects them.
                self._stop_running(JobStatus.FAILED, f"send of job {entry.job.job_id} failed: {exc}")


def _copy(job: TransmitJob) -> TransmitJob:
    return dataclasses.replace(job, values=dict(job.values))


# The name the window and older scripts use.
TransmitScheduler = TransmitJobs
