"""Where the EXIF data lies in each container, found from the head of the file.

- JPEG: the ``APP1`` segment starting ``Exif\\0\\0`` among the segments before the first
  ``SOS`` (the Exif standard puts it right after ``SOI``, or after a JFIF ``APP0``); the
  segment headers must lie in the head, the segment itself may run past it.
- PNG: the ``eXIf`` chunk, if its chunk header lies in the head (an ``eXIf`` chunk after a
  large ``IDAT`` run beyond 256 KiB is not read; phone cameras do not write PNG).
- HEIC: the ``meta`` box (which must lie in the first 1 MiB; it is a few KiB in phone
  photos) names the ``Exif`` item (preferring the one whose ``cdsc`` reference points at
  the primary item) and ``iloc`` gives its extents, which may be anywhere in the file,
  usually in ``mdat`` after the image data. Extents in ``idat`` are read too.

A locator returns a ``_Location``: absolute extents in the file, and how to get TIFF data
out of the bytes found there. The EXIF tap (``ledger.intake.photos.exif``) copies those
bytes as the stream passes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ledger.intake.photos.errors import _Malformed
from ledger.intake.photos.isobmff import _boxes, _uint
from ledger.intake.photos.jpeg import _jpeg_segments

__all__: list[str] = []


class _Location(NamedTuple):
    """Where the EXIF payload lies: absolute ``[start, end)`` extents, and how to get TIFF out of it."""

    extents: list[tuple[int, int]]
    unwrap: Callable[[bytes], bytes]


# A locator looks at the head of a file (``complete`` when the head is the whole file) and
# returns the location of the EXIF payload, None when there is none, or raises _Malformed.
_Locator = Callable[[bytes, bool], "_Location | None"]


def _container_of(media_type: str) -> str:
    return {"image/jpeg": "jpeg", "image/png": "png", "image/heic": "isobmff"}[media_type]


def _locate_jpeg(head: bytes, complete: bool) -> _Location | None:
    """The first ``APP1`` segment starting ``Exif\\0\\0`` before ``SOS``."""
    for marker, position, length in _jpeg_segments(head):
        if marker in (0xDA, 0xD9):  # start of scan, end of image: no EXIF in the header
            return None
        if marker == 0xE1 and length >= 8:
            if position + 10 > len(head):
                if complete:
                    return None
                raise _Malformed(f"the JPEG APP1 segment at byte {position} starts at the end of the bytes read")
            if head[position + 4 : position + 10] == b"Exif\x00\x00":
                return _Location([(position + 10, position + 2 + length)], _identity)
    if complete:
        return None  # a truncated JPEG: no EXIF to read
    raise _Malformed(f"the JPEG header segments run past the first {len(head)} bytes, which is all that is searched for EXIF")


def _locate_png(head: bytes, complete: bool) -> _Location | None:
    """The ``eXIf`` chunk, if its header is in ``head``."""
    position = 8
    while position + 8 <= len(head):
        length = int.from_bytes(head[position : position + 4], "big")
        kind = head[position + 4 : position + 8]
        if length > 0x7FFFFFFF:
            raise _Malformed(f"PNG chunk {kind!r} at byte {position} has length {length}")
        if kind == b"eXIf":
            return _Location([(position + 8, position + 8 + length)], _strip_exif_prefix)
        if kind == b"IEND":
            return None
        position += 12 + length
    return None


def _locate_isobmff(head: bytes, complete: bool) -> _Location | None:
    """The ``Exif`` item of a HEIF file, through its top-level ``meta`` box."""
    for kind, start, end in _boxes(head, 0, len(head), "the file", open_ended=not complete):
        if kind == b"meta":
            if end > len(head):
                if complete:
                    raise _Malformed(f"the 'meta' box at byte {start} runs past the end of the file")
                raise _Malformed(f"the 'meta' box at byte {start} does not end within the first {len(head)} bytes")
            return _exif_item_location(head, start, end)
        if end > len(head):
            break
    if complete:
        raise _Malformed("the HEIF file has no 'meta' box")
    raise _Malformed(f"no 'meta' box within the first {len(head)} bytes")


def _identity(payload: bytes) -> bytes:
    return payload


def _strip_exif_prefix(payload: bytes) -> bytes:
    """PNG ``eXIf`` holds TIFF data; some writers put a JPEG-style ``Exif\\0\\0`` before it."""
    return payload[6:] if payload.startswith(b"Exif\x00\x00") else payload


def _unwrap_heif_exif(payload: bytes) -> bytes:
    """A HEIF Exif item: ``u32 exif_tiff_header_offset``, then the TIFF header that many bytes on."""
    if len(payload) < 4:
        raise _Malformed(f"the HEIF Exif item has {len(payload)} bytes, fewer than its 4-byte header")
    skip = int.from_bytes(payload[:4], "big")
    if 4 + skip >= len(payload):
        raise _Malformed(f"the HEIF Exif item says its TIFF header is {skip} bytes on, past its end ({len(payload)} bytes)")
    return payload[4 + skip :]


_LOCATORS: dict[str, _Locator] = {"jpeg": _locate_jpeg, "png": _locate_png, "isobmff": _locate_isobmff}


def _exif_item_location(data: bytes, meta_start: int, meta_end: int) -> _Location | None:
    """Read ``pitm``, ``iinf``, ``iref``, ``iloc`` and ``idat`` of the ``meta`` box."""
    children: dict[bytes, tuple[int, int]] = {}
    for kind, start, end in _boxes(data, meta_start + 4, meta_end, "the 'meta' box"):  # +4: FullBox version, flags
        children.setdefault(kind, (start, end))
    if b"iinf" not in children or b"iloc" not in children:
        raise _Malformed("the HEIF 'meta' box lacks its 'iinf' or 'iloc' box")

    iinf_start, iinf_end = children[b"iinf"]
    exif_items = _exif_item_ids(data, iinf_start, iinf_end)
    if not exif_items:
        return None
    chosen = exif_items[0]
    if b"pitm" in children and b"iref" in children:
        start, end = children[b"pitm"]
        version = data[start]
        primary, _ = _uint(data, start + 4, 2 if version == 0 else 4, end, "the 'pitm' box")
        iref_start, iref_end = children[b"iref"]
        described = _items_describing(data, iref_start, iref_end, primary)
        chosen = next((item for item in exif_items if item in described), chosen)

    iloc_start, iloc_end = children[b"iloc"]
    method, extents = _iloc_extents(data, iloc_start, iloc_end, chosen)
    if method == 1:
        if b"idat" not in children:
            raise _Malformed(f"the Exif item {chosen} is in 'idat', but the 'meta' box has none")
        idat_start, idat_end = children[b"idat"]
        extents = [(idat_start + start, idat_start + end) for start, end in extents]
        if any(end > idat_end for _, end in extents):
            raise _Malformed(f"the Exif item {chosen} runs past the end of 'idat'")
    elif method != 0:
        raise _Malformed(f"the Exif item {chosen} uses iloc construction method {method}, which is not supported")
    return _Location(extents, _unwrap_heif_exif)


def _exif_item_ids(data: bytes, start: int, end: int) -> list[int]:
    version = data[start]
    position = start + 4 + (2 if version == 0 else 4)  # FullBox header, entry_count (the boxes are walked instead)
    found = []
    for kind, entry_start, entry_end in _boxes(data, position, end, "the 'iinf' box"):
        if kind != b"infe":
            continue
        entry_version = data[entry_start]
        if entry_version < 2:
            continue  # item_type came with version 2; older entries cannot be Exif items
        cursor = entry_start + 4
        item_id, cursor = _uint(data, cursor, 2 if entry_version == 2 else 4, entry_end, "an 'infe' box")
        cursor += 2  # item_protection_index
        if cursor + 4 > entry_end:
            raise _Malformed("an 'infe' box is truncated")
        if data[cursor : cursor + 4] == b"Exif":
            found.append(item_id)
    return found


def _items_describing(data: bytes, start: int, end: int, primary: int) -> set[int]:
    """Items with a ``cdsc`` (content describes) reference to ``primary``."""
    width = 2 if data[start] == 0 else 4
    described: set[int] = set()
    for kind, position, box_end in _boxes(data, start + 4, end, "the 'iref' box"):
        source, position = _uint(data, position, width, box_end, "an 'iref' entry")
        count, position = _uint(data, position, 2, box_end, "an 'iref' entry")
        targets = []
        for _ in range(count):
            target, position = _uint(data, position, width, box_end, "an 'iref' entry")
            targets.append(target)
        if kind == b"cdsc" and primary in targets:
            described.add(source)
    return described


def _iloc_extents(data: bytes, start: int, end: int, wanted: int) -> tuple[int, list[tuple[int, int]]]:
    """``(construction_method, [(start, end), …])`` of item ``wanted`` in the ``iloc`` box."""
    what = "the 'iloc' box"
    version = data[start]
    if version > 2:
        raise _Malformed(f"'iloc' version {version} is not known")
    position = start + 4
    sizes, position = _uint(data, position, 2, end, what)
    offset_size, length_size, base_offset_size = sizes >> 12, (sizes >> 8) & 0xF, (sizes >> 4) & 0xF
    index_size = sizes & 0xF if version in (1, 2) else 0
    for width in (offset_size, length_size, base_offset_size, index_size):
        if width not in (0, 4, 8):
            raise _Malformed(f"'iloc' field width {width} is not 0, 4 or 8")
    item_count, position = _uint(data, position, 2 if version < 2 else 4, end, what)
    for _ in range(item_count):
        item_id, position = _uint(data, position, 2 if version < 2 else 4, end, what)
        method = 0
        if version in (1, 2):
            method_field, position = _uint(data, position, 2, end, what)
            method = method_field & 0xF
        reference, position = _uint(data, position, 2, end, what)
        base, position = _uint(data, position, base_offset_size, end, what)
        extent_count, position = _uint(data, position, 2, end, what)
        extents = []
        for _ in range(extent_count):
            _, position = _uint(data, position, index_size, end, what)
            offset, position = _uint(data, position, offset_size, end, what)
            length, position = _uint(data, position, length_size, end, what)
            extents.append((base + offset, base + offset + length, length))
        if item_id != wanted:
            continue
        if reference != 0:
            raise _Malformed(f"the Exif item {item_id} lives in another file (data_reference_index {reference})")
        if not extents:
            raise _Malformed(f"the Exif item {item_id} has no extents")
        if any(length == 0 for _, _, length in extents):
            raise _Malformed(f"the Exif item {item_id} has an extent of unstated length")
        return method, [(low, high) for low, high, _ in extents]
    raise _Malformed(f"the Exif item {wanted} is not in 'iloc'")
