"""Photo intake (ledger.intake.photos): type from bytes, size limit, streaming CIDs, EXIF time and place.

Fixtures in tests/vectors/photos/ are real files made by make_fixtures.py there (Pillow, and
pillow-heif/libheif for the HEIC); expected.json holds the values the generator wrote into
them. Other test files are built here: TIFF/EXIF and ISOBMFF (HEIF) writers small enough to
read, so malformed and unusual layouts can be made on purpose.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import random
import struct
import tracemalloc
from collections.abc import Iterable, Iterator
from dataclasses import FrozenInstanceError
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, TiffImagePlugin, features

from ledger.content.local import LocalBlockStore
from ledger.core.cid import CID
from ledger.core.unixfs import CHUNK_SIZE, file_cid
from ledger.errors import ContentStoreError, LedgerError
from ledger.intake.photos import (
    EARTH_MEAN_RADIUS_KM,
    HEAD_BYTES,
    HEIF_HEAD_BYTES,
    MIN_PHOTO_BYTES,
    PHOTO_INFO_FORMAT,
    SNIFF_BYTES,
    IdentifyingMetadata,
    InvalidCoordinates,
    MalformedPhoto,
    PhotoHeader,
    PhotoInfo,
    PhotoTooLarge,
    PhotoTooManyPixels,
    UnsupportedPhotoType,
    detect_media_type,
    gps_distance_km,
    hamming_distance,
    hash_bands,
    ingest_photo,
    perceptual_hash,
    read_exif,
    read_header,
    taken_at_of,
)
from tests.support.paths import VECTORS
from tests.support.photos import box, png_header_only, scene

PHOTO_VECTORS = VECTORS / "photos"
EXPECTED: dict[str, dict[str, object]] = json.loads((PHOTO_VECTORS / "expected.json").read_text())
LIMIT = 20 * 1024 * 1024


@pytest.fixture()
def store(tmp_path: Path) -> LocalBlockStore:
    return LocalBlockStore(tmp_path / "blocks")


def fixture_bytes(name: str) -> bytes:
    return (PHOTO_VECTORS / name).read_bytes()


JPEG_HEAD = fixture_bytes("jpeg_no_exif.jpg")
"""A real JPEG (64 x 48), for uploads that only need a valid header before their filler."""


def stored_blocks(store: LocalBlockStore) -> list[Path]:
    return sorted(store.root.rglob("*.data"))


def split(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = [0, *sorted(cuts), len(data)]
    return [data[start:end] for start, end in zip(points, points[1:])]


def cat(store: LocalBlockStore, cid: CID) -> bytes:
    return b"".join(store.cat(cid))


# --------------------------------------------------------------------------------------
# Test-side writers: TIFF (EXIF), JPEG APP1, ISOBMFF (HEIF)
# --------------------------------------------------------------------------------------

Entry = tuple[int, int, int, bytes]  # tag, TIFF type, count, value bytes


def ascii_entry(tag: int, text: str) -> Entry:
    raw = text.encode() + b"\x00"
    return (tag, 2, len(raw), raw)


def rational_entry(tag: int, *values: tuple[int, int], order: str = "<", signed: bool = False) -> Entry:
    code = "i" if signed else "I"
    raw = b"".join(struct.pack(order + code * 2, numerator, denominator) for numerator, denominator in values)
    return (tag, 10 if signed else 5, len(values), raw)


def byte_entry(tag: int, value: int) -> Entry:
    return (tag, 1, 1, bytes([value]))


def build_tiff(
    ifd0: list[Entry], exif_ifd: list[Entry] | None = None, gps_ifd: list[Entry] | None = None, order: str = "<"
) -> bytes:
    """TIFF-structured EXIF: IFD0, then the Exif and GPS IFDs, then the values over 4 bytes."""
    ifds = [list(ifd0)]
    pointers = []
    for tag, sub in ((0x8769, exif_ifd), (0x8825, gps_ifd)):
        if sub is not None:
            pointers.append((tag, len(ifds)))
            ifds.append(list(sub))
    starts: list[int] = []
    position = 8
    for ifd in ifds:
        extra = len(pointers) if not starts else 0
        starts.append(position)
        position += 2 + 12 * (len(ifd) + extra) + 4
    for tag, index in pointers:
        ifds[0].append((tag, 4, 1, struct.pack(order + "I", starts[index])))
    data_area = bytearray()
    out = bytearray((b"II" if order == "<" else b"MM") + struct.pack(order + "HI", 42, 8))
    for ifd in ifds:
        out += struct.pack(order + "H", len(ifd))
        for tag, kind, count, value in sorted(ifd):
            if len(value) <= 4:
                field = value.ljust(4, b"\x00")
            else:
                field = struct.pack(order + "I", position + len(data_area))
                data_area += value + b"\x00" * (len(value) % 2)
            out += struct.pack(order + "HHI", tag, kind, count) + field
        out += b"\x00\x00\x00\x00"
    return bytes(out + data_area)


def good_tiff(order: str = "<") -> bytes:
    """Make, DateTimeOriginal+Offset, GPS 33°51'35.9"S 151°12'40"W, 3 m below sea level."""
    return build_tiff(
        [ascii_entry(0x010F, "TestCam"), ascii_entry(0x0110, "Model T")],
        [ascii_entry(0x9003, "2023:05:14 18:02:59"), ascii_entry(0x9011, "-03:30")],
        [
            ascii_entry(1, "S"),
            rational_entry(2, (33, 1), (51, 1), (359, 10), order=order),
            ascii_entry(3, "W"),
            rational_entry(4, (151, 1), (12, 1), (40, 1), order=order),
            byte_entry(5, 1),
            rational_entry(6, (3, 1), order=order),
        ],
        order=order,
    )


