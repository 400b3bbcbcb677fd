"""BLF recording a batch at a time: classic CAN frames packed with numpy, not one by one.

python-can's ``BLFWriter`` packs each ``can.Message`` into its object with two ``struct.pack``
calls, after the recorder built the message from a ``Frame``: at four saturated 1 Mbit/s buses
that was the busiest thread of the capture process (4 µs a frame). Here the batch becomes
columns and each kind of object (CAN_MESSAGE for classic data and remote frames, CAN_FD_MESSAGE,
CAN_ERROR_EXT) one numpy record array, laid into one byte stream in the frames' order and
appended to the writer's container buffer as python-can's own ``_add_object`` would, byte for
byte (a test compares the files). The file, its containers and header stay python-can's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import can
import numpy as np
from can.util import channel2int

from workshop_app.core.capture.columns import BRS, ERROR, ESI, EXTENDED, FD, REMOTE, RX, FrameColumns
from workshop_app.core.capture.mf4_writer import channel_number
from workshop_app.core.types import Frame

# BLF object types and the bodies python-can's BLFWriter gives them (after a 32-byte header:
# "LOBJ", sizes, type, then flags 2 = nanosecond timestamps, client, version, timestamp).
_CAN_MESSAGE, _CAN_ERROR_EXT, _CAN_FD_MESSAGE = 1, 73, 100
_HEADER = [
    ("signature", "S4"),
    ("header_size", "<u2"),
    ("header_version", "<u2"),
    ("object_size", "<u4"),
    ("object_type", "<u4"),
    ("object_flags", "<u4"),
    ("client_index", "<u2"),
    ("object_version", "<u2"),
    ("timestamp", "<u8"),
]
_MESSAGE = np.dtype(  # classic data and remote frames
    [*_HEADER, ("channel", "<u2"), ("flags", "u1"), ("dlc", "u1"), ("can_id", "<u4"), ("data", "u1", (8,))]
)
_FD_MESSAGE = np.dtype(
    [
        *_HEADER,
        ("channel", "<u2"),
        ("flags", "u1"),
        ("dlc", "u1"),
        ("can_id", "<u4"),
        ("frame_length", "<u4"),
        ("bit_count", "u1"),
        ("fd_flags", "u1"),  # 1 FD, 2 bit rate switch, 4 error state indicator
        ("valid_bytes", "u1"),
        ("reserved", "u1", (5,)),
        ("data", "u1", (64,)),
    ]
)
_ERROR = np.dtype(
    [
        *_HEADER,
        ("channel", "<u2"),
        ("length", "<u2"),
        ("error_flags", "<u4"),
        ("ecc", "u1"),
        ("position", "u1"),
        ("dlc", "u1"),
        ("reserved1", "u1"),
        ("frame_length", "<u4"),
        ("can_id", "<u4"),
        ("ext_flags", "<u2"),
        ("reserved2", "u1", (2,)),
        ("data", "u1", (8,)),
    ]
)
assert (_MESSAGE.itemsize, _FD_MESSAGE.itemsize, _ERROR.itemsize) == (48, 116, 64)
_HEADER_SIZE = 32
_TIME_ONE_NANS = 2
_EXTENDED_ID = 0x80000000
# CAN FD payload length -> DLC code.
_FD_DLC = np.searchsorted(np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64]), np.arange(65))


def blf_channel(label: str, default: int) -> int:
    """The channel number a BLF file gives frames of ``label``, as python-can's BLFWriter does
    for the number our writers give a channel (``can1`` -> 2: BLF counts from 1)."""
    number = channel2int(channel_number(label))
    return default if number is None else number + 1


class BlfBatches:
    """Appends batches of frames to an open python-can ``BLFWriter`` (its buffer and counters)."""

    def __init__(self, writer: can.BLFWriter) -> None:
        self._writer = writer
        self._channels: dict[str, int] = {}

    def write(
        self,
        frames: Sequence[Frame],
        one_by_one: Callable[[Sequence[Frame]], None],
        columns: FrameColumns | None = None,
    ) -> None:
        """Write ``frames`` in order (``columns``: the same frames as columns, if the caller has
        them); ``one_by_one(frames)`` for what only python-can packs."""
        cols = FrameColumns.from_frames(frames) if columns is None else columns
        channels = np.array([self._channel(name) for name in cols.channels] or [0], np.int64)
        if not len(cols) or (channels > 0xFFFF).any():
            one_by_one(frames)  # python-can raises for such a channel, as it always did
            return
        self._pack(cols, channels)

    def _channel(self, name: str) -> int:
        number = self._channels.get(name)
        if number is None:
            number = self._channels[name] = blf_channel(name, self._writer.channel)
        return number

    def _pack(self, cols: FrameColumns, channels: np.ndarray) -> None:
        """Every frame as its BLF object, in order, into the writer's container buffer."""
        writer = self._writer
        ts = cols.timestamp.astype(np.float64, copy=False)
        if writer.start_timestamp is None:
            # As python-can: the file's start to the millisecond, offsets in nanoseconds.
            writer.start_timestamp = int(float(ts[0]) * 1000) / 1000
        stamps = np.maximum((ts - writer.start_timestamp) * 1e9, 0).astype(np.uint64)
        flags = cols.flags
        error = (flags & ERROR) != 0
        fd = ((flags & FD) != 0) & ~error
        kinds = [
            (~(fd | error), _MESSAGE, _CAN_MESSAGE),
            (fd, _FD_MESSAGE, _CAN_FD_MESSAGE),
            (error, _ERROR, _CAN_ERROR_EXT),
        ]
        sizes = np.select([fd, error], [_FD_MESSAGE.itemsize, _ERROR.itemsize], _MESSAGE.itemsize)
        offsets = np.concatenate(([0], np.cumsum(sizes)))
        stream = np.empty(int(offsets[-1]), np.uint8)
        can_id = cols.can_id.astype(np.uint32)
        can_id = np.where(flags & EXTENDED, can_id | _EXTENDED_ID, can_id)
        channel = channels[cols.channel]
        for rows_mask, dtype, object_type in kinds:
            rows = np.flatnonzero(rows_mask)
            if not len(rows):
                continue
            rec = np.zeros(len(rows), dtype)
            rec["signature"] = b"LOBJ"
            rec["header_size"] = _HEADER_SIZE
            rec["header_version"] = 1
            rec["object_size"] = dtype.itemsize
            rec["object_type"] = object_type
            rec["object_flags"] = _TIME_ONE_NANS
            rec["timestamp"] = stamps[rows]
            rec["channel"] = channel[rows]
            rec["can_id"] = can_id[rows]
            length = cols.length[rows]
            width = min(cols.data.shape[1], rec["data"].shape[1])
            rec["data"][:, :width] = cols.data[rows, :width]
            if object_type == _CAN_MESSAGE:
                rec["flags"] = np.where(flags[rows] & REMOTE, 0x80, 0) | np.where(flags[rows] & RX, 0, 1)
                rec["dlc"] = length
            elif object_type == _CAN_FD_MESSAGE:
                rec["flags"] = np.where(flags[rows] & REMOTE, 0x80, 0) | np.where(flags[rows] & RX, 0, 1)
                rec["dlc"] = _FD_DLC[length]
                rec["fd_flags"] = 1 | np.where(flags[rows] & BRS, 2, 0) | np.where(flags[rows] & ESI, 4, 0)
                rec["valid_bytes"] = length
            else:
                rec["dlc"] = _FD_DLC[length]
            # Each object's bytes at its place in the stream (objects keep the frames' order).
            at = offsets[rows][:, None] + np.arange(dtype.itemsize)
            stream[at] = rec.view(np.uint8).reshape(len(rows), dtype.itemsize)
        writer.stop_timestamp = float(ts[-1])
        writer._buffer.append(stream.tobytes())
        writer._buffer_size += len(stream)
        writer.object_count += len(cols)
        while writer._buffer_size >= writer.max_container_size and not writer.file.closed:
            writer._flush()
