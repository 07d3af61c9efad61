"""Image headers: the content parses as the type it was sniffed as, and its declared size
in pixels, read without decoding a pixel.

- JPEG: ``SOI``, then segments up to a frame header (``SOF0``–``SOF15``), before ``SOS``;
- PNG: the signature and an ``IHDR`` chunk of 13 bytes first;
- HEIC/HEIF: top-level boxes ending in a ``meta`` box (the size from its ``ispe`` properties).

A small file declaring 30,000 x 30,000 pixels is a decompression bomb: it is refused here,
from its header (:class:`PhotoTooManyPixels`), before anything is stored or decoded.
"""

from __future__ import annotations

from typing import NamedTuple

from ledger.intake.photos.errors import MalformedPhoto, PhotoTooManyPixels, _Malformed
from ledger.intake.photos.isobmff import _boxes
from ledger.intake.photos.jpeg import _jpeg_segments
from ledger.intake.photos.limits import HEADER_BYTES, MIN_PHOTO_SIDE

__all__ = ["PhotoHeader", "read_header"]


class PhotoHeader(NamedTuple):
    """What an image header declares: its size in pixels (None: a HEIF file without ``ispe``)."""

    width: int | None
    height: int | None


_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOF0..SOF15 (not DHT, JPG, DAC)


def read_header(media_type: str, data: bytes | bytearray, *, complete: bool) -> PhotoHeader | None:
    """The header of a file of ``media_type`` (as :func:`detect_media_type` decided) from its
    first bytes, without decoding any pixels; ``complete`` says ``data`` is the whole file.

    - JPEG: ``SOI``, then segments up to a frame header (``SOF0``–``SOF15``), before ``SOS``;
    - PNG: the signature and an ``IHDR`` chunk of 13 bytes first;
    - HEIC/HEIF: top-level boxes ending in a ``meta`` box (the image's size from its ``ispe``
      properties, the largest if there are several: a grid's is the whole image's).

    Returns None when more bytes are needed; raises :class:`MalformedPhoto` when the bytes
    cannot be such a file, or when the header does not end within ``HEADER_BYTES``.
    """
    try:
        if media_type == "image/jpeg":
            found = _jpeg_header(data, complete)
        elif media_type == "image/png":
            found = _png_header(data, complete)
        elif media_type == "image/heic":
            found = _heif_header(data, complete)
        else:
            raise MalformedPhoto(f"no header reader for {media_type}")
    except _Malformed as exc:
        raise MalformedPhoto(f"the upload is not a readable {_TYPE_NAMES.get(media_type, media_type)}: {exc}") from None
    if found is None and (complete or len(data) >= HEADER_BYTES):
        name = _TYPE_NAMES.get(media_type, media_type)
        where = "in the file" if complete else f"within its first {HEADER_BYTES} bytes"
        raise MalformedPhoto(f"the upload is not a readable {name}: its {_HEADER_NAMES[media_type]} is not {where}")
    if (
        found is not None
        and found.width is not None
        and found.height is not None
        and min(found.width, found.height) < MIN_PHOTO_SIDE
    ):
        raise MalformedPhoto(
            f"the image is {found.width} x {found.height} pixels, too small to be a photo "
            f"(at least {MIN_PHOTO_SIDE} on each side)"
        )
    return found


_TYPE_NAMES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/heic": "HEIC/HEIF file"}


_HEADER_NAMES = {"image/jpeg": "frame header (SOF)", "image/png": "IHDR header", "image/heic": "'meta' box"}


