"""MF4 bus-logging recordings written as they go, readable after a crash up to the last flush.

python-can's ``MF4Writer`` appends one record per call (~50 µs a frame) and asammdf stages
everything in a temporary file until ``save``: a killed process leaves an empty ``.mf4`` and a
stray temporary file. This writer lets asammdf lay out the metadata once (the exact layout
python-can writes: three channel groups of fixed-size records, so ``can.LogReader`` and asammdf
read our files as theirs), then appends the data itself, straight into the output file:

* every flush appends, per channel group, one data block (DZ, transposed + deflated, as
  python-can compresses) and a one-entry data list (DL) pointing at it;
* only then is the list linked in (an 8-byte write into the previous list, or the data group)
  and the group's cycle count raised (another 8 bytes). Readers take ``cycle count`` records, so
  the file is a consistent MF4 between any two of these writes: a ``kill -9`` loses only the
  frames not yet flushed. All writes are unbuffered ``pwrite`` calls, nothing waits in Python.

While recording, the identification block says ``UnFinMF`` with no standard "unfinalised"
flag (nothing a reader must fix) and our custom flag :data:`CUSTOM_UNFINISHED` (the chain may
end early; check it). :meth:`Mf4FrameWriter.close` writes ``MDF`` there. An unfinished file is
checked and finalised by :mod:`workshop_app.core.logs.mf4_recover` (``workshop repair``).
"""

from __future__ import annotations

import io
import math
import os
import struct
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from typing import Any, Literal

import can
import numpy as np

from workshop_app.core.types import Frame

# -- the MDF 4.10 fields this module and the recovery module touch (ASAM MDF 4.1 block layouts) --
ID_FILE = 0  # char[8]: "MDF     " or "UnFinMF "
ID_PROG = 16  # char[8]: the program that wrote the file
ID_UNFIN_FLAGS = 60  # uint16: standard "unfinalised" flags
ID_CUSTOM_UNFIN_FLAGS = 62  # uint16: tool-specific "unfinalised" flags
FINISHED_ID = b"MDF     "
UNFINISHED_ID = b"UnFinMF "
PROGRAM_ID = b"workshop"
CUSTOM_UNFINISHED = 0x0001  # ours: the data list chain may end early; cycle counts are per flush
HD_ADDRESS = 0x40
HD_FIRST_DG = HD_ADDRESS + 24  # link: first data group
HD_START_TIME_NS = HD_ADDRESS + 72  # uint64: start time, ns since the epoch (UTC)
DG_NEXT, DG_FIRST_CG, DG_DATA = 24, 32, 40  # link offsets inside a DG block
CG_CYCLES, CG_DATA_BYTES = 80, 96  # uint64 cycle count, uint32 record size inside a CG block
DL_NEXT = 24  # link offset of the next data list inside a DL block

BLOCK_HEADER = struct.Struct("<4s4xQQ")  # id, length, link count
DZ_INFO = struct.Struct("<2sBxIQQ")  # original block type, zip type, parameter, original and data length
DL_TAIL = struct.Struct("<B3xIQ")  # flags (0: offsets given), data block count, offset of its data
U64 = struct.Struct("<Q")
DZ_HEADER_SIZE = BLOCK_HEADER.size + DZ_INFO.size
DL_SIZE = BLOCK_HEADER.size + 2 * U64.size + DL_TAIL.size
ZIP_DEFLATE, ZIP_TRANSPOSED = 0, 1

