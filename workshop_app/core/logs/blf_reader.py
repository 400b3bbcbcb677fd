"""A bulk reader for Vector BLF logs, straight into FrameColumns.

Layout (as python-can reads it): a ``LOGG`` file header, then ``LOBJ`` objects; LOG_CONTAINER
objects hold zlib-compressed runs of further ``LOBJ`` objects, which may straddle containers.
The decompressed stream is handled in batches: object positions are found by scanning for the
``LOBJ`` signature with numpy and checking that they chain (each object starts within 4 bytes of
where the previous one ends); the frame fields are then read for all objects of one type at once
through a structured dtype laid over every byte offset of the buffer. Sizes are checked before
they are trusted, so a zero-size or truncated header is never an endless loop. Damage is not the
end of the read: the next container (in the file) or object signature (in the decompressed
stream) is looked for and reading goes on, each damaged place noted with its file offset.
"""

from __future__ import annotations

import bisect
import datetime
import struct
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

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
from workshop_app.core.logs.notes import LogNotes, drop_impossible, printable

# signature, header size, 4 x application, 4 x binlog version, file size, uncompressed size,
# object count, objects read, start SYSTEMTIME, stop SYSTEMTIME
FILE_HEADER = struct.Struct("<4sLBBBBBBBBQQLL8H8H")
OBJ_BASE = struct.Struct("<4sHHLL")  # signature, header size, header version, object size, type
CONTAINER = struct.Struct("<H6xL4x")  # compression method, uncompressed size

LOG_CONTAINER = 10
CAN_MESSAGE = 1
CAN_ERROR_EXT = 73
CAN_MESSAGE2 = 86
CAN_FD_MESSAGE = 100
CAN_FD_MESSAGE_64 = 101
NO_COMPRESSION = 0
ZLIB_DEFLATE = 2

# Decompressed bytes gathered before a parse step (~85k classic frames).
BATCH_BYTES = 4 << 20
_LOOK_AHEAD = 16  # containers being inflated ahead of the parser
# Where the object-specific part starts after the common header, by header version.
BODY_OFFSET = {1: 32, 2: 40}
DLC_TO_LEN = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64], np.uint8)
_LOBJ = np.frombuffer(b"LOBJ", np.uint8)


class _BadObject(Exception):
    """A damaged object at ``offset`` of a decompressed buffer, with what came before it."""

    def __init__(self, offset: int, reason: str, positions: np.ndarray | None = None) -> None:
        super().__init__(reason)
        self.offset = offset
        self.reason = reason
        self.positions = positions if positions is not None else np.zeros(0, np.int64)


def _systemtime(fields: tuple[int, ...]) -> float:
    """Unix time of a SYSTEMTIME (year, month, weekday, day, h, m, s, ms); 0 when unset."""
    year, month, _, day, hour, minute, second, ms = fields
    try:
        stamp = datetime.datetime(year, month, day, hour, minute, second, ms * 1000, tzinfo=datetime.UTC)
    except ValueError:
        return 0.0
    return stamp.timestamp()


# Record fields for ``_records``: name -> (numpy dtype, or (dtype, count) for an array; byte offset).
_Fields = dict[str, tuple[str | tuple[str, int], int]]


def _records(buf: bytes, positions: np.ndarray, fields: _Fields, itemsize: int) -> np.ndarray:
    """The records of ``itemsize`` bytes starting at ``positions``, as a structured array.

    The bytes are gathered through a view with one record per byte offset (plain bytes copy
    fast; unaligned structured copies do not), then reinterpreted with the field layout.
    """
    dtype = np.dtype(
        {
            "names": list(fields),
            "formats": [f for f, _ in fields.values()],
            "offsets": [o for _, o in fields.values()],
            "itemsize": itemsize,
        }
    )
    count = max(len(buf) - itemsize + 1, 0)
    raw = np.ndarray((count,), (np.uint8, (itemsize,)), buffer=buf, offset=0, strides=(1,))[positions]
    records: np.ndarray = raw.view(dtype).reshape(len(positions))
    return records


