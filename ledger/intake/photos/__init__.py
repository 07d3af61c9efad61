"""Photo intake: stream an upload into the content store, decide its type from its bytes,
and read the time and place the camera recorded in its EXIF.

Volunteers photograph the tally board and the signed count form. The photo is evidence, so
its bytes are stored exactly as received (never re-encoded, never stripped of metadata) and
it is named by the UnixFS CID ``ipfs add --cid-version=1`` would give it, computed by the
content store while the upload streams through.

What :func:`ingest_photo` does, in order
========================================

1. **Sniff.** It reads pieces until it holds the first ``SNIFF_BYTES`` (4 KiB) or the stream
   ends, and decides the type from those bytes alone (a file name is never an input):

   - ``image/jpeg``: ``FF D8 FF``;
   - ``image/png``: ``89 50 4E 47 0D 0A 1A 0A``;
   - ``image/heic``: an ISOBMFF ``ftyp`` box whose major or compatible brands include an
     HEVC brand (``heic heix heim heis hevc hevx hevm hevs``) or, failing that, the generic
     HEIF brands ``mif1``/``msf1`` without an AVIF brand. AVIF (``avif``/``avis``), MP4 and
     QuickTime files are refused by name.

   Anything else raises :class:`UnsupportedPhotoType` naming what was found; an empty
   upload raises it with "an empty file". Nothing has been stored at that point.
1b. **Header.** It reads on (holding the pieces, at most ``HEADER_BYTES`` = 1 MiB) until the
   image header is whole, and checks it without decoding a pixel (:func:`read_header`):
   a JPEG's frame header (``SOF``) before its image data, a PNG's ``IHDR``, a HEIF file's
   ``meta`` box (its size from ``ispe``). Content that does not parse, fewer than
   ``MIN_PHOTO_BYTES`` or ``MIN_PHOTO_SIDE`` pixels raise :class:`MalformedPhoto`; more than
   ``max_pixels`` or a side over ``max_side`` raise :class:`PhotoTooManyPixels` (a small
   file declaring 30,000 x 30,000 pixels is a decompression bomb). EXIF, XMP or IPTC tags
   naming a person or a device (``IDENTIFYING_EXIF_TAGS``) found in those bytes raise
   :class:`IdentifyingMetadata`. Nothing has been stored at that point either.
2. **Stream.** The pieces go on to ``content.add_file`` one at a time. Each piece is counted
   first: the piece that takes the total past ``max_bytes`` raises :class:`PhotoTooLarge`
   and is neither stored nor followed by another read. Blocks of the earlier pieces may
   already be in the store; they are unreferenced (the local store never collects garbage;
   a Kubo node collects them unless they were pinned).
3. **Metadata.** While streaming, a tap keeps the head of the file (``HEAD_BYTES`` = 256 KiB
   for JPEG and PNG, ``HEIF_HEAD_BYTES`` = 1 MiB for HEIC) and, once the head is complete,
   finds where the EXIF data lies and copies exactly those bytes as they pass, wherever
   they are in the file (at most ``MAX_EXIF_BYTES`` = 1 MiB):

   - JPEG: the ``APP1`` segment starting ``Exif\\0\\0`` among the segments before the first
     ``SOS`` (the Exif standard puts it right after ``SOI``, or after a JFIF ``APP0``); the
     segment headers must lie in the head, the segment itself may run past it.
   - PNG: the ``eXIf`` chunk, if its chunk header lies in the head (an ``eXIf`` chunk after
     a large ``IDAT`` run beyond 256 KiB is not read; phone cameras do not write PNG).
   - HEIC: the ``meta`` box (which must lie in the first 1 MiB; it is a few KiB in phone
     photos) names the ``Exif`` item (preferring the one whose ``cdsc`` reference points
     at the primary item) and ``iloc`` gives its extents, which may be anywhere in the
     file, usually in ``mdat`` after the image data. Extents in ``idat`` are read too.

   While it streams, memory is therefore bounded by the caller's piece size, the content
   store's one partial 256 KiB chunk, the header, the head and the EXIF copy, whatever the
   photo's size; the perceptual hash (step 4) then reads a photo of up to
   ``PERCEPTUAL_HASH_MAX_BYTES`` back whole.
4. **After.** Identifying tags in EXIF found only while streaming (a HEIC keeps it after
   the image) raise :class:`IdentifyingMetadata` now; the blocks stored stay unreferenced
   and, with no photo row, no tally can link them. Then :func:`perceptual_hash` is computed
   from the whole file: the bytes given, or for a streamed upload up to
   ``PERCEPTUAL_HASH_MAX_BYTES`` (16 MiB) read back once from the store.

EXIF fields read
================
From the TIFF structure inside the EXIF data: ``Make`` and ``Model`` (IFD0),
``DateTimeOriginal`` and ``OffsetTimeOriginal`` (Exif IFD), and ``GPSLatitude(Ref)``,
``GPSLongitude(Ref)``, ``GPSAltitude(Ref)``, ``GPSDateStamp`` and ``GPSTimeStamp`` (GPS IFD).
They are returned in ``PhotoInfo.exif`` (JSON-ready; only keys that were present)::

    {"make": "Apple", "model": "iPhone 13",
     "date_time_original": "2023:05:14 09:41:07",   as written by the camera
     "offset_time_original": "+07:00",              as written, when present
     "taken_at": "2023-05-14T09:41:07+07:00",       ISO 8601; naive local time when...
     "taken_at_offset": "+07:00",                   ...this says "unknown"
     "gps": {"lat": 13.7565, "lon": 100.5018, "alt": 12.5},   decimal degrees, metres
     "gps_time_utc": "2023-05-14T02:41:07Z"}        from GPSDateStamp + GPSTimeStamp

Latitude and longitude are ``degrees + minutes/60 + seconds/3600`` computed exactly from the
rationals and rounded once to the nearest float, negative for ``S``/``W``; ``alt`` is
negative when ``GPSAltitudeRef`` is 1 (below sea level). These are floats: fine for JSON
and the database, but DAG-CBOR ledger nodes refuse floats, so do not put ``as_json()``
into a node as it is.

Malformed EXIF never fails an upload. Any structural fault, or an unreadable value in one
of the fields above (a zero denominator, a latitude of 95°, a date of "2023:13:45 …", a
latitude without its ``N``/``S`` reference), gives ``exif == {}`` and a sentence in
``exif_error``: the fields are reported all together or not at all. A blank or all-zero
date, which the Exif standard allows for "unknown", is simply absent.

:meth:`PhotoInfo.as_json` is format ``tally-photo-info-v1``. Tests: ``tests/intake/test_photos.py``,
with real JPEG, PNG and HEIC files in ``tests/vectors/photos/`` (and the script that made them).
"""

