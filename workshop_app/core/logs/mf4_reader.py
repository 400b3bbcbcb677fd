"""A bulk reader for ASAM MDF4 bus-logging files (CANedge loggers, python-can's MF4Writer).

asammdf hands over each CAN channel group (``CAN_DataFrame``, ``CAN_RemoteFrame``,
``CAN_ErrorFrame``) as one structured record array, so the frames of a group become columns
with a few numpy operations. The groups are then merged by timestamp the way python-can's
``MF4Reader`` merges them (a stable merge, earlier groups first on ties), and timestamps are
absolute: the file's start time plus the record's relative time, as python-can computes them.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from workshop_app.core.logs.columns import (
    BRS,
    ERROR,
    ESI,
    EXTENDED,
    FD,
    REMOTE,
    TX,
    Cancel,
    FrameColumns,
    Progress,
    ReadCancelled,
    log_error,
)
from workshop_app.core.logs.mf4_blocks import record_fragments
from workshop_app.core.logs.notes import LogNotes, drop_impossible, printable

_KINDS = ("CAN_DataFrame", "CAN_ErrorFrame", "CAN_RemoteFrame")
FAST_BLOCKS = True  # read plain layouts from the data blocks ourselves (False: asammdf only)
FRAGMENT_BYTES = 64 << 20  # of raw records per read step (~800k frames of python-can's layout)


def _open(p: Path) -> Any:
    """asammdf's MDF for ``p``, or a LogFileError saying plainly what the file is not."""
    from asammdf import MDF  # heavy: only MF4 needs it

    with p.open("rb") as fh:
        head = fh.read(64)
    size = p.stat().st_size
    if not head.startswith((b"MDF ", b"UnFinMF ")):  # finished, or a logger's unfinished file
        raise log_error(
            f"{p} is not an MF4 log (no MDF signature; starts with {printable(head[:16])})",
            FrameColumns.empty(),
        )
    if size < 64 + 24:
        raise log_error(f"{p}: MF4 file is incomplete (only {size} bytes: cut short)", FrameColumns.empty())
    failure: str | None = None
    previous = sys.unraisablehook
    # asammdf's MDF4.__del__ raises on an object its __init__ left half built, which Python
    # would print as "Exception ignored in MDF4.__del__" with a traceback: keep it quiet while
    # the failed object is released (at the end of the except block below).
    sys.unraisablehook = lambda unraisable: None
    try:
        try:
            # process_bus_logging=False: asammdf would otherwise read every frame up front
            # just to index the CAN ids, doubling the work. (MDF documents this option and passes
            # it on to MDF4, but asammdf's MdfKwargs type leaves it out.)
            mdf = MDF(p, process_bus_logging=False)  # type: ignore[call-arg]
            mdf.configure(read_fragment_size=FRAGMENT_BYTES)
        except Exception as exc:  # asammdf raises many kinds on a damaged file
            failure = str(exc) or type(exc).__name__
        gc.collect()
    finally:
        sys.unraisablehook = previous
    if failure is None:
        return mdf
    if "exceeds the file size" in failure or "ncomplete" in failure:
        raise log_error(
            f"{p}: MF4 file is incomplete (it ends at byte {size}, before blocks it refers to: "
            "cut short or never finished)",
            FrameColumns.empty(),
            offset=size,
        )
    raise log_error(f"{p}: cannot open as MF4 ({printable(failure, 120)})", FrameColumns.empty())


def read_mf4(
    path: str | Path,
    *,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    notes: LogNotes | None = None,
) -> FrameColumns:
    """All CAN frames of an MF4 bus-logging file as columns (LIN and other groups are skipped).

    A file asammdf cannot open (not MF4, cut short before its metadata) raises LogFileError
    with an empty ``partial``. A group that cannot be decoded is damage: it goes into
    ``notes`` and the other groups are read; without ``notes`` it raises LogFileError after the
    read with every frame read on ``partial``. Impossible frames are dropped and counted.
    """
    p = Path(path)
    found = LogNotes(p) if notes is None else notes
    if p.stat().st_size == 0:
        return FrameColumns.empty()
    with _asammdf_complaints() as complaints:
        mdf = _open(p)
        try:
            parts = _read_groups(mdf, p, found, progress, cancel)
        finally:
            mdf.close()
    # What asammdf logged while reading (a block where another was expected, ...) is damage too.
    for message in dict.fromkeys(complaints):
        found.damage(f"asammdf: {printable(message, 120)[1:-1]}")
    frames = drop_impossible(_merge(parts), found)
    if notes is None and found:
        raise found.error(frames)
    return frames


