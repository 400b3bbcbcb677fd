"""Frame batches on the wire: compact binary, vehicle timestamps kept, loss countable.

One batch carries the frames of one channel, little-endian::

    header  magic "WF" | version u8 | reserved u8 | session u32 | seq u32 | first_index u64
            | dropped u32 | t0 f64 | count u16 | channel length u8 | channel (UTF-8)
    frame   dt u32 | id u32 | [flags u8] | length u8 | data

``session`` is drawn at random when the agent starts; ``seq`` counts batches and
``first_index`` counts the channel's frames within a session, so a receiver knows exactly how many frames
it missed (``SequenceTracker``). ``dropped`` is how many frames the agent itself has thrown
away so far (its outage buffer was full). ``t0`` is the first frame's vehicle time in seconds
and ``dt`` each frame's offset from it in microseconds.

``id`` holds the 29-bit identifier, bit 29 = extended, bit 30 = remote, bit 31 = a flags
byte follows (bit 0 FD, 1 bit-rate switch, 2 error state indicator, 3 error frame, 4 sent by
the vehicle's tester rather than received). A classic 8-byte frame takes 17 bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from workshop_app.core.types import Frame

MAGIC = b"WF"
VERSION = 1
# AWS IoT Core's payload limit; batches are kept far below it (~7 KB) for latency.
MAX_PAYLOAD = 128 * 1024
_HEADER = struct.Struct("<2sBBIIQIdHB")
_FRAME = struct.Struct("<IIB")
_EXTENDED, _REMOTE, _HAS_FLAGS = 1 << 29, 1 << 30, 1 << 31
_ID_MASK = 0x1FFFFFFF
_FD, _BRS, _ESI, _ERROR, _TX = 1, 2, 4, 8, 16
_US = 1_000_000


class WireError(ValueError):
    """A payload that is not a valid frame batch; the message names the byte offset."""


@dataclass(slots=True)
class FrameBatch:
    session: int
    seq: int
    first_index: int
    channel: str
    frames: list[Frame] = field(default_factory=list)
    dropped: int = 0


def encode_batch(batch: FrameBatch) -> bytes:
    frames = batch.frames
    t0 = min((f.timestamp for f in frames), default=0.0)
    channel = batch.channel.encode()
    if len(channel) > 255 or len(frames) > 0xFFFF:
        raise WireError(f"batch too large: {len(frames)} frames, channel {batch.channel!r}")
    parts = [
        _HEADER.pack(
            MAGIC,
            VERSION,
            0,
            batch.session,
            batch.seq,
            batch.first_index,
            batch.dropped,
            t0,
            len(frames),
            len(channel),
        ),
        channel,
    ]
    pack = _FRAME.pack
    for f in frames:
        ident = f.arbitration_id & _ID_MASK
        if f.is_extended:
            ident |= _EXTENDED
        if f.is_remote:
            ident |= _REMOTE
        flags = (
            (_FD if f.is_fd else 0)
            | (_BRS if f.bitrate_switch else 0)
            | (_ESI if f.error_state_indicator else 0)
            | (_ERROR if f.is_error else 0)
            | (0 if f.is_rx else _TX)
        )
        dt = round((f.timestamp - t0) * _US)
        if flags:
            parts.append(struct.pack("<IIBB", dt, ident | _HAS_FLAGS, flags, len(f.data)))
        else:
            parts.append(pack(dt, ident, len(f.data)))
        parts.append(f.data)
    payload = b"".join(parts)
    if len(payload) > MAX_PAYLOAD:
        raise WireError(
            f"batch of {len(frames)} frames is {len(payload)} bytes, over the {MAX_PAYLOAD}-byte limit"
        )
    return payload


def decode_batch(payload: bytes) -> FrameBatch:
    """Parse one batch; WireError naming the offset for anything truncated or malformed."""
    if len(payload) < _HEADER.size:
        raise WireError(f"frame batch truncated: {len(payload)} bytes, header needs {_HEADER.size}")
    magic, version, _, session, seq, first_index, dropped, t0, count, chan_len = _HEADER.unpack_from(payload)
    if magic != MAGIC:
        raise WireError(f"not a frame batch: magic {magic!r} at offset 0")
    if version != VERSION:
        raise WireError(
            f"frame batch version {version} at offset 2 is not supported (this workshop reads {VERSION})"
        )
    pos = _HEADER.size
    try:
        channel = payload[pos : pos + chan_len].decode()
    except UnicodeDecodeError as e:
        raise WireError(f"channel name at offset {pos} is not UTF-8") from e
    pos += chan_len
    frames: list[Frame] = []
    end = len(payload)
    for index in range(count):
        if pos + _FRAME.size > end:
            raise WireError(f"frame {index} of {count} truncated at offset {pos}")
        dt, ident, length = _FRAME.unpack_from(payload, pos)
        pos += _FRAME.size
        flags = 0
        if ident & _HAS_FLAGS:
            flags = length
            if pos >= end:
                raise WireError(f"frame {index} of {count} truncated at offset {pos}")
            length = payload[pos]
            pos += 1
        if length > 64 or pos + length > end:
            raise WireError(f"frame {index} of {count} at offset {pos}: {length} data bytes do not fit")
        frames.append(
            Frame(
                t0 + dt / _US,
                ident & _ID_MASK,
                payload[pos : pos + length],
                channel,
                bool(ident & _EXTENDED),
                bool(flags & _FD),
                bool(flags & _BRS),
                bool(flags & _ESI),
                bool(ident & _REMOTE),
                bool(flags & _ERROR),
                not flags & _TX,
            )
        )
        pos += length
    if pos != end:
        raise WireError(f"{end - pos} stray bytes after frame {count} at offset {pos}")
    return FrameBatch(session, seq, first_index, channel, frames, dropped)


class SequenceTracker:
    """Counts frames lost between agent and workshop from batch indices, per agent session.

    ``lost`` is what the broker or network dropped (gaps in ``first_index``); ``dropped_by_agent``
    is what the agent reported throwing away from its own full buffer.
    """

    def __init__(self) -> None:
        self._next: dict[tuple[int, str], int] = {}
        self.lost = 0
        self.received = 0
        self.dropped_by_agent = 0
        self.duplicates = 0

    def feed(self, batch: FrameBatch) -> int:
        """Account for one batch; returns how many frames were missed just before it."""
        key = (batch.session, batch.channel)
        expected = self._next.get(key)
        gap = 0
        if expected is not None and batch.first_index < expected:
            self.duplicates += len(batch.frames)
            return 0
        if expected is not None:
            gap = batch.first_index - expected
            self.lost += gap
        self._next[key] = batch.first_index + len(batch.frames)
        self.received += len(batch.frames)
        self.dropped_by_agent = max(self.dropped_by_agent, batch.dropped)
        return gap


def wire_size(frames: Sequence[Frame], channel: str = "can0") -> int:
    """Bytes a batch of these frames takes on the wire (used by the benchmark and docs)."""
    return len(encode_batch(FrameBatch(0, 0, 0, channel, list(frames))))
