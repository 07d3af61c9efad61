"""Photo intake: stream an upload into the content store, decide its type from its bytes,
and read the time and place the camera recorded in its EXIF.

Volunteers photograph the tally board and the signed count form. The photo is evidence, so
its bytes are stored exactly as received (never re-encoded, never stripped of metadata) and
it is named by the UnixFS CID ``ipfs add --cid-version=1`` would give it, computed by the
content store while the upload streams through.

What :func:`ingest_photo` does, in order
========================================

1. **Sniff.** It reads pieces until it holds the first ``SNIFF_BYTES`` (4 KiB) or the stream
   ends, and decides the type from those bytes alone (``sniff``: JPEG, PNG or HEIC; a file
   name is never an input).

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
   they are in the file (at most ``MAX_EXIF_BYTES`` = 1 MiB; where it lies in each
   container: ``containers``).

   While it streams, memory is therefore bounded by the caller's piece size, the content
   store's one partial 256 KiB chunk, the header, the head and the EXIF copy, whatever the
   photo's size; the perceptual hash (step 4) then reads a photo of up to
   ``PERCEPTUAL_HASH_MAX_BYTES`` back whole.
4. **After.** Identifying tags in EXIF found only while streaming (a HEIC keeps it after
   the image) raise :class:`IdentifyingMetadata` now; the blocks stored stay unreferenced
   and, with no photo row, no tally can link them. Then :func:`perceptual_hash` is computed
   from the whole file: the bytes given, or for a streamed upload up to
   ``PERCEPTUAL_HASH_MAX_BYTES`` (16 MiB) read back once from the store.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

from ledger.content.store import ContentStore
from ledger.core.cid import CID
from ledger.intake.photos.containers import _container_of
from ledger.intake.photos.errors import IdentifyingMetadata, MalformedPhoto, PhotoTooLarge, UnsupportedPhotoType
from ledger.intake.photos.exif import ExifReading, _ExifTap
from ledger.intake.photos.header import PhotoHeader, _check_dimensions, read_header
from ledger.intake.photos.identifying import _identifying_in
from ledger.intake.photos.info import PhotoInfo
from ledger.intake.photos.limits import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_SIDE,
    MIN_PHOTO_BYTES,
    PERCEPTUAL_HASH_MAX_BYTES,
    SNIFF_BYTES,
)
from ledger.intake.photos.perceptual import perceptual_hash
from ledger.intake.photos.sniff import detect_media_type

__all__ = ["ingest_photo"]


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
    upload = _ReadAhead(source, _Counter(max_bytes))

    # Steps 1 and 1b: nothing is stored before the type and then the header decide.
    media_type = _sniff(upload)
    header = _read_header_ahead(upload, media_type)
    container = _check_before_storing(upload, header, media_type, max_pixels=max_pixels, max_side=max_side)
    # Steps 2 and 3: stream on into the store, copying the EXIF out on the way.
    tap = _ExifTap(container)
    cid = _store(upload, tap, content)
    # Step 4.
    reading = tap.finish()
    if tap.identifying:
        raise IdentifyingMetadata(tap.identifying)
    if whole is None and upload.counter.size <= PERCEPTUAL_HASH_MAX_BYTES:
        whole = b"".join(content.cat(cid))
    return _photo_info(cid, upload.counter.size, media_type, header, reading, whole)


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


class _ReadAhead:
    """The one read-ahead of intake: pieces read on (and counted) are held, in ``held`` for
    the sniff and the header to look at and in order for :meth:`stream`, which hands them
    on first and then reads the rest of the upload one piece at a time."""

    def __init__(self, source: Iterator[bytes], counter: _Counter) -> None:
        self._source = source
        self.counter = counter
        self._peeked: deque[bytes] = deque()
        self.held = bytearray()
        self.ended = False

    def read_more(self) -> bool:
        """Read and hold one more piece; False (and ``ended``) when the upload has no more."""
        piece = next(self._source, None)
        if piece is None:
            self.ended = True
            return False
        piece = self.counter.take(piece)
        if piece:
            self._peeked.append(piece)
            self.held.extend(piece)
        return True

    def stream(self, tap: _ExifTap) -> Iterator[bytes]:
        """The whole upload, held pieces first, each shown to ``tap`` as it passes."""
        while self._peeked:
            piece = self._peeked.popleft()
            tap.feed(piece)
            yield piece
        if self.ended:
            return
        for raw in self._source:
            piece = self.counter.take(raw)
            if piece:
                tap.feed(piece)
                yield piece


def _sniff(upload: _ReadAhead) -> str:
    """Step 1: the media type, from the first ``SNIFF_BYTES`` (or the whole upload, if shorter)."""
    while len(upload.held) < SNIFF_BYTES and upload.read_more():
        pass
    if not upload.held:
        raise UnsupportedPhotoType("an empty file")
    return detect_media_type(bytes(upload.held[:SNIFF_BYTES]))


def _read_header_ahead(upload: _ReadAhead, media_type: str) -> PhotoHeader:
    """Step 1b: read on until the image header is whole (tried again every ``SNIFF_BYTES``)."""
    checked_at = -1
    while True:
        if upload.ended or len(upload.held) - checked_at >= SNIFF_BYTES:
            if upload.ended and upload.counter.size < MIN_PHOTO_BYTES:
                raise MalformedPhoto(
                    f"the upload has {upload.counter.size} bytes, too few to be a photo "
                    f"(at least {MIN_PHOTO_BYTES}); send the camera's photo file itself"
                )
            checked_at = len(upload.held)
            header = read_header(media_type, upload.held, complete=upload.ended)
            if header is not None:
                return header
        upload.read_more()


def _check_before_storing(upload: _ReadAhead, header: PhotoHeader, media_type: str, *, max_pixels: int, max_side: int) -> str:
    """Step 1b, the refusals: too many pixels, identifying metadata in the bytes held. Returns
    the container to find the EXIF in, and lets go of the copy of the bytes held."""
    _check_dimensions(header, max_pixels=max_pixels, max_side=max_side)
    container = _container_of(media_type)
    early = _identifying_in(container, bytes(upload.held), complete=upload.ended)
    if early:
        raise IdentifyingMetadata(early)
    upload.held.clear()  # its pieces are still held for the stream; the copy is not needed while streaming
    return container


def _store(upload: _ReadAhead, tap: _ExifTap, content: ContentStore) -> CID:
    """Steps 2 and 3: the upload into ``content.add_file``, its size limit reported as ours."""
    counter = upload.counter
    try:
        cid = content.add_file(upload.stream(tap))
    except Exception:
        # A store may wrap an exception raised inside the stream (an HTTP client does);
        # the caller should see ours.
        if counter.error is not None:
            raise counter.error from None
        raise
    if counter.error is not None:  # the store swallowed it; the file it stored is not ours
        raise counter.error
    return cid


def _photo_info(
    cid: CID, size: int, media_type: str, header: PhotoHeader, reading: ExifReading, whole: bytes | None
) -> PhotoInfo:
    return PhotoInfo(
        cid=cid,
        size=size,
        media_type=media_type,
        taken_at=reading.taken_at,
        gps=reading.gps,
        exif=reading.exif,
        exif_error=reading.error,
        width=header.width,
        height=header.height,
        perceptual_hash=perceptual_hash(whole) if whole is not None else None,
    )