# --- the layout python-can's MF4Writer creates (can/io/mf4.py) and its MF4Reader and asammdf's
# bus-logging code expect: three channel groups (data, error, remote frames), each one
# structure channel of fixed-size records, time relative to the header's start time.
_STD_FIELDS = [
    ("BusChannel", "<u1"),
    ("ID", "<u4"),
    ("IDE", "<u1"),
    ("DLC", "<u1"),
    ("DataLength", "<u1"),
    ("DataBytes", "(64,)u1"),
    ("Dir", "<u1"),
    ("EDL", "<u1"),
    ("BRS", "<u1"),
    ("ESI", "<u1"),
]
_RTR_FIELDS = [
    ("BusChannel", "<u1"),
    ("ID", "<u4"),
    ("IDE", "<u1"),
    ("DLC", "<u1"),
    ("DataLength", "<u1"),
    ("Dir", "<u1"),
]
# (group name, record fields) in group order: data frames 0, error frames 1, remote frames 2.
MF4_GROUPS = (
    ("CAN_DataFrame", _STD_FIELDS),
    ("CAN_ErrorFrame", _STD_FIELDS),
    ("CAN_RemoteFrame", _RTR_FIELDS),
)
MF4_DTYPES = tuple(np.dtype([(f"{name}.{f}", t) for f, t in fields]) for name, fields in MF4_GROUPS)
# Payload length -> CAN FD DLC code (lengths between the valid sizes round up, as python-can's len2dlc).
_LEN2DLC = np.array([can.util.len2dlc(n) for n in range(65)], dtype=np.uint8)
_FRAME_FIELDS = attrgetter(
    "timestamp",
    "arbitration_id",
    "data",
    "channel",
    "is_extended",
    "is_fd",
    "bitrate_switch",
    "error_state_indicator",
    "is_remote",
    "is_error",
    "is_rx",
)


@dataclass(slots=True)
class _Group:
    """Where one channel group's links and counters live in the file, and what it holds so far."""

    dg_address: int
    cg_address: int
    record: np.dtype  # time + the group's fields, at the byte offsets asammdf laid out
    last_list: int = 0  # address of the newest DL block (0: none yet)
    cycles: int = 0
    data_bytes: int = 0  # original (uncompressed) bytes of all its data blocks


def _template(start: datetime) -> bytes:
    """asammdf's metadata for the three empty CAN groups, no data blocks."""
    # Local import: only MF4 needs asammdf, and python-can treats it as optional.
    from asammdf import MDF, Signal
    from asammdf.blocks.v4_blocks import SourceInformation
    from asammdf.blocks.v4_constants import BUS_TYPE_CAN, SOURCE_BUS

    mdf = MDF(version="4.10")
    try:
        mdf.header.start_time = start
        source = SourceInformation(source_type=SOURCE_BUS, bus_type=BUS_TYPE_CAN)
        for (name, _fields), dtype in zip(MF4_GROUPS, MF4_DTYPES, strict=True):
            mdf.append(
                Signal(
                    name=name,
                    samples=np.array([], dtype=dtype),
                    timestamps=np.array([], dtype="<f8"),
                    source=source,
                )
            )
        out = io.BytesIO()
        mdf.save(out, compression=0)
        return out.getvalue()
    finally:
        mdf.close()


def _groups(template: bytes) -> list[_Group]:
    """The data and channel group addresses and record layouts of a template, checked."""
    from asammdf import MDF

    mdf = MDF(io.BytesIO(template))
    try:
        groups = []
        found: list[Any] = list(mdf.groups)  # asammdf's Group objects carry no type hints
        for (name, fields), group in zip(MF4_GROUPS, found, strict=True):
            offsets = {ch.name: ch.byte_offset for ch in group.channels}
            size = int(group.channel_group.samples_byte_nr)
            names = ["t"] + [f"{name}.{f}" for f, _t in fields]
            formats = ["<f8"] + [t for _f, t in fields]
            record = np.dtype(
                {
                    "names": names,
                    "formats": formats,
                    "offsets": [offsets["time"]] + [offsets[n] for n in names[1:]],
                    "itemsize": size,
                }
            )
            if group.data_group.record_id_len or group.channel_group.invalidation_bytes_nr:
                raise ValueError("asammdf laid out the CAN groups in an unexpected way")
            groups.append(_Group(group.data_group.address, group.channel_group.address, record))
        return groups
    finally:
        mdf.close()


def _pad8(n: int) -> int:
    return (n + 7) & ~7