def _read_groups(
    mdf: Any, p: Path, found: LogNotes, progress: Progress | None, cancel: Cancel | None
) -> list[FrameColumns]:
    """The CAN groups of an open file as columns, group by group; a group that fails is noted."""
    from asammdf.blocks.source_utils import Source
    from asammdf.blocks.v4_constants import FLAG_CG_BUS_EVENT

    parts: list[FrameColumns] = []
    start = mdf.header.start_time.timestamp()
    wanted: list[tuple[int, str, int, list[str]]] = []  # group index, kind, frames, channel names
    for index, group in enumerate(mdf.groups):
        cg = group.channel_group
        source = cg.acq_source
        # The same group filter as python-can's MF4Reader, so both see the same frames.
        if not cg.flags & FLAG_CG_BUS_EVENT or cg.cycles_nr == 0 or source is None:
            continue
        if not source.source_type & Source.SOURCE_BUS or source.bus_type != Source.BUS_TYPE_CAN:
            continue
        names = {ch.name for ch in group.channels}
        group_kind = next((k for k in _KINDS if k in names), None)
        if group_kind is not None:
            wanted.append(
                (
                    index,
                    group_kind,
                    int(cg.cycles_nr),
                    sorted(n for n in names if n.startswith(group_kind + ".")),
                )
            )
    total = sum(n for _, _, n, _ in wanted)
    done = 0
    for index, kind, count, fields in wanted:
        if cancel is not None and cancel():
            raise ReadCancelled(f"{p}: reading cancelled at group {index}", _merge(parts))
        try:
            for samples, timestamps in _fragments(mdf, index, fields, p):
                parts.append(_group_columns(kind, samples, timestamps + start))
                if progress is not None:
                    progress(done + min(count, sum(len(part) for part in parts)), total)
                if cancel is not None and cancel():
                    raise ReadCancelled(f"{p}: reading cancelled in group {index}", _merge(parts))
        except ReadCancelled:
            raise
        except Exception as exc:  # a damaged group: the others are still worth reading
            found.damage(f"cannot decode channel group {index} ({kind}): {printable(str(exc), 120)}")
        done += count
        if progress is not None:
            progress(done, total)
    return parts


