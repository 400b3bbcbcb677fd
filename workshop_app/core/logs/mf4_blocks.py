"""MF4 bus-logging records straight from the data blocks, for the common fixed layout.

asammdf reads a channel group's data blocks one after the other and builds each member channel
through its generic machinery; for the plain layout loggers and python-can write (one sorted
group, fixed-length records, DataBytes inline, no conversions) that is most of the reading time.
Here the DZ blocks are inflated on worker threads (zlib releases the GIL), a transposed block is
read as the record matrix it is without copying it back, and each member channel is a numpy view
at its byte offset. Anything else — VLSD data, conversions, invalidation bits, other compressions
— returns None and the caller uses asammdf.
"""

from __future__ import annotations

import mmap
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

DT, DEFLATE, TRANSPOSED = 0, 1, 2  # asammdf's block types for plain, zipped, zipped+transposed
_INT_TYPES = {0: "<u", 2: "<i"}  # MDF4 data types: unsigned / signed little-endian integers
_FLOAT_LE = 4
_BYTES = 10
_LOOK_AHEAD = 4

Samples = dict[str, np.ndarray]


def _plan(
    group: Any, fields: list[str]
) -> tuple[int, tuple[int, int], dict[str, tuple[str, int, int, int]]] | None:
    """(record size, (master offset, bytes), field → (kind, offset, bytes, bit shift/len)) or None."""
    cg = group.channel_group
    if group.data_group.record_id_len or cg.invalidation_bytes_nr or not group.data_blocks:
        return None
    size = cg.samples_byte_nr
    master = None
    layout: dict[str, tuple[str, int, int, int]] = {}
    wanted = set(fields)
    for ch in group.channels:
        if ch.channel_type == 2:  # the time master
            if (
                ch.conversion is not None
                or ch.data_type != _FLOAT_LE
                or ch.bit_count not in (32, 64)
                or ch.bit_offset
            ):
                return None
            master = (ch.byte_offset, ch.bit_count // 8)
            continue
        if ch.name not in wanted:
            continue
        if ch.channel_type != 0 or ch.conversion is not None:
            return None
        if ch.data_type == _BYTES and not ch.bit_offset and ch.bit_count % 8 == 0:
            layout[ch.name] = ("bytes", ch.byte_offset, ch.bit_count // 8, 0)
        elif ch.data_type in _INT_TYPES and ch.bit_count <= 32:
            span = (ch.bit_offset + ch.bit_count + 7) // 8
            width = next((w for w in (1, 2, 4, 8) if w >= span), 0)
            if not width or ch.byte_offset + width > size:
                return None
            kind = "int" if ch.data_type == 2 else "uint"
            layout[ch.name] = (kind, ch.byte_offset, width, ch.bit_offset << 8 | ch.bit_count)
        else:
            return None
    if master is None or set(layout) != wanted:
        return None
    if any(b.block_type not in (DT, DEFLATE, TRANSPOSED) for b in group.data_blocks):
        return None
    return size, master, layout


def _inflate(view: memoryview, block: Any, size: int) -> np.ndarray | bytes:
    """A block's bytes; a transposed block whose length is whole records comes back as the
    (records, size) matrix view it really is."""
    raw = view[
        block.address : block.address + (block.compressed_size if block.block_type else block.original_size)
    ]
    if block.block_type == DT:
        return bytes(raw)
    data = zlib.decompress(raw)
    if block.block_type == TRANSPOSED:
        cols = block.param
        rows = len(data) // cols
        matrix = np.frombuffer(data, np.uint8, rows * cols).reshape(cols, rows).T
        if rows * cols == len(data) and cols == size:
            return matrix  # records × bytes, a strided view: no copy
        return np.ascontiguousarray(matrix).tobytes() + data[rows * cols :]
    return data


def _columns(records: np.ndarray, layout: dict[str, tuple[str, int, int, int]]) -> Samples:
    out: Samples = {}
    for name, (kind, offset, width, bits) in layout.items():
        if kind == "bytes":
            out[name] = records[:, offset : offset + width]
            continue
        raw = np.ascontiguousarray(records[:, offset : offset + width]).view(f"<u{width}")[:, 0]
        shift, count = bits >> 8, bits & 0xFF
        if shift or count != 8 * width:
            raw = (raw >> raw.dtype.type(shift)) & raw.dtype.type((1 << count) - 1)
        if kind == "int" and count:
            signed = raw.astype(np.int64)
            signed[signed >= 1 << (count - 1)] -= 1 << count
            out[name] = signed
        else:
            out[name] = raw
    return out


def record_fragments(
    path: Path, group: Any, fields: list[str]
) -> Iterator[tuple[Samples, np.ndarray]] | None:
    """Member channels and time stamps of ``group``, block by block; None when the layout is
    not the plain one this reader handles."""
    plan = _plan(group, fields)
    if plan is None:
        return None
    return _read(path, group, plan)


def _read(
    path: Path, group: Any, plan: tuple[int, tuple[int, int], dict[str, tuple[str, int, int, int]]]
) -> Iterator[tuple[Samples, np.ndarray]]:
    size, (t_offset, t_width), layout = plan
    remaining = int(group.channel_group.cycles_nr)
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        view = memoryview(mm)
        try:
            with ThreadPoolExecutor(max_workers=2, thread_name_prefix="mf4-inflate") as pool:
                blocks = deque(group.data_blocks)
                running: deque[Future[np.ndarray | bytes]] = deque()
                tail = b""
                while (blocks or running) and remaining > 0:
                    while blocks and len(running) < _LOOK_AHEAD:
                        running.append(pool.submit(_inflate, view, blocks.popleft(), size))
                    data = running.popleft().result()
                    if isinstance(data, np.ndarray) and not tail:
                        records = data
                    else:
                        buf = tail + (
                            data if isinstance(data, bytes) else np.ascontiguousarray(data).tobytes()
                        )
                        whole = len(buf) // size
                        records = np.frombuffer(buf, np.uint8, whole * size).reshape(whole, size)
                        tail = buf[whole * size :]
                    records = records[:remaining]
                    remaining -= len(records)
                    if not len(records):
                        continue
                    stamps = np.ascontiguousarray(records[:, t_offset : t_offset + t_width]).view(
                        "<f8" if t_width == 8 else "<f4"
                    )[:, 0]
                    # The records live in inflated (or copied) blocks, never in the mapped file.
                    yield _columns(records, layout), stamps.astype(np.float64)
        finally:
            view.release()