from __future__ import annotations

import io
import math
import re
import struct
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from fractions import Fraction
from typing import NamedTuple

from ledger.content.store import ContentStore
from ledger.core.cid import CID
from ledger.errors import LedgerError

__all__ = [
    "ACCEPTED_MEDIA_TYPES",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_SIDE",
    "EARTH_MEAN_RADIUS_KM",
    "HEADER_BYTES",
    "HEAD_BYTES",
    "HEIF_HEAD_BYTES",
    "IDENTIFYING_EXIF_TAGS",
    "MAX_EXIF_BYTES",
    "MIN_PHOTO_BYTES",
    "MIN_PHOTO_SIDE",
    "PHOTO_INFO_FORMAT",
    "SNIFF_BYTES",
    "ExifReading",
    "IdentifyingMetadata",
    "InvalidCoordinates",
    "MalformedPhoto",
    "PhotoHeader",
    "PhotoInfo",
    "PhotoTooLarge",
    "PhotoTooManyPixels",
    "UnsupportedPhotoType",
    "detect_media_type",
    "gps_distance_km",
    "hamming_distance",
    "hash_bands",
    "ingest_photo",
    "perceptual_hash",
    "read_exif",
    "read_header",
    "taken_at_of",
]

ACCEPTED_MEDIA_TYPES = ("image/jpeg", "image/png", "image/heic")
PHOTO_INFO_FORMAT = "tally-photo-info-v1"
"""The ``format`` of :meth:`PhotoInfo.as_json`."""

SNIFF_BYTES = 4096
"""Bytes read before the type is decided (an ISOBMFF ``ftyp`` box longer than this is refused)."""
HEAD_BYTES = 256 * 1024
"""Head kept from a JPEG or PNG to find its EXIF."""
HEIF_HEAD_BYTES = 1024 * 1024
"""Head kept from a HEIC file; its ``meta`` box must end within it."""
MAX_EXIF_BYTES = 1024 * 1024
"""Largest EXIF payload copied out of the stream; a larger one is reported in ``exif_error``."""
EARTH_MEAN_RADIUS_KM = 6371.0088
"""IUGG mean Earth radius, used by :func:`gps_distance_km`."""
HEADER_BYTES = 1024 * 1024
"""The image header (JPEG frame header, PNG ``IHDR``, HEIF ``meta`` box) must end within this."""
MIN_PHOTO_BYTES = 256
"""Smaller uploads cannot be a photo of a tally board (a valid 1-pixel PNG has 67 bytes)."""
MIN_PHOTO_SIDE = 16
"""An image narrower or lower than this many pixels is not a photo of a tally board."""
DEFAULT_MAX_PIXELS = 60_000_000
"""Default of ``TALLY_MAX_PHOTO_PIXELS``: a 48-megapixel phone photo passes, a bomb does not."""
DEFAULT_MAX_SIDE = 20_000
"""Default of ``TALLY_MAX_PHOTO_SIDE``: the longest side allowed, in pixels."""
PERCEPTUAL_HASH_MAX_BYTES = 16 * 1024 * 1024
"""A streamed photo up to this size is read back from the store once to compute its perceptual hash."""
PERCEPTUAL_HASH_MAX_DECODED_PIXELS = 4_000_000
"""Images other than JPEG (which decodes at 1/8 scale) are hashed only up to this many
pixels: a PNG of a few KiB may declare millions of flat pixels, and decoding it whole costs
the server 4 bytes and some CPU for each (phones send JPEG or HEIC)."""

IDENTIFYING_EXIF_TAGS: dict[int, str] = {
    0x013B: "Artist",
    0x8298: "Copyright",
    0x9C9D: "XPAuthor",
    0x927C: "MakerNote",
    0xA430: "CameraOwnerName",
    0xA431: "BodySerialNumber",
    0xA435: "LensSerialNumber",
}
"""EXIF/TIFF tags (IFD0 and the Exif IFD) that identify the person or the device: a photo
carrying any of them (with a non-blank value) is refused. ``Copyright`` is refused because
cameras fill it with the owner's name. Kept: ``DateTimeOriginal``, the GPS IFD,
``Orientation``, ``Make`` and ``Model`` (a phone model is not a person) and
``ImageUniqueID`` (it names the image, not the device or its owner, and helps find copies)."""
_IDENTIFYING_XMP = (
    b"dc:creator",
    b"dc:rights",
    b"xmpRights:Owner",
    b"tiff:Artist",
    b"aux:SerialNumber",
    b"aux:OwnerName",
    b"aux:LensSerialNumber",
    b"exifEX:CameraOwnerName",
    b"exifEX:BodySerialNumber",
    b"exifEX:LensSerialNumber",
    b"photoshop:AuthorsPosition",
    b"photoshop:Credit",
)
"""XMP properties (in a JPEG's XMP ``APP1`` segment) that identify a person or a device."""

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_HEVC_BRANDS = frozenset({"heic", "heix", "heim", "heis", "hevc", "hevx", "hevm", "hevs"})
_GENERIC_HEIF_BRANDS = frozenset({"mif1", "msf1", "mif2"})
_AVIF_BRANDS = frozenset({"avif", "avis", "avio"})
_ACCEPTED_TEXT = (
    "accepted are JPEG (starts FF D8 FF), PNG (starts 89 50 4E 47 0D 0A 1A 0A) and HEIC/HEIF "
    "(ISOBMFF 'ftyp' brand heic, heix, heim, heis, hevc, mif1 or msf1), recognised by their first bytes, "
    "whatever the file is called"
)


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


class UnsupportedPhotoType(LedgerError, ValueError):
    """The upload is not a JPEG, PNG or HEIC/HEIF file. ``detected`` says what it looks like."""

    def __init__(self, detected: str):
        self.detected = detected
        super().__init__(f"unsupported photo type: the upload is {detected}; {_ACCEPTED_TEXT}")


