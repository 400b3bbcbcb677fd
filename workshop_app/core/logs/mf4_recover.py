"""Check and finish MF4 recordings our recorder did not close (a crash, a kill, a power cut).

The recorder (:mod:`workshop_app.core.capture.mf4_writer`) keeps its file consistent after every
flush and marks it ``UnFinMF`` with our custom flag until it closes it. After a ``kill -9`` such a
file is readable as it is; after a power cut the operating system may have written the links
but not the blocks they point to. :func:`inspect_mf4` walks every data list chain and checks each
block against the file; :func:`repair_mf4` cuts a chain at its first bad block, sets the cycle
counts to the records really there and marks the file finished; :func:`readable_mf4` gives
readers a path they can trust without changing the user's file.

Only files of ours are repaired: another program's unfinished file follows that program's
rules (asammdf finalises the standard cases in a temporary copy when it opens them).
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from workshop_app.core.capture.mf4_writer import (
    BLOCK_HEADER,
    CG_CYCLES,
    CG_DATA_BYTES,
    CUSTOM_UNFINISHED,
    DG_DATA,
    DG_FIRST_CG,
    DG_NEXT,
    DL_NEXT,
    DZ_INFO,
    FINISHED_ID,
    HD_FIRST_DG,
    ID_CUSTOM_UNFIN_FLAGS,
    ID_FILE,
    ID_PROG,
    ID_UNFIN_FLAGS,
    PROGRAM_ID,
    U64,
    UNFINISHED_ID,
)
from workshop_app.core.errors import LogFileError

_DG_RECORD_ID = 56  # uint8 record id size inside a DG block (after its four links)
_MAX_BLOCKS = 10_000_000  # a bound on chain walking: a damaged link can form a loop


@dataclass(slots=True)
class GroupCheck:
    """One channel group's data chain as found in the file."""

    dg_address: int
    cg_address: int
    counted: int  # records the cycle counter announces
    found: int = 0  # whole records in the good part of the chain
    last_good_list: int = 0  # address of the last DL block whose data blocks are all good
    problem: str | None = None  # why the chain stops early (None: every block is good)


@dataclass(slots=True)
class Mf4Check:
    path: Path
    unfinished: bool  # the identification block says "UnFinMF"
    ours: bool  # written by our recorder (program id and custom flag)
    groups: list[GroupCheck] = field(default_factory=list)

    @property
    def frames(self) -> int:
        """Records a repaired file holds."""
        return sum(g.found for g in self.groups)

    @property
    def needs_repair(self) -> bool:
        """True when reading the file as it is would miss or misread records."""
        return any(g.problem is not None or g.found != g.counted for g in self.groups)

    @property
    def problems(self) -> list[str]:
        return [g.problem for g in self.groups if g.problem is not None]


@dataclass(frozen=True, slots=True)
class Mf4Repair:
    path: Path
    frames: int  # frames the finished file holds
    recovered: int  # of which the cycle counters did not announce before
    discarded_blocks: int  # chains cut at a damaged block
    backup: Path | None  # the file as it was, when anything but its marking changed
    already_finished: bool


def _read_at(fh: BinaryIO, address: int, size: int, file_size: int, what: str) -> bytes:
    if address <= 0 or address + size > file_size:
        raise _Broken(f"{what} at {address:#x} lies outside the file")
    data = os.pread(fh.fileno(), size, address)
    if len(data) != size:
        raise _Broken(f"{what} at {address:#x} is cut short")
    return data


class _Broken(Exception):
    """A block that is not what its link says (inside a chain: the chain ends before it)."""


def _is_mdf(fh: BinaryIO) -> bool:
    head = os.pread(fh.fileno(), 8, 0)
    return head.startswith(b"MDF") or head == UNFINISHED_ID


def _identification(fh: BinaryIO) -> tuple[bool, bool]:
    ident = os.pread(fh.fileno(), 64, 0)
    if len(ident) < 64:
        return False, False
    unfinished = ident[ID_FILE : ID_FILE + 8] == UNFINISHED_ID
    (custom,) = struct.unpack_from("<H", ident, ID_CUSTOM_UNFIN_FLAGS)
    ours = ident[ID_PROG : ID_PROG + 8] == PROGRAM_ID and bool(custom & CUSTOM_UNFINISHED)
    return unfinished, ours