def read_blf(
    path: str | Path,
    *,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    notes: LogNotes | None = None,
) -> FrameColumns:
    """All CAN / CAN FD / error frames of a BLF file as columns.

    Damage (a truncated or corrupt container, a bad object header, a file cut short) does not
    end the read: every complete object before it is kept, reading resumes at the next
    container (or object) that can be found again, and each damaged place goes into ``notes``
    with its file offset. Without ``notes`` the first damage raises LogFileError after the
    whole file was read, with every recovered frame on ``partial``. A file that is not BLF at
    all raises LogFileError in either case.
    """
    p = Path(path)
    strict = notes is None
    found = LogNotes(p) if notes is None else notes
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise log_error(f"{p}: cannot read ({exc.strerror or exc})", FrameColumns.empty()) from exc
    size = len(data)
    if size == 0:
        return FrameColumns.empty()
    if data[:4] != b"LOGG":
        raise log_error(
            f"{p} is not a BLF log (no LOGG signature; starts with {printable(data[:16])})",
            FrameColumns.empty(),
            offset=0,
        )
    if size < FILE_HEADER.size:
        raise log_error(f"{p}: truncated BLF file header ({size} bytes)", FrameColumns.empty(), offset=0)
    header = FILE_HEADER.unpack_from(data)
    start_time = _systemtime(header[14:22])

    # Each batch is chained here (where the next batch starts depends on it) and its fields
    # extracted on a worker thread; results are collected in file order.
    parts: list[tuple[int, Future[tuple[FrameColumns, list[int]]]]] = []
    pending: list[bytes] = []
    pending_size = 0
    tail = b""
    # (stream offset where a container's data starts, its file offset), to place inner damage.
    containers: list[tuple[int, int]] = []
    stream_pos = 0  # stream offset of the first byte of ``tail``

    def container_of(where: int) -> int:
        at = bisect.bisect_right([s for s, _ in containers], where) - 1
        return containers[max(at, 0)][1] if containers else 0

    def inner_damage(where: int, reason: str) -> None:
        found.damage(
            f"{reason} at byte {where} of the decompressed data (container at file offset "
            f"{container_of(where)})",
            offset=container_of(where),
        )

    def collect() -> list[FrameColumns]:
        done: list[FrameColumns] = []
        for batch_pos, future in parts:
            try:
                frames, short = future.result()
            except _BadObject as bad:
                inner_damage(batch_pos + bad.offset, bad.reason)
                continue
            done.append(frames)
            for at in short:
                inner_damage(batch_pos + at, "object too small for its type")
        parts.clear()
        return done

    collected: list[FrameColumns] = []

    def flush(final: bool) -> None:
        nonlocal tail, stream_pos, pending_size
        buf = b"".join([tail, *pending])
        pending.clear()
        pending_size = 0
        while True:
            try:
                positions, used = _chain_batch(buf, final and not truncated)
            except _BadObject as bad:
                # Keep the objects before the damage, then look for the next object signature.
                inner_damage(stream_pos + bad.offset, bad.reason)
                parts.append((stream_pos, extracting.submit(_extract, buf, bad.positions, start_time)))
                resume = buf.find(b"LOBJ", bad.offset + 1)
                if resume < 0:
                    stream_pos += len(buf)
                    tail = b""
                    return
                stream_pos += resume
                buf = buf[resume:]
                continue
            parts.append((stream_pos, extracting.submit(_extract, buf, positions, start_time)))
            tail = buf[used:]
            stream_pos += used
            return

    def restart_stream() -> None:
        # A skipped container breaks the decompressed stream: the object cut at its start is lost.
        nonlocal tail, stream_pos
        flush(final=False)
        stream_pos += len(tail)
        tail = b""

    def resync(after: int) -> int:
        """File offset of the next plausible container header after ``after`` (or the end)."""
        at = data.find(b"LOBJ", after + 1)
        while at >= 0 and at + OBJ_BASE.size + CONTAINER.size <= size:
            _, _, _, obj_size, obj_type = OBJ_BASE.unpack_from(data, at)
            if obj_type == LOG_CONTAINER and obj_size >= OBJ_BASE.size + CONTAINER.size:
                return at
            at = data.find(b"LOBJ", at + 1)
        return size

    truncated = False  # the file ends inside a container: its last object is expected to be cut
    broken = False  # a container was skipped: the next one starts inside an object
    pos = max(header[1], FILE_HEADER.size)
    if pos > size:
        raise log_error(
            f"{p}: truncated BLF file header ({size} of {pos} bytes)", FrameColumns.empty(), offset=0
        )
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="blf-inflate") as pool,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="blf-extract") as extracting,
    ):
        stream_end = 0
        # Containers are inflated on a worker thread a few objects ahead of the parser: zlib
        # releases the GIL, so decompression and parsing share the two cores. The look-ahead
        # scan trusts nothing: it stops at the first doubtful header and the main loop below,
        # which validates every object, reports it.
        inflating: dict[int, Future[bytes]] = {}
        scan = pos

        def look_ahead() -> None:
            nonlocal scan
            while len(inflating) < _LOOK_AHEAD and scan + OBJ_BASE.size <= size:
                signature, _, _, obj_size, obj_type = OBJ_BASE.unpack_from(data, scan)
                smallest = OBJ_BASE.size + (CONTAINER.size if obj_type == LOG_CONTAINER else 0)
                if signature != b"LOBJ" or obj_size < smallest or scan + obj_size > size:
                    scan = size
                    return
                if (
                    obj_type == LOG_CONTAINER
                    and CONTAINER.unpack_from(data, scan + OBJ_BASE.size)[0] == ZLIB_DEFLATE
                ):
                    body = data[scan + OBJ_BASE.size + CONTAINER.size : scan + obj_size]
                    inflating[scan] = pool.submit(_inflate, body)
                scan += obj_size + obj_size % 4

        def skip(reason: str) -> int:
            nonlocal broken, scan
            found.damage(reason, offset=pos)
            restart_stream()
            broken = True
            scan = resync(pos)  # the look-ahead stopped at the damage: restart it there
            return scan

        while pos < size:
            look_ahead()
            if cancel is not None and cancel():
                flush(final=False)
                raise ReadCancelled(
                    f"{p}: reading cancelled at file offset {pos}",
                    FrameColumns.concat([*collected, *collect()]),
                )
            if size - pos < OBJ_BASE.size:
                if data[pos:].strip(b"\x00"):
                    found.damage(f"file ends inside an object header ({size - pos} bytes)", offset=pos)
                    truncated = True  # the object cut at the previous container's end: same damage
                break
            signature, _, _, obj_size, obj_type = OBJ_BASE.unpack_from(data, pos)
            if signature != b"LOBJ":
                pos = skip("no LOBJ object signature")
                continue
            if obj_size < OBJ_BASE.size + (CONTAINER.size if obj_type == LOG_CONTAINER else 0):
                pos = skip(f"object header with size {obj_size}")
                continue
            cut = pos + obj_size > size
            if cut:
                found.damage(
                    f"file ends inside an object ({obj_size} bytes announced, {size - pos} left)", offset=pos
                )
                truncated = True
                if obj_type == LOG_CONTAINER and size - pos < OBJ_BASE.size + CONTAINER.size:
                    break  # not even the container header is there
            if obj_type == LOG_CONTAINER:
                method, _ = CONTAINER.unpack_from(data, pos + OBJ_BASE.size)
                body = data[pos + OBJ_BASE.size + CONTAINER.size : min(pos + obj_size, size)]
                inner: bytes | None = None
                if method == ZLIB_DEFLATE:
                    future = inflating.pop(pos, None)
                    try:
                        inner = future.result() if future is not None else _inflate(body)
                    except zlib.error as exc:
                        pos = skip(f"corrupt compressed container ({exc})")
                        continue
                elif method == NO_COMPRESSION:
                    inner = body
                if inner is not None:  # unknown compression: skipped, as python-can does
                    if broken:
                        first = inner.find(b"LOBJ")
                        inner = inner[first:] if first >= 0 else b""
                        broken = False
                    containers.append((stream_end, pos))
                    stream_end += len(inner)
                    pending.append(inner)
                    pending_size += len(inner)
                    if pending_size >= BATCH_BYTES:
                        flush(final=False)
                        if progress is not None:
                            progress(pos + obj_size, size)
            if cut:
                break
            pos += obj_size + obj_size % 4  # python-can's padding rule
        flush(final=True)
        collected.extend(collect())
    if progress is not None:
        progress(size, size)
    frames = drop_impossible(FrameColumns.concat(collected), found)
    if strict and found:
        raise found.error(frames)
    return frames