class PhotoTooLarge(LedgerError, ValueError):
    """The upload passed ``max_bytes``; reading stopped at ``bytes_read``."""

    def __init__(self, *, max_bytes: int, bytes_read: int):
        self.max_bytes = max_bytes
        self.bytes_read = bytes_read
        super().__init__(
            f"the photo is larger than the limit of {max_bytes} bytes ({_human_size(max_bytes)}); "
            f"reading stopped after {bytes_read} bytes"
        )


class MalformedPhoto(LedgerError, ValueError):
    """The upload starts like a JPEG, PNG or HEIC file but its content does not parse as one
    (no frame header, no ``IHDR``, no ``meta`` box), or it is too small to be a photo."""

    path = ("body",)


class PhotoTooManyPixels(LedgerError, ValueError):
    """The image header declares more pixels than allowed (a decompression bomb, or a scan
    far larger than any phone photo); nothing was decoded."""

    path = ("body",)

    def __init__(self, *, width: int, height: int, max_pixels: int, max_side: int):
        self.width, self.height = width, height
        super().__init__(
            f"the image declares {width} x {height} pixels ({width * height:,}); photos may have at most "
            f"{max_pixels:,} pixels and {max_side:,} on a side: send the phone camera's own photo"
        )


class IdentifyingMetadata(LedgerError, ValueError):
    """The photo carries metadata that identifies a person or a device (``tags``)."""

    path = ("body",)

    def __init__(self, tags: list[str]):
        self.tags = tags
        super().__init__(
            f"the photo carries identifying metadata: {', '.join(tags)}. Its time (DateTimeOriginal), place (GPS) "
            "and orientation are evidence and are kept, but who took it is not public: the app must strip these "
            "tags before uploading"
        )


class InvalidCoordinates(LedgerError, ValueError):
    """A (latitude, longitude) pair is not finite or out of range."""


def _human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MiB"
    if size >= 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size} B"


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------


class ExifReading(NamedTuple):
    """What :func:`read_exif` found: the fields (see the module docstring) or an error note."""

    exif: dict[str, object]
    error: str | None

    @property
    def taken_at(self) -> str | None:
        value = self.exif.get("taken_at")
        return value if isinstance(value, str) else None

    @property
    def gps(self) -> dict[str, float] | None:
        value = self.exif.get("gps")
        return dict(value) if isinstance(value, dict) else None


@dataclass(frozen=True)
class PhotoInfo:
    """A stored photo: its CID, size, type and the EXIF read from it.

    ``taken_at`` and ``gps`` repeat ``exif["taken_at"]`` and ``exif["gps"]`` for convenience.
    ``exif_error`` explains an empty ``exif`` when the EXIF data was there but unreadable.
    ``width`` and ``height`` are what the header declares (None when a HEIF file has no
    ``ispe`` property); ``perceptual_hash`` is :func:`perceptual_hash` of the image, None
    when it could not be computed (HEIC: this Pillow has no HEIF decoder).
    """

    cid: CID
    size: int
    media_type: str
    taken_at: str | None
    gps: dict[str, float] | None = field(hash=False)
    exif: dict[str, object] = field(hash=False)
    exif_error: str | None = None
    width: int | None = None
    height: int | None = None
    perceptual_hash: str | None = None

    def as_json(self) -> dict[str, object]:
        """A fresh JSON-ready dict, format ``tally-photo-info-v1`` (contains floats: not for DAG-CBOR)."""
        return {
            "format": PHOTO_INFO_FORMAT,
            "cid": str(self.cid),
            "size": self.size,
            "media_type": self.media_type,
            "taken_at": self.taken_at,
            "gps": dict(self.gps) if self.gps is not None else None,
            "exif": _copy_json(self.exif),
            "exif_error": self.exif_error,
        }


def _copy_json(value: object) -> object:
    if isinstance(value, dict):
        return {key: _copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy_json(item) for item in value]
    return value


# --------------------------------------------------------------------------------------
# Intake
# --------------------------------------------------------------------------------------


def ingest_photo(
    chunks: Iterable[bytes] | bytes,
    *,
    content: ContentStore,
    max_bytes: int,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_side: int = DEFAULT_MAX_SIDE,
) -> PhotoInfo:
    """Store an uploaded photo unchanged and describe it.

    ``chunks`` is the upload as a stream of byte strings of any sizes (or one ``bytes``).
    Requires ``max_bytes >= 1``. Raises, before anything is stored:
    :class:`UnsupportedPhotoType` (decided from the first 4 KiB), :class:`MalformedPhoto`
    (the header does not parse, or fewer than ``MIN_PHOTO_BYTES``), :class:`PhotoTooManyPixels`
    (the header declares more than ``max_pixels`` or a side over ``max_side``; nothing is
    decoded) and :class:`IdentifyingMetadata` when the EXIF lies in the header's bytes (JPEG).
    While or after storing: :class:`PhotoTooLarge` (as soon as the count passes
    ``max_bytes``; no further piece is read), :class:`IdentifyingMetadata` for EXIF found
    later in the file (HEIC keeps it after the image; the blocks stored stay unreferenced
    and unindexed), and whatever ``content.add_file`` raises (``ContentStoreError``).
    Never raises for bad EXIF: see ``PhotoInfo.exif_error``.
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ValueError(f"max_bytes must be a positive int, got {max_bytes!r}")
    whole = bytes(chunks) if isinstance(chunks, (bytes, bytearray, memoryview)) else None
    source: Iterator[bytes] = iter([whole]) if whole is not None else iter(chunks)  # type: ignore[arg-type]
    counter = _Counter(max_bytes)

    # Read on, holding the pieces, until the type and then the header decide: nothing is
    # stored before they do.
    peeked: deque[bytes] = deque()
    held = bytearray()
    ended = False

    def read_more() -> bool:
        nonlocal ended
        piece = next(source, None)
        if piece is None:
            ended = True
            return False
        piece = counter.take(piece)
        if piece:
            peeked.append(piece)
            held.extend(piece)
        return True

    while len(held) < SNIFF_BYTES and read_more():
        pass
    if not held:
        raise UnsupportedPhotoType("an empty file")
    media_type = detect_media_type(bytes(held[:SNIFF_BYTES]))

    checked_at = -1
    header: PhotoHeader | None = None
    while header is None:
        if ended or len(held) - checked_at >= SNIFF_BYTES:
            if ended and counter.size < MIN_PHOTO_BYTES:
                raise MalformedPhoto(
                    f"the upload has {counter.size} bytes, too few to be a photo "
                    f"(at least {MIN_PHOTO_BYTES}); send the camera's photo file itself"
                )
            checked_at = len(held)
            header = read_header(media_type, held, complete=ended)
            if header is not None:
                break
        read_more()
    _check_dimensions(header, max_pixels=max_pixels, max_side=max_side)
    container = _container_of(media_type)
    early = _identifying_in(container, bytes(held), complete=ended)
    if early:
        raise IdentifyingMetadata(early)
    held.clear()  # its pieces are still in peeked; the copy is not needed while streaming
    tap = _ExifTap(container)

    def stream() -> Iterator[bytes]:
        while peeked:
            piece = peeked.popleft()
            tap.feed(piece)
            yield piece
        if ended:
            return
        for raw in source:
            piece = counter.take(raw)
            if piece:
                tap.feed(piece)
                yield piece

    try:
        cid = content.add_file(stream())
    except Exception:
        # A store may wrap an exception raised inside the stream (an HTTP client does);
        # the caller should see ours.
        if counter.error is not None:
            raise counter.error from None
        raise
    if counter.error is not None:  # the store swallowed it; the file it stored is not ours
        raise counter.error
    reading = tap.finish()
    if tap.identifying:
        raise IdentifyingMetadata(tap.identifying)
    if whole is None and counter.size <= PERCEPTUAL_HASH_MAX_BYTES:
        whole = b"".join(content.cat(cid))
    return PhotoInfo(
        cid=cid,
        size=counter.size,
        media_type=media_type,
        taken_at=reading.taken_at,
        gps=reading.gps,
        exif=reading.exif,
        exif_error=reading.error,
        width=header.width,
        height=header.height,
        perceptual_hash=perceptual_hash(whole) if whole is not None else None,
    )


class _Counter:
    """Counts bytes and refuses the piece that passes the limit (remembering the error)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.error: PhotoTooLarge | None = None

    def take(self, piece: object) -> bytes:
        if not isinstance(piece, (bytes, bytearray, memoryview)):
            raise TypeError(f"photo chunks must be bytes, got {type(piece).__name__}")
        data = bytes(piece) if not isinstance(piece, bytes) else piece
        self.size += len(data)
        if self.size > self.max_bytes:
            self.error = PhotoTooLarge(max_bytes=self.max_bytes, bytes_read=self.size)
            raise self.error
        return data