GOOD_TIFF_EXIF = {
    "make": "TestCam",
    "model": "Model T",
    "date_time_original": "2023:05:14 18:02:59",
    "offset_time_original": "-03:30",
    "taken_at": "2023-05-14T18:02:59-03:30",
    "taken_at_offset": "-03:30",
    "gps": {
        "lat": float(-(33 + Fraction(51, 60) + Fraction(359, 36000))),
        "lon": float(-(151 + Fraction(12, 60) + Fraction(40, 3600))),
        "alt": -3.0,
    },
}


def jpeg_with_exif(tiff: bytes, *, before: bytes = b"") -> bytes:
    """A real JPEG (the no-EXIF fixture) with an APP1 Exif segment holding ``tiff`` after ``before``."""
    body = fixture_bytes("jpeg_no_exif.jpg")
    payload = b"Exif\x00\x00" + tiff
    return b"\xff\xd8" + before + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + body[2:]


def app_segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + (len(payload) + 2).to_bytes(2, "big") + payload


def full_box(kind: bytes, version: int, payload: bytes) -> bytes:
    return box(kind, bytes((version, 0, 0, 0)) + payload)


def build_heic(
    tiff: bytes | None,
    *,
    filler: int = 2000,
    exif_at: str = "end",
    iloc_version: int = 1,
    decoy: bytes | None = None,
    meta_last: bool = False,
    brands: tuple[bytes, ...] = (b"heic", b"mif1", b"heic"),
    ispe: tuple[int, int] | None = None,
) -> bytes:
    """A HEIF file: item 1 a (fake) hvc1 image, item 2 its Exif (cdsc → 1), optional item 3 a decoy Exif.

    ``exif_at``: "end" (in mdat after the image), "start" (before it), "split" (two extents,
    one on each side of the image) or "idat" (inside the meta box).
    """
    image = bytes(range(256)) * (filler // 256) + bytes(filler % 256)
    exif = b"\x00\x00\x00\x06Exif\x00\x00" + tiff if tiff is not None else b""
    decoy_payload = b"\x00\x00\x00\x00" + decoy if decoy is not None else b""
    ftyp = box(b"ftyp", brands[0] + b"\x00\x00\x00\x00" + b"".join(brands[1:]))

    def meta(extents: dict[int, list[tuple[int, int]]], methods: dict[int, int]) -> bytes:
        infe = [full_box(b"infe", 2, (1).to_bytes(2, "big") + b"\x00\x00hvc1\x00")]
        if decoy is not None:  # listed first on purpose: the reader must prefer the cdsc one
            infe.append(full_box(b"infe", 2, (3).to_bytes(2, "big") + b"\x00\x00Exif\x00"))
        if tiff is not None:
            infe.append(full_box(b"infe", 2, (2).to_bytes(2, "big") + b"\x00\x00Exif\x00"))
        iinf = full_box(b"iinf", 0, len(infe).to_bytes(2, "big") + b"".join(infe))
        width = 2 if iloc_version < 2 else 4
        entries = b""
        for item, item_extents in sorted(extents.items()):
            entries += item.to_bytes(width, "big")
            if iloc_version in (1, 2):
                entries += methods.get(item, 0).to_bytes(2, "big")
            entries += b"\x00\x00" + len(item_extents).to_bytes(2, "big")  # data_reference_index, extent_count
            for offset, length in item_extents:
                entries += offset.to_bytes(4, "big") + length.to_bytes(4, "big")
        iloc = full_box(b"iloc", iloc_version, bytes((0x44, 0x00)) + len(extents).to_bytes(width, "big") + entries)
        children = [
            full_box(b"hdlr", 0, b"\x00" * 4 + b"pict" + b"\x00" * 13),
            full_box(b"pitm", 0, (1).to_bytes(2, "big")),
            iinf,
            full_box(b"iref", 0, box(b"cdsc", (2).to_bytes(2, "big") + (1).to_bytes(2, "big") + (1).to_bytes(2, "big"))),
            iloc,
        ]
        if exif_at == "idat":
            children.append(box(b"idat", exif))
        if ispe is not None:  # image spatial extents of item 1 (no ipma: the reader takes the largest)
            extents_box = full_box(b"ispe", 0, ispe[0].to_bytes(4, "big") + ispe[1].to_bytes(4, "big"))
            children.append(box(b"iprp", box(b"ipco", extents_box)))
        return full_box(b"meta", 0, b"".join(children))

    def arrange(mdat_data_start: int) -> tuple[dict[int, list[tuple[int, int]]], dict[int, int], bytes]:
        extents: dict[int, list[tuple[int, int]]] = {}
        methods: dict[int, int] = {}
        if exif_at == "start":
            mdat = exif + decoy_payload + image
            extents[2] = [(mdat_data_start, len(exif))]
            extents[3] = [(mdat_data_start + len(exif), len(decoy_payload))]
            extents[1] = [(mdat_data_start + len(exif) + len(decoy_payload), len(image))]
        elif exif_at == "split":
            half = len(exif) // 2
            mdat = exif[:half] + image + exif[half:] + decoy_payload
            extents[2] = [(mdat_data_start, half), (mdat_data_start + half + len(image), len(exif) - half)]
            extents[1] = [(mdat_data_start + half, len(image))]
            extents[3] = [(mdat_data_start + len(exif) + len(image), len(decoy_payload))]
        elif exif_at == "idat":
            mdat = image + decoy_payload
            extents[1] = [(mdat_data_start, len(image))]
            extents[2] = [(0, len(exif))]
            methods[2] = 1
            extents[3] = [(mdat_data_start + len(image), len(decoy_payload))]
        else:
            mdat = image + exif + decoy_payload
            extents[1] = [(mdat_data_start, len(image))]
            extents[2] = [(mdat_data_start + len(image), len(exif))]
            extents[3] = [(mdat_data_start + len(image) + len(exif), len(decoy_payload))]
        if tiff is None:
            del extents[2]
        if decoy is None:
            del extents[3]
        return extents, methods, box(b"mdat", mdat)

    if meta_last:
        extents, methods, mdat = arrange(len(ftyp) + 8)
        return ftyp + mdat + meta(extents, methods)
    meta_size = len(meta(*arrange(0)[:2]))
    extents, methods, mdat = arrange(len(ftyp) + meta_size + 8)
    built = meta(extents, methods)
    assert len(built) == meta_size
    return ftyp + built + mdat


def pillow_jpeg(exif: Image.Exif | None, *, size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", size, (90, 140, 200))
    if exif is None:
        image.save(buffer, "JPEG", quality=85)
    else:
        image.save(buffer, "JPEG", quality=85, exif=exif.tobytes())
    return buffer.getvalue()


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
# EXIF values
# --------------------------------------------------------------------------------------


def test_exif_values_are_exact_for_a_jpeg_written_by_pillow(store: LocalBlockStore) -> None:
    exif = Image.Exif()
    exif[0x010F] = "Samsung"
    exif[0x0110] = "SM-A546E"
    exif[0x8769] = {0x9003: "2023:05:14 17:59:58", 0x9011: "+07:00"}
    exif[0x8825] = {
        1: "N",
        2: (13.0, 45.0, 23.4),  # 13.7565
        3: "E",
        4: (100.0, 30.0, 6.48),  # 100.5018
        5: b"\x00",
        6: TiffImagePlugin.IFDRational(25, 2),  # 12.5 m
        7: (10.0, 59.0, 58.0),
        29: "2023:05:14",
    }
    data = pillow_jpeg(exif)
    info = ingest_photo([data], content=store, max_bytes=LIMIT)
    assert info.taken_at == "2023-05-14T17:59:58+07:00"
    assert info.gps == {"lat": 13.7565, "lon": 100.5018, "alt": 12.5}
    assert info.exif == {
        "make": "Samsung",
        "model": "SM-A546E",
        "date_time_original": "2023:05:14 17:59:58",
        "offset_time_original": "+07:00",
        "taken_at": "2023-05-14T17:59:58+07:00",
        "taken_at_offset": "+07:00",
        "gps": {"lat": 13.7565, "lon": 100.5018, "alt": 12.5},
        "gps_time_utc": "2023-05-14T10:59:58Z",
    }
    assert info.exif_error is None
    # Pillow reads the same values back
    gps = Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825)
    assert float(gps[2][0] + gps[2][1] / 60 + gps[2][2] / 3600) == pytest.approx(info.gps["lat"], abs=1e-12)


def test_south_and_west_are_negative_and_below_sea_level_is_negative(store: LocalBlockStore) -> None:
    for order in ("<", ">"):  # little- and big-endian TIFF
        info = ingest_photo([jpeg_with_exif(good_tiff(order))], content=store, max_bytes=LIMIT)
        assert info.exif == GOOD_TIFF_EXIF
        assert info.gps is not None and info.gps["lat"] < 0 and info.gps["lon"] < 0 and info.gps["alt"] == -3.0


def test_without_offset_the_local_time_is_kept_and_the_offset_is_unknown(store: LocalBlockStore) -> None:
    exif = Image.Exif()
    exif[0x8769] = {0x9003: "2023:05:14 08:00:00"}
    info = ingest_photo([pillow_jpeg(exif)], content=store, max_bytes=LIMIT)
    assert info.taken_at == "2023-05-14T08:00:00"
    assert info.exif == {
        "date_time_original": "2023:05:14 08:00:00",
        "taken_at": "2023-05-14T08:00:00",
        "taken_at_offset": "unknown",
    }
    assert info.gps is None and info.exif_error is None


@pytest.mark.parametrize("blank", ["    :  :     :  :  ", "0000:00:00 00:00:00", ""])
def test_a_blank_date_means_no_date(blank: str, store: LocalBlockStore) -> None:
    tiff = build_tiff([ascii_entry(0x010F, "Cam")], [ascii_entry(0x9003, blank)])
    info = ingest_photo([jpeg_with_exif(tiff)], content=store, max_bytes=LIMIT)
    assert info.exif == {"make": "Cam"} and info.taken_at is None and info.exif_error is None


def test_exif_is_found_after_jfif_and_xmp_segments() -> None:
    xmp = app_segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta/>")
    jfif = app_segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    assert read_exif(jpeg_with_exif(good_tiff(), before=jfif + xmp + b"\xff\xff")) == (GOOD_TIFF_EXIF, None)  # with a fill byte
    assert read_exif(b"\xff\xd8" + jfif + xmp + b"\xff\xda\x00\x02" + bytes(10)) == ({}, None)  # scan starts: no EXIF


def test_gps_time_keeps_fractional_seconds() -> None:
    tiff = build_tiff([], None, [ascii_entry(29, "2023:05:14"), rational_entry(7, (2, 1), (3, 1), (455, 100))])
    assert read_exif(jpeg_with_exif(tiff)).exif == {"gps_time_utc": "2023-05-14T02:03:04.550Z"}


# --------------------------------------------------------------------------------------
# Malformed EXIF: tolerated, reported, the bytes still stored unchanged
# --------------------------------------------------------------------------------------

_GPS_OK = [
    ascii_entry(1, "N"),
    rational_entry(2, (13, 1), (0, 1), (0, 1)),
    ascii_entry(3, "E"),
    rational_entry(4, (100, 1), (0, 1), (0, 1)),
]
_DATE_OK = [ascii_entry(0x9003, "2023:05:14 10:00:00")]

MALFORMED: dict[str, tuple[bytes, str]] = {
    "not TIFF": (jpeg_with_exif(b"XX\x2a\x00\x08\x00\x00\x00"), "not 'II' or 'MM'"),
    "no 42": (jpeg_with_exif(b"II\x2b\x00\x08\x00\x00\x00\x00\x00"), "42"),
    "IFD0 past the end": (jpeg_with_exif(b"II\x2a\x00\xff\xff\x00\x00"), "past the end"),
    "IFD0 with too many entries": (jpeg_with_exif(b"II\x2a\x00\x08\x00\x00\x00\xff\x00" + bytes(30)), "claims 255 entries"),
    "zero denominator": (
        jpeg_with_exif(build_tiff([], _DATE_OK, [ascii_entry(1, "N"), rational_entry(2, (13, 1), (0, 0), (0, 1)), *_GPS_OK[2:]])),
        "zero denominator",
    ),
    "latitude of 95 degrees": (
        jpeg_with_exif(build_tiff([], _DATE_OK, [ascii_entry(1, "N"), rational_entry(2, (95, 1), (0, 1), (0, 1)), *_GPS_OK[2:]])),
        "more than 90 degrees",
    ),
    "61 minutes": (
        jpeg_with_exif(build_tiff([], _DATE_OK, [*_GPS_OK[:3], rational_entry(4, (100, 1), (61, 1), (0, 1))])),
        "minutes",
    ),
    "latitude without its reference": (jpeg_with_exif(build_tiff([], _DATE_OK, _GPS_OK[1:])), "GPSLatitudeRef is None"),
    "latitude without longitude": (jpeg_with_exif(build_tiff([], _DATE_OK, _GPS_OK[:2])), "not both"),
    "latitude as text": (jpeg_with_exif(build_tiff([], _DATE_OK, [ascii_entry(2, "13.7"), *_GPS_OK[2:]])), "not RATIONAL"),
    "impossible date": (jpeg_with_exif(build_tiff([], [ascii_entry(0x9003, "2023:13:45 10:00:00")])), "not a real date"),
    "date in another format": (jpeg_with_exif(build_tiff([], [ascii_entry(0x9003, "14/05/2023 10:00")])), "YYYY:MM:DD"),
    "bad offset": (jpeg_with_exif(build_tiff([], [*_DATE_OK, ascii_entry(0x9011, "+7h")])), "OffsetTimeOriginal"),
    "Exif pointer of the wrong type": (jpeg_with_exif(build_tiff([(0x8769, 2, 4, b"abc\x00")])), "pointer to the Exif IFD"),
    "HEIF Exif item header past its end": (build_heic(b""), "past its end"),
    "HEIF Exif item past the end of the file": (build_heic(good_tiff())[:-100], "the file has"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_exif_is_tolerated_and_reported(case: str, store: LocalBlockStore) -> None:
    data, reason = MALFORMED[case]
    info = ingest_photo(split(data, [len(data) // 3]), content=store, max_bytes=LIMIT)
    assert info.exif == {} and info.taken_at is None and info.gps is None
    assert info.exif_error is not None and reason in info.exif_error
    assert info.cid == file_cid(data)
    assert cat(store, info.cid) == data
    assert read_exif(data) == (info.exif, info.exif_error)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_damage_to_exif_never_raises(data: st.DataObject) -> None:
    """Flip, zero or cut bytes of a JPEG's or HEIC's EXIF: the reading is complete or empty with a note."""
    original = data.draw(st.sampled_from([jpeg_with_exif(good_tiff()), jpeg_with_exif(good_tiff(">")), build_heic(good_tiff())]))
    damaged = bytearray(original)
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(damaged) - 1))
        damaged[position] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        damaged = damaged[: data.draw(st.integers(1, len(damaged)))]
    reading = read_exif(bytes(damaged))
    assert isinstance(reading.exif, dict)
    assert reading.error is None or (isinstance(reading.error, str) and reading.exif == {})
    json.dumps(reading.exif)


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


# --------------------------------------------------------------------------------------
# gps_distance_km
# --------------------------------------------------------------------------------------


def test_distance_known_values() -> None:
    assert gps_distance_km((0.0, 0.0), (0.0, 1.0)) == pytest.approx(EARTH_MEAN_RADIUS_KM * math.pi / 180, rel=1e-12)
    assert gps_distance_km((0.0, 0.0), (0.0, 180.0)) == pytest.approx(EARTH_MEAN_RADIUS_KM * math.pi, rel=1e-12)
    assert gps_distance_km((90.0, 0.0), (-90.0, 0.0)) == pytest.approx(EARTH_MEAN_RADIUS_KM * math.pi, rel=1e-12)
    assert gps_distance_km((13.7565, 100.5018), (13.7565, 100.5018)) == 0.0
    # Bangkok (Democracy Monument) to Chiang Mai: about 582 km as the crow flies
    assert gps_distance_km((13.7565, 100.5018), (18.79, 98.985)) == pytest.approx(582, abs=3)
    # across the antimeridian
    assert gps_distance_km((0.0, 179.5), (0.0, -179.5)) == pytest.approx(EARTH_MEAN_RADIUS_KM * math.pi / 180, rel=1e-9)


latitudes = st.floats(-90, 90, allow_nan=False)
longitudes = st.floats(-180, 180, allow_nan=False)
points = st.tuples(latitudes, longitudes)


@given(points, points)
def test_distance_is_symmetric_and_matches_the_spherical_law_of_cosines(a: tuple[float, float], b: tuple[float, float]) -> None:
    distance = gps_distance_km(a, b)
    assert distance == pytest.approx(gps_distance_km(b, a), abs=1e-9)
    assert 0 <= distance <= EARTH_MEAN_RADIUS_KM * math.pi + 1e-9
    phi1, phi2, dlambda = math.radians(a[0]), math.radians(b[0]), math.radians(b[1] - a[1])
    cosine = math.sin(phi1) * math.sin(phi2) + math.cos(phi1) * math.cos(phi2) * math.cos(dlambda)
    reference = EARTH_MEAN_RADIUS_KM * math.acos(max(-1.0, min(1.0, cosine)))
    assert distance == pytest.approx(reference, abs=0.05)  # the law of cosines loses precision for tiny and antipodal distances


@pytest.mark.parametrize("bad", [(91.0, 0.0), (0.0, 180.5), (math.nan, 0.0), (0.0, math.inf), (1.0,)])
def test_distance_refuses_bad_coordinates(bad: tuple[float, ...]) -> None:
    with pytest.raises(InvalidCoordinates):
        gps_distance_km(bad, (0.0, 0.0))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        gps_distance_km((0.0, 0.0), bad)  # type: ignore[arg-type]


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


def test_the_time_a_photo_was_taken_is_read_from_its_stored_exif() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    ict = timezone(timedelta(hours=7))
    assert taken_at_of({"taken_at": "2023-05-14T09:41:07+07:00"}, local_zone=UTC) == (
        datetime(2023, 5, 14, 9, 41, 7, tzinfo=ict),
        "EXIF DateTimeOriginal",
    )
    assert taken_at_of({"taken_at": "2023-05-14T17:41:07", "taken_at_offset": "unknown"}, local_zone=ict) == (
        datetime(2023, 5, 14, 17, 41, 7, tzinfo=ict),
        "EXIF DateTimeOriginal, read as local time",
    )
    assert taken_at_of({"gps_time_utc": "2023-05-14T10:41:07.250Z"}, local_zone=ict) == (
        datetime(2023, 5, 14, 10, 41, 7, 250000, tzinfo=UTC),
        "EXIF GPS time",
    )
    assert taken_at_of({"taken_at": "not a time", "gps_time_utc": 5}, local_zone=ict) == (None, "")
    assert taken_at_of({}, local_zone=ict) == (None, "")
    # the committed fixtures, as ingest stores them
    for name, expected in EXPECTED.items():
        moment, _ = taken_at_of(expected["exif"], local_zone=ict)  # type: ignore[arg-type]
        assert (moment is None) == (expected["taken_at"] is None), name