class Mf4FrameWriter:
    """MF4 bus-logging writer that appends frames in blocks, readable after each flush.

    Frames are buffered and converted column-wise to numpy records, then appended as one data
    block per group every ``flush_frames`` frames, every ``flush_seconds`` (checked when frames
    arrive) or when :meth:`flush` is called (the recorder calls it on a timer).

    The header's start time is the first frame's whole second (UTC), so timestamps survive
    the round trip to the microsecond whatever the clock (wall clock or a replayed log's).
    """

    limitation: str | None = None  # MF4 holds every kind of frame

    def __init__(
        self,
        path: Path,
        *,
        compression: Literal[0, 1, 2] = 2,  # 2: transposition + deflate, as python-can
        flush_frames: int = 65_536,
        flush_seconds: float = 0.5,
        level: int = 1,  # deflate level: 1 keeps up with a saturated bus on one core
    ) -> None:
        self._path = path
        self._compression = compression
        self._level = level
        self._flush_frames = flush_frames
        self._flush_seconds = flush_seconds
        template = bytearray(_template(datetime.fromtimestamp(math.floor(time.time()), UTC)))
        self._groups = _groups(bytes(template))
        template[ID_FILE : ID_FILE + 8] = UNFINISHED_ID
        template[ID_PROG : ID_PROG + 8] = PROGRAM_ID
        struct.pack_into("<HH", template, ID_UNFIN_FLAGS, 0, CUSTOM_UNFINISHED)
        # Opened now so an unwritable path fails at start, not after an hour of capture.
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            self._end = 0
            self._append(bytes(template))
        except BaseException:
            os.close(self._fd)
            raise
        self._pending: list[Frame] = []
        self._last_flush = time.monotonic()
        self._base: int | None = None  # epoch second the file's time axis starts at
        self._channels: dict[str, int] = {}
        self._committed_end = self._end  # the file's end as of the last counted block
        self._failed = False
        self._closed = False

    # -- public ----------------------------------------------------------------------------------

    @property
    def flushed(self) -> int:
        """Frames a reader finds in the file now (what a crash would leave)."""
        return sum(group.cycles for group in self._groups)

    def write_frames(self, frames: Sequence[Frame], columns: object = None) -> int:
        self._pending.extend(frames)  # columns unused: blocks are built from many batches
        if (
            len(self._pending) >= self._flush_frames
            or time.monotonic() - self._last_flush >= self._flush_seconds
        ):
            self.flush()
        return len(frames)

    def flush(self) -> None:
        """Append the buffered frames to the file, where a reader finds them from now on."""
        self._last_flush = time.monotonic()
        frames, self._pending = self._pending, []
        if not frames or self._failed:
            return
        try:
            self._append_frames(frames)
        except BaseException:
            # The file stays consistent up to the last counted block; later flushes would leave
            # a gap in it, so nothing more is appended, and the half-written tail goes (which
            # also gives a full disk its space back).
            self._failed = True
            try:
                os.ftruncate(self._fd, self._committed_end)
                self._end = self._committed_end
            except OSError:
                pass
            raise

    def size(self) -> int:
        return self._end

    def close(self) -> None:
        """Append what is buffered and mark the file finished (even after a write failed)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.flush()
        finally:
            try:
                # In place, no growth: possible on a full disk too. No fsync: like every other
                # format, the file is the operating system's to write back once closed.
                os.pwrite(self._fd, FINISHED_ID, ID_FILE)
                os.pwrite(self._fd, struct.pack("<HH", 0, 0), ID_UNFIN_FLAGS)
            finally:
                os.close(self._fd)

    # -- recorder thread -------------------------------------------------------------------------

    def _append(self, data: bytes) -> int:
        """Write ``data`` at the end of the file (8-byte aligned, as MDF blocks are); its address."""
        address = self._end
        padded = data + bytes(_pad8(len(data)) - len(data))
        view = memoryview(padded)
        written = 0
        while written < len(padded):
            written += os.pwrite(self._fd, view[written:], address + written)
        self._end = address + len(padded)
        return address

    def _append_frames(self, frames: list[Frame]) -> None:
        if self._base is None:
            self._base = max(0, math.floor(frames[0].timestamp))
            os.pwrite(self._fd, U64.pack(self._base * 1_000_000_000), HD_START_TIME_NS)
        n = len(frames)
        (ts, ids, data, labels, ext, fd, brs, esi, remote, error, rx) = zip(
            *map(_FRAME_FIELDS, frames), strict=True
        )
        cols: dict[str, np.ndarray] = {}
        cols["t"] = np.fromiter(ts, np.float64, n) - self._base
        cols["ID"] = np.fromiter(ids, np.uint32, n)
        lengths = np.fromiter(map(len, data), np.uint16, n)
        if n and int(lengths.max()) > 64:
            raise ValueError("a frame carries more than 64 data bytes")
        cols["DataLength"] = lengths.astype(np.uint8)
        cols["DataBytes"] = np.frombuffer(b"".join(d.ljust(64, b"\0") for d in data), np.uint8).reshape(n, 64)
        cols["BusChannel"] = np.fromiter(map(self._channel, labels), np.uint8, n)
        cols["IDE"] = np.fromiter(ext, np.uint8, n)
        is_fd = np.fromiter(fd, bool, n)
        cols["EDL"] = is_fd.astype(np.uint8)
        # As python-can writes them: BRS/ESI only mean something on FD frames.
        cols["BRS"] = np.fromiter(brs, np.uint8, n) & cols["EDL"]
        cols["ESI"] = np.fromiter(esi, np.uint8, n) & cols["EDL"]
        cols["DLC"] = np.where(is_fd, _LEN2DLC[cols["DataLength"]], cols["DataLength"]).astype(np.uint8)
        cols["Dir"] = np.fromiter(rx, np.uint8, n) ^ 1  # 0 = Rx, 1 = Tx
        is_remote = np.fromiter(remote, bool, n)
        is_error = np.fromiter(error, bool, n) & ~is_remote
        masks = (~(is_remote | is_error), is_error, is_remote)
        for (name, fields), group, mask in zip(MF4_GROUPS, self._groups, masks, strict=True):
            count = int(mask.sum())
            if not count:
                continue
            everything = count == n
            records = np.zeros(count, dtype=group.record)
            records["t"] = cols["t"] if everything else cols["t"][mask]
            for field, _type in fields:
                column = cols[field]
                records[f"{name}.{field}"] = column if everything else column[mask]
            self._append_block(group, records)

    def _append_block(self, group: _Group, records: np.ndarray) -> None:
        """One data block and its list entry, then the link to it, then the count: in that order,
        so a reader of the file at any moment sees only whole, counted records."""
        raw = records.tobytes()
        size = group.record.itemsize
        if self._compression == 0:
            block = BLOCK_HEADER.pack(b"##DT", BLOCK_HEADER.size + len(raw), 0) + raw
        else:
            if self._compression == 2:
                matrix = np.frombuffer(raw, np.uint8).reshape(len(records), size)
                packed = zlib.compress(np.ascontiguousarray(matrix.T).tobytes(), self._level)
                zip_type, param = ZIP_TRANSPOSED, size
            else:
                packed = zlib.compress(raw, self._level)
                zip_type, param = ZIP_DEFLATE, 0
            block = (
                BLOCK_HEADER.pack(b"##DZ", DZ_HEADER_SIZE + len(packed), 0)
                + DZ_INFO.pack(b"DT", zip_type, param, len(raw), len(packed))
                + packed
            )
        data_address = self._append(block)
        data_list = (
            BLOCK_HEADER.pack(b"##DL", DL_SIZE, 2)
            + U64.pack(0)  # next list: linked by the next flush
            + U64.pack(data_address)
            + DL_TAIL.pack(0, 1, group.data_bytes)
        )
        list_address = self._append(data_list)
        link_at = group.last_list + DL_NEXT if group.last_list else group.dg_address + DG_DATA
        os.pwrite(self._fd, U64.pack(list_address), link_at)
        group.last_list = list_address
        group.data_bytes += len(raw)
        group.cycles += len(records)
        os.pwrite(self._fd, U64.pack(group.cycles), group.cg_address + CG_CYCLES)
        self._committed_end = self._end

    def _channel(self, label: str) -> int:
        number = self._channels.get(label)
        if number is None:
            parsed = channel_number(label)
            # BusChannel is one byte; channels without a number are bus 0, as in python-can.
            number = parsed if isinstance(parsed, int) and 0 <= parsed <= 255 else 0
            self._channels[label] = number
        return number


def channel_number(label: str) -> int | str:
    """The number a channel label ends with ("can1" -> 1, "PCAN_USBBUS2" -> 2); the label
    itself when it ends with none or one too big for a log's 16-bit channel field (a VIN, a
    generated name like "ws-1a2b"), which the log writers then file under their default."""
    end = len(label)
    while end > 0 and label[end - 1].isdigit():
        end -= 1
    digits = label[end:]
    return int(digits) if digits and int(digits) <= 0xFFFF else label