def _inflate(body: bytes) -> bytes:
    # decompressobj: a container cut short yields what it holds instead of raising.
    return zlib.decompressobj().decompress(body)


def _chain(buf: bytes) -> tuple[np.ndarray, int]:
    """Positions of the complete objects at the start of ``buf`` and where the rest begins."""
    b = np.frombuffer(buf, np.uint8)
    n = len(b)
    if n < 4:
        return np.zeros(0, np.int64), 0
    cand = np.flatnonzero(b[: n - 3] == _LOBJ[0])
    for j in (1, 2, 3):
        cand = cand[b[cand + j] == _LOBJ[j]]
    full = cand[cand + OBJ_BASE.size <= n]
    sizes = _records(buf, full, {"size": ("<u4", 8)}, OBJ_BASE.size)["size"].astype(np.int64)
    ends = full + sizes
    # Common case: every signature found is an object and each follows the previous one.
    if len(full) and full[0] <= 4 and (sizes >= OBJ_BASE.size).all():
        gaps = full[1:] - ends[:-1]
        if ((gaps >= 0) & (gaps <= 4)).all():
            k = len(full) - int(ends[-1] > n)
            rest = int(ends[k - 1]) if k else 0
            after = cand[cand >= rest]
            if len(after) or n - rest < 8:
                return full[:k], rest
    # Otherwise (a signature inside a payload, or damage): walk object by object.
    starts = full.tolist()
    size_of = dict(zip(starts, sizes.tolist(), strict=True))
    cand_list = cand.tolist()
    chain: list[int] = []
    pos = 0
    while True:
        i = bisect.bisect_left(cand_list, pos)
        if i == len(cand_list) or cand_list[i] > pos + 4:
            if pos + 8 > n:
                return np.array(chain, np.int64), pos
            raise _BadObject(pos, "no LOBJ object signature", np.array(chain, np.int64))
        obj = cand_list[i]
        if obj + OBJ_BASE.size > n:
            return np.array(chain, np.int64), pos
        obj_size = size_of[obj]
        if obj_size < OBJ_BASE.size:
            raise _BadObject(obj, f"object header with size {obj_size}", np.array(chain, np.int64))
        if obj + obj_size > n:
            return np.array(chain, np.int64), pos
        chain.append(obj)
        pos = obj + obj_size


