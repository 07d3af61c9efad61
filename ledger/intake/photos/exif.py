"""Reading EXIF from a stream: a tap that watches the file go by, keeps its head (256 KiB
for JPEG and PNG, 1 MiB for HEIC), finds where the EXIF data lies (``containers``) and
copies exactly those bytes as they pass, wherever they are in the file (at most
``MAX_EXIF_BYTES``); then the fields are read from them (``fields``).

Malformed EXIF never fails an upload. Any structural fault, or an unreadable value in one
of the fields, gives ``exif == {}`` and a sentence in ``exif_error``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import NamedTuple

from ledger.intake.photos.containers import _LOCATORS, _Location, _Locator
from ledger.intake.photos.errors import _Malformed
from ledger.intake.photos.fields import _read_tiff_fields
from ledger.intake.photos.identifying import _identifying_tags
from ledger.intake.photos.limits import HEAD_BYTES, HEIF_HEAD_BYTES, MAX_EXIF_BYTES
from ledger.intake.photos.sniff import _JPEG_MAGIC, _PNG_MAGIC
from ledger.intake.photos.tiff import _Tiff

__all__ = ["ExifReading", "read_exif", "taken_at_of"]


class ExifReading(NamedTuple):
    """What :func:`read_exif` found: the fields (see ``ledger.intake.photos.fields``) or an error note."""

    exif: dict[str, object]
    error: str | None

    @property
    def taken_at(self) -> str | None:
        value = self.exif.get("taken_at")
        return value if isinstance(value, str) else None

    @property
    def gps(self) -> dict[str, float] | None:
        value = self.exif.get("gps")
        return dict(value) if isinstance(value, dict) else None


class _ExifTap:
    """Watches a file stream by; keeps its head and copies out the EXIF payload."""

    def __init__(self, container: str) -> None:
        self._locator: _Locator = _LOCATORS[container]
        self._head_limit = HEIF_HEAD_BYTES if container == "isobmff" else HEAD_BYTES
        self._head = bytearray()
        self._size = 0
        self._located = False
        self._location: _Location | None = None
        self._error: str | None = None
        self._payload = bytearray()
        self._copied = 0
        self.identifying: list[str] = []
        """Identifying tags found in the EXIF data (see ``IDENTIFYING_EXIF_TAGS``), after ``finish``."""

    def feed(self, piece: bytes) -> None:
        start = self._size
        self._size += len(piece)
        offset = 0
        if not self._located:
            offset = min(self._head_limit - len(self._head), len(piece))
            self._head += piece[:offset]
            if len(self._head) < self._head_limit:
                return
            self._locate(complete=False)
        if offset < len(piece) and self._location is not None:
            self._copy(memoryview(piece)[offset:], start + offset)

    def finish(self) -> ExifReading:
        if not self._located:
            self._locate(complete=True)
        if self._error is not None:
            return ExifReading({}, self._error)
        if self._location is None:
            return ExifReading({}, None)
        if self._copied < len(self._payload):
            last = max(end for _, end in self._location.extents)
            return ExifReading({}, f"the EXIF data is said to lie up to byte {last}, but the file has {self._size} bytes")
        try:
            tiff = self._location.unwrap(bytes(self._payload))
            try:
                self.identifying = _identifying_tags(_Tiff(tiff))
            except Exception:  # noqa: BLE001 - the fields below report what is unreadable
                pass
            return ExifReading(_read_tiff_fields(tiff), None)
        except _Malformed as exc:
            return ExifReading({}, f"unreadable EXIF: {exc}")
        except Exception as exc:  # noqa: BLE001 - a photo's EXIF must never fail its upload
            return ExifReading({}, f"unreadable EXIF ({type(exc).__name__}: {exc})")

    def _locate(self, *, complete: bool) -> None:
        self._located = True
        head = bytes(self._head)
        self._head = bytearray()  # not needed any more
        try:
            location = self._locator(head, complete)
        except _Malformed as exc:
            self._error = f"unreadable EXIF: {exc}"
            return
        except Exception as exc:  # noqa: BLE001 - see finish()
            self._error = f"unreadable EXIF ({type(exc).__name__}: {exc})"
            return
        if location is None or not location.extents:
            return
        total = sum(end - start for start, end in location.extents)
        if any(start < 0 or end < start for start, end in location.extents):
            self._error = "unreadable EXIF: the container gives it a negative extent"
            return
        if total > MAX_EXIF_BYTES:
            self._error = f"the EXIF data has {total} bytes, more than the {MAX_EXIF_BYTES} read"
            return
        self._location = location
        self._payload = bytearray(total)
        self._copy(memoryview(head), 0)

    def _copy(self, data: memoryview, at: int) -> None:
        """Copy the parts of ``data`` (file bytes from offset ``at``) that lie in the EXIF extents."""
        assert self._location is not None
        end_of_data = at + len(data)
        into = 0
        for start, end in self._location.extents:
            low, high = max(start, at), min(end, end_of_data)
            if low < high:
                target = into + low - start
                self._payload[target : target + high - low] = data[low - at : high - at]
                self._copied += high - low
            into += end - start


def read_exif(data: bytes) -> ExifReading:
    """The EXIF fields of a whole photo file (JPEG, PNG or HEIF container), never raising.

    The same code :func:`ingest_photo` runs on the stream, given the file in one piece.
    Bytes of any other kind give an empty reading with an error note.
    """
    if data.startswith(_JPEG_MAGIC):
        container = "jpeg"
    elif data.startswith(_PNG_MAGIC):
        container = "png"
    elif data[4:8] == b"ftyp":
        container = "isobmff"
    else:
        return ExifReading({}, "not a JPEG, PNG or HEIF file")
    tap = _ExifTap(container)
    tap.feed(bytes(data))
    return tap.finish()


def taken_at_of(exif: Mapping[str, object], *, local_zone: tzinfo) -> tuple[datetime | None, str]:
    """When a photo was taken, as an aware datetime, from its stored EXIF fields (the
    ``PhotoInfo.exif`` dict), and which field said so: ``taken_at`` with its offset; a
    ``taken_at`` without one is read as ``local_zone`` time (the election's: a phone keeps
    local time); else ``gps_time_utc``; else ``(None, "")``. Never raises."""
    taken_at = exif.get("taken_at")
    if isinstance(taken_at, str):
        try:
            moment = datetime.fromisoformat(taken_at)
            if moment.tzinfo is not None:
                return moment, "EXIF DateTimeOriginal"
            return moment.replace(tzinfo=local_zone), "EXIF DateTimeOriginal, read as local time"
        except ValueError:
            pass
    gps_time = exif.get("gps_time_utc")
    if isinstance(gps_time, str):
        try:
            return datetime.fromisoformat(gps_time.replace("Z", "+00:00")), "EXIF GPS time"
        except ValueError:
            pass
    return None, ""
