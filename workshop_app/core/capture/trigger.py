"""Catching intermittent faults: a rolling pre-trigger buffer saved around a trigger.

``TriggerCapture`` is fed every batch the capture session takes (``feed``); it keeps the last
``pre_seconds`` of frames. When a trigger fires — a signal crossing a limit (checked here on
the frames of its message), or a DTC appearing (reported by the diagnostics through
``fire``) — it keeps collecting for ``post_seconds`` more, then writes the window to a log
file (format by suffix) and calls ``on_saved`` with the result, e.g. to index it in the
vehicle's history. One capture at a time: triggers during a capture extend nothing.

Threads: ``feed`` runs on whatever thread ticks the capture (the window's tick, the CLI's
loop); ``fire`` and ``finish_now`` may come from a diagnostic job's thread. One lock keeps
the window, the buffer and the file writing in order between them.
"""

from __future__ import annotations

import math
import operator
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import cantools.database.can as cdb

from workshop_app.core.capture.recorder import Recorder, RecordingSummary
from workshop_app.core.decode.numbers import decode_numbers
from workshop_app.core.types import Frame

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True)
class SignalTrigger:
    """Fires when ``message.signal`` goes from not-crossing to crossing ``limit`` with ``op``."""

    message: cdb.Message
    signal: str
    op: str
    limit: float
    channel: str | None = None  # None: any channel

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"trigger operator must be one of {', '.join(_OPS)}, not {self.op!r}")
        if self.signal not in {s.name for s in self.message.signals}:
            raise ValueError(f"{self.message.name} has no signal {self.signal!r}")

    def describe(self) -> str:
        return f"{self.message.name}.{self.signal} {self.op} {self.limit:g}"


# MESSAGE.Signal, an operator, a number: "ENGINE_TEMPS.CoolantTemp>110". Two-character
# operators first, so ">=" is not read as ">" followed by "=110".
_TRIGGER_TEXT = re.compile(r"^\s*([^.\s]+)\.([^<>=\s]+)\s*(>=|<=|>|<)\s*(\S+)\s*$")


def parse_signal_trigger(text: str, messages: Iterable[cdb.Message]) -> SignalTrigger:
    """``MESSAGE.Signal>VALUE`` (or ``<``, ``>=``, ``<=``) against the loaded messages.

    Raises ValueError with one plain sentence naming what is wrong.
    """
    match = _TRIGGER_TEXT.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not MESSAGE.Signal>VALUE (operators: >, <, >=, <=)")
    message_name, signal, op, number = match.groups()
    try:
        limit = float(number)
    except ValueError:
        raise ValueError(f"{number!r} in {text!r} is not a number") from None
    if not math.isfinite(limit):
        raise ValueError(f"the limit in {text!r} must be a finite number")
    message = next((m for m in messages if m.name == message_name), None)
    if message is None:
        raise ValueError(f"no message {message_name!r} in the loaded databases")
    return SignalTrigger(message, signal, op, limit)


@dataclass
class TriggerEvent:
    time: float  # frame time stamp at which it fired
    reason: str
    path: Path | None = None
    summary: RecordingSummary | None = None


