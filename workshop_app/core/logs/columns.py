"""Frames as parallel numpy arrays: the in-memory model of an offline log.

One python-can ``Message`` costs ~500 bytes and ~1 µs to build; a row here costs 23 bytes for a
classic frame and nothing to build, which is what makes million-frame logs workable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import can
import numpy as np

from workshop_app.core.errors import LogFileError

# Bits of FrameColumns.flags.
EXTENDED = 1 << 0
REMOTE = 1 << 1
ERROR = 1 << 2
FD = 1 << 3
BRS = 1 << 4
ESI = 1 << 5
TX = 1 << 6

# progress(done, total) in bytes of the input file; cancel() -> True stops the read.
Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]


class ReadCancelled(LogFileError):
    """The caller's ``cancel`` callback asked to stop; ``partial`` holds the frames read so far."""

    def __init__(self, message: str, partial: FrameColumns) -> None:
        super().__init__(message)
        self.partial = partial


def log_error(message: str, partial: FrameColumns, **where: int) -> LogFileError:
    """A LogFileError carrying the frames read before the problem (``partial``) and its position."""
    exc = LogFileError(message)
    exc.partial = partial  # type: ignore[attr-defined]
    for key, value in where.items():
        setattr(exc, key, value)
    return exc


def channel_value(name: str) -> int | str | None:
    """python-can's channel for a table name: numeric names become ints, as its readers do."""
    if not name:
        return None
    body = name[1:] if name.startswith("-") else name
    return int(name) if body.isdigit() else name


