"""Perceptual hash (issue 11): re-saved and cropped copies are near, flat images have none."""

from __future__ import annotations

import io
import random

from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from ledger.content.local import LocalBlockStore
from ledger.intake.photos import (
    hamming_distance,
    hash_bands,
    ingest_photo,
    perceptual_hash,
)
from tests.support.photos import LIMIT, fixture_bytes, scene, split

# --------------------------------------------------------------------------------------
# Perceptual hash (issue 11: re-saved and cropped copies)
# --------------------------------------------------------------------------------------


def encoded(image: Image.Image, kind: str = "JPEG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind, **options)
    return buffer.getvalue()


def test_a_resaved_resized_or_cropped_copy_has_a_near_hash() -> None:
    original = scene(1)
    first = perceptual_hash(encoded(original, quality=90))
    assert first is not None and len(first) == 16
    copies = {
        "re-saved at quality 40": encoded(original, quality=40),
        "as PNG": encoded(original, "PNG"),
        "resized to half": encoded(original.resize((400, 300)), quality=80),
        "cropped by 3 %": encoded(original.crop((12, 9, 788, 591)), quality=85),
    }
    for name, data in copies.items():
        copy = perceptual_hash(data)
        assert copy is not None and hamming_distance(first, copy) <= 6, (name, hamming_distance(first, copy or first))
    others = [perceptual_hash(encoded(scene(seed))) for seed in range(2, 12)]
    assert all(other is not None and hamming_distance(first, other) > 12 for other in others)


def test_flat_or_undecodable_images_have_no_hash(store: LocalBlockStore) -> None:
    from datetime import UTC, datetime

    from ledger.cli.simulation import make_photo

    assert perceptual_hash(encoded(Image.new("RGB", (64, 48), (90, 140, 200)))) is None
    # the demo's stand-in photos are flat cards with a label: unrelated ones would look alike
    card = make_photo(label="BKK_1-0001 board", taken_at=datetime(2023, 5, 14, 11, tzinfo=UTC), location=None, seed="1")
    assert perceptual_hash(card) is None
    assert perceptual_hash(fixture_bytes("heic_exif_gps.heic")) is None  # no HEIF decoder in this Pillow
    assert perceptual_hash(b"not an image") is None


def test_ingest_records_the_hash_for_whole_and_streamed_uploads(store: LocalBlockStore) -> None:
    data = encoded(scene(3), quality=85) + random.Random(1).randbytes(1_200_000)  # trailing bytes: a large upload
    whole = ingest_photo(data, content=store, max_bytes=LIMIT)
    streamed = ingest_photo(split(data, range(0, len(data), 65536)), content=store, max_bytes=LIMIT)
    assert whole.perceptual_hash is not None and whole.perceptual_hash == streamed.perceptual_hash
    assert whole == streamed


@given(st.integers(0, 2**64 - 1), st.lists(st.integers(0, 63), max_size=3))
def test_hashes_up_to_3_bits_apart_share_a_band(bits: int, flips: list[int]) -> None:
    """What makes the band index find every copy up to 3 bits away (ledger.review.service._lookalikes)."""
    other = bits
    for flip in flips:
        other ^= 1 << flip
    a, b = f"{bits:016x}", f"{other:016x}"
    assert hamming_distance(a, b) <= 3
    assert any(x == y for x, y in zip(hash_bands(a), hash_bands(b), strict=True))
    assert hash_bands(a)[0] == bits >> 48 and hash_bands(a)[3] == bits & 0xFFFF