class TriggerCapture:
    def __init__(
        self,
        folder: Path,
        *,
        pre_seconds: float = 10.0,
        post_seconds: float = 5.0,
        suffix: str = ".blf",
        on_saved: Callable[[TriggerEvent], None] | None = None,
        path: Path | None = None,
    ) -> None:
        """``path``: the file to write (format by its suffix); default a new
        ``trigger-<time>-<n><suffix>`` in ``folder`` for each capture."""
        self.folder = Path(folder)
        self.path = Path(path) if path is not None else None
        self.pre_seconds = pre_seconds
        self.post_seconds = post_seconds
        self.suffix = suffix
        self.on_saved = on_saved
        self.triggers: list[SignalTrigger] = []
        self.events: list[TriggerEvent] = []
        self._buffer: deque[Frame] = deque()
        self._armed_state: dict[int, bool] = {}  # trigger index → was crossing at the last value
        self._active: TriggerEvent | None = None
        self._window: list[Frame] = []
        self._until = 0.0
        self._pending_reason: str | None = None
        self._lock = threading.Lock()  # the pending reason only: fire() never waits for a file
        self._feeding = threading.Lock()  # feed and finish_now: buffer, window and writing

    @property
    def capturing(self) -> bool:
        return self._active is not None

    def add_signal_trigger(self, trigger: SignalTrigger) -> None:
        self.triggers.append(trigger)

    def fire(self, reason: str) -> None:
        """Trigger from outside (e.g. a DTC appeared); takes effect on the next ``feed``."""
        with self._lock:
            if self._active is None and self._pending_reason is None:
                self._pending_reason = reason

    def feed(self, frames: list[Frame]) -> TriggerEvent | None:
        """Take a batch; returns the event when a capture finished (and was saved) with it."""
        with self._feeding:
            return self._feed(frames)

    def _feed(self, frames: list[Frame]) -> TriggerEvent | None:
        for frame in frames:
            if self._active is None:
                self._buffer.append(frame)
                reason = self._check(frame)
                with self._lock:
                    if reason is None and self._pending_reason is not None:
                        reason, self._pending_reason = self._pending_reason, None
                if reason is not None:
                    self._start(frame.timestamp, reason)
            else:
                self._window.append(frame)
                if frame.timestamp >= self._until:
                    return self._finish()
        if self._active is None and self._buffer:
            horizon = self._buffer[-1].timestamp - self.pre_seconds
            while self._buffer and self._buffer[0].timestamp < horizon:
                self._buffer.popleft()
        return None

    def _check(self, frame: Frame) -> str | None:
        for i, trig in enumerate(self.triggers):
            m = trig.message
            if frame.arbitration_id != m.frame_id or frame.is_extended != m.is_extended_frame:
                continue
            if trig.channel is not None and frame.channel != trig.channel:
                continue
            try:
                value = decode_numbers(m, frame.data, allow_truncated=True).get(trig.signal)
            except Exception:  # a frame that does not decode cannot cross a limit
                continue
            if not isinstance(value, int | float):
                continue
            crossing = _OPS[trig.op](float(value), trig.limit)
            was = self._armed_state.get(i, False)
            self._armed_state[i] = crossing
            if crossing and not was:
                return f"{trig.describe()} (value {float(value):g})"
        return None

    def _start(self, t: float, reason: str) -> None:
        self._active = TriggerEvent(t, reason)
        # The buffer is trimmed once per batch; the window starts exactly pre_seconds back.
        self._window = [f for f in self._buffer if f.timestamp >= t - self.pre_seconds]
        self._buffer.clear()
        self._until = t + self.post_seconds

    def finish_now(self) -> TriggerEvent | None:
        """Save a running capture with what it has (the connection is closing)."""
        with self._feeding:
            return self._finish() if self._active is not None else None

    def _finish(self) -> TriggerEvent:
        event = self._active
        assert event is not None
        self._active = None
        stamp = time.strftime(
            "%Y%m%d-%H%M%S", time.localtime(event.time if event.time > 1e9 else time.time())
        )
        path = self.path or self.folder / f"trigger-{stamp}-{len(self.events) + 1}{self.suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        recorder = Recorder(path)
        recorder.write(self._window)
        summary = recorder.stop()
        if self._window and self._window[0].timestamp > 1e9:
            # The file is written in one go: its span is the window's, not the writing's.
            first, last = self._window[0].timestamp, self._window[-1].timestamp
            summary = replace(summary, started=first, duration=last - first)
        event.summary = summary
        event.path = path
        self._window = []
        self.events.append(event)
        if self.on_saved is not None:
            self.on_saved(event)
        return event