class _Complaints(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _asammdf_complaints() -> Iterator[list[str]]:
    """asammdf's error log lines while the block runs, collected instead of printed.

    asammdf prints them to stderr with its own handler (several lines, some with a stray
    "NoneType: None" traceback line); a reader says what is wrong in its notes instead.
    """
    logger = logging.getLogger("asammdf")
    handler = _Complaints()
    saved = logger.handlers[:], logger.propagate
    logger.handlers, logger.propagate = [handler], False
    try:
        yield handler.messages
    finally:
        logger.handlers, logger.propagate = saved


def _fragments(
    mdf: Any, index: int, fields: list[str], path: Path
) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
    """The member channels of group ``index``, fragment by fragment of its data blocks.

    asammdf materialises 64 data bytes per record for whatever it returns; reading the group
    a fragment (FRAGMENT_BYTES of records) at a time bounds that memory. The fragments come
    from asammdf's sequential block reader; asking ``select`` for record ranges instead re-reads
    the file from the start for each range. ``raw=False``: value conversions (DataLength tables,
    "Rx"/"Tx" texts) applied, exactly what python-can's reader sees.
    """
    inner = getattr(mdf, "_mdf", None)
    if FAST_BLOCKS and inner is not None and hasattr(inner, "groups"):
        fast = record_fragments(path, inner.groups[index], fields)
        if fast is not None:  # the plain layout: straight from the data blocks
            yield from fast
            return
    if inner is None or not hasattr(inner, "_load_data"):  # another asammdf layout: all at once
        signals = mdf.select([(name, index, None) for name in fields], raw=False)
        yield {sig.name: sig.samples for sig in signals}, signals[0].timestamps
        return
    for fragment in inner._load_data(inner.groups[index]):
        signals = [inner.get(name, index, data=fragment, raw=False) for name in fields]
        yield {sig.name: sig.samples for sig in signals}, signals[0].timestamps


def _field(samples: dict[str, np.ndarray], kind: str, name: str) -> np.ndarray | None:
    return samples.get(f"{kind}.{name}")


def _set_flag(flags: np.ndarray, values: np.ndarray | None, bit: int, default: bool = False) -> None:
    """OR ``bit`` into ``flags`` where ``values`` is non-zero (everywhere if absent and ``default``)."""
    if values is None:
        if default:
            flags |= np.uint8(bit)
        return
    np.bitwise_or(flags, np.uint8(bit), out=flags, where=values.astype(bool, copy=False))


def _group_columns(kind: str, samples: dict[str, np.ndarray], timestamps: np.ndarray) -> FrameColumns:
    n = len(timestamps)
    flags = np.zeros(n, np.uint8)
    direction = _field(samples, kind, "Dir")
    if direction is not None:
        # A text-converted Dir: python-can takes only b"Rx" as received.
        _set_flag(flags, direction != b"Rx" if direction.dtype.kind == "S" else direction, TX)
    # python-can's Message defaults to an extended id when IDE is not recorded.
    _set_flag(flags, _field(samples, kind, "IDE"), EXTENDED, default=True)

    ident = _field(samples, kind, "ID")
    if ident is None:
        arbitration_id = np.zeros(n, np.uint32)
    else:
        arbitration_id = ident.astype(np.uint32) & np.uint32(0x1FFFFFFF)
    length = np.zeros(n, np.uint8)
    payload = np.zeros((n, 8), np.uint8)
    if kind == "CAN_RemoteFrame":
        flags |= np.uint8(REMOTE)
        dlc = _field(samples, kind, "DLC")
        if dlc is None:
            raise ValueError("remote frames without a DLC channel")
        length = dlc.astype(np.uint8)
    else:
        if kind == "CAN_ErrorFrame":
            flags |= np.uint8(ERROR)
            _set_flag(flags, _field(samples, kind, "RTR"), REMOTE)
        _set_flag(flags, _field(samples, kind, "EDL"), FD)
        _set_flag(flags, _field(samples, kind, "BRS"), BRS)
        _set_flag(flags, _field(samples, kind, "ESI"), ESI)
        data_length = _field(samples, kind, "DataLength")
        data = _field(samples, kind, "DataBytes")
        if data_length is not None and data is not None:
            raw = _bytes_2d(data, n)
            length = np.minimum(data_length, raw.shape[1]).astype(np.uint8)
            # python-can's layout stores 64 bytes per frame; copy only as wide as the frames are.
            width = min(raw.shape[1], max(8, int(length.max(initial=0))))
            if width >= 8:
                payload = np.array(raw[:, :width], np.uint8, order="C")
            else:
                payload[:, :width] = raw
            # Bytes past the length are zero in our columns; only short rows need the mask.
            short = np.flatnonzero(length < payload.shape[1])
            if len(short):
                part = payload[short]
                part[np.arange(payload.shape[1]) >= length[short, None]] = 0
                payload[short] = part

    channel_values = _field(samples, kind, "BusChannel")
    if channel_values is None:
        names: tuple[str, ...] = ("",)
        channel = np.zeros(n, np.uint8)
    else:
        values = channel_values.astype(np.int64)
        low, high = (int(values.min()), int(values.max())) if n else (0, 0)
        if low >= 0 and high < 4096:  # bus numbers: a lookup table beats np.unique's sort
            present = np.flatnonzero(np.bincount(values, minlength=1))
            if len(present) > 256:
                raise ValueError("more than 256 channels")
            table = np.zeros(high + 1, np.uint8)
            table[present] = np.arange(len(present), dtype=np.uint8)
            found = present
            channel = table[values]
        else:
            found, inverse = np.unique(values, return_inverse=True)
            channel = inverse.ravel().astype(np.uint8)
        if len(found) > 256:
            raise ValueError("more than 256 channels")
        names = tuple(str(v) for v in found.tolist())
    return FrameColumns(
        timestamp=np.ascontiguousarray(timestamps, np.float64),
        channel=channel,
        arbitration_id=arbitration_id,
        flags=flags,
        length=length,
        payload=payload,
        channels=names,
    )


def _bytes_2d(data: Any, n: int) -> np.ndarray:
    """DataBytes as (n, width) uint8, whether stored as a u1 sub-array or an opaque ``V`` field."""
    arr = np.asarray(data)
    if arr.dtype.kind == "V":
        return np.ascontiguousarray(arr).view(np.uint8).reshape(n, arr.dtype.itemsize)
    return arr.astype(np.uint8, copy=False).reshape(n, -1)


def _merge(parts: list[FrameColumns]) -> FrameColumns:
    """Groups interleaved by timestamp; a stable sort keeps python-can's tie order."""
    if not parts:
        return FrameColumns.empty()
    joined = FrameColumns.concat(parts)
    if len(parts) == 1 or len(joined) == 0:
        return joined
    if (joined.timestamp[1:] >= joined.timestamp[:-1]).all():
        return joined  # one group read in fragments, or groups that follow each other
    order = np.argsort(joined.timestamp, kind="stable")
    if (np.diff(order) == 1).all():
        return joined
    return joined.select(order)