def _chain_batch(buf: bytes, final: bool) -> tuple[np.ndarray, int]:
    """Positions of the complete objects in ``buf`` and the bytes they use."""
    positions, used = _chain(buf)
    if final and len(buf) - used >= OBJ_BASE.size and b"LOBJ" in buf[used : used + 8]:
        raise _BadObject(used, "file ends inside an object", positions)
    return positions, used


def _seconds(tflags: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Object time stamps in seconds: flag 1 means units of 10 µs, anything else nanoseconds
    (python-can's rule)."""
    ticks = raw.astype(np.float64)
    ten_us = tflags == 1
    if ten_us.all():
        return np.divide(ticks, 1e5, out=ticks)
    if not ten_us.any():
        return np.divide(ticks, 1e9, out=ticks)
    return np.where(ten_us, ticks / 1e5, ticks / 1e9)


def _extract(buf: bytes, positions: np.ndarray, start_time: float) -> tuple[FrameColumns, list[int]]:
    """Decode the frame objects at ``positions`` (other object types are skipped).

    Also returns the positions of frame objects too small for their type (damage: skipped).
    """
    m = len(positions)
    short_at: list[int] = []
    if m == 0:
        return FrameColumns.empty(), short_at
    heads = _records(
        buf,
        positions,
        {"hsize": ("<u2", 4), "version": ("<u2", 6), "size": ("<u4", 8), "type": ("<u4", 12)},
        16,
    )
    types = heads["type"]
    versions = heads["version"]
    timestamp = np.zeros(m, np.float64)
    chan = np.zeros(m, np.int32)
    ident = np.zeros(m, np.uint32)
    flags = np.zeros(m, np.uint8)
    length = np.zeros(m, np.uint8)
    # Classic-only batches stay 8 bytes wide: allocating 64 per row would dominate the time.
    has_fd = bool(np.isin(types, (CAN_FD_MESSAGE, CAN_FD_MESSAGE_64)).any())
    payload = np.zeros((m, 64 if has_fd else 8), np.uint8)
    keep = np.zeros(m, bool)
    width = 8

    for version, body in BODY_OFFSET.items():
        common: _Fields = {"tflags": ("<u4", 16), "ts": ("<u8", 24)}
        groups: dict[int, tuple[_Fields, int]] = {
            CAN_MESSAGE: (
                {
                    "ch": ("<u2", body),
                    "mf": ("u1", body + 2),
                    "dlc": ("u1", body + 3),
                    "id": ("<u4", body + 4),
                    "data": (("u1", 8), body + 8),
                },
                body + 16,
            ),
            CAN_ERROR_EXT: (
                {
                    "ch": ("<u2", body),
                    "dlc": ("u1", body + 10),
                    "id": ("<u4", body + 16),
                    "data": (("u1", 8), body + 24),
                },
                body + 32,
            ),
            CAN_FD_MESSAGE: (
                {
                    "ch": ("<u2", body),
                    "mf": ("u1", body + 2),
                    "dlc": ("u1", body + 3),
                    "id": ("<u4", body + 4),
                    "fdf": ("u1", body + 13),
                    "valid": ("u1", body + 14),
                    "data": (("u1", 64), body + 20),
                },
                body + 84,
            ),
        }
        for obj_type, (fields, itemsize) in groups.items():
            match = types == obj_type
            if obj_type == CAN_MESSAGE:
                match |= types == CAN_MESSAGE2  # same leading layout
            selected = match & (versions == version)
            found = np.flatnonzero(selected)
            if not len(found):
                continue
            short = heads["size"][found] < itemsize
            if short.any():  # damage: skipped and reported, the rest of the batch is read
                short_at.extend(positions[found[short]].tolist())
                found = found[~short]
                if not len(found):
                    continue
            rec = _records(buf, positions[found], {**common, **fields}, itemsize)
            # The usual batch of one object type: no scatter needed.
            rows: np.ndarray | slice = slice(None) if len(found) == m else found
            timestamp[rows] = _seconds(rec["tflags"], rec["ts"]) + start_time
            chan[rows] = rec["ch"]
            chan[rows] -= 1
            ids = rec["id"]
            ident[rows] = ids & np.uint32(0x1FFFFFFF)
            fl = ((ids >> np.uint32(31)).astype(np.uint8)) * np.uint8(EXTENDED)
            if obj_type == CAN_ERROR_EXT:
                fl |= ERROR
                length[rows] = np.minimum(rec["dlc"], 8)
                payload[rows, :8] = rec["data"]
            elif obj_type == CAN_MESSAGE:
                mf = rec["mf"]
                remote = (mf & 0x80) != 0
                fl |= (mf & 1) * np.uint8(TX)
                length[rows] = np.minimum(rec["dlc"], 8)
                if remote.any():
                    fl |= remote.astype(np.uint8) * np.uint8(REMOTE)
                    payload[rows, :8] = np.where(remote[:, None], 0, rec["data"])
                else:
                    payload[rows, :8] = rec["data"]
            else:
                remote = (rec["mf"] & 0x80) != 0
                fdf = rec["fdf"]
                fl |= np.where(remote, REMOTE, 0).astype(np.uint8)
                fl |= np.where(rec["mf"] & 1, TX, 0).astype(np.uint8)
                fl |= np.where(fdf & 1, FD, 0).astype(np.uint8)
                fl |= np.where(fdf & 2, BRS, 0).astype(np.uint8)
                fl |= np.where(fdf & 4, ESI, 0).astype(np.uint8)
                valid = np.minimum(rec["valid"], 64)
                length[rows] = np.where(remote, DLC_TO_LEN[rec["dlc"] & 15], valid)
                data = np.where((np.arange(64) < valid[:, None]) & ~remote[:, None], rec["data"], 0)
                payload[rows] = data
                width = max(width, int(valid.max()))
            flags[rows] = fl
            keep[rows] = True

    # CAN_FD_MESSAGE_64 has a variable size: rare enough for a per-object loop.
    for row in np.flatnonzero(types == CAN_FD_MESSAGE_64).tolist():
        version = int(versions[row])
        if version not in BODY_OFFSET:
            continue
        pos = int(positions[row])
        body = pos + BODY_OFFSET[version]
        hsize, obj_size = int(heads["hsize"][row]), int(heads["size"][row])
        if obj_size < BODY_OFFSET[version] + 40:
            short_at.append(pos)
            continue
        tflags, raw = struct.unpack_from("<L4xQ", buf, pos + 16)
        ch, dlc, valid, _, can_id, _, fdf = struct.unpack_from("<BBBBLLL", buf, body)
        direction, ext_offset = struct.unpack_from("<BB", buf, body + 34)
        valid = min(valid, 64)
        avail = max(min(valid, (ext_offset or obj_size) - hsize - 40), 0)
        remote = bool(fdf & 0x10)
        timestamp[row] = (raw / 1e5 if tflags == 1 else raw / 1e9) + start_time
        chan[row] = ch - 1
        ident[row] = can_id & 0x1FFFFFFF
        flags[row] = (
            (EXTENDED if can_id & 0x80000000 else 0)
            | (REMOTE if remote else 0)
            | (FD if fdf & 0x1000 else 0)
            | (BRS if fdf & 0x2000 else 0)
            | (ESI if fdf & 0x4000 else 0)
            | (TX if direction else 0)
        )
        length[row] = DLC_TO_LEN[dlc & 15] if remote else valid
        if not remote:
            chunk = buf[body + 40 : body + 40 + avail]
            payload[row, : len(chunk)] = np.frombuffer(chunk, np.uint8)
            width = max(width, valid)
        keep[row] = True

    rows = slice(None) if keep.all() else np.flatnonzero(keep)
    chan = chan[rows]
    first = chan[0] if len(chan) else 0
    numbers: np.ndarray
    chan_index: np.ndarray
    if len(chan) and (chan == first).all():  # one channel: no sort needed
        numbers, chan_index = np.array([first]), np.zeros(len(chan), np.uint8)
    else:
        numbers, chan_index = np.unique(chan, return_inverse=True)
    if len(numbers) > 256:
        raise _BadObject(int(positions[0]), "more than 256 channels")
    frames = FrameColumns(
        timestamp=timestamp[rows],
        channel=chan_index.astype(np.uint8).ravel(),
        arbitration_id=ident[rows],
        flags=flags[rows],
        length=length[rows],
        payload=payload[rows, :width] if width < payload.shape[1] or not isinstance(rows, slice) else payload,
        channels=tuple(str(c) for c in numbers.tolist()),
    )
    return frames, short_at
