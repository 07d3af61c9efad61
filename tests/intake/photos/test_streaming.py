"""Streaming intake: any split of the upload gives the same CID and metadata; memory stays bounded."""

from __future__ import annotations

import math
import random
import tracemalloc
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.content.local import LocalBlockStore
from ledger.core.cid import CID
from ledger.core.unixfs import CHUNK_SIZE
from ledger.intake.photos import (
    HEAD_BYTES,
    HEIF_HEAD_BYTES,
    SNIFF_BYTES,
    ingest_photo,
    read_exif,
)
from tests.support.photos import GOOD_TIFF_EXIF, LIMIT, app_segment, build_heic, good_tiff, jpeg_with_exif, split

# --------------------------------------------------------------------------------------
# Streaming: any split gives the same CID and metadata; memory stays bounded
# --------------------------------------------------------------------------------------


def big_jpeg() -> bytes:
    """~700 KiB: APP2 segments push the APP1 Exif segment across the 256 KiB head, then trailing data."""
    filler = b"".join(app_segment(0xE2, bytes([index]) * 65000) for index in range(4))  # 260,016 bytes
    filler += app_segment(
        0xEC, bytes(HEAD_BYTES - 100 - 6 - len(filler) - 4)
    )  # Exif payload starts 100 bytes before the head ends
    data = jpeg_with_exif(good_tiff(), before=filler)
    start = data.index(b"Exif\x00\x00")
    assert start < HEAD_BYTES < start + 6 + len(good_tiff())
    return data + random.Random(1).randbytes(700 * 1024 - len(data))


def big_heic() -> bytes:
    """~1.3 MiB: the Exif item lies in mdat after 1.2 MiB of image data, past the 1 MiB head."""
    data = build_heic(good_tiff(), filler=1_250_000)
    assert data.rindex(b"Exif\x00\x00") > HEIF_HEAD_BYTES
    return data


BIG = {"jpeg": big_jpeg(), "heic": big_heic()}


@pytest.fixture(scope="module")
def big_references(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CID]:
    reference = LocalBlockStore(tmp_path_factory.mktemp("reference"))
    return {name: reference.add_file(data) for name, data in BIG.items()}


def interesting_cuts(length: int) -> list[int]:
    points = [SNIFF_BYTES, HEAD_BYTES, HEIF_HEAD_BYTES, CHUNK_SIZE, 2 * CHUNK_SIZE, 3 * CHUNK_SIZE, 4 * CHUNK_SIZE]
    return [point + delta for point in points for delta in (-1, 0, 1) if 0 < point + delta < length]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_split_gives_the_cid_and_metadata_of_the_whole_file(
    data: st.DataObject, tmp_path: Path, big_references: dict[str, CID]
) -> None:
    # one store for every example: storage is content-addressed, so reuse cannot change a CID
    name = data.draw(st.sampled_from(sorted(BIG)))
    whole = BIG[name]
    cut = st.one_of(st.integers(0, len(whole)), st.sampled_from(interesting_cuts(len(whole))))
    pieces = split(whole, data.draw(st.lists(cut, max_size=12)))
    info = ingest_photo(iter(pieces), content=LocalBlockStore(tmp_path / "photos"), max_bytes=LIMIT)
    assert info.cid == big_references[name]
    assert info.size == len(whole)
    assert (info.exif, info.exif_error) == read_exif(whole) == (GOOD_TIFF_EXIF, None)


@pytest.mark.parametrize("name", ["jpeg", "header far in"])
def test_pieces_reach_the_store_as_they_are_read(name: str, tmp_path: Path) -> None:
    """The store sees each piece right after it is read, not at the end: only the pieces up
    to the image header (at least the 4 KiB sniff) wait, so that a file whose header is
    refused is never stored."""
    whole = BIG["jpeg"] if name == "header far in" else jpeg_with_exif(good_tiff()) + random.Random(5).randbytes(600_000)
    frame = whole.index(b"\xff\xc0")  # the frame header (baseline SOF0), after every APP segment
    pulled = 0
    lag = []

    class WatchingStore(LocalBlockStore):
        def add_file(self, chunks: bytes | Iterable[bytes]) -> CID:
            assert not isinstance(chunks, (bytes, bytearray, memoryview))

            def watched() -> Iterator[bytes]:
                for received, piece in enumerate(chunks, start=1):
                    lag.append(pulled - received)
                    yield piece

            return super().add_file(watched())

    def upload() -> Iterator[bytes]:
        nonlocal pulled
        for piece in split(whole, range(1000, len(whole), 1000)):
            pulled += 1
            yield piece

    ingest_photo(upload(), content=WatchingStore(tmp_path), max_bytes=LIMIT)
    if frame < SNIFF_BYTES:
        assert max(lag) == math.ceil(SNIFF_BYTES / 1000) - 1  # only the sniffed pieces wait
    else:  # read on in steps of 4 KiB until the header is whole
        assert frame / 1000 - 1 < max(lag) <= (frame + 10 + SNIFF_BYTES) / 1000
    assert lag[-1] == 0


def test_memory_stays_bounded_for_a_large_photo(store: LocalBlockStore) -> None:
    size = 24 * 1024 * 1024

    def upload() -> Iterator[bytes]:
        rng = random.Random(3)
        yield jpeg_with_exif(good_tiff())
        for _ in range(size // 65536):
            yield rng.randbytes(65536)

    tracemalloc.start()
    try:
        info = ingest_photo(upload(), content=store, max_bytes=2 * size)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.size > size and info.exif == GOOD_TIFF_EXIF
    assert peak < 3 * 1024 * 1024, f"peak {peak} bytes while streaming a {info.size}-byte photo"