@dataclass(frozen=True, eq=False)  # array fields: a generated == would be ambiguous
class FrameColumns:
    """Frames of one log, one numpy array per field, all of equal length."""

    timestamp: np.ndarray  # float64, seconds (absolute when the format stores it)
    channel: np.ndarray  # uint8, index into ``channels``
    arbitration_id: np.ndarray  # uint32, without the extended bit
    flags: np.ndarray  # uint8, EXTENDED | REMOTE | ERROR | FD | BRS | ESI | TX
    length: np.ndarray  # uint8, payload bytes (the DLC for remote frames)
    payload: np.ndarray  # uint8 (n, width), zero-padded past ``length``
    channels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.timestamp)
        for name in ("channel", "arbitration_id", "flags", "length"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"column {name} has {len(getattr(self, name))} rows, expected {n}")
        if self.payload.ndim != 2 or self.payload.shape[0] != n:
            raise ValueError(f"payload shape {self.payload.shape} does not match {n} rows")

    def __len__(self) -> int:
        return len(self.timestamp)

    @property
    def nbytes(self) -> int:
        return sum(
            a.nbytes
            for a in (
                self.timestamp,
                self.channel,
                self.arbitration_id,
                self.flags,
                self.length,
                self.payload,
            )
        )

    @classmethod
    def empty(cls, width: int = 8) -> FrameColumns:
        return cls(
            timestamp=np.zeros(0, np.float64),
            channel=np.zeros(0, np.uint8),
            arbitration_id=np.zeros(0, np.uint32),
            flags=np.zeros(0, np.uint8),
            length=np.zeros(0, np.uint8),
            payload=np.zeros((0, width), np.uint8),
            channels=(),
        )

    @classmethod
    def concat(cls, parts: Sequence[FrameColumns]) -> FrameColumns:
        """Join in order; channel tables are merged and payloads padded to the widest part."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        names: list[str] = []
        for p in parts:
            names.extend(c for c in p.channels if c not in names)
        if len(names) > 256:
            raise ValueError("more than 256 channels")
        index = {c: i for i, c in enumerate(names)}
        width = max(p.payload.shape[1] for p in parts)
        channel = []
        payload = []
        for p in parts:
            remap = np.array([index[c] for c in p.channels] or [0], np.uint8)
            channel.append(remap[p.channel])
            pad = width - p.payload.shape[1]
            payload.append(np.pad(p.payload, ((0, 0), (0, pad))) if pad else p.payload)
        return cls(
            timestamp=np.concatenate([p.timestamp for p in parts]),
            channel=np.concatenate(channel),
            arbitration_id=np.concatenate([p.arbitration_id for p in parts]),
            flags=np.concatenate([p.flags for p in parts]),
            length=np.concatenate([p.length for p in parts]),
            payload=np.concatenate(payload),
            channels=tuple(names),
        )

    def _take(self, key: slice | np.ndarray) -> FrameColumns:
        return FrameColumns(
            timestamp=self.timestamp[key],
            channel=self.channel[key],
            arbitration_id=self.arbitration_id[key],
            flags=self.flags[key],
            length=self.length[key],
            payload=self.payload[key],
            channels=self.channels,
        )

    def slice(self, start: int, stop: int) -> FrameColumns:
        """Rows ``start:stop`` (views, no copy)."""
        return self._take(slice(start, stop))

    def select(self, mask: np.ndarray) -> FrameColumns:
        """Rows where a boolean mask (or an index array) picks them."""
        return self._take(np.asarray(mask))

    def to_messages(self, start: int = 0, stop: int | None = None) -> list[can.Message]:
        """python-can messages for rows ``start:stop`` (export and tests; slow by nature)."""
        part = self.slice(start, len(self) if stop is None else stop)
        names = [channel_value(c) for c in part.channels]
        out = []
        for ts, ch, aid, fl, ln, data in zip(
            part.timestamp.tolist(),
            part.channel.tolist(),
            part.arbitration_id.tolist(),
            part.flags.tolist(),
            part.length.tolist(),
            part.payload,
            strict=True,
        ):
            remote = bool(fl & REMOTE)
            out.append(
                can.Message(
                    timestamp=ts,
                    channel=names[ch] if names else None,
                    arbitration_id=aid,
                    is_extended_id=bool(fl & EXTENDED),
                    is_remote_frame=remote,
                    is_error_frame=bool(fl & ERROR),
                    is_fd=bool(fl & FD),
                    bitrate_switch=bool(fl & BRS),
                    error_state_indicator=bool(fl & ESI),
                    is_rx=not fl & TX,
                    dlc=ln if remote else None,
                    data=None if remote else data[:ln].tobytes(),
                    check=False,
                )
            )
        return out

    @classmethod
    def from_messages(cls, messages: Iterable[can.Message]) -> FrameColumns:
        """The reference path: columns built from python-can messages, one at a time."""
        ts: list[float] = []
        ch: list[int] = []
        ids: list[int] = []
        fl: list[int] = []
        ln: list[int] = []
        data: list[bytes] = []
        names: dict[str, int] = {}
        for m in messages:
            name = "" if m.channel is None else str(m.channel)
            ch.append(names.setdefault(name, len(names)))
            ts.append(m.timestamp)
            ids.append(m.arbitration_id)
            fl.append(
                (EXTENDED if m.is_extended_id else 0)
                | (REMOTE if m.is_remote_frame else 0)
                | (ERROR if m.is_error_frame else 0)
                | (FD if m.is_fd else 0)
                | (BRS if m.bitrate_switch else 0)
                | (ESI if m.error_state_indicator else 0)
                | (0 if m.is_rx else TX)
            )
            payload = bytes(m.data)
            ln.append(m.dlc if m.is_remote_frame else len(payload))
            data.append(payload)
        if len(names) > 256:
            raise ValueError("more than 256 channels")
        width = max(8, max((len(d) for d in data), default=0))
        payload_arr = np.zeros((len(data), width), np.uint8)
        for i, d in enumerate(data):
            payload_arr[i, : len(d)] = np.frombuffer(d, np.uint8)
        return cls(
            timestamp=np.array(ts, np.float64),
            channel=np.array(ch, np.uint8),
            arbitration_id=np.array(ids, np.uint32),
            flags=np.array(fl, np.uint8),
            length=np.array(ln, np.uint8),
            payload=payload_arr,
            channels=tuple(names),
        )
