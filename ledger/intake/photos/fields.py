"""The EXIF fields read, from the TIFF structure inside the EXIF data.

``Make`` and ``Model`` (IFD0), ``DateTimeOriginal`` and ``OffsetTimeOriginal`` (Exif IFD),
and ``GPSLatitude(Ref)``, ``GPSLongitude(Ref)``, ``GPSAltitude(Ref)``, ``GPSDateStamp`` and
``GPSTimeStamp`` (GPS IFD). They are returned in ``PhotoInfo.exif`` (JSON-ready; only keys
that were present)::

    {"make": "Apple", "model": "iPhone 13",
     "date_time_original": "2023:05:14 09:41:07",   as written by the camera
     "offset_time_original": "+07:00",              as written, when present
     "taken_at": "2023-05-14T09:41:07+07:00",       ISO 8601; naive local time when...
     "taken_at_offset": "+07:00",                   ...this says "unknown"
     "gps": {"lat": 13.7565, "lon": 100.5018, "alt": 12.5},   decimal degrees, metres
     "gps_time_utc": "2023-05-14T02:41:07Z"}        from GPSDateStamp + GPSTimeStamp

Latitude and longitude are ``degrees + minutes/60 + seconds/3600`` computed exactly from the
rationals and rounded once to the nearest float, negative for ``S``/``W``; ``alt`` is
negative when ``GPSAltitudeRef`` is 1 (below sea level). These are floats: fine for JSON
and the database, but DAG-CBOR ledger nodes refuse floats, so do not put ``as_json()``
into a node as it is.

An unreadable value in one of these fields (a zero denominator, a latitude of 95°, a date of
"2023:13:45 …", a latitude without its ``N``/``S`` reference) raises the internal
``_Malformed``: the fields are reported all together or not at all. A blank or all-zero
date, which the Exif standard allows for "unknown", is simply absent.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from fractions import Fraction

from ledger.intake.photos.errors import _Malformed
from ledger.intake.photos.tiff import (
    _DATE_TIME_ORIGINAL,
    _EXIF_IFD,
    _GPS_ALT,
    _GPS_ALT_REF,
    _GPS_DATE,
    _GPS_IFD,
    _GPS_LAT,
    _GPS_LAT_REF,
    _GPS_LON,
    _GPS_LON_REF,
    _GPS_TIME,
    _MAKE,
    _MODEL,
    _OFFSET_TIME_ORIGINAL,
    _Entry,
    _Tiff,
)

__all__: list[str] = []

_DATE_TIME = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")


_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})")


def _read_tiff_fields(data: bytes) -> dict[str, object]:
    """The fields of the module docstring from TIFF-structured EXIF data; raises _Malformed."""
    tiff = _Tiff(data)
    ifd0 = tiff.ifd(tiff.first_ifd, "IFD0")
    exif_ifd = tiff.sub_ifd(ifd0, _EXIF_IFD, "Exif IFD")
    gps_ifd = tiff.sub_ifd(ifd0, _GPS_IFD, "GPS IFD")
    out: dict[str, object] = {}

    for key, tag, name in (("make", _MAKE, "Make"), ("model", _MODEL, "Model")):
        value = tiff.text(ifd0, tag, name)
        if value:
            out[key] = value

    original = tiff.text(exif_ifd, _DATE_TIME_ORIGINAL, "DateTimeOriginal")
    offset = tiff.text(exif_ifd, _OFFSET_TIME_ORIGINAL, "OffsetTimeOriginal")
    if original and not _is_blank(original):
        local = _parse_date_time(original, "DateTimeOriginal")
        out["date_time_original"] = original
        iso = local.isoformat(timespec="seconds")
        if offset and not _is_blank(offset):
            out["offset_time_original"] = offset
            zone = _parse_offset(offset)
            out["taken_at"] = iso + zone
            out["taken_at_offset"] = zone
        else:
            out["taken_at"] = iso
            out["taken_at_offset"] = "unknown"

    gps = _read_gps(tiff, gps_ifd)
    if gps is not None:
        out["gps"] = gps
    gps_time = _read_gps_time(tiff, gps_ifd)
    if gps_time is not None:
        out["gps_time_utc"] = gps_time
    return out


def _is_blank(value: str) -> bool:
    """The Exif standard's way of writing "unknown": spaces (or zeros) in the template."""
    return not value.strip(" :0")


