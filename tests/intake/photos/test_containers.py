"""Where the EXIF lies in a HEIF file: the Exif item anywhere, or none."""

from __future__ import annotations

import pytest

from ledger.content.local import LocalBlockStore
from ledger.intake.photos import (
    HEIF_HEAD_BYTES,
    MalformedPhoto,
    ingest_photo,
    read_exif,
)
from tests.support.photos import GOOD_TIFF_EXIF, LIMIT, ascii_entry, build_heic, build_tiff, good_tiff, split, stored_blocks

# --------------------------------------------------------------------------------------
# HEIF layouts
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("exif_at", ["end", "start", "split", "idat"])
@pytest.mark.parametrize("iloc_version", [0, 1, 2])
def test_heif_exif_item_anywhere(exif_at: str, iloc_version: int, store: LocalBlockStore) -> None:
    if exif_at == "idat" and iloc_version == 0:
        return  # construction methods came with iloc version 1
    data = build_heic(good_tiff(), exif_at=exif_at, iloc_version=iloc_version, decoy=build_tiff([ascii_entry(0x010F, "Decoy")]))
    info = ingest_photo(split(data, range(0, len(data), 97)), content=store, max_bytes=LIMIT)
    assert info.media_type == "image/heic"
    assert (info.exif, info.exif_error) == (GOOD_TIFF_EXIF, None)


def test_heif_without_exif_item(store: LocalBlockStore) -> None:
    info = ingest_photo([build_heic(None)], content=store, max_bytes=LIMIT)
    assert info.media_type == "image/heic" and info.exif == {} and info.exif_error is None


@pytest.mark.parametrize("pieces", [1, 50])
def test_heif_with_meta_after_a_large_mdat_is_refused_before_it_is_stored(pieces: int, store: LocalBlockStore) -> None:
    """The image header must lie within the first HEADER_BYTES, however the upload is cut."""
    data = build_heic(good_tiff(), filler=HEIF_HEAD_BYTES + 10, meta_last=True)
    with pytest.raises(MalformedPhoto, match="'meta' box .* does not end within the first"):
        ingest_photo(split(data, range(0, len(data), len(data) // pieces)), content=store, max_bytes=LIMIT)
    assert stored_blocks(store) == []
    # the same layout, small enough to lie within the head, is read
    small = build_heic(good_tiff(), meta_last=True)
    assert read_exif(small) == (GOOD_TIFF_EXIF, None)