def is_unfinished_recording(path: str | Path) -> bool:
    """True for an MF4 file our recorder was writing when it stopped without closing it."""
    try:
        with open(path, "rb") as fh:
            unfinished, ours = _identification(fh)
    except OSError:
        return False
    return unfinished and ours


def inspect_mf4(path: str | Path, *, verify_data: bool = False) -> Mf4Check:
    """Walk the data chains of ``path``. ``verify_data`` also inflates every compressed block.

    Raises LogFileError when the file's metadata (not its data chains) is unreadable.
    """
    p = Path(path)
    try:
        with p.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if not _is_mdf(fh):
                raise LogFileError(f"{p}: not an MF4 file (it does not start with an MDF identification)")
            unfinished, ours = _identification(fh)
            check = Mf4Check(p, unfinished, ours)
            if not ours:
                return check
            try:
                (dg,) = U64.unpack(_read_at(fh, HD_FIRST_DG, 8, size, "the header's data group link"))
                seen = 0
                while dg:
                    seen += 1
                    if seen > 1000:
                        raise _Broken("the data groups form a loop")
                    block = _read_at(fh, dg, _DG_RECORD_ID + 1, size, "data group")
                    if block[:4] != b"##DG" or block[_DG_RECORD_ID]:
                        raise _Broken(f"the data group at {dg:#x} is not one this program writes")
                    (next_dg,) = U64.unpack_from(block, DG_NEXT)
                    (cg,) = U64.unpack_from(block, DG_FIRST_CG)
                    (first,) = U64.unpack_from(block, DG_DATA)
                    cg_block = _read_at(fh, cg, CG_DATA_BYTES + 4, size, "channel group")
                    if cg_block[:4] != b"##CG":
                        raise _Broken(f"the channel group at {cg:#x} is damaged")
                    (counted,) = U64.unpack_from(cg_block, CG_CYCLES)
                    (record,) = struct.unpack_from("<I", cg_block, CG_DATA_BYTES)
                    group = GroupCheck(dg, cg, counted)
                    _walk(fh, first, record, size, group, verify_data)
                    check.groups.append(group)
                    dg = next_dg
            except _Broken as exc:
                raise LogFileError(f"{p}: cannot recover this MF4 recording ({exc})") from exc
            return check
    except OSError as exc:
        raise LogFileError(f"{p}: cannot read ({exc.strerror or exc})") from exc


def _walk(fh: BinaryIO, address: int, record: int, size: int, group: GroupCheck, verify: bool) -> None:
    """Count the whole records of a data list chain, stopping at its first bad block."""
    if record <= 0:
        group.problem = "records of no size"
        return
    walked = 0
    while address:
        walked += 1
        try:
            if walked > _MAX_BLOCKS:
                raise _Broken("the data lists form a loop")
            header = _read_at(fh, address, BLOCK_HEADER.size, size, "data list")
            kind, length, links = BLOCK_HEADER.unpack(header)
            if kind != b"##DL" or links < 2 or length < BLOCK_HEADER.size + 8 * links:
                raise _Broken(f"the data list at {address:#x} is damaged")
            body = _read_at(fh, address, length, size, "data list")
            pointers = struct.unpack_from(f"<{links}Q", body, DL_NEXT)
            count = 0
            for data in pointers[1:]:
                count += _data_records(fh, data, record, size, verify)
        except _Broken as exc:
            group.problem = str(exc)
            return
        group.found += count
        group.last_good_list = address
        address = pointers[0]


def _data_records(fh: BinaryIO, address: int, record: int, size: int, verify: bool) -> int:
    header = _read_at(fh, address, BLOCK_HEADER.size, size, "data block")
    kind, length, _links = BLOCK_HEADER.unpack(header)
    if kind == b"##DT":
        _read_at(fh, address, length, size, "data block")  # the whole block is in the file
        original = length - BLOCK_HEADER.size
    elif kind == b"##DZ":
        info = _read_at(fh, address + BLOCK_HEADER.size, DZ_INFO.size, size, "compressed block")
        _org_type, _zip, _param, original, packed = DZ_INFO.unpack(info)
        start = address + BLOCK_HEADER.size + DZ_INFO.size
        if start + packed > size or BLOCK_HEADER.size + DZ_INFO.size + packed > length:
            raise _Broken(f"the compressed block at {address:#x} is cut short")
        if verify:
            raw = _read_at(fh, start, packed, size, "compressed block")
            try:
                inflated = zlib.decompress(raw)
            except zlib.error as exc:
                raise _Broken(f"the compressed block at {address:#x} is damaged ({exc})") from exc
            if len(inflated) != original:
                raise _Broken(f"the compressed block at {address:#x} has the wrong length")
    else:
        raise _Broken(f"the data block at {address:#x} is damaged")
    if original % record:
        raise _Broken(f"the data block at {address:#x} holds part of a record")
    records: int = original // record
    return records


