"""ISOBMFF boxes (the container of HEIF/HEIC files): the walk over a run of boxes and the
bounds-checked integer read that the header reader and the EXIF locator share. Raises the
internal ``_Malformed``; never reads past the bounds it is given.
"""

from __future__ import annotations

from collections.abc import Iterator

from ledger.intake.photos.errors import _Malformed

__all__: list[str] = []


def _boxes(
    data: bytes | bytearray, start: int, end: int, where: str, *, open_ended: bool = False
) -> Iterator[tuple[bytes, int, int]]:
    """``(type, payload_start, box_end)`` of the boxes in ``data[start:end]``.

    With ``open_ended`` (a head of a longer file), a box may end past ``end``; it is
    yielded and the walk stops after it.
    """
    position = start
    while position < end:
        if position + 8 > end:
            if open_ended:
                return
            raise _Malformed(f"{end - position} stray bytes at the end of {where}")
        size = int.from_bytes(data[position : position + 4], "big")
        kind = bytes(data[position + 4 : position + 8])
        header = 8
        if size == 1:
            if position + 16 > end:
                if open_ended:
                    return
                raise _Malformed(f"box {kind!r} at byte {position} of {where} is truncated")
            size, header = int.from_bytes(data[position + 8 : position + 16], "big"), 16
        elif size == 0:
            if open_ended:
                yield kind, position + header, 1 << 62  # runs to the end of a file we do not have yet
                return
            size = end - position
        if size < header:
            raise _Malformed(f"box {kind!r} at byte {position} of {where} has size {size}")
        box_end = position + size
        if box_end > end and not open_ended:
            raise _Malformed(f"box {kind!r} at byte {position} runs past the end of {where}")
        yield kind, position + header, box_end
        if box_end > end:
            return
        position = box_end


def _uint(data: bytes, position: int, width: int, limit: int, what: str) -> tuple[int, int]:
    if width == 0:
        return 0, position
    if position + width > limit:
        raise _Malformed(f"{what} is truncated")
    return int.from_bytes(data[position : position + width], "big"), position + width
