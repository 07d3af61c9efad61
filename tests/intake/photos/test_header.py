"""Image headers: content that does not parse as its type, too small, too many pixels (issue 11)."""

from __future__ import annotations

import struct

import pytest

from ledger.content.local import LocalBlockStore
from ledger.errors import LedgerError
from ledger.intake.photos import (
    MIN_PHOTO_BYTES,
    MalformedPhoto,
    PhotoHeader,
    PhotoTooManyPixels,
    ingest_photo,
    read_header,
)
from tests.support.photos import (
    EXPECTED,
    JPEG_HEAD,
    LIMIT,
    box,
    build_heic,
    fixture_bytes,
    good_tiff,
    png_header_only,
    split,
    stored_blocks,
)

# --------------------------------------------------------------------------------------
# Content that does not parse as its type, too small, too many pixels (issue 11)
# --------------------------------------------------------------------------------------


def with_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    frame = data.index(b"\xff\xc0")
    return data[: frame + 5] + struct.pack(">HH", height, width) + data[frame + 9 :]


NOT_PARSEABLE: dict[str, tuple[bytes, str]] = {
    "HEIC of 24 bytes, ftyp only": (box(b"ftyp", b"heic\x00\x00\x00\x00mif1heic"), "24 bytes, too few"),
    "HEIC without a meta box": (box(b"ftyp", b"heic\x00\x00\x00\x00mif1") + box(b"mdat", bytes(400)), "no 'meta' box"),
    "HEIC with a broken box": (box(b"ftyp", b"heic\x00\x00\x00\x00mif1") + b"\x00\x00\x00\x04meta" + bytes(400), "has size 4"),
    "JPEG with an APP1 segment longer than the file": (
        b"\xff\xd8\xff\xe1\xff\xf0Exif\x00\x00" + good_tiff() + b"\xff\xd9" + bytes(300),
        "before its frame header",
    ),
    "JPEG of zeros": (b"\xff\xd8\xff\xe0" + bytes(5000), "has length 0"),
    "JPEG with image data before a frame": (b"\xff\xd8\xff\xda\x00\x08" + bytes(400), "comes before any frame header"),
    "JPEG declaring 0 pixels": (with_jpeg_size(JPEG_HEAD, 0, 48), "declares 0 x 48 pixels"),
    "PNG without IHDR": (b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x04tEXtabcd" + bytes(400), "not IHDR of 13 bytes"),
    "PNG signature only": (b"\x89PNG\r\n\x1a\n", "8 bytes, too few"),
    "PNG of 1 x 1 pixel": (png_header_only(1, 1), "too small to be a photo"),
    "JPEG of 8 x 6 pixels": (with_jpeg_size(JPEG_HEAD, 8, 6), "8 x 6 pixels, too small"),
}


@pytest.mark.parametrize("case", sorted(NOT_PARSEABLE))
def test_content_that_does_not_parse_as_its_type_is_refused_before_anything_is_stored(case: str, store: LocalBlockStore) -> None:
    data, reason = NOT_PARSEABLE[case]
    for pieces in (split(data, []), split(data, range(0, len(data), 7))):
        with pytest.raises(MalformedPhoto) as caught:
            ingest_photo(pieces, content=store, max_bytes=LIMIT)
        assert reason in str(caught.value), str(caught.value)
        assert isinstance(caught.value, LedgerError) and isinstance(caught.value, ValueError)
        assert stored_blocks(store) == []


def test_the_smallest_upload_allowed_is_a_photo_sized_file(store: LocalBlockStore) -> None:
    assert min(len(fixture_bytes(name)) for name in EXPECTED) >= MIN_PHOTO_BYTES
    assert ingest_photo([png_header_only(16, 16)], content=store, max_bytes=LIMIT).media_type == "image/png"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_header_gives_the_size_in_pixels(name: str, store: LocalBlockStore) -> None:
    data = fixture_bytes(name)
    info = ingest_photo([data], content=store, max_bytes=LIMIT)
    expected = (64, 64) if name.endswith(".heic") else (64, 48)  # libheif pads HEVC to whole 64-pixel blocks
    assert (info.width, info.height) == expected
    assert read_header(info.media_type, data, complete=True) == PhotoHeader(*expected)
    assert read_header(info.media_type, data[:20], complete=False) is None  # more bytes needed, not an error


BOMBS = {
    "PNG 30,000 x 30,000": (png_header_only(30_000, 30_000), 30_000, 30_000),
    "PNG 1 x 25,000": (png_header_only(16, 25_000), 16, 25_000),
    "JPEG 10,000 x 7,000 (70 megapixels)": (with_jpeg_size(JPEG_HEAD, 10_000, 7_000), 10_000, 7_000),
    "HEIC 40,000 x 40,000": (build_heic(None, ispe=(40_000, 40_000)), 40_000, 40_000),
}


@pytest.mark.parametrize("case", sorted(BOMBS))
def test_images_declaring_too_many_pixels_are_refused_from_their_header(case: str, store: LocalBlockStore) -> None:
    data, width, height = BOMBS[case]
    assert len(data) < 10_000  # small files: the pixels are what would explode
    with pytest.raises(PhotoTooManyPixels) as caught:
        ingest_photo(split(data, [100]), content=store, max_bytes=LIMIT)
    assert (caught.value.width, caught.value.height) == (width, height)
    assert f"{width} x {height} pixels" in str(caught.value) and "60,000,000 pixels" in str(caught.value)
    assert isinstance(caught.value, ValueError)  # 422
    assert stored_blocks(store) == []


def test_the_pixel_limits_are_parameters(store: LocalBlockStore) -> None:
    data = with_jpeg_size(JPEG_HEAD, 8000, 6000)  # 48 MP: a phone's full-resolution photo
    assert ingest_photo([data], content=store, max_bytes=LIMIT).width == 8000
    with pytest.raises(PhotoTooManyPixels, match="at most 40,000,000 pixels"):
        ingest_photo([data], content=store, max_bytes=LIMIT, max_pixels=40_000_000)
    with pytest.raises(PhotoTooManyPixels, match="7,999 on a side"):
        ingest_photo([data], content=store, max_bytes=LIMIT, max_side=7_999)