def _parse_date_time(value: str, name: str) -> datetime:
    match = _DATE_TIME.fullmatch(value.strip())
    if match is None:
        raise _Malformed(f"{name} {value!r} is not 'YYYY:MM:DD HH:MM:SS'")
    try:
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        return datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise _Malformed(f"{name} {value!r} is not a real date and time ({exc})") from None


def _parse_offset(value: str) -> str:
    match = _OFFSET.fullmatch(value.strip())
    if match is None or int(match[2]) > 14 or int(match[3]) > 59:
        raise _Malformed(f"OffsetTimeOriginal {value!r} is not '+HH:MM' or '-HH:MM'")
    return f"{match[1]}{match[2]}:{match[3]}"


def _read_gps(tiff: _Tiff, gps_ifd: dict[int, _Entry]) -> dict[str, float] | None:
    latitude = _coordinate(tiff, gps_ifd, _GPS_LAT, _GPS_LAT_REF, "GPSLatitude", ("N", "S"), 90)
    longitude = _coordinate(tiff, gps_ifd, _GPS_LON, _GPS_LON_REF, "GPSLongitude", ("E", "W"), 180)
    if latitude is None and longitude is None:
        return None
    if latitude is None or longitude is None:
        raise _Malformed("the GPS IFD has a latitude or a longitude, not both")
    gps = {"lat": float(latitude), "lon": float(longitude)}
    altitude = tiff.rationals(gps_ifd, _GPS_ALT, "GPSAltitude")
    if altitude is not None:
        if len(altitude) != 1 or altitude[0] < 0:
            raise _Malformed(f"GPSAltitude should be one non-negative rational, got {len(altitude)} values")
        below = tiff.integer(gps_ifd, _GPS_ALT_REF, "GPSAltitudeRef")
        if below not in (None, 0, 1):
            raise _Malformed(f"GPSAltitudeRef is {below}, not 0 (above sea level) or 1 (below)")
        gps["alt"] = float(-altitude[0] if below == 1 else altitude[0])
    return gps


def _coordinate(
    tiff: _Tiff, ifd: dict[int, _Entry], tag: int, ref_tag: int, name: str, refs: tuple[str, str], limit: int
) -> Fraction | None:
    parts = tiff.rationals(ifd, tag, name)
    ref = tiff.text(ifd, ref_tag, name + "Ref")
    if parts is None:
        return None
    if not 1 <= len(parts) <= 3:
        raise _Malformed(f"{name} has {len(parts)} values, not degrees, minutes and seconds")
    if any(part < 0 for part in parts) or any(part >= 60 for part in parts[1:]):
        raise _Malformed(f"{name} {_show(parts)} is not degrees, minutes (< 60) and seconds (< 60)")
    value = sum((part / 60**index for index, part in enumerate(parts)), Fraction(0))
    if value > limit:
        raise _Malformed(f"{name} {_show(parts)} is more than {limit} degrees")
    if ref is None or ref.upper() not in refs:
        raise _Malformed(f"{name}Ref is {ref!r}, not {refs[0]!r} or {refs[1]!r}")
    return -value if ref.upper() == refs[1] else value


def _show(parts: list[Fraction]) -> str:
    return "/".join(str(part) for part in parts)


def _read_gps_time(tiff: _Tiff, gps_ifd: dict[int, _Entry]) -> str | None:
    date = tiff.text(gps_ifd, _GPS_DATE, "GPSDateStamp")
    clock = tiff.rationals(gps_ifd, _GPS_TIME, "GPSTimeStamp")
    if not date or clock is None or _is_blank(date):
        return None
    if len(clock) != 3:
        raise _Malformed(f"GPSTimeStamp has {len(clock)} values, not hours, minutes and seconds")
    hours, minutes, seconds = clock
    if hours.denominator != 1 or minutes.denominator != 1 or not (0 <= hours < 24 and 0 <= minutes < 60 and 0 <= seconds < 61):
        raise _Malformed(f"GPSTimeStamp {_show(clock)} is not a time of day")
    day = _parse_date_time(f"{date.strip()} 00:00:00", "GPSDateStamp")
    whole = int(seconds)
    moment = day + timedelta(hours=int(hours), minutes=int(minutes), seconds=whole)
    milliseconds = int((seconds - whole) * 1000)
    if milliseconds:
        return moment.isoformat(timespec="seconds") + f".{milliseconds:03d}Z"
    return moment.isoformat(timespec="seconds") + "Z"