def repair_mf4(path: str | Path, *, backup: bool = True) -> Mf4Repair:
    """Finish an unfinished recording of ours in place (a few fields of metadata change).

    When the data chains need more than the finishing mark (a cut chain, corrected counts),
    the file as it was is copied first to ``NAME.before-repair.mf4`` unless ``backup`` is False.
    Raises LogFileError for a file that is not ours or cannot be read.
    """
    p = Path(path)
    check = inspect_mf4(p, verify_data=True)
    if not check.ours:
        if check.unfinished:
            raise LogFileError(
                f"{p}: an unfinished MF4 file from another program; only recordings of this program are repaired"
            )
        return Mf4Repair(p, -1, 0, 0, None, already_finished=True)
    if not check.unfinished:
        return Mf4Repair(p, check.frames, 0, 0, None, already_finished=True)
    saved: Path | None = None
    if check.needs_repair and backup:
        saved = p.with_name(p.stem + ".before-repair" + p.suffix)
        try:
            shutil.copy2(p, saved)
        except OSError as exc:
            raise LogFileError(f"{p}: cannot keep a copy as {saved} ({exc.strerror or exc})") from exc
    _finish(p, check)
    recovered = sum(max(0, g.found - g.counted) for g in check.groups)
    cut = sum(g.problem is not None for g in check.groups)
    return Mf4Repair(p, check.frames, recovered, cut, saved, already_finished=False)


def _finish(path: Path, check: Mf4Check) -> None:
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError as exc:
        raise LogFileError(f"{path}: cannot repair ({exc.strerror or exc})") from exc
    try:
        for group in check.groups:
            if group.problem is not None:
                link = group.last_good_list + DL_NEXT if group.last_good_list else group.dg_address + DG_DATA
                os.pwrite(fd, U64.pack(0), link)
            os.pwrite(fd, U64.pack(group.found), group.cg_address + CG_CYCLES)
        os.fsync(fd)
        # Marked finished last: a repair cut short is simply done again.
        os.pwrite(fd, struct.pack("<HH", 0, 0), ID_UNFIN_FLAGS)
        os.pwrite(fd, FINISHED_ID, ID_FILE)
        os.fsync(fd)
    except OSError as exc:
        raise LogFileError(f"{path}: cannot repair ({exc.strerror or exc})") from exc
    finally:
        os.close(fd)


@contextmanager
def readable_mf4(path: str | Path) -> Iterator[Path]:
    """``path`` itself, or a finished temporary copy when it is an unfinished recording of ours.

    Reading never changes the user's file (it may still be being recorded, or sit on read-only
    media): an unfinished recording is copied, the copy finished (and cut back where a power cut
    damaged it) and read instead, then deleted. The copy goes next to the file, named
    ``NAME.recovered-….mf4`` (a readable MF4 if a crash leaves it behind), or to the temporary
    folder when that directory is read-only. ``workshop repair`` finishes the file itself.
    """
    p = Path(path)
    if not is_unfinished_recording(p):
        yield p
        return
    try:
        fd, name = tempfile.mkstemp(prefix=f"{p.stem}.recovered-", suffix=".mf4", dir=p.parent)
    except OSError:
        fd, name = tempfile.mkstemp(prefix=f"{p.stem}.recovered-", suffix=".mf4")
    os.close(fd)
    copy = Path(name)
    try:
        try:
            shutil.copyfile(p, copy)
        except OSError as exc:
            raise LogFileError(
                f"{p}: cannot copy the unfinished recording to read it ({exc.strerror or exc})"
            ) from exc
        _finish(copy, inspect_mf4(copy))
        yield copy
    finally:
        copy.unlink(missing_ok=True)
