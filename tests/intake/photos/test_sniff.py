"""The type of an upload from its first bytes, and everything else refused by name."""

from __future__ import annotations

import io
import math
import random
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, features

from ledger.content.local import LocalBlockStore
from ledger.errors import LedgerError
from ledger.intake.photos import (
    SNIFF_BYTES,
    UnsupportedPhotoType,
    detect_media_type,
    ingest_photo,
    read_exif,
)
from tests.support.photos import GOOD_TIFF_EXIF, LIMIT, box, good_tiff, split, stored_blocks

# --------------------------------------------------------------------------------------
# Type from bytes
# --------------------------------------------------------------------------------------

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" * 40
NOT_A_PHOTO: dict[str, tuple[bytes, str]] = {
    "pdf": (PDF, "a PDF document"),
    "random bytes": (b"\x00" + random.Random(7).randbytes(5000), "data of an unknown kind"),
    "a text file named photo.jpg": (b"IMG_0042.jpg: the real photo is on my other phone\n", "a text file"),
    "html": (b"<!DOCTYPE html><html><body>upload</body></html>", "an HTML document"),
    "gif": (b"GIF89a" + bytes(100), "a GIF image"),
    "webp": (b"RIFF\x00\x01\x00\x00WEBPVP8 " + bytes(100), "a WebP image"),
    "mp4": (box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41") + box(b"mdat", bytes(50)), "not HEIF, probably a video"),
    "avif by brand": (box(b"ftyp", b"avif\x00\x00\x00\x00avifmif1miaf") + bytes(50), "an AVIF image"),
    "quicktime": (box(b"ftyp", b"qt  \x00\x00\x00\x00qt  ") + bytes(50), "a QuickTime movie"),
    "ftyp with a broken size": (b"\x00\x00\x00\x09ftypheic" + bytes(40), "malformed 'ftyp' box"),
    "truncated ftyp": (b"\x00\x00\x00\x40ftypheic\x00\x00\x00\x00mif1", "truncated ISOBMFF"),
    "damaged jpeg": (b"\xff\xd8\x00\x00" + bytes(50), "damaged JPEG"),
    "one byte": (b"\xff", "unknown kind"),
}


@pytest.mark.parametrize("case", sorted(NOT_A_PHOTO))
def test_other_files_are_refused_before_anything_is_stored(case: str, store: LocalBlockStore) -> None:
    data, detected = NOT_A_PHOTO[case]
    with pytest.raises(UnsupportedPhotoType) as caught:
        ingest_photo(split(data, [1, 2, 3]), content=store, max_bytes=LIMIT)
    assert detected in caught.value.detected
    message = str(caught.value)
    assert detected in message and "accepted are JPEG" in message and "HEIC/HEIF" in message
    assert isinstance(caught.value, LedgerError) and isinstance(caught.value, ValueError)
    assert stored_blocks(store) == []


def test_avif_written_by_pillow_is_refused_but_its_exif_is_readable(store: LocalBlockStore) -> None:
    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF encoder")
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(buffer, "AVIF", exif=b"Exif\x00\x00" + good_tiff())
    data = buffer.getvalue()
    with pytest.raises(UnsupportedPhotoType, match="an AVIF image"):
        ingest_photo([data], content=store, max_bytes=LIMIT)
    # libavif's ISOBMFF layout is an independent check of the HEIF Exif-item reader
    assert read_exif(data) == (GOOD_TIFF_EXIF, None)


@pytest.mark.parametrize("chunks", [[], [b""], [b"", b"", b""]])
def test_an_empty_upload_is_refused(chunks: list[bytes], store: LocalBlockStore) -> None:
    with pytest.raises(UnsupportedPhotoType, match="empty file"):
        ingest_photo(chunks, content=store, max_bytes=LIMIT)
    assert stored_blocks(store) == []


def test_the_type_is_decided_from_the_first_4_kib_without_reading_on(store: LocalBlockStore) -> None:
    pulled = 0

    def pdf_pieces() -> Iterator[bytes]:
        nonlocal pulled
        for _ in range(10_000):
            pulled += 1
            yield PDF[:1000]

    with pytest.raises(UnsupportedPhotoType, match="PDF"):
        ingest_photo(pdf_pieces(), content=store, max_bytes=LIMIT)
    assert pulled == math.ceil(SNIFF_BYTES / 1000)
    assert stored_blocks(store) == []


@pytest.mark.parametrize(
    ("brands", "accepted"),
    [
        ((b"heic", b"mif1", b"heic"), True),
        ((b"heix", b"mif1"), True),
        ((b"mif1", b"heic"), True),  # some Android phones
        ((b"mif1", b"miaf"), True),  # generic HEIF
        ((b"msf1", b"hevc"), True),
        ((b"avif", b"mif1", b"miaf"), False),
        ((b"mif1", b"avif"), False),
        ((b"isom", b"mp41"), False),
    ],
)
def test_heif_brands(brands: tuple[bytes, ...], accepted: bool) -> None:
    head = box(b"ftyp", brands[0] + b"\x00\x00\x00\x00" + b"".join(brands[1:])) + bytes(16)
    if accepted:
        assert detect_media_type(head) == "image/heic"
    else:
        with pytest.raises(UnsupportedPhotoType):
            detect_media_type(head)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=64))
def test_bytes_without_a_photo_signature_are_never_accepted(data: bytes) -> None:
    if data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")) or data[4:8] == b"ftyp":
        return
    with pytest.raises(UnsupportedPhotoType):
        detect_media_type(data)
