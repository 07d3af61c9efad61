"""TIFF decoding: a bounds-checked reader of the IFDs (image file directories) that EXIF
data is made of, and the tag numbers read from them. Every offset and count comes from the
upload, so every read is checked against the data's end and raises the internal
``_Malformed`` instead of reading past it.
"""

from __future__ import annotations

import struct
from fractions import Fraction
from typing import NamedTuple

from ledger.intake.photos.errors import _Malformed

__all__: list[str] = []

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}


_MAX_IFD_ENTRIES = 4096


_MAKE, _MODEL, _EXIF_IFD, _GPS_IFD = 0x010F, 0x0110, 0x8769, 0x8825


_DATE_TIME_ORIGINAL, _OFFSET_TIME_ORIGINAL = 0x9003, 0x9011


_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON, _GPS_ALT_REF, _GPS_ALT = 1, 2, 3, 4, 5, 6


_GPS_TIME, _GPS_DATE = 7, 29


class _Entry(NamedTuple):
    kind: int  # the TIFF field type: 2 ASCII, 5 RATIONAL, …
    number: int  # how many values
    value_at: int  # where the value bytes start in the TIFF data


class _Tiff:
    """A bounds-checked reader of the IFDs of TIFF-structured EXIF data."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 8:
            raise _Malformed(f"{len(data)} bytes are too few for a TIFF header")
        order = data[:2]
        if order == b"II":
            self.order = "<"
        elif order == b"MM":
            self.order = ">"
        else:
            raise _Malformed(f"the TIFF header starts with {order!r}, not 'II' or 'MM'")
        self.data = data
        if self._unpack("H", 2)[0] != 42:
            raise _Malformed("the TIFF header lacks the number 42")
        self.first_ifd = self._unpack("I", 4)[0]

    def _unpack(self, codes: str, at: int) -> tuple[int, ...]:
        layout = struct.Struct(self.order + codes)
        if at < 0 or at + layout.size > len(self.data):
            raise _Malformed(f"a value at byte {at} runs past the end of the EXIF data ({len(self.data)} bytes)")
        return layout.unpack_from(self.data, at)

    def ifd(self, at: int, name: str) -> dict[int, _Entry]:
        (count,) = self._unpack("H", at)
        if count > _MAX_IFD_ENTRIES or at + 2 + 12 * count > len(self.data):
            raise _Malformed(f"{name} at byte {at} claims {count} entries, more than the EXIF data holds")
        entries: dict[int, _Entry] = {}
        for index in range(count):
            position = at + 2 + 12 * index
            tag, kind, number = self._unpack("HHI", position)
            size = _TYPE_SIZES.get(kind, 0) * number
            value_at = position + 8 if size <= 4 else self._unpack("I", position + 8)[0]
            entries.setdefault(tag, _Entry(kind, number, value_at))
        return entries

    def sub_ifd(self, parent: dict[int, _Entry], tag: int, name: str) -> dict[int, _Entry]:
        entry = parent.get(tag)
        if entry is None:
            return {}
        if entry.kind not in (4, 13) or entry.number != 1:
            raise _Malformed(f"the pointer to the {name} has type {entry.kind} and count {entry.number}")
        (at,) = self._unpack("I", entry.value_at)
        return self.ifd(at, name)

    def _raw(self, entry: _Entry, name: str) -> bytes:
        size = _TYPE_SIZES[entry.kind] * entry.number
        if entry.value_at + size > len(self.data):
            raise _Malformed(f"{name} runs past the end of the EXIF data")
        return self.data[entry.value_at : entry.value_at + size]

    def text(self, ifd: dict[int, _Entry], tag: int, name: str) -> str | None:
        entry = ifd.get(tag)
        if entry is None:
            return None
        if entry.kind not in (2, 7):  # ASCII; UNDEFINED is seen in the wild
            raise _Malformed(f"{name} has type {entry.kind}, not ASCII")
        raw = self._raw(entry, name).split(b"\x00", 1)[0]
        return raw.decode("utf-8", errors="replace").strip()

    def rationals(self, ifd: dict[int, _Entry], tag: int, name: str) -> list[Fraction] | None:
        entry = ifd.get(tag)
        if entry is None:
            return None
        if entry.kind not in (5, 10):
            raise _Malformed(f"{name} has type {entry.kind}, not RATIONAL")
        raw = self._raw(entry, name)
        code = "I" if entry.kind == 5 else "i"
        pairs = struct.unpack(self.order + code * (2 * entry.number), raw)
        values = []
        for numerator, denominator in zip(pairs[0::2], pairs[1::2]):
            if denominator == 0:
                raise _Malformed(f"{name} has a zero denominator")
            values.append(Fraction(numerator, denominator))
        return values

    def integer(self, ifd: dict[int, _Entry], tag: int, name: str) -> int | None:
        entry = ifd.get(tag)
        if entry is None:
            return None
        if entry.kind not in (1, 3, 4, 7) or entry.number < 1:
            raise _Malformed(f"{name} has type {entry.kind}, not an integer")
        code = {1: "B", 7: "B", 3: "H", 4: "I"}[entry.kind]
        return int(self._unpack(code, entry.value_at)[0])