# --------------------------------------------------------------------------------------
# Type detection
# --------------------------------------------------------------------------------------


def detect_media_type(first_bytes: bytes) -> str:
    """The media type of a file from its first ``SNIFF_BYTES`` bytes (or all of it, if shorter).

    Returns one of ``ACCEPTED_MEDIA_TYPES``; raises :class:`UnsupportedPhotoType` saying
    what the bytes look like otherwise.
    """
    if not first_bytes:
        raise UnsupportedPhotoType("an empty file")
    if first_bytes.startswith(_JPEG_MAGIC):
        return "image/jpeg"
    if first_bytes.startswith(_PNG_MAGIC):
        return "image/png"
    if first_bytes[4:8] == b"ftyp":
        major, compatible = _ftyp_brands(first_bytes)
        brands = {major, *compatible}
        if brands & _HEVC_BRANDS or (brands & _GENERIC_HEIF_BRANDS and not brands & _AVIF_BRANDS):
            return "image/heic"
        listed = ", ".join(dict.fromkeys([major, *compatible]))
        if brands & _AVIF_BRANDS:
            raise UnsupportedPhotoType(f"an AVIF image (ISOBMFF brands {listed})")
        if brands & {"qt  "}:
            raise UnsupportedPhotoType(f"a QuickTime movie (ISOBMFF brands {listed})")
        raise UnsupportedPhotoType(f"an ISOBMFF file that is not HEIF, probably a video (brands {listed})")
    raise UnsupportedPhotoType(_describe(first_bytes))


def _ftyp_brands(data: bytes) -> tuple[str, list[str]]:
    size = int.from_bytes(data[0:4], "big")
    header = 8
    if size == 1:
        if len(data) < 16:
            raise UnsupportedPhotoType(f"a truncated ISOBMFF file ({len(data)} bytes)")
        size, header = int.from_bytes(data[8:16], "big"), 16
    if size < header + 8 or (size - header - 8) % 4 or size > SNIFF_BYTES:
        raise UnsupportedPhotoType(f"an ISOBMFF file with a malformed 'ftyp' box (size {size})")
    if len(data) < size:
        raise UnsupportedPhotoType(f"a truncated ISOBMFF file (its 'ftyp' box has {size} bytes, the file {len(data)})")

    def brand(at: int) -> str:
        return data[at : at + 4].decode("latin-1")

    return brand(header), [brand(at) for at in range(header + 8, size, 4)]


_MAGIC_NAMES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "a PDF document"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image or camera raw file"),
    (b"MM\x00*", "a TIFF image or camera raw file"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "a JPEG XL image"),
    (b"\xff\x0a", "a JPEG XL image"),
    (b"\xff\xd8", "a damaged JPEG (FF D8 not followed by FF)"),
    (b"PK\x03\x04", "a ZIP archive (or an office document)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x00\x00\x01\x00", "a Windows icon"),
)


