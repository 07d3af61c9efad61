"""EXIF read from photos: exact values, tolerated and reported damage, the time a photo was taken."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, TiffImagePlugin

from ledger.content.local import LocalBlockStore
from ledger.core.unixfs import file_cid
from ledger.intake.photos import (
    ingest_photo,
    read_exif,
    taken_at_of,
)
from tests.support.photos import (
    EXPECTED,
    GOOD_TIFF_EXIF,
    LIMIT,
    app_segment,
    ascii_entry,
    build_heic,
    build_tiff,
    cat,
    good_tiff,
    jpeg_with_exif,
    pillow_jpeg,
    rational_entry,
    split,
)

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