def _jpeg_header(data: bytes | bytearray, complete: bool) -> PhotoHeader | None:
    for marker, position, length in _jpeg_segments(
        data,
        stray="expected a marker at byte {position}, found 0x{found:02X}, before the frame header",
        bad_length="segment 0xFF{marker:02X} at byte {position} has length {length}",
    ):
        if marker in (0xDA, 0xD9):
            raise _Malformed(
                f"its {'image data (SOS)' if marker == 0xDA else 'end (EOI)'} at byte {position} "
                "comes before any frame header (SOF)"
            )
        if marker in _JPEG_FRAMES:
            if position + 9 > HEADER_BYTES:
                raise _Malformed(f"its frame header at byte {position} is not within the first {HEADER_BYTES} bytes")
            if position + 9 > len(data):
                if complete:
                    raise _Malformed(f"its frame header at byte {position} is cut off")
                return None
            if length < 8:
                raise _Malformed(f"its frame header at byte {position} has length {length}, not at least 8")
            height = int.from_bytes(data[position + 5 : position + 7], "big")
            width = int.from_bytes(data[position + 7 : position + 9], "big")
            if not width or not height:
                raise _Malformed(f"its frame header declares {width} x {height} pixels")
            return PhotoHeader(width, height)
    if complete:
        raise _Malformed(f"it ends at byte {len(data)}, before its frame header (SOF)")
    return None


def _png_header(data: bytes | bytearray, complete: bool) -> PhotoHeader | None:
    if len(data) < 33:
        if complete:
            raise _Malformed(f"{len(data)} bytes are too few for the signature and IHDR chunk (33)")
        return None
    if data[8:16] != b"\x00\x00\x00\x0dIHDR":
        raise _Malformed(
            f"its first chunk is {bytes(data[12:16])!r} of {int.from_bytes(data[8:12], 'big')} bytes, not IHDR of 13 bytes"
        )
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if not 0 < width < 2**31 or not 0 < height < 2**31:
        raise _Malformed(f"its IHDR declares {width} x {height} pixels")
    return PhotoHeader(width, height)


def _heif_header(data: bytes | bytearray, complete: bool) -> PhotoHeader | None:
    for kind, start, end in _boxes(data, 0, len(data), "the file", open_ended=not complete):
        if kind == b"meta" and end > HEADER_BYTES:
            raise _Malformed(
                f"its 'meta' box (at byte {start - 8}) does not end within the first {HEADER_BYTES} bytes; "
                "phones write it right after 'ftyp'"
            )
        if end > len(data):
            return None  # the box (the 'meta' box or one before it) is not all here yet
        if kind == b"meta":
            return _heif_size(data, start, end)
    if complete:
        raise _Malformed("it has no 'meta' box (a HEIF image is described there)")
    return None


def _heif_size(data: bytes | bytearray, meta_start: int, meta_end: int) -> PhotoHeader:
    """The largest ``ispe`` (image spatial extents) in ``meta/iprp/ipco``."""
    largest: tuple[int, int] | None = None
    for kind, start, end in _boxes(data, meta_start + 4, meta_end, "the 'meta' box"):
        if kind != b"iprp":
            continue
        for inner, inner_start, inner_end in _boxes(data, start, end, "the 'iprp' box"):
            if inner != b"ipco":
                continue
            for prop, prop_start, prop_end in _boxes(data, inner_start, inner_end, "the 'ipco' box"):
                if prop != b"ispe":
                    continue
                if prop_end - prop_start < 12:
                    raise _Malformed(f"its 'ispe' box at byte {prop_start} is truncated")
                width = int.from_bytes(data[prop_start + 4 : prop_start + 8], "big")
                height = int.from_bytes(data[prop_start + 8 : prop_start + 12], "big")
                if largest is None or width * height > largest[0] * largest[1]:
                    largest = (width, height)
    return PhotoHeader(*largest) if largest is not None else PhotoHeader(None, None)


def _check_dimensions(header: PhotoHeader, *, max_pixels: int, max_side: int) -> None:
    if header.width is None or header.height is None:
        return
    if header.width > max_side or header.height > max_side or header.width * header.height > max_pixels:
        raise PhotoTooManyPixels(width=header.width, height=header.height, max_pixels=max_pixels, max_side=max_side)
