"""Identifying metadata (issue 11, privacy): tags naming a person or a device make a photo refused."""

from __future__ import annotations

import pytest
from PIL import Image

from ledger.content.local import LocalBlockStore
from ledger.intake.photos import (
    IdentifyingMetadata,
    ingest_photo,
)
from tests.support.photos import (
    JPEG_HEAD,
    LIMIT,
    app_segment,
    ascii_entry,
    build_heic,
    build_tiff,
    cat,
    pillow_jpeg,
    split,
    stored_blocks,
)

# --------------------------------------------------------------------------------------
# Identifying metadata (issue 11, privacy)
# --------------------------------------------------------------------------------------


def exif_with(ifd0: dict[int, object] | None = None, exif_ifd: dict[int, object] | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Apple"
    exif[0x0110] = "iPhone 13"
    exif[0x0112] = 6  # Orientation: kept
    for tag, value in (ifd0 or {}).items():
        exif[tag] = value
    exif[0x8769] = {0x9003: "2023:05:14 17:41:07", 0x9011: "+07:00", **(exif_ifd or {})}
    exif[0x8825] = {1: "N", 2: (13.0, 45.0, 23.4), 3: "E", 4: (100.0, 30.0, 6.48)}
    return exif


IDENTIFYING = {
    "Artist": ({0x013B: "Somchai Jaidee"}, {}, "Artist (0x013B)"),
    "Copyright": ({0x8298: "(c) Somchai Jaidee"}, {}, "Copyright (0x8298)"),
    "CameraOwnerName": ({}, {0xA430: "Somchai"}, "CameraOwnerName (0xA430)"),
    "BodySerialNumber": ({}, {0xA431: "F17XK2ABCDEF"}, "BodySerialNumber (0xA431)"),
    "LensSerialNumber": ({}, {0xA435: "0000c1e2"}, "LensSerialNumber (0xA435)"),
    "MakerNote": ({}, {0x927C: b"Apple iOS\x00\x00\x01MM" + bytes(40)}, "MakerNote (0x927C)"),
}


@pytest.mark.parametrize("case", sorted(IDENTIFYING))
def test_a_jpeg_with_identifying_tags_is_refused_before_it_is_stored(case: str, store: LocalBlockStore) -> None:
    ifd0, exif_ifd, named = IDENTIFYING[case]
    data = pillow_jpeg(exif_with(ifd0, exif_ifd), size=(64, 48))
    with pytest.raises(IdentifyingMetadata) as caught:
        ingest_photo(split(data, [50, 300]), content=store, max_bytes=LIMIT)
    message = str(caught.value)
    assert named in message and "the app must strip" in message and "DateTimeOriginal" in message
    assert caught.value.tags == [named]
    assert stored_blocks(store) == []


def test_time_place_orientation_model_and_image_id_are_kept(store: LocalBlockStore) -> None:
    data = pillow_jpeg(exif_with({0x013B: "   "}, {0xA420: "4f6e1c2a9b"}), size=(64, 48))  # a blank Artist is no name
    info = ingest_photo([data], content=store, max_bytes=LIMIT)
    assert info.taken_at == "2023-05-14T17:41:07+07:00" and info.gps is not None and info.exif["model"] == "iPhone 13"
    assert cat(store, info.cid) == data  # stored unchanged, orientation and all


def test_identifying_tags_after_the_image_in_a_heic_are_refused_too(store: LocalBlockStore) -> None:
    tiff = build_tiff(
        [ascii_entry(0x010F, "Apple")], [ascii_entry(0x9003, "2023:05:14 17:00:00"), ascii_entry(0xA431, "F17XK2ABCDEF")]
    )
    data = build_heic(tiff, exif_at="end", filler=300_000)
    with pytest.raises(IdentifyingMetadata, match=r"BodySerialNumber \(0xA431\)"):
        ingest_photo(split(data, range(0, len(data), 65536)), content=store, max_bytes=LIMIT)


@pytest.mark.parametrize(
    "xmp", [b"<dc:creator><rdf:Seq><rdf:li>Somchai</rdf:li></rdf:Seq></dc:creator>", b'aux:SerialNumber="0123456789"']
)
def test_a_jpeg_with_identifying_xmp_is_refused(xmp: bytes, store: LocalBlockStore) -> None:
    packet = b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta xmlns:x='adobe:ns:meta/'>" + xmp + b"</x:xmpmeta>"
    data = b"\xff\xd8" + app_segment(0xE1, packet) + JPEG_HEAD[2:]
    with pytest.raises(IdentifyingMetadata, match="XMP"):
        ingest_photo([data], content=store, max_bytes=LIMIT)
    assert stored_blocks(store) == []


@pytest.mark.parametrize("before", [b"\xff", b"\xff\xff\xff", b"\xff\xd0", b"\xff\x01"], ids=["fill", "fills", "RST0", "TEM"])
def test_identifying_xmp_cannot_hide_behind_fill_bytes_or_markers_without_a_length(before: bytes, store: LocalBlockStore) -> None:
    """The check walks the segments as the header reader does: a marker it would step over
    does not end the search (it once did, and let the XMP below through)."""
    packet = b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta xmlns:x='adobe:ns:meta/'><dc:creator>Somchai</dc:creator></x:xmpmeta>"
    data = b"\xff\xd8" + before + app_segment(0xE1, packet) + JPEG_HEAD[2:]
    with pytest.raises(IdentifyingMetadata, match="XMP dc:creator"):
        ingest_photo([data], content=store, max_bytes=LIMIT)
    assert stored_blocks(store) == []
