"""Reading ECU image files (Intel HEX, Motorola S-record, raw binary) into address-kept segments.

The format is told by the content, not the name: a package's target file is named by its hash.
"""

from __future__ import annotations

import bincopy  # type: ignore[import-untyped]

from workshop_app.core.update.image import Segment
from workshop_app.core.update.refusals import IMAGE_UNREADABLE, PackageError, Refusal

INTEL_HEX = "ihex"
S_RECORD = "srec"
BINARY = "binary"


def image_format(data: bytes) -> str:
    head = data.lstrip()[:2]
    if head[:1] == b":":
        return INTEL_HEX
    if len(head) == 2 and head[:1] == b"S" and head[1:2].isdigit():
        return S_RECORD
    return BINARY


def read_segments(data: bytes, where: str, address: int | None = None) -> tuple[Segment, ...]:
    """Segments of an image, in address order. ``address`` places a raw binary (required for one).

    Text formats are at least twice the size of their data, so a target's signed length also caps
    what it can expand to: no separate decompression limit is needed here.
    """
    kind = image_format(data)
    if kind == BINARY:
        if address is None:
            raise PackageError(
                Refusal(IMAGE_UNREADABLE, "a raw binary image needs its load address (--address)", where)
            )
        return (Segment(address, bytes(data)),) if data else ()
    binfile = bincopy.BinFile()
    try:
        text = data.decode("ascii")
        if kind == INTEL_HEX:
            binfile.add_ihex(text)
        else:
            binfile.add_srec(text)
    except (UnicodeDecodeError, bincopy.Error, ValueError) as exc:
        raise PackageError(Refusal(IMAGE_UNREADABLE, f"not a readable {kind} image: {exc}", where)) from exc
    segments = tuple(Segment(int(s.minimum_address), bytes(s.data)) for s in binfile.segments)
    if not segments:
        raise PackageError(Refusal(IMAGE_UNREADABLE, "the image holds no data", where))
    return tuple(sorted(segments, key=lambda s: s.address))
