"""ingest_photo end to end: the committed fixtures stored unchanged and described, the size limit, PhotoInfo."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from ledger.content.local import LocalBlockStore
from ledger.core.cid import CID
from ledger.core.unixfs import CHUNK_SIZE, file_cid
from ledger.errors import ContentStoreError, LedgerError
from ledger.intake.photos import (
    PHOTO_INFO_FORMAT,
    PhotoInfo,
    PhotoTooLarge,
    ingest_photo,
)
from tests.support.photos import EXPECTED, JPEG_HEAD, LIMIT, cat, fixture_bytes, split, stored_blocks

# --------------------------------------------------------------------------------------
# The committed fixtures
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_files_are_the_committed_ones(name: str) -> None:
    data = fixture_bytes(name)
    assert len(data) == EXPECTED[name]["size"]
    assert hashlib.sha256(data).hexdigest() == EXPECTED[name]["sha256"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_photo_type_is_stored_unchanged_and_described(name: str, store: LocalBlockStore) -> None:
    data = fixture_bytes(name)
    expected = EXPECTED[name]
    info = ingest_photo(split(data, [100, 101, 700]), content=store, max_bytes=LIMIT)
    assert info.media_type == expected["media_type"]
    assert info.size == len(data)
    assert info.cid == file_cid(data) == LocalBlockStore(store.root.parent / "other").add_file(data)
    assert cat(store, info.cid) == data  # the original bytes, not re-encoded or stripped
    assert info.taken_at == expected["taken_at"]
    assert info.gps == expected["gps"]
    assert info.exif == expected["exif"]
    assert info.exif_error is None


def test_real_heic_is_recognised_with_its_exif_item_after_the_image(store: LocalBlockStore) -> None:
    """The HEIC fixture was written by libheif: ftyp heic/mif1, Exif item in mdat, cdsc to the primary."""
    data = fixture_bytes("heic_exif_gps.heic")
    assert data[4:12] == b"ftypheic"
    info = ingest_photo([data], content=store, max_bytes=LIMIT)
    assert info.media_type == "image/heic"
    assert info.taken_at == "2023-05-14T16:20:31+07:00"
    assert info.gps == {"lat": 18.79, "lon": 98.985}
    assert info.exif["model"] == "iPhone 13"


def test_same_bytes_give_the_same_cid(tmp_path: Path) -> None:
    data = fixture_bytes("jpeg_exif_gps.jpg")
    first_store = LocalBlockStore(tmp_path / "a")
    first = ingest_photo([data], content=first_store, max_bytes=LIMIT)
    again = ingest_photo(split(data, range(1, len(data), 7)), content=first_store, max_bytes=LIMIT)
    elsewhere = ingest_photo(iter([data]), content=LocalBlockStore(tmp_path / "b"), max_bytes=LIMIT)
    assert first == again == elsewhere
    assert first.cid == again.cid == elsewhere.cid
    other = ingest_photo([data + b"\x00"], content=first_store, max_bytes=LIMIT)
    assert other.cid != first.cid


def test_whole_bytes_are_accepted_too(store: LocalBlockStore) -> None:
    data = fixture_bytes("png_no_exif.png")
    assert ingest_photo(data, content=store, max_bytes=LIMIT).cid == file_cid(data)


# --------------------------------------------------------------------------------------
# Size limit
# --------------------------------------------------------------------------------------


def test_too_large_stops_reading_as_soon_as_the_limit_is_passed(store: LocalBlockStore) -> None:
    pulled = 0

    def upload() -> Iterator[bytes]:
        nonlocal pulled
        pulled += 1
        yield JPEG_HEAD.ljust(2048, b"\x00")  # a real JPEG, then trailing bytes
        for _ in range(999):
            pulled += 1
            yield bytes(1024)

    pieces = upload()
    with pytest.raises(PhotoTooLarge) as caught:
        ingest_photo(pieces, content=store, max_bytes=10 * 1024)
    assert pulled == 10  # the 11th KiB passed the limit; nothing after it was read
    assert next(pieces, None) is not None  # the generator was not used up
    assert "10240 bytes" in str(caught.value) and "10.0 KiB" in str(caught.value)
    assert caught.value.max_bytes == 10240 and caught.value.bytes_read == 11 * 1024
    assert isinstance(caught.value, LedgerError) and isinstance(caught.value, ValueError)


def test_too_large_in_the_first_piece(store: LocalBlockStore) -> None:
    with pytest.raises(PhotoTooLarge, match="limit of 1000 bytes"):
        ingest_photo([fixture_bytes("jpeg_no_exif.jpg")], content=store, max_bytes=1000)
    assert stored_blocks(store) == []


def test_too_large_after_whole_chunks_were_stored(store: LocalBlockStore) -> None:
    data = JPEG_HEAD + bytes(3 * CHUNK_SIZE)
    pieces = iter(split(data, range(CHUNK_SIZE // 2, len(data), CHUNK_SIZE // 2)))
    with pytest.raises(PhotoTooLarge):
        ingest_photo(pieces, content=store, max_bytes=2 * CHUNK_SIZE + 10)
    assert len(list(pieces)) == 2  # 6 half-chunks and the JPEG's length; the 5th half-chunk passed the limit


def test_exactly_max_bytes_is_accepted(store: LocalBlockStore) -> None:
    data = fixture_bytes("png_no_exif.png")
    assert ingest_photo([data], content=store, max_bytes=len(data)).size == len(data)
    with pytest.raises(PhotoTooLarge):
        ingest_photo([data], content=store, max_bytes=len(data) - 1)


@pytest.mark.parametrize("max_bytes", [0, -1, 1.5, True, "15MB"])
def test_max_bytes_must_be_a_positive_int(max_bytes: object, store: LocalBlockStore) -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        ingest_photo([b"\xff\xd8\xff"], content=store, max_bytes=max_bytes)  # type: ignore[arg-type]


def test_chunks_must_be_bytes(store: LocalBlockStore) -> None:
    with pytest.raises(TypeError, match="str"):
        ingest_photo(["\xff\xd8\xff"], content=store, max_bytes=LIMIT)  # type: ignore[list-item]


class WrappingStore(LocalBlockStore):
    """Like an HTTP adapter: any error inside the upload stream comes out as ContentStoreError."""

    def add_file(self, chunks: bytes | Iterable[bytes]) -> CID:
        try:
            return super().add_file(chunks)
        except Exception as exc:
            raise ContentStoreError(f"upload failed: {exc}") from exc


def test_too_large_is_reported_even_through_a_store_that_wraps_errors(tmp_path: Path) -> None:
    data = JPEG_HEAD + bytes(100_000)
    with pytest.raises(PhotoTooLarge):
        ingest_photo(split(data, [5000, 60_000]), content=WrappingStore(tmp_path), max_bytes=50_000)


# --------------------------------------------------------------------------------------
# PhotoInfo
# --------------------------------------------------------------------------------------


def test_photo_info_is_frozen_and_serialises(store: LocalBlockStore) -> None:
    info = ingest_photo([fixture_bytes("jpeg_exif_gps.jpg")], content=store, max_bytes=LIMIT)
    with pytest.raises(FrozenInstanceError):
        info.size = 1  # type: ignore[misc]
    hash(info)
    as_json = info.as_json()
    assert as_json == {
        "format": PHOTO_INFO_FORMAT,
        "cid": str(info.cid),
        "size": info.size,
        "media_type": "image/jpeg",
        "taken_at": "2023-05-14T09:41:07+07:00",
        "gps": {"lat": 13.7565, "lon": 100.5018, "alt": 12.5},
        "exif": EXPECTED["jpeg_exif_gps.jpg"]["exif"],
        "exif_error": None,
    }
    assert json.loads(json.dumps(as_json)) == as_json
    as_json["exif"]["gps"]["lat"] = 0.0  # type: ignore[index]
    assert info.exif["gps"] == {"lat": 13.7565, "lon": 100.5018, "alt": 12.5}
    assert isinstance(info, PhotoInfo) and CID.parse(as_json["cid"]) == info.cid  # type: ignore[arg-type]