def _describe(data: bytes) -> str:
    """A short human description of bytes that are not an accepted photo."""
    for magic, name in _MAGIC_NAMES:
        if data.startswith(magic):
            return name
    if data[0:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "a WebP image"
    if data[0:4] == b"RIFF":
        return "a RIFF file (AVI or WAV)"
    text = _as_text(data[:512])
    if text is not None:
        lowered = text.lstrip("\ufeff \t\r\n").lower()
        if lowered.startswith(("<!doctype html", "<html")):
            return "an HTML document"
        if lowered.startswith(("<?xml", "<svg")):
            return "an XML or SVG document"
        snippet = text[:24] + ("…" if len(text) > 24 else "")
        return f"a text file (starting {snippet!r})"
    if data.startswith(b"BM") and len(data) >= 14:
        return "a BMP image"
    return "data of an unknown kind (first bytes " + " ".join(f"{byte:02X}" for byte in data[:8]) + ")"


def _as_text(sample: bytes) -> str | None:
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 3:  # not just a character cut at the end of the sample
            return None
        text = sample[: exc.start].decode("utf-8")
    if not text or not all(character.isprintable() or character in "\t\r\n\f" for character in text):
        return None
    return text


# --------------------------------------------------------------------------------------
# Image headers: the content parses as its type, and its declared size
# --------------------------------------------------------------------------------------


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
    position = 2
    while True:
        if position + 4 > len(data):
            if complete:
                raise _Malformed(f"it ends at byte {len(data)}, before its frame header (SOF)")
            return None
        if data[position] != 0xFF:
            raise _Malformed(f"expected a marker at byte {position}, found 0x{data[position]:02X}, before the frame header")
        marker = data[position + 1]
        if marker == 0xFF:
            position += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            position += 2
            continue
        if marker in (0xDA, 0xD9):
            raise _Malformed(
                f"its {'image data (SOS)' if marker == 0xDA else 'end (EOI)'} at byte {position} "
                "comes before any frame header (SOF)"
            )
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if length < 2:
            raise _Malformed(f"segment 0xFF{marker:02X} at byte {position} has length {length}")
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
        position += 2 + length


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


# --------------------------------------------------------------------------------------
# Identifying metadata
# --------------------------------------------------------------------------------------


def _identifying_tags(tiff: _Tiff) -> list[str]:
    """Identifying tags present with a value, in IFD0 and the Exif IFD ("Artist (0x013B)", …)."""
    ifd0 = tiff.ifd(tiff.first_ifd, "IFD0")
    found = []
    for ifd in (ifd0, tiff.sub_ifd(ifd0, _EXIF_IFD, "Exif IFD")):
        for tag, entry in sorted(ifd.items()):
            name = IDENTIFYING_EXIF_TAGS.get(tag)
            if name is None or entry.number == 0:
                continue
            try:
                raw = tiff._raw(entry, name) if entry.kind in _TYPE_SIZES else b"?"
            except _Malformed:
                raw = b"?"  # a value we cannot read still says the tag is there
            if raw.strip(b"\x00 "):
                found.append(f"{name} (0x{tag:04X})")
    return found


def _identifying_in(container: str, head: bytes, *, complete: bool) -> list[str]:
    """Identifying metadata that lies wholly in ``head``: the EXIF tags, and in a JPEG its XMP
    and IPTC (APP13) segments. What lies beyond the head is checked by the tap."""
    found: list[str] = []
    if container == "jpeg":
        found += _identifying_jpeg_segments(head)
    try:
        location = _LOCATORS[container](head, complete)
        if location is not None and location.extents and all(end <= len(head) for _, end in location.extents):
            payload = b"".join(head[start:end] for start, end in location.extents)
            found += _identifying_tags(_Tiff(location.unwrap(payload)))
    except Exception:  # noqa: BLE001 - unreadable here: the tap reads it again and reports it
        pass
    return list(dict.fromkeys(found))


def _identifying_jpeg_segments(head: bytes) -> list[str]:
    found: list[str] = []
    position = 2
    while position + 4 <= len(head) and head[position] == 0xFF:
        marker = head[position + 1]
        if marker in (0xDA, 0xD9) or marker == 0xFF:
            break
        length = int.from_bytes(head[position + 2 : position + 4], "big")
        payload = head[position + 4 : position + 2 + length]
        if marker == 0xE1 and payload.startswith(b"http://ns.adobe.com/xap/1.0/"):
            found += [f"XMP {name.decode()}" for name in _IDENTIFYING_XMP if name in payload]
        elif marker == 0xED and payload.startswith(b"Photoshop 3.0") and b"\x1c\x02\x50" in payload:
            found.append("IPTC By-line (2:80)")
        position += 2 + max(length, 2)
    return found


# --------------------------------------------------------------------------------------
# Perceptual hash
# --------------------------------------------------------------------------------------

_MIN_INFORMATIVE_BITS = 32
"""A hash where fewer of the 64 neighbour pairs differ by 2 grey levels or more is mostly ties:
such an image (a flat card with a little text) has too little structure to compare, and
unrelated ones would look alike."""


def perceptual_hash(data: bytes) -> str | None:
    """The 64-bit difference hash (dHash) of an image, as 16 hex digits, or None.

    The image is turned upright (EXIF orientation), made grey, shrunk to 9 x 8 pixels, and
    bit ``8 * row + column`` is 1 where a pixel is brighter than its right neighbour. A
    re-saved, re-compressed, resized or slightly cropped copy gives a hash a few bits away
    (:func:`hamming_distance`); different scenes differ in about half the bits. JPEGs are
    decoded at 1/8 scale (``draft``); other images only up to
    ``PERCEPTUAL_HASH_MAX_DECODED_PIXELS``. None when Pillow cannot decode the image (HEIC
    without a HEIF plug-in) or the image is mostly flat (``_MIN_INFORMATIVE_BITS``).
    """
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format == "JPEG":
                image.draft("L", (64, 64))
            elif image.width * image.height > PERCEPTUAL_HASH_MAX_DECODED_PIXELS:
                return None
            upright = ImageOps.exif_transpose(image)
            small = upright.convert("L").resize((9, 8), Image.Resampling.LANCZOS)
            pixels = small.tobytes()
    except Exception:  # noqa: BLE001 - no hash is no evidence lost; the photo itself is kept
        return None
    bits = informative = 0
    for row in range(8):
        for column in range(8):
            left, right = pixels[row * 9 + column], pixels[row * 9 + column + 1]
            bits = (bits << 1) | (1 if left > right else 0)
            informative += abs(left - right) >= 2
    return f"{bits:016x}" if informative >= _MIN_INFORMATIVE_BITS else None


def hamming_distance(a: str, b: str) -> int:
    """How many bits differ between two perceptual hashes (16 hex digits each)."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def hash_bands(perceptual: str) -> tuple[int, int, int, int]:
    """The four 16-bit bands of a perceptual hash, most significant first. Two hashes at most
    3 bits apart share at least one band whole (4 bands, 3 differing bits), so an index over
    ``(band, value)`` finds every such near duplicate; farther ones are found when their
    differences happen to fall in fewer than four bands."""
    bits = int(perceptual, 16)
    return (bits >> 48, (bits >> 32) & 0xFFFF, (bits >> 16) & 0xFFFF, bits & 0xFFFF)


# --------------------------------------------------------------------------------------
# Finding the EXIF data in a stream
# --------------------------------------------------------------------------------------


class _Malformed(Exception):
    """Internal: EXIF data (or the container around it) cannot be read. Never escapes."""


class _Location(NamedTuple):
    """Where the EXIF payload lies: absolute ``[start, end)`` extents, and how to get TIFF out of it."""

    extents: list[tuple[int, int]]
    unwrap: Callable[[bytes], bytes]


# A locator looks at the head of a file (``complete`` when the head is the whole file) and
# returns the location of the EXIF payload, None when there is none, or raises _Malformed.
_Locator = Callable[[bytes, bool], "_Location | None"]


def _container_of(media_type: str) -> str:
    return {"image/jpeg": "jpeg", "image/png": "png", "image/heic": "isobmff"}[media_type]


class _ExifTap:
    """Watches a file stream by; keeps its head and copies out the EXIF payload."""

    def __init__(self, container: str) -> None:
        self._locator: _Locator = _LOCATORS[container]
        self._head_limit = HEIF_HEAD_BYTES if container == "isobmff" else HEAD_BYTES
        self._head = bytearray()
        self._size = 0
        self._located = False
        self._location: _Location | None = None
        self._error: str | None = None
        self._payload = bytearray()
        self._copied = 0
        self.identifying: list[str] = []
        """Identifying tags found in the EXIF data (see ``IDENTIFYING_EXIF_TAGS``), after ``finish``."""

    def feed(self, piece: bytes) -> None:
        start = self._size
        self._size += len(piece)
        offset = 0
        if not self._located:
            offset = min(self._head_limit - len(self._head), len(piece))
            self._head += piece[:offset]
            if len(self._head) < self._head_limit:
                return
            self._locate(complete=False)
        if offset < len(piece) and self._location is not None:
            self._copy(memoryview(piece)[offset:], start + offset)

    def finish(self) -> ExifReading:
        if not self._located:
            self._locate(complete=True)
        if self._error is not None:
            return ExifReading({}, self._error)
        if self._location is None:
            return ExifReading({}, None)
        if self._copied < len(self._payload):
            last = max(end for _, end in self._location.extents)
            return ExifReading({}, f"the EXIF data is said to lie up to byte {last}, but the file has {self._size} bytes")
        try:
            tiff = self._location.unwrap(bytes(self._payload))
            try:
                self.identifying = _identifying_tags(_Tiff(tiff))
            except Exception:  # noqa: BLE001 - the fields below report what is unreadable
                pass
            return ExifReading(_read_tiff_fields(tiff), None)
        except _Malformed as exc:
            return ExifReading({}, f"unreadable EXIF: {exc}")
        except Exception as exc:  # noqa: BLE001 - a photo's EXIF must never fail its upload
            return ExifReading({}, f"unreadable EXIF ({type(exc).__name__}: {exc})")

    def _locate(self, *, complete: bool) -> None:
        self._located = True
        head = bytes(self._head)
        self._head = bytearray()  # not needed any more
        try:
            location = self._locator(head, complete)
        except _Malformed as exc:
            self._error = f"unreadable EXIF: {exc}"
            return
        except Exception as exc:  # noqa: BLE001 - see finish()
            self._error = f"unreadable EXIF ({type(exc).__name__}: {exc})"
            return
        if location is None or not location.extents:
            return
        total = sum(end - start for start, end in location.extents)
        if any(start < 0 or end < start for start, end in location.extents):
            self._error = "unreadable EXIF: the container gives it a negative extent"
            return
        if total > MAX_EXIF_BYTES:
            self._error = f"the EXIF data has {total} bytes, more than the {MAX_EXIF_BYTES} read"
            return
        self._location = location
        self._payload = bytearray(total)
        self._copy(memoryview(head), 0)

    def _copy(self, data: memoryview, at: int) -> None:
        """Copy the parts of ``data`` (file bytes from offset ``at``) that lie in the EXIF extents."""
        assert self._location is not None
        end_of_data = at + len(data)
        into = 0
        for start, end in self._location.extents:
            low, high = max(start, at), min(end, end_of_data)
            if low < high:
                target = into + low - start
                self._payload[target : target + high - low] = data[low - at : high - at]
                self._copied += high - low
            into += end - start


def _locate_jpeg(head: bytes, complete: bool) -> _Location | None:
    """The first ``APP1`` segment starting ``Exif\\0\\0`` before ``SOS``."""
    position = 2
    while True:
        if position + 4 > len(head):
            if complete:
                return None  # a truncated JPEG: no EXIF to read
            raise _Malformed(
                f"the JPEG header segments run past the first {len(head)} bytes, which is all that is searched for EXIF"
            )
        if head[position] != 0xFF:
            raise _Malformed(f"expected a JPEG marker at byte {position}, found 0x{head[position]:02X}")
        marker = head[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            position += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan, end of image: no EXIF in the header
            return None
        length = int.from_bytes(head[position + 2 : position + 4], "big")
        if length < 2:
            raise _Malformed(f"JPEG segment 0xFF{marker:02X} at byte {position} has length {length}")
        if marker == 0xE1 and length >= 8:
            if position + 10 > len(head):
                if complete:
                    return None
                raise _Malformed(f"the JPEG APP1 segment at byte {position} starts at the end of the bytes read")
            if head[position + 4 : position + 10] == b"Exif\x00\x00":
                return _Location([(position + 10, position + 2 + length)], _identity)
        position += 2 + length


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


# --------------------------------------------------------------------------------------
# ISOBMFF boxes (HEIF)
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# TIFF / EXIF fields
# --------------------------------------------------------------------------------------

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_MAX_IFD_ENTRIES = 4096

_MAKE, _MODEL, _EXIF_IFD, _GPS_IFD = 0x010F, 0x0110, 0x8769, 0x8825
_DATE_TIME_ORIGINAL, _OFFSET_TIME_ORIGINAL = 0x9003, 0x9011
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON, _GPS_ALT_REF, _GPS_ALT = 1, 2, 3, 4, 5, 6
_GPS_TIME, _GPS_DATE = 7, 29

_DATE_TIME = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})")


class _Entry(NamedTuple):
    kind: int  # the TIFF field type: 2 ASCII, 5 RATIONAL, …
    number: int  # how many values
    value_at: int  # where the value bytes start in the TIFF data


class _Tiff:
    """A bounds-checked reader of the IFDs of TIFF-structured EXIF data."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 8:
            raise _Malformed(f"{len(data)} bytes are too few for a TIFF header")
        order = data[:2]
        if order == b"II":
            self.order = "<"
        elif order == b"MM":
            self.order = ">"
        else:
            raise _Malformed(f"the TIFF header starts with {order!r}, not 'II' or 'MM'")
        self.data = data
        if self._unpack("H", 2)[0] != 42:
            raise _Malformed("the TIFF header lacks the number 42")
        self.first_ifd = self._unpack("I", 4)[0]

    def _unpack(self, codes: str, at: int) -> tuple[int, ...]:
        layout = struct.Struct(self.order + codes)
        if at < 0 or at + layout.size > len(self.data):
            raise _Malformed(f"a value at byte {at} runs past the end of the EXIF data ({len(self.data)} bytes)")
        return layout.unpack_from(self.data, at)

    def ifd(self, at: int, name: str) -> dict[int, _Entry]:
        (count,) = self._unpack("H", at)
        if count > _MAX_IFD_ENTRIES or at + 2 + 12 * count > len(self.data):
            raise _Malformed(f"{name} at byte {at} claims {count} entries, more than the EXIF data holds")
        entries: dict[int, _Entry] = {}
        for index in range(count):
            position = at + 2 + 12 * index
            tag, kind, number = self._unpack("HHI", position)
            size = _TYPE_SIZES.get(kind, 0) * number
            value_at = position + 8 if size <= 4 else self._unpack("I", position + 8)[0]
            entries.setdefault(tag, _Entry(kind, number, value_at))
        return entries

    def sub_ifd(self, parent: dict[int, _Entry], tag: int, name: str) -> dict[int, _Entry]:
        entry = parent.get(tag)
        if entry is None:
            return {}
        if entry.kind not in (4, 13) or entry.number != 1:
            raise _Malformed(f"the pointer to the {name} has type {entry.kind} and count {entry.number}")
        (at,) = self._unpack("I", entry.value_at)
        return self.ifd(at, name)

    def _raw(self, entry: _Entry, name: str) -> bytes:
        size = _TYPE_SIZES[entry.kind] * entry.number
        if entry.value_at + size > len(self.data):
            raise _Malformed(f"{name} runs past the end of the EXIF data")
        return self.data[entry.value_at : entry.value_at + size]

    def text(self, ifd: dict[int, _Entry], tag: int, name: str) -> str | None:
        entry = ifd.get(tag)
        if entry is None:
            return None
        if entry.kind not in (2, 7):  # ASCII; UNDEFINED is seen in the wild
            raise _Malformed(f"{name} has type {entry.kind}, not ASCII")
        raw = self._raw(entry, name).split(b"\x00", 1)[0]
        return raw.decode("utf-8", errors="replace").strip()

    def rationals(self, ifd: dict[int, _Entry], tag: int, name: str) -> list[Fraction] | None:
        entry = ifd.get(tag)
        if entry is None:
            return None
        if entry.kind not in (5, 10):
            raise _Malformed(f"{name} has type {entry.kind}, not RATIONAL")
        raw = self._raw(entry, name)
        code = "I" if entry.kind == 5 else "i"
        pairs = struct.unpack(self.order + code * (2 * entry.number), raw)
        values = []
        for numerator, denominator in zip(pairs[0::2], pairs[1::2]):
            if denominator == 0:
                raise _Malformed(f"{name} has a zero denominator")
            values.append(Fraction(numerator, denominator))
        return values

    def integer(self, ifd: dict[int, _Entry], tag: int, name: str) -> int | None:
        entry = ifd.get(tag)
        if entry is None:
            return None
        if entry.kind not in (1, 3, 4, 7) or entry.number < 1:
            raise _Malformed(f"{name} has type {entry.kind}, not an integer")
        code = {1: "B", 7: "B", 3: "H", 4: "I"}[entry.kind]
        return int(self._unpack(code, entry.value_at)[0])


def _read_tiff_fields(data: bytes) -> dict[str, object]:
    """The fields of the module docstring from TIFF-structured EXIF data; raises _Malformed."""
    tiff = _Tiff(data)
    ifd0 = tiff.ifd(tiff.first_ifd, "IFD0")
    exif_ifd = tiff.sub_ifd(ifd0, _EXIF_IFD, "Exif IFD")
    gps_ifd = tiff.sub_ifd(ifd0, _GPS_IFD, "GPS IFD")
    out: dict[str, object] = {}

    for key, tag, name in (("make", _MAKE, "Make"), ("model", _MODEL, "Model")):
        value = tiff.text(ifd0, tag, name)
        if value:
            out[key] = value

    original = tiff.text(exif_ifd, _DATE_TIME_ORIGINAL, "DateTimeOriginal")
    offset = tiff.text(exif_ifd, _OFFSET_TIME_ORIGINAL, "OffsetTimeOriginal")
    if original and not _is_blank(original):
        local = _parse_date_time(original, "DateTimeOriginal")
        out["date_time_original"] = original
        iso = local.isoformat(timespec="seconds")
        if offset and not _is_blank(offset):
            out["offset_time_original"] = offset
            zone = _parse_offset(offset)
            out["taken_at"] = iso + zone
            out["taken_at_offset"] = zone
        else:
            out["taken_at"] = iso
            out["taken_at_offset"] = "unknown"

    gps = _read_gps(tiff, gps_ifd)
    if gps is not None:
        out["gps"] = gps
    gps_time = _read_gps_time(tiff, gps_ifd)
    if gps_time is not None:
        out["gps_time_utc"] = gps_time
    return out


def _is_blank(value: str) -> bool:
    """The Exif standard's way of writing "unknown": spaces (or zeros) in the template."""
    return not value.strip(" :0")


def _parse_date_time(value: str, name: str) -> datetime:
    match = _DATE_TIME.fullmatch(value.strip())
    if match is None:
        raise _Malformed(f"{name} {value!r} is not 'YYYY:MM:DD HH:MM:SS'")
    try:
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        return datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise _Malformed(f"{name} {value!r} is not a real date and time ({exc})") from None


def _parse_offset(value: str) -> str:
    match = _OFFSET.fullmatch(value.strip())
    if match is None or int(match[2]) > 14 or int(match[3]) > 59:
        raise _Malformed(f"OffsetTimeOriginal {value!r} is not '+HH:MM' or '-HH:MM'")
    return f"{match[1]}{match[2]}:{match[3]}"


def _read_gps(tiff: _Tiff, gps_ifd: dict[int, _Entry]) -> dict[str, float] | None:
    latitude = _coordinate(tiff, gps_ifd, _GPS_LAT, _GPS_LAT_REF, "GPSLatitude", ("N", "S"), 90)
    longitude = _coordinate(tiff, gps_ifd, _GPS_LON, _GPS_LON_REF, "GPSLongitude", ("E", "W"), 180)
    if latitude is None and longitude is None:
        return None
    if latitude is None or longitude is None:
        raise _Malformed("the GPS IFD has a latitude or a longitude, not both")
    gps = {"lat": float(latitude), "lon": float(longitude)}
    altitude = tiff.rationals(gps_ifd, _GPS_ALT, "GPSAltitude")
    if altitude is not None:
        if len(altitude) != 1 or altitude[0] < 0:
            raise _Malformed(f"GPSAltitude should be one non-negative rational, got {len(altitude)} values")
        below = tiff.integer(gps_ifd, _GPS_ALT_REF, "GPSAltitudeRef")
        if below not in (None, 0, 1):
            raise _Malformed(f"GPSAltitudeRef is {below}, not 0 (above sea level) or 1 (below)")
        gps["alt"] = float(-altitude[0] if below == 1 else altitude[0])
    return gps


def _coordinate(
    tiff: _Tiff, ifd: dict[int, _Entry], tag: int, ref_tag: int, name: str, refs: tuple[str, str], limit: int
) -> Fraction | None:
    parts = tiff.rationals(ifd, tag, name)
    ref = tiff.text(ifd, ref_tag, name + "Ref")
    if parts is None:
        return None
    if not 1 <= len(parts) <= 3:
        raise _Malformed(f"{name} has {len(parts)} values, not degrees, minutes and seconds")
    if any(part < 0 for part in parts) or any(part >= 60 for part in parts[1:]):
        raise _Malformed(f"{name} {_show(parts)} is not degrees, minutes (< 60) and seconds (< 60)")
    value = sum((part / 60**index for index, part in enumerate(parts)), Fraction(0))
    if value > limit:
        raise _Malformed(f"{name} {_show(parts)} is more than {limit} degrees")
    if ref is None or ref.upper() not in refs:
        raise _Malformed(f"{name}Ref is {ref!r}, not {refs[0]!r} or {refs[1]!r}")
    return -value if ref.upper() == refs[1] else value


def _show(parts: list[Fraction]) -> str:
    return "/".join(str(part) for part in parts)


def _read_gps_time(tiff: _Tiff, gps_ifd: dict[int, _Entry]) -> str | None:
    date = tiff.text(gps_ifd, _GPS_DATE, "GPSDateStamp")
    clock = tiff.rationals(gps_ifd, _GPS_TIME, "GPSTimeStamp")
    if not date or clock is None or _is_blank(date):
        return None
    if len(clock) != 3:
        raise _Malformed(f"GPSTimeStamp has {len(clock)} values, not hours, minutes and seconds")
    hours, minutes, seconds = clock
    if hours.denominator != 1 or minutes.denominator != 1 or not (0 <= hours < 24 and 0 <= minutes < 60 and 0 <= seconds < 61):
        raise _Malformed(f"GPSTimeStamp {_show(clock)} is not a time of day")
    day = _parse_date_time(f"{date.strip()} 00:00:00", "GPSDateStamp")
    whole = int(seconds)
    moment = day + timedelta(hours=int(hours), minutes=int(minutes), seconds=whole)
    milliseconds = int((seconds - whole) * 1000)
    if milliseconds:
        return moment.isoformat(timespec="seconds") + f".{milliseconds:03d}Z"
    return moment.isoformat(timespec="seconds") + "Z"


# --------------------------------------------------------------------------------------
# Pure entry points
# --------------------------------------------------------------------------------------


def read_exif(data: bytes) -> ExifReading:
    """The EXIF fields of a whole photo file (JPEG, PNG or HEIF container), never raising.

    The same code :func:`ingest_photo` runs on the stream, given the file in one piece.
    Bytes of any other kind give an empty reading with an error note.
    """
    if data.startswith(_JPEG_MAGIC):
        container = "jpeg"
    elif data.startswith(_PNG_MAGIC):
        container = "png"
    elif data[4:8] == b"ftyp":
        container = "isobmff"
    else:
        return ExifReading({}, "not a JPEG, PNG or HEIF file")
    tap = _ExifTap(container)
    tap.feed(bytes(data))
    return tap.finish()


def taken_at_of(exif: Mapping[str, object], *, local_zone: tzinfo) -> tuple[datetime | None, str]:
    """When a photo was taken, as an aware datetime, from its stored EXIF fields (the
    ``PhotoInfo.exif`` dict), and which field said so: ``taken_at`` with its offset; a
    ``taken_at`` without one is read as ``local_zone`` time (the election's: a phone keeps
    local time); else ``gps_time_utc``; else ``(None, "")``. Never raises."""
    taken_at = exif.get("taken_at")
    if isinstance(taken_at, str):
        try:
            moment = datetime.fromisoformat(taken_at)
            if moment.tzinfo is not None:
                return moment, "EXIF DateTimeOriginal"
            return moment.replace(tzinfo=local_zone), "EXIF DateTimeOriginal, read as local time"
        except ValueError:
            pass
    gps_time = exif.get("gps_time_utc")
    if isinstance(gps_time, str):
        try:
            return datetime.fromisoformat(gps_time.replace("Z", "+00:00")), "EXIF GPS time"
        except ValueError:
            pass
    return None, ""


def gps_distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle (haversine) distance in km between two ``(latitude, longitude)`` points.

    Uses a sphere of radius ``EARTH_MEAN_RADIUS_KM``; the error against the WGS 84
    ellipsoid is under 0.5 %, ample for "was this photo taken near its polling unit".
    Raises :class:`InvalidCoordinates` for a non-finite or out-of-range coordinate.
    """
    for name, point in (("a", a), ("b", b)):
        if len(point) != 2:
            raise InvalidCoordinates(f"{name} must be a (latitude, longitude) pair, got {point!r}")
        latitude, longitude = point
        if not (math.isfinite(latitude) and math.isfinite(longitude)):
            raise InvalidCoordinates(f"{name} = {point!r} is not finite")
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise InvalidCoordinates(f"{name} = {point!r} is out of range: latitude must be within ±90, longitude ±180")
    phi1, phi2 = math.radians(a[0]), math.radians(b[0])
    half_dphi = (phi2 - phi1) / 2
    half_dlambda = math.radians(b[1] - a[1]) / 2
    h = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlambda) ** 2
    return 2 * EARTH_MEAN_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))
